// The base class plugin modifiers derive from, and views of the state and events they receive.
#pragma once

#include <modkit/modkit.h>
#include <modkit/sdk/error.hpp>
#include <modkit/sdk/params.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace modkit::sdk {

/// Event types, as llmcompressor's EventType.
enum class EventType : uint32_t {
  BatchStart = MODKIT_EVENT_BATCH_START,
  LossCalculated = MODKIT_EVENT_LOSS_CALCULATED,
  OptimPreStep = MODKIT_EVENT_OPTIM_PRE_STEP,
  OptimPostStep = MODKIT_EVENT_OPTIM_POST_STEP,
  BatchEnd = MODKIT_EVENT_BATCH_END,
  CalibrationStart = MODKIT_EVENT_CALIBRATION_START,
  SequentialEpochEnd = MODKIT_EVENT_SEQUENTIAL_EPOCH_END,
  CalibrationEnd = MODKIT_EVENT_CALIBRATION_END,
};

/// A view of one event (borrowed for the callback).
class Event {
 public:
  explicit Event(const modkit_event& e) : e_(e) {}
  EventType type() const { return static_cast<EventType>(e_.type); }
  int64_t global_step() const { return e_.global_step; }
  int64_t global_batch() const { return e_.global_batch; }
  /// The step, or the fractional epoch when the schedule is epoch based.
  double current_index() const { return e_.current_index; }
  double loss() const { return e_.loss; }
  /// SEQUENTIAL_EPOCH_END: the modules just calibrated.
  std::vector<std::string> modules() const {
    return std::vector<std::string>(e_.modules, e_.modules + e_.module_count);
  }
  const modkit_event& raw() const { return e_; }

 private:
  const modkit_event& e_;
};

/// A module of the host's model.
struct ModuleRef {
  std::string name;
  std::string class_name;
};

/// A view of the session state (borrowed for the callback).
class State {
 public:
  explicit State(const modkit_state& s) : s_(s) {}
  const modkit_host& host() const { return *s_.host; }
  modkit_model* model() const { return s_.model; }
  bool has_model() const { return s_.model != nullptr; }
  int rank() const { return s_.rank; }
  int world_size() const { return s_.world_size; }
  const modkit_state& raw() const { return s_; }

  /// The modules matched by llmcompressor-style targets (class name, exact
  /// name or "re:<regex>"), minus those matched by `ignore`, in model order.
  std::vector<ModuleRef> match(const std::vector<std::string>& targets,
                               const std::vector<std::string>& ignore = {}) const {
    require_model();
    std::vector<const char*> t, i;
    for (const auto& s : targets) t.push_back(s.c_str());
    for (const auto& s : ignore) i.push_back(s.c_str());
    std::vector<ModuleRef> out;
    modkit_error* err = nullptr;
    auto fn = require_service(host().model_match, "model_match");
    modkit_status st = fn(
        &host(), s_.model, t.data(), t.size(), i.data(), i.size(),
        [](void* user, const modkit_module_info* m) {
          static_cast<std::vector<ModuleRef>*>(user)->push_back({m->name, m->class_name});
        },
        &out, &err);
    check(host(), st, err);
    return out;
  }

  /// Logs through the host.
  void log(int32_t level, const std::string& source, const std::string& message) const {
    if (host().log != nullptr) host().log(&host(), level, source.c_str(), message.c_str());
  }

 private:
  void require_model() const {
    if (s_.model == nullptr) {
      throw Error(MODKIT_ERROR_FAILED_PRECONDITION, "the session has no model");
    }
  }
  const modkit_state& s_;
};

/// When a hook runs: before a module's forward (it sees the inputs) or after
/// it (inputs and outputs), as PyTorch's forward-pre and forward hooks.
enum class HookKind : uint32_t { ForwardPre = MODKIT_HOOK_FORWARD_PRE, Forward = MODKIT_HOOK_FORWARD };

/// A hook on the C view of a call (<modkit/sdk/torch.hpp> turns it into
/// tensors). It may throw: the forward that ran it fails with its message.
using RawHookFn = std::function<void(const modkit_hook_call&)>;

