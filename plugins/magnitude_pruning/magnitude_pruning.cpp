// MagnitudePruningModifier: gradual magnitude pruning of target weights on a linear or cubic sparsity schedule.
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
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

constexpr const char* kSource = "MagnitudePruningModifier";

// Shortest decimal form of a parameter value for messages ("0.5", "10").
std::string number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

using modkit::sdk::MaskStructure;

// True where the weight is pruned: the k = round(s * numel) smallest |w|, exactly k of them
// (ties broken by topk, so the count never depends on equal magnitudes).
at::Tensor unstructured_mask(const at::Tensor& weight, double sparsity) {
  const int64_t numel = weight.numel();
  const int64_t k = std::clamp<int64_t>(std::llround(sparsity * static_cast<double>(numel)), 0, numel);
  at::Tensor pruned = at::zeros({numel}, weight.options().dtype(at::kBool));
  if (k > 0) {
    const at::Tensor scores = weight.detach().reshape({-1}).abs().to(at::kFloat);
    const at::Tensor smallest = std::get<1>(scores.topk(k, 0, /*largest=*/false, /*sorted=*/false));
    pruned.index_fill_(0, smallest, true);
  }
  return pruned.view(weight.sizes());
}

// True where the weight is pruned: in every group of M consecutive weights along the last
// dimension the N smallest |w| (initialize checked that M divides that dimension).
at::Tensor n_m_mask(const at::Tensor& weight, MaskStructure s) {
  const at::Tensor groups = weight.detach().reshape({-1, s.m}).abs().to(at::kFloat);
  const at::Tensor smallest = std::get<1>(groups.topk(s.n, 1, /*largest=*/false, /*sorted=*/false));
  at::Tensor pruned = at::zeros(groups.sizes(), weight.options().dtype(at::kBool));
  pruned.scatter_(1, smallest, true);
  return pruned.view(weight.sizes());
}

