// The calibration side of GPTQ and SparseGPT: forward-pre hooks that accumulate each module's Hessian, compressed as the pipeline's events arrive (sdk::CalibratingModifier).
#pragma once

#include <modkit/plugin_obs/obs.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/from_blob.h>

#include <cstdio>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace modkit::obs {

/// The first input of a hook call as a non-owning tensor (valid for the call).
/// Made with at::from_blob rather than sdk::borrow_tensor, whose fromDLPack
/// deleter keeps a pointer to a stack copy of the DLManagedTensor.
inline at::Tensor first_input(const modkit_hook_call& c) {
  if (c.input_count == 0 || c.inputs[0] == nullptr) {
    throw sdk::Error(MODKIT_ERROR_INVALID_ARGUMENT, std::string("module '") + c.module +
                                                        "': expected a tensor as its first forward argument, found " +
                                                        (c.input_count == 0 ? "none" : "another value"));
  }
  const DLTensor& t = c.inputs[0]->dl_tensor;
  if (t.device.device_type != kDLCPU) {
    throw sdk::Error(MODKIT_ERROR_INVALID_ARGUMENT, std::string("module '") + c.module + "': expected a CPU input");
  }
  const at::IntArrayRef sizes(t.shape, static_cast<size_t>(t.ndim));
  std::vector<int64_t> strides;
  if (t.strides != nullptr) {
    strides.assign(t.strides, t.strides + t.ndim);
  } else {
    strides.assign(static_cast<size_t>(t.ndim), 1);
    for (int i = t.ndim - 2; i >= 0; --i) strides[i] = strides[i + 1] * t.shape[i + 1];
  }
  return at::from_blob(static_cast<char*>(t.data) + t.byte_offset, sizes, strides,
                       at::TensorOptions().dtype(at::toScalarType(t.dtype)));
}

/// A module's calibration statistics for GPTQ and SparseGPT: the Hessian of
/// its inputs, created at the first input (so a sequential pipeline holds one
/// block's Hessians).
struct HessianStats {
  int64_t columns = 0;
  std::optional<Hessian> hessian;
};

/// Base of the modifiers that compress a module from the Hessian of its
/// inputs, with llmcompressor's lifecycle (GPTQModifier, SparseGPTModifier;
/// see sdk::CalibratingModifier): watch() adds a forward-pre hook per module.
/// A module that never saw an input is left unchanged, with a warning.
/// Derived classes implement compress() (the module's Hessian is in
/// `stats.hessian`) and source().
class HessianModifier : public sdk::CalibratingModifier<HessianStats> {
 protected:
  /// Starts watching `module`, whose inputs have `columns` features.
  void watch(sdk::State& state, const std::string& module, int64_t columns) {
    calibrate(state, module, module, sdk::HookKind::ForwardPre, HessianStats{columns, std::nullopt});
  }

 private:
  void observe(const std::string& module, HessianStats& stats, const modkit_hook_call& call) override {
    const at::Tensor input = first_input(call);
    if (!stats.hessian) stats.hessian.emplace(stats.columns);
    try {
      stats.hessian->add(input);
    } catch (const std::invalid_argument& e) {
      throw sdk::Error(MODKIT_ERROR_INVALID_ARGUMENT, "calibration input of '" + module + "': " + e.what());
    }
  }
  bool has_data(const HessianStats& stats) const override { return stats.hessian.has_value(); }
  std::string idle_warning(const std::string& module) const override {
    return "'" + module + "' saw no calibration input: left unchanged (does the calibration data reach it?)";
  }
};

/// "0.42 s" for log lines.
inline std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

/// A Warn that logs through the state at warning level, naming the module.
inline Warn warn_to_log(const sdk::State& state, const std::string& source, const std::string& module) {
  return [&state, source, module](const std::string& message) {
    state.log(MODKIT_LOG_WARN, source, "'" + module + "': " + message);
  };
}

}  // namespace modkit::obs
