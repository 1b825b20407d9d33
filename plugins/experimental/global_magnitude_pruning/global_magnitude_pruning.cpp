// GlobalMagnitudePruningModifier (experimental): one-shot magnitude pruning with one threshold across all target weights.
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/cat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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

constexpr const char* kSource = "GlobalMagnitudePruningModifier";

class GlobalMagnitudePruningModifier final : public modkit::sdk::Modifier {
 public:
  explicit GlobalMagnitudePruningModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")),
        ignore_(p.get<std::vector<std::string>>("ignore")),
        sparsity_(p.get<double>("sparsity")),
        has_start_(!p.value("start").is_null()) {}

  bool on_initialize(State& state) override {
    modules_.clear();
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, kSource)) {
      modules_.push_back(module.name);
    }
    done_ = false;
    return true;
  }

  // One shot: at its start when `start` is set, else at CALIBRATION_START, else at finalize.
  void on_start(State& state, const Event&) override { prune_once(state); }

  void on_event(State& state, const Event& event) override {
    if (event.type() == EventType::CalibrationStart) prune_once(state);
  }

  bool on_finalize(State& state) override {
    if (!has_start_) prune_once(state);
    modules_.clear();
    return true;
  }

 private:
  void prune_once(State& state) {
    if (done_) return;
    prune(state);
    done_ = true;
  }

  // Zeroes exactly k = round(sparsity * total) weights: every |w| below the global k-th
  // smallest magnitude, then as many weights equal to it as the count still needs (in
  // target order), so ties cannot push the count off. The threshold comes from kthvalue
  // over one float32 concatenation of all target magnitudes: exact, at the cost of a
  // temporary as large as the pruned weights.
  void prune(State& state) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> weights;
    int64_t total = 0;
    for (const std::string& module : modules_) {
      weights.push_back(modkit::sdk::get_tensor(state, module, "weight"));
      total += weights.back().numel();
    }
    const int64_t k = std::clamp<int64_t>(std::llround(sparsity_ * static_cast<double>(total)), 0, total);
    if (k == 0) return;

    at::Tensor threshold;
    {
      std::vector<at::Tensor> flat;
      for (const at::Tensor& w : weights) flat.push_back(w.detach().reshape({-1}).abs().to(at::kFloat));
      threshold = std::get<0>(at::cat(flat).kthvalue(k));
    }
    const float t = threshold.item<float>();

    int64_t below = 0;
    std::vector<at::Tensor> scores;
    for (const at::Tensor& w : weights) {
      scores.push_back(w.detach().abs().to(at::kFloat));
      below += scores.back().lt(t).sum().item<int64_t>();
    }
    int64_t ties_left = k - below;
    for (size_t i = 0; i < weights.size(); ++i) {
      at::Tensor pruned = scores[i].lt(t);
      if (ties_left > 0) {
        const at::Tensor ties = scores[i].reshape({-1}).eq(t).nonzero().reshape({-1});
        const int64_t take = std::min<int64_t>(ties_left, ties.numel());
        pruned.view({-1}).index_fill_(0, ties.slice(0, 0, take), true);
        ties_left -= take;
      }
      weights[i].masked_fill_(pruned, 0);
    }
    state.log(MODKIT_LOG_INFO, kSource,
              "pruned " + std::to_string(k) + " of " + std::to_string(total) + " weights in " +
                  std::to_string(weights.size()) + " modules at threshold " + std::to_string(t));
  }

  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
  double sparsity_;
  bool has_start_;

  std::vector<std::string> modules_;
  bool done_ = false;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    GlobalMagnitudePruningModifier, "0.1.0",
    "one-shot magnitude pruning with one global threshold across all target weights",
    (modkit::sdk::well_known::targets("modules whose weights are pruned together: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"sparsity", Type::Float, nullptr, "fraction of all target weights set to zero"}.range(
        MODKIT_JSON(0), MODKIT_JSON(1))))
