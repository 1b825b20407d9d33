// Forward hooks on TorchScript modules (the seed's HooksMixin), made by instrumenting the module's graph.
#pragma once

#include <modkit/modkit.h>

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace modkit {

class Model;

/// When a hook runs: before a module's forward (it sees the inputs) or after
/// it (it sees the inputs and the output), as PyTorch's forward-pre and
/// forward hooks.
enum class HookKind : uint32_t { ForwardPre = MODKIT_HOOK_FORWARD_PRE, Forward = MODKIT_HOOK_FORWARD };

/// What a hook sees of one forward call. Borrowed for the call.
struct HookCall {
  const std::string& module;          ///< the module's dotted name
  HookKind kind;
  c10::ArrayRef<c10::IValue> inputs;  ///< forward's arguments, without self
  const c10::IValue* output;          ///< HookKind::Forward: the return value; else nullptr
};

/// A hook. It may throw: the forward that ran it fails, and call_forward()
/// rethrows the hook's own exception.
using HookFn = std::function<void(const HookCall&)>;

/// A hook handle, unique in the process (never 0).
using HookId = uint64_t;

/// A scope in which a model's hooks do not run, except the kept ones
/// (Model::disable_hooks). Scopes nest and may be left in any order: hooks
/// run again only when every scope of the model is left, and a hook kept by
/// any open scope runs. Movable, not copyable; leaving happens on destruction.
class HooksDisabled {
 public:
  HooksDisabled() = default;
  explicit HooksDisabled(uint64_t scope) : scope_(scope) {}
  HooksDisabled(HooksDisabled&& other) noexcept : scope_(other.scope_) { other.scope_ = 0; }
  HooksDisabled& operator=(HooksDisabled&& other) noexcept;
  HooksDisabled(const HooksDisabled&) = delete;
  HooksDisabled& operator=(const HooksDisabled&) = delete;
  ~HooksDisabled() { restore(); }
  /// Leaves the scope now (idempotent).
  void restore() noexcept;
  /// The handle the ABI's hooks_restore takes.
  uint64_t release() noexcept {
    const uint64_t s = scope_;
    scope_ = 0;
    return s;
  }

 private:
  uint64_t scope_ = 0;
};

/// Runs `module.forward(args, kwargs)`. When a hook failed inside, rethrows
/// the hook's exception instead of the TorchScript interpreter's wrapper, so
/// the message is the hook's own.
c10::IValue call_forward(const torch::jit::Module& module, std::vector<c10::IValue> args,
                         const std::unordered_map<std::string, c10::IValue>& kwargs = {});

namespace detail {
/// Called by Model: hook bookkeeping keyed by the model's internal state.
HookId add_hook(Model& model, const void* owner, const std::string& module, HookKind kind, HookFn fn);
void remove_hook(HookId id) noexcept;
void remove_owner_hooks(const void* owner) noexcept;
size_t hook_count(const void* owner);
std::vector<HookId> hook_ids(const void* owner, const std::function<bool(const std::string&)>& on_module);
uint64_t disable_hooks(const void* owner, const std::vector<HookId>& keep);
void restore_hooks(uint64_t scope) noexcept;
/// Takes the instrumentation out of every graph `owner` instrumented (to
/// save a clean model) and puts it back when the returned object dies.
class InstrumentationPause {
 public:
  explicit InstrumentationPause(const void* owner);
  ~InstrumentationPause();
  InstrumentationPause(const InstrumentationPause&) = delete;
  InstrumentationPause& operator=(const InstrumentationPause&) = delete;

 private:
  const void* owner_;
};
}  // namespace detail

}  // namespace modkit
