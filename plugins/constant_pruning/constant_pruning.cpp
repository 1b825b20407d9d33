// ConstantPruningModifier: records the zero pattern of target weights at start and keeps it through training.
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <string>
#include <vector>

namespace {

using modkit::sdk::Error;
using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

constexpr const char* kSource = "ConstantPruningModifier";

class ConstantPruningModifier final : public modkit::sdk::Modifier {
 public:
  explicit ConstantPruningModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")),
        ignore_(p.get<std::vector<std::string>>("ignore")),
        leave_enabled_(p.get<bool>("leave_enabled")) {}

  bool on_initialize(State& state) override {
    layers_.clear();
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, kSource)) {
      layers_.push_back(Layer{module.name, {}});
    }
    started_ = ended_ = false;
    return true;
  }

  bool on_finalize(State&) override {
    layers_.clear();
    return true;
  }

  // The mask is the exact zero pattern at start (llmcompressor treats |w| <= 1e-8 as zero).
  void on_start(State& state, const Event&) override {
    int64_t zeros = 0, total = 0;
    for (Layer& layer : layers_) {
      const at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");
      layer.pruned = w.detach().eq(0);
      zeros += layer.pruned.sum().item<int64_t>();
      total += w.numel();
    }
    started_ = true;
    state.log(MODKIT_LOG_DEBUG, kSource,
              "holding " + std::to_string(zeros) + " of " + std::to_string(total) + " weights at zero in " +
                  std::to_string(layers_.size()) + " modules");
  }

  void on_end(State&, const Event&) override { ended_ = true; }

  // Runs for every event, also after end: with leave_enabled the masks outlive the schedule.
  void on_event(State& state, const Event& event) override {
    if (event.type() != EventType::OptimPostStep || !started_) return;
    if (ended_ && !leave_enabled_) return;
    at::NoGradGuard no_grad;
    for (const Layer& layer : layers_) {
      modkit::sdk::get_tensor(state, layer.module, "weight").masked_fill_(layer.pruned, 0);
    }
  }

 private:
  struct Layer {
    std::string module;
    at::Tensor pruned;  // bool, true where the weight was zero at start
  };

  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
  bool leave_enabled_;

  std::vector<Layer> layers_;
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    ConstantPruningModifier, "1.0.0", "keeps the zero pattern of target weights fixed through training",
    (modkit::sdk::well_known::targets("modules whose weight keeps its zeros: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"start", Type::Float, MODKIT_JSON(0), "step or epoch at which the zero pattern is recorded"}),
    (ParamSpec{"end", Type::Float, MODKIT_JSON(null), "step or epoch at which it stops; unset runs until finalize"}),
    (ParamSpec{"update", Type::Float, MODKIT_JSON(null), "accepted for llmcompressor recipes; unused"}),
    (ParamSpec{"leave_enabled", Type::Bool, MODKIT_JSON(true), "keep re-applying the masks after end"}))
