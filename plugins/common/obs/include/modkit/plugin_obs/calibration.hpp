// The calibration side of GPTQ and SparseGPT: forward-pre hooks that accumulate each module's Hessian, compressed as the pipeline's events arrive.
#pragma once

#include <modkit/plugin_obs/obs.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/from_blob.h>

#include <cstdio>
#include <cstdint>
#include <memory>
#include <set>
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

/// Base of the modifiers that compress a module from the Hessian of its
/// inputs, with llmcompressor's lifecycle (GPTQModifier, SparseGPTModifier):
/// watch() registers a forward-pre hook per module, whose Hessian is created
/// at its first input (so a sequential pipeline holds one block's Hessians);
/// SEQUENTIAL_EPOCH_END compresses the watched modules it lists that saw
/// inputs, frees their Hessians and removes their hooks (later forwards do not
/// accumulate again); CALIBRATION_END compresses whatever is left; on_finalize
/// removes every hook. A module that never saw an input is left unchanged,
/// with a warning. Derived classes implement compress().
class HessianModifier : public sdk::Modifier {
 protected:
  /// Compresses `module` with its accumulated Hessian (consumed).
  virtual void compress(sdk::State& state, const std::string& module, Hessian hessian) = 0;
  /// The modifier's name for logs.
  virtual const char* source() const = 0;

  /// Starts watching `module`, whose inputs have `columns` features. Idempotent per module.
  void watch(sdk::State& state, const std::string& module, int64_t columns) {
    for (const auto& w : watched_) {
      if (w->module == module) return;
    }
    auto entry = std::make_unique<Watched>();
    entry->module = module;
    entry->columns = columns;
    Watched* raw = entry.get();
    raw->hook = register_hook(state, module, sdk::HookKind::ForwardPre, [raw](const modkit_hook_call& c) {
      const at::Tensor input = first_input(c);
      if (!raw->hessian) raw->hessian = std::make_unique<Hessian>(raw->columns);
      try {
        raw->hessian->add(input);
      } catch (const std::invalid_argument& e) {
        throw sdk::Error(MODKIT_ERROR_INVALID_ARGUMENT, "calibration input of '" + raw->module + "': " + e.what());
      }
    });
    watched_.push_back(std::move(entry));
  }

  /// Forgets every watched module and removes the hooks.
  void unwatch_all() {
    remove_hooks();
    watched_.clear();
  }

 public:
  void on_event(sdk::State& state, const sdk::Event& event) override {
    if (event.type() == sdk::EventType::SequentialEpochEnd) {
      const std::vector<std::string> names = event.modules();
      compress_ready(state, std::set<std::string>(names.begin(), names.end()), false);
    } else if (event.type() == sdk::EventType::CalibrationEnd) {
      compress_ready(state, {}, true);
    }
  }

  bool on_finalize(sdk::State& state) override {
    compress_ready(state, {}, true);  // a host that sent no CALIBRATION_END
    for (const auto& w : watched_) {
      if (!w->done) {
        state.log(MODKIT_LOG_WARN, source(),
                  "'" + w->module + "' saw no calibration input: left unchanged (does the calibration data reach it?)");
      }
    }
    unwatch_all();
    return true;
  }

 private:
  struct Watched {
    std::string module;
    int64_t columns = 0;
    uint64_t hook = 0;
    std::unique_ptr<Hessian> hessian;  // created at the first input
    bool done = false;
  };

  void compress_ready(sdk::State& state, const std::set<std::string>& names, bool all) {
    for (const auto& w : watched_) {
      if (w->done || !w->hessian || (!all && names.count(w->module) == 0)) continue;
      remove_hook(w->hook);  // later forwards (the next blocks' inputs) must not accumulate again
      Hessian h = std::move(*w->hessian);
      w->hessian.reset();
      w->done = true;
      compress(state, w->module, std::move(h));
    }
  }

  std::vector<std::unique_ptr<Watched>> watched_;
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
