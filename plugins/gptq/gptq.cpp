// GPTQModifier: GPTQ integer weight quantization from calibration Hessians, with QuantizationModifier's schemes (llmcompressor's GPTQModifier).
#include <modkit/plugin_obs/calibration.hpp>
#include <modkit/plugin_obs/obs.hpp>
#include <modkit/plugin_quant/quant.hpp>
#include <modkit/plugin_quant/scheme.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

namespace {

using modkit::quant::ActOrder;
using modkit::quant::Group;
using modkit::quant::Strategy;
using modkit::sdk::Error;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

constexpr const char* kSource = "GPTQModifier";
constexpr uint32_t kCreateOrReplace = MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE;

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// llmcompressor's resolve_actorder: the modifier's actorder applies to the group-strategy schemes;
// unset (null) means "static" unless a config group chose; an explicit value must agree with one.
std::vector<Group> resolve_actorder(std::vector<Group> groups, const Params& p) {
  const modkit::sdk::Value v = p.value("actorder");
  const bool given = !v.is_null();
  const ActOrder mine = modkit::quant::parse_actorder(v, "actorder");
  for (Group& g : groups) {
    modkit::quant::QuantArgs& w = g.scheme.weights;
    if (w.strategy != Strategy::Group) continue;
    if (!given) {
      if (w.actorder == ActOrder::None) w.actorder = ActOrder::Weight;
    } else if (w.actorder == ActOrder::None || w.actorder == mine) {
      w.actorder = mine;
    } else {
      invalid("actorder: cannot resolve activation ordering when both GPTQModifier.actorder and config group '" +
              g.name + "' weights.actorder are given and differ (" + modkit::quant::to_string(mine) + ", " +
              modkit::quant::to_string(w.actorder) + "): unset one of them");
    }
  }
  return groups;
}

class GPTQModifier final : public modkit::obs::HessianModifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  static constexpr uint16_t abi_min_minor = 1;  // hooks

  explicit GPTQModifier(const Params& p)
      : ignore_(p.get<std::vector<std::string>>("ignore")),
        groups_(resolve_actorder(modkit::quant::parse_groups(p, {/*actorder=*/true}), p)),
        block_size_(p.get<int64_t>("block_size")),
        dampening_frac_(p.get<double>("dampening_frac")) {}

  bool on_initialize(State& state) override {
    reset_calibration();
    layers_.clear();
    const std::vector<modkit::quant::Layer> layers = modkit::quant::resolve_layers(state, groups_, ignore_, kSource);
    std::vector<int64_t> columns;
    for (const modkit::quant::Layer& layer : layers) {  // every check before the first hook
      const at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");
      if (w.dim() != 2) {
        invalid("weight of '" + layer.module + "' has shape " + shape_of(w) + ": GPTQModifier quantizes Linear weights [out_features, in_features]; add it to ignore");
      }
      columns.push_back(w.size(1));
      layers_[layer.module] = layer.group;
    }
    for (size_t i = 0; i < layers.size(); ++i) watch(state, layers[i].module, columns[i]);
    return true;
  }

 protected:
  const char* source() const override { return kSource; }

  void compress(State& state, const std::string& module, modkit::obs::HessianStats stats) override {
    modkit::obs::Hessian& hessian = *stats.hessian;
    const at::NoGradGuard no_grad;
    const modkit::quant::Scheme& scheme = groups_.at(layers_.at(module)).scheme;
    at::Tensor w = modkit::sdk::get_tensor(state, module, "weight");  // zero-copy: written in place
    modkit::obs::GptqOptions options;
    options.args = scheme.weights;
    options.block_size = block_size_;
    options.dampening_frac = dampening_frac_;
    const int64_t samples = hessian.samples(), tokens = hessian.tokens();
    modkit::obs::GptqResult r;
    try {
      r = modkit::obs::gptq_quantize(w, hessian.take_symmetric(), options,
                                     modkit::obs::warn_to_log(state, kSource, module));
    } catch (const std::invalid_argument& e) {
      invalid("cannot quantize the weight of '" + module + "': " + e.what());
    }
    w.copy_(r.weight);
    std::string line = modkit::quant::write_quantization_buffers(state, module, scheme, r.qparams, w);
    if (r.g_idx.defined()) modkit::sdk::set_tensor(state, module, "weight_g_idx", r.g_idx, kCreateOrReplace);
    const double seconds = r.seconds_prepare + r.inverse.seconds_cholesky + r.inverse.seconds_invert +
                           r.inverse.seconds_other + r.sweep.seconds;
    line += "; GPTQ from " + std::to_string(samples) + " samples (" + std::to_string(tokens) + " tokens), loss " +
            std::to_string(r.loss) + (r.preserved_zeros ? ", zeros kept" : "") +
            (r.inverse.dead.empty() ? "" : ", " + std::to_string(r.inverse.dead.size()) + " dead columns") + ", " +
            modkit::obs::seconds_text(seconds);
    state.log(MODKIT_LOG_INFO, kSource, line);
  }

 private:
  std::vector<std::string> ignore_;
  std::vector<Group> groups_;
  int64_t block_size_;
  double dampening_frac_;
  std::map<std::string, size_t> layers_;  // module -> group
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    GPTQModifier, "1.0.0",
    "GPTQ integer weight quantization from calibration Hessians (compressed-tensors presets or config groups)",
    (modkit::sdk::well_known::targets("modules the scheme preset quantizes: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"scheme", Type::String, MODKIT_JSON(null),
               "a compressed-tensors preset: W8A16, W4A16, W4A16_ASYM, W8A8 (INT8), W4A8; or give config_groups"}),
    (ParamSpec{"config_groups", Type::Table, MODKIT_JSON(null),
               "{name = {targets = [...], weights = {num_bits, type, symmetric, strategy, group_size, actorder}, "
               "input_activations = {...}}}, as llmcompressor; or give scheme"}),
    (ParamSpec{"block_size", Type::Int, MODKIT_JSON(128), "columns per lazy batch update"}.range(MODKIT_JSON(1),
                                                                                                 nullptr)),
    (ParamSpec{"dampening_frac", Type::Float, MODKIT_JSON(0.01),
               "dampening added to the Hessian diagonal, as a fraction of its mean"}
         .range(MODKIT_JSON(0), nullptr)),
    (ParamSpec{"actorder", Type::Any, MODKIT_JSON(null),
               "column order of group-strategy schemes: \"static\" (= \"weight\": original groups, columns by "
               "descending Hessian diagonal), \"group\" (= \"dynamic\", true: groups formed after the permutation, "
               "stores weight_g_idx), false for none; null: \"static\" unless a config group sets it"}),
    (modkit::sdk::well_known::sequential_targets()),
    (ParamSpec{"offload_hessians", Type::Bool, MODKIT_JSON(false),
               "accepted for llmcompressor recipes; Hessians always live in CPU memory here"}))
