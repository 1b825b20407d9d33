// WandaPruningModifier: one-shot pruning by |W_ij| * ||X_j|| per output row (Sun et al. 2023), unstructured or N:M, from calibration inputs.
#include "wanda.hpp"

#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using modkit::sdk::Error;
using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::HookKind;
using modkit::sdk::HookView;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

constexpr const char* kSource = "WandaPruningModifier";

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string percent(double fraction) {
  const int64_t tenths = static_cast<int64_t>(fraction * 1000.0 + 0.5);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "%";
}

class WandaPruningModifier final : public modkit::sdk::CalibratingModifier<modkit::wanda::RowScalars> {
 public:
  static constexpr uint16_t abi_min_minor = 1;  // forward hooks
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;

  explicit WandaPruningModifier(const Params& p)
      : sparsity_(p.get<double>("sparsity")),
        structure_(modkit::sdk::MaskStructure::parse(p.get<std::string>("mask_structure"))),
        targets_(p.get<std::vector<std::string>>("targets")),
        ignore_(p.get<std::vector<std::string>>("ignore")) {
    // sequential_targets is read by the host's sequential pipeline (which blocks to calibrate
    // one at a time); checked here only for its type.
    (void)p.get<std::optional<std::vector<std::string>>>("sequential_targets");
  }

  bool on_initialize(State& state) override {
    reset_calibration();
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, kSource)) {
      const at::Tensor w = modkit::sdk::get_tensor(state, module.name, "weight");
      if (w.dim() != 2) {
        invalid("weight of '" + module.name + "' (" + module.class_name +
                "): expected a 2-d weight [out_features, in_features], found shape " + shape_of(w));
      }
      if (!structure_.unstructured() && w.size(1) % structure_.m != 0) {
        invalid("weight of '" + module.name + "': mask_structure '" + structure_.text() +
                "' needs in_features that is a multiple of " + std::to_string(structure_.m) + ", found " +
                std::to_string(w.size(1)));
      }
      if (module.name.size() >= 7 && module.name.compare(module.name.size() - 7, 7, "lm_head") == 0) {
        state.log(MODKIT_LOG_WARN, kSource,
                  "pruning '" + module.name + "': llmcompressor's SparseGPT and Wanda used to skip lm_head, which is "
                  "not advised; add \"re:.*lm_head\" to ignore if this is unintended");
      }
      calibrate(state, module.name, module.name, HookKind::ForwardPre, modkit::wanda::RowScalars(w.size(1)));
    }
    return true;
  }

 private:
  const char* source() const override { return kSource; }

  void observe(const std::string& module, modkit::wanda::RowScalars& stats, const modkit_hook_call& call) override {
    try {
      stats.add(HookView(call).input(0));
    } catch (const std::invalid_argument& e) {
      invalid("input of '" + module + "': " + e.what());
    }
  }

  bool has_data(const modkit::wanda::RowScalars& stats) const override { return stats.samples() > 0; }

  std::string idle_warning(const std::string& module) const override {
    return "'" + module + "' saw no calibration data: left dense";
  }

  std::string no_data_error(const std::vector<std::string>& idle) const override {
    return "no calibration data reached any of the " + std::to_string(idle.size()) + " modules targeted by " +
           modkit::sdk::quoted_names(targets_) + ": WandaPruningModifier needs calibration samples run through the model";
  }

  // Prunes one calibrated layer in place (a zero-copy view of its weight).
  void compress(State& state, const std::string& module, modkit::wanda::RowScalars stats) override {
    at::NoGradGuard no_grad;
    const at::Tensor w = modkit::sdk::get_tensor(state, module, "weight");
    const std::vector<float> norms = stats.column_norms();
    int64_t pruned = 0;
    try {
      pruned = modkit::wanda::prune_(w, norms, sparsity_, structure_.n, structure_.m);
    } catch (const std::invalid_argument& e) {
      invalid("weight of '" + module + "': " + e.what());
    }
    state.log(MODKIT_LOG_INFO, kSource,
              "pruned '" + module + "' " + shape_of(w) + " to " +
                  percent(static_cast<double>(pruned) / static_cast<double>(std::max<int64_t>(w.numel(), 1))) +
                  (structure_.unstructured() ? std::string(" (unstructured)") : " (" + structure_.text() + ")") +
                  " from " + std::to_string(stats.samples()) + " samples (" + std::to_string(stats.tokens()) +
                  " tokens)");
  }

  double sparsity_;
  modkit::sdk::MaskStructure structure_;
  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    WandaPruningModifier, "1.0.0", "one-shot Wanda pruning by |weight| x input-norm per output row, unstructured or N:M",
    (ParamSpec{"sparsity", Type::Float, MODKIT_JSON(0.5),
               "fraction of each row's weights to prune (unstructured masks; N:M masks prune N/M)"}
         .range(MODKIT_JSON(0), MODKIT_JSON(1))),
    (modkit::sdk::well_known::mask_structure()),
    (modkit::sdk::well_known::targets("modules whose weight is pruned: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (modkit::sdk::well_known::sequential_targets()))
