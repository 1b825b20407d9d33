// Forwards the lifecycle callbacks of a plugin modifier through its descriptor.
#include "plugin_library.hpp"
#include <modkit/core/errors.hpp>
#include <modkit/core/host.hpp>
#include <modkit/core/plugin_modifier.hpp>
#include <modkit/core/signals.hpp>

namespace modkit {

PluginModifier::PluginModifier(std::shared_ptr<const detail::PluginModifierType> type,
                               const Params& params)
    : type_(std::move(type)), params_(params) {
  const ValueTree tree(params_);
  modkit_error* error = nullptr;
  void* self = nullptr;
  const PluginCallScope scope(type_->info.name + ".create", static_cast<int>(type_->info.abi_min_minor));
  const modkit_status status =
      type_->descriptor->create(default_host(), tree.root(), &self, &error);
  if (status != MODKIT_OK) fail("create", status, error);
  self_ = self;
}

PluginModifier::~PluginModifier() {
  const PluginCallScope scope(type_->info.name + ".destroy");
  type_->descriptor->destroy(self_);
}

std::string PluginModifier::type_name() const { return type_->info.name; }

const ModifierInfo& PluginModifier::info() const { return type_->info; }

void PluginModifier::fail(const char* callback, modkit_status status, modkit_error* error) const {
  std::string message = take_error_message(error);
  if (message.empty()) message = status_name(status);
  throw PluginError(status, type_->info.name + "." + callback + " failed: " + message);
}

bool PluginModifier::call_state(modkit_state_fn fn, const char* callback, State& state) {
  if (fn == nullptr) return true;
  const modkit_state s = state.to_abi();
  int32_t ok = 0;
  modkit_error* error = nullptr;
  const PluginCallScope scope(type_->info.name + "." + callback, static_cast<int>(type_->info.abi_min_minor));
  const modkit_status status = fn(self_, &s, &ok, &error);
  if (status != MODKIT_OK) fail(callback, status, error);
  return ok != 0;
}

void PluginModifier::update_event(State& state, const Event& event) {
  const modkit_state s = state.to_abi();
  const AbiEvent e(event);
  struct Reset {
    PluginModifier* m;
    ~Reset() { m->current_state_ = nullptr, m->current_event_ = nullptr; }
  } reset{this};
  current_state_ = &s;
  current_event_ = e.get();
  Modifier::update_event(state, event);
}

void PluginModifier::call_event(modkit_event_fn fn, const char* callback, State& state,
                                const Event& event) {
  if (fn == nullptr) return;
  modkit_error* error = nullptr;
  modkit_status status = MODKIT_OK;
  const PluginCallScope scope(type_->info.name + "." + callback, static_cast<int>(type_->info.abi_min_minor));
  if (current_event_ != nullptr) {
    status = fn(self_, current_state_, current_event_, &error);
  } else {  // a callback outside update_event, e.g. the fake start event of initialize
    const modkit_state s = state.to_abi();
    const AbiEvent e(event);
    status = fn(self_, &s, e.get(), &error);
  }
  if (status != MODKIT_OK) fail(callback, status, error);
}

bool PluginModifier::on_initialize(State& state) {
  return call_state(type_->descriptor->on_initialize, "on_initialize", state);
}
bool PluginModifier::on_finalize(State& state) {
  return call_state(type_->descriptor->on_finalize, "on_finalize", state);
}
void PluginModifier::on_start(State& state, const Event& event) {
  call_event(type_->descriptor->on_start, "on_start", state, event);
}
void PluginModifier::on_update(State& state, const Event& event) {
  call_event(type_->descriptor->on_update, "on_update", state, event);
}
void PluginModifier::on_end(State& state, const Event& event) {
  call_event(type_->descriptor->on_end, "on_end", state, event);
}
void PluginModifier::on_event(State& state, const Event& event) {
  call_event(type_->descriptor->on_event, "on_event", state, event);
}

}  // namespace modkit
