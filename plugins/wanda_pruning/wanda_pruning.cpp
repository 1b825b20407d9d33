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

// llmcompressor's mask_structure "N:M" (prune N of every M consecutive input weights); "0:0" is unstructured.
struct MaskStructure {
  int64_t n = 0;
  int64_t m = 0;
  bool unstructured() const { return m == 0; }
  std::string text() const { return std::to_string(n) + ":" + std::to_string(m); }
};

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

MaskStructure parse_mask_structure(const std::string& text) {
  if (text == "unstructured") return {};
  const std::string expected = "mask_structure '" + text +
                               "': expected '0:0' (unstructured) or 'N:M' with 0 < N < M (prune N of every M "
                               "consecutive weights, e.g. '2:4')";
  const size_t colon = text.find(':');
  if (colon == std::string::npos) invalid(expected + ", found no ':'");
  const std::string n_text = text.substr(0, colon), m_text = text.substr(colon + 1);
  if (!all_digits(n_text) || !all_digits(m_text)) invalid(expected + ", found N='" + n_text + "' and M='" + m_text + "'");
  const MaskStructure s{std::stoll(n_text), std::stoll(m_text)};
  if (s.n == 0 && s.m == 0) return {};
  if (s.n <= 0 || s.n >= s.m) invalid(expected + ", found N=" + std::to_string(s.n) + " and M=" + std::to_string(s.m));
  return s;
}

// True when `module` is one of `names` or lies below one of them ("layers.3" covers "layers.3.mlp.fc1").
bool covered(const std::string& module, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (module == n || n.empty()) return true;
    if (module.size() > n.size() && module.compare(0, n.size(), n) == 0 && module[n.size()] == '.') return true;
  }
  return false;
}

class WandaPruningModifier final : public modkit::sdk::Modifier {
 public:
  static constexpr uint16_t abi_min_minor = 1;  // forward hooks
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;

  explicit WandaPruningModifier(const Params& p)
      : sparsity_(p.get<double>("sparsity")),
        structure_(parse_mask_structure(p.get<std::string>("mask_structure"))),
        targets_(p.get<std::vector<std::string>>("targets")),
        ignore_(p.get<std::vector<std::string>>("ignore")) {
    // sequential_targets is read by the host's sequential pipeline (which blocks to calibrate
    // one at a time); checked here only for its type.
    (void)p.get<std::optional<std::vector<std::string>>>("sequential_targets");
  }

  bool on_initialize(State& state) override {
    layers_.clear();
    calibrated_ = 0;
    finished_ = false;
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
      auto layer = std::make_unique<Layer>(Layer{module.name, modkit::wanda::RowScalars(w.size(1)), 0, false});
      Layer* raw = layer.get();
      layer->hook = register_hook(state, module.name, HookKind::ForwardPre, [raw](const modkit_hook_call& c) {
        try {
          raw->stats.add(HookView(c).input(0));
        } catch (const std::invalid_argument& e) {
          invalid("input of '" + raw->module + "': " + e.what());
        }
      });
      layers_.push_back(std::move(layer));
    }
    return true;
  }

  void on_event(State& state, const Event& event) override {
    if (event.type() == EventType::SequentialEpochEnd) {
      const std::vector<std::string> modules = event.modules();
      for (auto& layer : layers_) {
        if (!layer->done && layer->stats.samples() > 0 && covered(layer->module, modules)) prune(state, *layer);
      }
    } else if (event.type() == EventType::CalibrationEnd) {
      finish(state, true);
    }
  }

  // A host that sent no CALIBRATION_END: what it would have done happens here (as GPTQ and
  // SparseGPT do), but a lack of data is only a warning (finalize also runs after failures).
  bool on_finalize(State& state) override {
    if (!finished_) finish(state, false);
    layers_.clear();
    return true;
  }

 private:
  struct Layer {
    std::string module;
    modkit::wanda::RowScalars stats;
    uint64_t hook;
    bool done;
  };

  // CALIBRATION_END: prunes every calibrated layer no epoch end listed; layers that saw no
  // data stay dense (a warning each); when no layer saw any, that is an error (`strict`), not a
  // silent no-op.
  void finish(const State& state, bool strict) {
    finished_ = true;
    std::vector<std::string> dense;
    for (auto& layer : layers_) {
      if (layer->done) continue;
      if (layer->stats.samples() > 0) {
        prune(state, *layer);
      } else {
        dense.push_back(layer->module);
        layer->done = true;
      }
    }
    remove_hooks();
    if (calibrated_ == 0 && !layers_.empty()) {
      const std::string message = "no calibration data reached any of the " + std::to_string(layers_.size()) +
                                  " modules targeted by " + modkit::sdk::quoted_names(targets_) +
                                  ": WandaPruningModifier needs calibration samples run through the model";
      if (strict) throw Error(MODKIT_ERROR_FAILED_PRECONDITION, message);
      state.log(MODKIT_LOG_WARN, kSource, message);
      return;
    }
    for (const std::string& name : dense) {
      state.log(MODKIT_LOG_WARN, kSource, "'" + name + "' saw no calibration data: left dense");
    }
  }

  // Prunes one calibrated layer in place (a zero-copy view of its weight), then drops its hook and statistics.
  void prune(const State& state, Layer& layer) {
    at::NoGradGuard no_grad;
    const at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");
    const std::vector<float> norms = layer.stats.column_norms();
    int64_t pruned = 0;
    try {
      pruned = modkit::wanda::prune_(w, norms, sparsity_, structure_.n, structure_.m);
    } catch (const std::invalid_argument& e) {
      invalid("weight of '" + layer.module + "': " + e.what());
    }
    remove_hook(layer.hook);
    const int64_t samples = layer.stats.samples(), tokens = layer.stats.tokens();
    layer.stats = modkit::wanda::RowScalars(0);
    layer.done = true;
    ++calibrated_;
    state.log(MODKIT_LOG_INFO, kSource,
              "pruned '" + layer.module + "' " + shape_of(w) + " to " +
                  percent(static_cast<double>(pruned) / static_cast<double>(std::max<int64_t>(w.numel(), 1))) +
                  (structure_.unstructured() ? std::string(" (unstructured)") : " (" + structure_.text() + ")") +
                  " from " + std::to_string(samples) + " samples (" + std::to_string(tokens) + " tokens)");
  }

  double sparsity_;
  MaskStructure structure_;
  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;

  std::vector<std::unique_ptr<Layer>> layers_;  // stable addresses: hooks point at their layer
  size_t calibrated_ = 0;
  bool finished_ = false;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    WandaPruningModifier, "1.0.0", "one-shot Wanda pruning by |weight| x input-norm per output row, unstructured or N:M",
    (ParamSpec{"sparsity", Type::Float, MODKIT_JSON(0.5),
               "fraction of each row's weights to prune (unstructured masks; N:M masks prune N/M)"}
         .range(MODKIT_JSON(0), MODKIT_JSON(1))),
    (ParamSpec{"mask_structure", Type::String, MODKIT_JSON("0:0"),
               "'0:0' unstructured, or 'N:M': prune the N lowest of every M consecutive input weights (e.g. '2:4')"}),
    (ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]),
               "modules whose weight is pruned: class names, module names or re:<regex>"}),
    (ParamSpec{"ignore", Type::StringList, MODKIT_JSON([]), "modules left alone even when a target matches them"}),
    (ParamSpec{"sequential_targets", Type::StringList, MODKIT_JSON(null),
               "blocks the sequential pipeline calibrates one at a time (default: the model's decoder layers)"}))
