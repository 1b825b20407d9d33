// Test plugin: one file exporting two modifiers, one of them sequential.
#include <modkit/sdk.hpp>

class BetaQuantModifier final : public modkit::sdk::Modifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  explicit BetaQuantModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
};

class BetaSmoothModifier final : public modkit::sdk::Modifier {
 public:
  explicit BetaSmoothModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
};

MODKIT_EXPORT_MODIFIER(BetaQuantModifier, "0.9.0", "beta: quantizes weights",
                       (modkit::sdk::ParamSpec{"bits", modkit::sdk::Type::Int, MODKIT_JSON(8), "bits per weight"}
                            .choices(MODKIT_JSON([4, 8]))))
MODKIT_EXPORT_MODIFIER(BetaSmoothModifier, "0.9.0", "beta: smooths activations")
