// Test plugin: a modifier with every kind of parameter; its version comes from the build (ALPHA_VERSION).
#include <modkit/sdk.hpp>

#ifndef ALPHA_VERSION
#define ALPHA_VERSION "1.2.3"
#endif

class AlphaPruningModifier final : public modkit::sdk::Modifier {
 public:
  explicit AlphaPruningModifier(const modkit::sdk::Params& p) : sparsity_(p.get<double>("sparsity")) {}
  bool on_initialize(modkit::sdk::State&) override { return sparsity_ >= 0.0; }

 private:
  double sparsity_;
};

MODKIT_EXPORT_MODIFIER(AlphaPruningModifier, ALPHA_VERSION, "alpha: prunes the smallest weights",
                       (modkit::sdk::ParamSpec{"sparsity", modkit::sdk::Type::Float, MODKIT_JSON(0.5),
                                               "fraction of weights to zero"}
                            .range(MODKIT_JSON(0.0), MODKIT_JSON(1.0))),
                       (modkit::sdk::ParamSpec{"mask_structure", modkit::sdk::Type::String,
                                               MODKIT_JSON("unstructured"), "sparsity pattern"}
                            .choices(MODKIT_JSON(["unstructured", "2:4"]))),
                       (modkit::sdk::ParamSpec{"targets", modkit::sdk::Type::StringList, nullptr,
                                               "modules to prune"}),
                       (modkit::sdk::ParamSpec{"steps", modkit::sdk::Type::Int, MODKIT_JSON(4), "pruning steps"}
                            .range(MODKIT_JSON(1), MODKIT_JSON(100))))
