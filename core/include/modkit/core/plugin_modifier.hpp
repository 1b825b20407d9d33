// A Modifier whose callbacks live in a plugin, reached through the C ABI.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/modifier.hpp>
#include <modkit/core/modifier_info.hpp>
#include <modkit/core/params.hpp>

#include <memory>

namespace modkit {

namespace detail {
struct PluginModifierType;
}

/// A modifier created from a plugin. Holds its library, so the library stays
/// loaded while the modifier lives. A failing plugin callback raises
/// PluginError naming the modifier, the callback and the plugin's message.
class MODKIT_CORE_API PluginModifier final : public Modifier {
 public:
  /// `params` must already be resolved against the type's schema.
  PluginModifier(std::shared_ptr<const detail::PluginModifierType> type, const Params& params);
  ~PluginModifier() override;
  PluginModifier(const PluginModifier&) = delete;
  PluginModifier& operator=(const PluginModifier&) = delete;

  std::string type_name() const override;
  /// Builds the C view of the state and event once for all the callbacks
  /// this event triggers.
  void update_event(State& state, const Event& event) override;
  const ModifierInfo& info() const;
  /// The parameters it was created with (defaults filled in).
  const Params& params() const { return params_; }

 protected:
  bool on_initialize(State& state) override;
  bool on_finalize(State& state) override;
  void on_start(State& state, const Event& event) override;
  void on_update(State& state, const Event& event) override;
  void on_end(State& state, const Event& event) override;
  void on_event(State& state, const Event& event) override;

 private:
  bool call_state(modkit_state_fn fn, const char* callback, State& state);
  void call_event(modkit_event_fn fn, const char* callback, State& state, const Event& event);
  [[noreturn]] void fail(const char* callback, modkit_status status, modkit_error* error) const;

  // the C views of the event being dispatched by update_event, else null
  const modkit_state* current_state_ = nullptr;
  const modkit_event* current_event_ = nullptr;
  std::shared_ptr<const detail::PluginModifierType> type_;
  Params params_;
  void* self_ = nullptr;
};

}  // namespace modkit
