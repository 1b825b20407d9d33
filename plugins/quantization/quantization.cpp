// QuantizationModifier: data-free round-to-nearest integer weight quantization with compressed-tensors semantics.
#include <modkit/plugin_quant/quant.hpp>
#include <modkit/plugin_quant/scheme.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using modkit::quant::Group;
using modkit::quant::Scheme;
using modkit::sdk::Error;
using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

constexpr const char* kSource = "QuantizationModifier";

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

class QuantizationModifier final : public modkit::sdk::Modifier {
 public:
  explicit QuantizationModifier(const Params& p)
      : ignore_(p.get<std::vector<std::string>>("ignore")), groups_(modkit::quant::parse_groups(p)) {}

  bool on_initialize(State& state) override {
    layers_ = modkit::quant::resolve_layers(state, groups_, ignore_, kSource);  // checks everything before any change
    applied_ = dirty_ = false;
    return true;
  }

  // Training recipe with a start: quantize when the schedule starts.
  void on_start(State& state, const Event&) override { quantize(state); }

  // A training loop moved the weights since they were quantized: put them back on a grid at end.
  void on_end(State& state, const Event&) override {
    if (dirty_) quantize(state);
  }

  void on_event(State& state, const Event& event) override {
    if (event.type() == EventType::CalibrationStart && !applied_) quantize(state);
    if (event.type() == EventType::OptimPostStep && applied_) dirty_ = true;
  }

  // Oneshot without calibration events, or weights moved after the last quantization.
  bool on_finalize(State& state) override {
    if (!applied_ || dirty_) quantize(state);
    layers_.clear();
    return true;
  }

 private:
  void quantize(State& state) {
    const at::NoGradGuard no_grad;
    for (const modkit::quant::Layer& layer : layers_) {
      const Scheme& scheme = groups_[layer.group].scheme;
      at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");  // zero-copy: written in place
      modkit::quant::QParams qp;
      try {
        qp = modkit::quant::quantize_rtn_(w, scheme.weights);
      } catch (const std::exception& e) {
        invalid("cannot quantize the weight of '" + layer.module + "': " + e.what());
      }
      state.log(MODKIT_LOG_INFO, kSource, modkit::quant::write_quantization_buffers(state, layer.module, scheme, qp, w));
    }
    applied_ = true;
    dirty_ = false;
  }

  std::vector<std::string> ignore_;
  std::vector<Group> groups_;
  std::vector<modkit::quant::Layer> layers_;
  bool applied_ = false;
  bool dirty_ = false;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    QuantizationModifier, "1.0.0",
    "round-to-nearest integer weight quantization (compressed-tensors presets or config groups)",
    (modkit::sdk::well_known::targets("modules the scheme preset quantizes: class names, module names or re:<regex>")),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"scheme", Type::String, MODKIT_JSON(null),
               "a compressed-tensors preset: W8A16, W4A16, W4A16_ASYM, W8A8 (INT8), W4A8; or give config_groups"}),
    (ParamSpec{"config_groups", Type::Table, MODKIT_JSON(null),
               "{name = {targets = [...], weights = {num_bits, type, symmetric, strategy, group_size}, "
               "input_activations = {...}}}, as llmcompressor; or give scheme"}))