/// A scope in which the model's hooks do not run, except `keep` (the seed's
/// HooksMixin.disable_hooks). Scopes nest; leaving one keeps the outer in
/// force. Needs a host with ABI minor 1.
class HooksDisabled {
 public:
  explicit HooksDisabled(const State& state, const std::vector<uint64_t>& keep = {}) : host_(&state.host()) {
    modkit_error* err = nullptr;
    if (state.model() == nullptr) throw Error(MODKIT_ERROR_FAILED_PRECONDITION, "the session has no model");
    auto fn = MODKIT_HAS_FIELD(host_, modkit_host, hooks_restore) ? host_->hooks_disable : nullptr;
    check(*host_, require_service(fn, "hooks_disable")(host_, state.model(), keep.data(), keep.size(), &scope_, &err),
          err);
  }
  ~HooksDisabled() { host_->hooks_restore(host_, scope_); }
  HooksDisabled(const HooksDisabled&) = delete;
  HooksDisabled& operator=(const HooksDisabled&) = delete;

 private:
  const modkit_host* host_;
  uint64_t scope_ = 0;
};

/// Base class of plugin modifiers. The host drives the lifecycle (initialize,
/// start, update, end, finalize) with llmcompressor's rules; a modifier only
/// implements the callbacks. Any callback may throw (Error for a clear status):
/// the export trampolines turn it into an ABI error.
class Modifier {
 public:
  virtual ~Modifier();

  /// Returns true when initialized (llmcompressor's on_initialize).
  virtual bool on_initialize(State& state) = 0;
  /// Returns true when finalized.
  virtual bool on_finalize(State& state) {
    (void)state;
    return true;
  }
  virtual void on_start(State& state, const Event& event) { (void)state, (void)event; }
  virtual void on_update(State& state, const Event& event) { (void)state, (void)event; }
  virtual void on_end(State& state, const Event& event) { (void)state, (void)event; }
  virtual void on_event(State& state, const Event& event) { (void)state, (void)event; }

  /// Runs `fn` on every forward of `module` (before it: HookKind::ForwardPre,
  /// after it: HookKind::Forward) until remove_hook(), until on_finalize
  /// returns true, or until this modifier is destroyed (the seed's
  /// HooksMixin.register_hook). Returns the hook's id. Needs a host with ABI
  /// minor 1 (declare `static constexpr uint16_t abi_min_minor = 1;`).
  uint64_t register_hook(const State& state, const std::string& module, HookKind kind, RawHookFn fn) {
    const modkit_host& host = state.host();
    if (state.model() == nullptr) throw Error(MODKIT_ERROR_FAILED_PRECONDITION, "the session has no model");
    auto add = MODKIT_HAS_FIELD(&host, modkit_host, hooks_restore) ? host.hook_add : nullptr;
    auto slot = std::make_unique<HookSlot>(HookSlot{&host, std::move(fn)});
    uint64_t id = 0;
    modkit_error* err = nullptr;
    check(host,
          require_service(add, "hook_add")(&host, state.model(), module.c_str(), static_cast<uint32_t>(kind),
                                           &HookSlot::call, slot.get(), &id, &err),
          err);
    hooks_.emplace(id, std::move(slot));
    return id;
  }
  /// Removes one of this modifier's hooks; unknown ids are ignored.
  void remove_hook(uint64_t id) noexcept {
    const auto it = hooks_.find(id);
    if (it == hooks_.end()) return;
    it->second->host->hook_remove(it->second->host, id);
    hooks_.erase(it);
  }
  /// Removes every hook this modifier registered.
  void remove_hooks() noexcept {
    while (!hooks_.empty()) remove_hook(hooks_.begin()->first);
  }
  /// The ids of this modifier's hooks, e.g. to keep them in a HooksDisabled scope.
  std::vector<uint64_t> hook_ids() const {
    std::vector<uint64_t> ids;
    for (const auto& entry : hooks_) ids.push_back(entry.first);
    return ids;
  }

 protected:
  Modifier() = default;
  Modifier(const Modifier&) = delete;
  Modifier& operator=(const Modifier&) = delete;

 private:
  // What the host calls: `user` is the slot, which lives until the hook is removed.
  struct HookSlot {
    const modkit_host* host;
    RawHookFn fn;
    static modkit_status call(void* user, const modkit_hook_call* c, modkit_error** error) noexcept {
      auto* self = static_cast<HookSlot*>(user);
      return detail::guard(self->host, error, [&] { self->fn(*c); });
    }
  };
  std::map<uint64_t, std::unique_ptr<HookSlot>> hooks_;
};

inline Modifier::~Modifier() { remove_hooks(); }

}  // namespace modkit::sdk