class MagnitudePruningModifier final : public modkit::sdk::Modifier {
 public:
  explicit MagnitudePruningModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")),
        ignore_(p.get<std::vector<std::string>>("ignore")),
        init_sparsity_(p.get<double>("init_sparsity")),
        final_sparsity_(p.get<double>("final_sparsity")),
        start_(p.get<double>("start")),
        end_(p.get<double>("end")),
        update_(p.get<double>("update")),
        cubic_(p.get<std::string>("update_scheduler") == "cubic"),
        structure_(MaskStructure::parse(p.get<std::string>("mask_structure"), /*accept_unstructured_word=*/true)),
        leave_enabled_(p.get<bool>("leave_enabled")) {
    if (!(end_ > start_)) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT,
                  "end: expected a value greater than start (" + number(start_) + "), found " + number(end_));
    }
    if (!(update_ > 0)) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT, "update: expected a value greater than 0, found " + number(update_));
    }
  }

  bool on_initialize(State& state) override {
    layers_.clear();
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, kSource)) {
      if (!structure_.unstructured()) check_n_m_shape(state, module);
      layers_.push_back(Layer{module.name, {}});
    }
    started_ = ended_ = false;
    last_update_ = -1;
    return true;
  }

  bool on_finalize(State&) override {
    layers_.clear();
    return true;
  }

  void on_start(State& state, const Event& event) override {
    started_ = true;
    last_update_ = update_index(event.current_index());
    prune(state, sparsity_at(event.current_index()), event);
  }

  // The core calls on_update for every event between start and end; the masks move only on
  // the first BATCH_START of each update interval (start + k * update).
  void on_update(State& state, const Event& event) override {
    if (event.type() != EventType::BatchStart || ended_) return;
    const int64_t k = update_index(event.current_index());
    if (k <= last_update_) return;
    last_update_ = k;
    prune(state, sparsity_at(event.current_index()), event);
  }

  void on_end(State& state, const Event& event) override {
    prune(state, final_sparsity_, event);
    ended_ = true;
  }

  // Runs for every event, also after end: with leave_enabled the masks outlive the schedule.
  void on_event(State& state, const Event& event) override {
    if (event.type() != EventType::OptimPostStep || !started_) return;
    if (ended_ && !leave_enabled_) return;
    apply_masks(state);
  }

 private:
  struct Layer {
    std::string module;
    at::Tensor pruned;  // bool, true where the weight is held at zero; undefined before start
  };

  // Zhu & Gupta's cubic schedule or a linear ramp, with progress clamped to [0, 1].
  double sparsity_at(double index) const {
    const double p = std::clamp((index - start_) / (end_ - start_), 0.0, 1.0);
    if (!cubic_) return init_sparsity_ + (final_sparsity_ - init_sparsity_) * p;
    const double rest = 1.0 - p;
    return final_sparsity_ + (init_sparsity_ - final_sparsity_) * rest * rest * rest;
  }

  // Which update interval `index` falls in; the tolerance absorbs fractional epoch indices.
  int64_t update_index(double index) const {
    return static_cast<int64_t>(std::floor((index - start_) / update_ + 1e-9));
  }

  void check_n_m_shape(const State& state, const modkit::sdk::ModuleRef& module) const {
    const at::Tensor w = modkit::sdk::get_tensor(state, module.name, "weight");
    const int64_t last = w.dim() == 0 ? 1 : w.size(-1);
    if (last % structure_.m != 0) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT,
                  "weight of '" + module.name + "': mask_structure '" + structure_.text() +
                      "' needs a last dimension that is a multiple of " + std::to_string(structure_.m) + ", found " +
                      std::to_string(last));
    }
  }

  // Recomputes every mask by magnitude for `sparsity` and zeroes the pruned weights in place.
  void prune(State& state, double sparsity, const Event& event) {
    at::NoGradGuard no_grad;
    for (Layer& layer : layers_) {
      at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");
      if (structure_.unstructured()) {
        layer.pruned = unstructured_mask(w, sparsity);
      } else if (sparsity > 0) {
        layer.pruned = n_m_mask(w, structure_);
      } else {
        layer.pruned = at::zeros(w.sizes(), w.options().dtype(at::kBool));
      }
      w.masked_fill_(layer.pruned, 0);
    }
    state.log(MODKIT_LOG_DEBUG, kSource,
              "index " + number(event.current_index()) + ": sparsity " + number(sparsity) + " on " +
                  std::to_string(layers_.size()) + " weights");
  }

  // Zeroes the pruned weights again, e.g. after an optimizer step moved them.
  void apply_masks(State& state) {
    at::NoGradGuard no_grad;
    for (const Layer& layer : layers_) {
      if (!layer.pruned.defined()) continue;
      modkit::sdk::get_tensor(state, layer.module, "weight").masked_fill_(layer.pruned, 0);
    }
  }

  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
  double init_sparsity_;
  double final_sparsity_;
  double start_;
  double end_;
  double update_;
  bool cubic_;
  MaskStructure structure_;
  bool leave_enabled_;

  std::vector<Layer> layers_;
  bool started_ = false;
  bool ended_ = false;
  int64_t last_update_ = -1;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    MagnitudePruningModifier, "1.0.0", "gradual magnitude pruning on a linear or cubic sparsity schedule",
    (modkit::sdk::well_known::targets("modules whose weight is pruned: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"init_sparsity", Type::Float, nullptr, "sparsity at start"}.range(MODKIT_JSON(0), MODKIT_JSON(1))),
    (ParamSpec{"final_sparsity", Type::Float, nullptr, "sparsity at end and after"}.range(MODKIT_JSON(0),
                                                                                          MODKIT_JSON(1))),
    (ParamSpec{"start", Type::Float, nullptr, "step or epoch at which pruning starts"}),
    (ParamSpec{"end", Type::Float, nullptr, "step or epoch at which the final sparsity is reached"}),
    (ParamSpec{"update", Type::Float, nullptr, "steps or epochs between mask updates, greater than 0"}.range(
        MODKIT_JSON(0), nullptr)),
    (ParamSpec{"update_scheduler", Type::String, MODKIT_JSON("cubic"), "sparsity schedule between start and end"}
         .choices(MODKIT_JSON(["linear", "cubic"]))),
    (modkit::sdk::well_known::mask_structure(MODKIT_JSON("unstructured"))),
    (ParamSpec{"leave_enabled", Type::Bool, MODKIT_JSON(true), "keep re-applying the masks after end"}))
