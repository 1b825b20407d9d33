// SparseGPTModifier: one-shot pruning from calibration Hessians, unstructured or N:M (llmcompressor's SparseGPTModifier).
#include <modkit/plugin_obs/calibration.hpp>
#include <modkit/plugin_obs/obs.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace {

using modkit::sdk::Error;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

constexpr const char* kSource = "SparseGPTModifier";

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

class SparseGPTModifier final : public modkit::obs::HessianModifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  static constexpr uint16_t abi_min_minor = 1;  // hooks

  explicit SparseGPTModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")), ignore_(p.get<std::vector<std::string>>("ignore")) {
    options_.sparsity = p.get<double>("sparsity");
    const modkit::sdk::MaskStructure structure = modkit::sdk::MaskStructure::parse(p.get<std::string>("mask_structure"));
    const int64_t n = structure.n, m = structure.m;
    if (m > 64) {
      invalid("mask_structure '" + structure.text() + "': M = " + std::to_string(m) +
              " is above 64, the largest group SparseGPTModifier prunes");
    }
    options_.prune_n = n;
    options_.prune_m = m;
    options_.block_size = p.get<int64_t>("block_size");
    options_.dampening_frac = p.get<double>("dampening_frac");
    options_.preserve_sparsity_mask = p.get<bool>("preserve_sparsity_mask");
    if (m > 0 && options_.block_size % m != 0) {
      invalid("block_size " + std::to_string(options_.block_size) + " is not a multiple of M = " + std::to_string(m) +
              " of mask_structure '" + structure.text() + "'");
    }
  }

  bool on_initialize(State& state) override {
    reset_calibration();
    std::vector<std::pair<std::string, int64_t>> layers;
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, kSource)) {
      const at::Tensor w = modkit::sdk::get_tensor(state, module.name, "weight");
      if (w.dim() != 2) {
        invalid("weight of '" + module.name + "' has shape " + shape_of(w) +
                ": SparseGPTModifier prunes Linear weights [out_features, in_features]; add it to ignore");
      }
      if (options_.prune_m > 0 && w.size(1) % options_.prune_m != 0) {
        invalid("weight of '" + module.name + "': mask_structure '" + std::to_string(options_.prune_n) + ":" +
                std::to_string(options_.prune_m) + "' needs in_features that are a multiple of " +
                std::to_string(options_.prune_m) + ", found " + std::to_string(w.size(1)));
      }
      layers.emplace_back(module.name, w.size(1));
    }
    for (const auto& [module, columns] : layers) watch(state, module, columns);
    return true;
  }

 protected:
  const char* source() const override { return kSource; }

  void compress(State& state, const std::string& module, modkit::obs::HessianStats stats) override {
    modkit::obs::Hessian& hessian = *stats.hessian;
    const at::NoGradGuard no_grad;
    at::Tensor w = modkit::sdk::get_tensor(state, module, "weight");  // zero-copy: written in place
    const int64_t samples = hessian.samples(), tokens = hessian.tokens();
    modkit::obs::SparseGptResult r;
    try {
      r = modkit::obs::sparsegpt_prune(w, hessian.take_symmetric(), options_,
                                       modkit::obs::warn_to_log(state, kSource, module));
    } catch (const std::invalid_argument& e) {
      invalid("cannot prune the weight of '" + module + "': " + e.what());
    }
    w.copy_(r.weight);
    const double sparsity = static_cast<double>(w.eq(0).sum().item<int64_t>()) / static_cast<double>(w.numel());
    const double seconds = r.seconds_prepare + r.inverse.seconds_cholesky + r.inverse.seconds_invert +
                           r.inverse.seconds_other + r.sweep.seconds;
    state.log(MODKIT_LOG_INFO, kSource,
              module + ": sparsity " + std::to_string(sparsity) +
                  (options_.prune_m > 0 ? " (" + std::to_string(options_.prune_n) + ":" +
                                              std::to_string(options_.prune_m) + ")"
                                        : std::string()) +
                  " from " + std::to_string(samples) + " samples (" + std::to_string(tokens) + " tokens), loss " +
                  std::to_string(r.loss) + ", " + modkit::obs::seconds_text(seconds));
  }

 private:
  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
  modkit::obs::SparseGptOptions options_;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    SparseGPTModifier, "1.0.0", "SparseGPT one-shot pruning from calibration Hessians, unstructured or N:M",
    (modkit::sdk::well_known::targets("modules whose weight is pruned: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"sparsity", Type::Float, MODKIT_JSON(0.5), "fraction of each weight pruned (unstructured)"}.range(
        MODKIT_JSON(0), MODKIT_JSON(1))),
    (modkit::sdk::well_known::mask_structure()),
    (ParamSpec{"block_size", Type::Int, MODKIT_JSON(128), "columns per lazy batch update"}.range(MODKIT_JSON(1),
                                                                                                 nullptr)),
    (ParamSpec{"dampening_frac", Type::Float, MODKIT_JSON(0.01),
               "dampening added to the Hessian diagonal, as a fraction of its mean"}
         .range(MODKIT_JSON(0), nullptr)),
    (ParamSpec{"preserve_sparsity_mask", Type::Bool, MODKIT_JSON(false),
               "weights already zero stay zero and count toward the target"}),
    (modkit::sdk::well_known::sequential_targets()),
    (ParamSpec{"offload_hessians", Type::Bool, MODKIT_JSON(false),
               "accepted for llmcompressor recipes; Hessians always live in CPU memory here"}))
