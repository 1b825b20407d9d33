// HelloModifier: the smallest useful plugin; reports which modules its targets match.
#include <modkit/sdk.hpp>

#include <string>
#include <vector>

using modkit::sdk::Event;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

class HelloModifier final : public modkit::sdk::Modifier {
 public:
  explicit HelloModifier(const Params& params)
      : targets_(params.get<std::vector<std::string>>("targets")),
        greeting_(params.get<std::string>("greeting")) {}

  bool on_initialize(State& state) override {
    if (!state.has_model()) {
      state.log(MODKIT_LOG_INFO, "HelloModifier", greeting_ + ", no model");
      return true;
    }
    for (const auto& module : state.match(targets_)) {
      state.log(MODKIT_LOG_INFO, "HelloModifier", greeting_ + ", " + module.name + " (" + module.class_name + ")");
    }
    return true;
  }

  void on_update(State& state, const Event& event) override {
    state.log(MODKIT_LOG_DEBUG, "HelloModifier", "update at step " + std::to_string(event.global_step()));
  }

 private:
  std::vector<std::string> targets_;
  std::string greeting_;
};

MODKIT_EXPORT_MODIFIER(HelloModifier, "1.0.0", "logs the modules its targets match",
                       ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]), "modules to greet"},
                       ParamSpec{"greeting", Type::String, MODKIT_JSON("hello"), "what to say"})
