// The host-side modifier lifecycle: llmcompressor's ModifierInterface and Modifier.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/event.hpp>
#include <modkit/core/state.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace modkit {

/// The abstract lifecycle every modifier and modifier group follows, as
/// llmcompressor's ModifierInterface: initialize once, receive events,
/// finalize once. Not thread-safe: one session drives it from one thread.
class MODKIT_CORE_API ModifierInterface {
 public:
  virtual ~ModifierInterface();

  /// True once initialize() succeeded.
  virtual bool initialized() const = 0;
  /// True once finalize() succeeded.
  virtual bool finalized() const = 0;
  /// Prepares the modifier for `state`.
  virtual void initialize(State& state) = 0;
  /// Releases what initialize() set up.
  virtual void finalize(State& state) = 0;
  /// Delivers one lifecycle event.
  virtual void update_event(State& state, const Event& event) = 0;

 protected:
  ModifierInterface() = default;
  ModifierInterface(const ModifierInterface&) = default;
  ModifierInterface(ModifierInterface&&) = default;
  ModifierInterface& operator=(const ModifierInterface&) = default;
  ModifierInterface& operator=(ModifierInterface&&) = default;
};

/// A modifier with llmcompressor's lifecycle and schedule: subclasses implement
/// on_initialize and whichever of the other hooks they need; initialize(),
/// finalize() and update_event() enforce the seed's order and call the hooks.
///
/// Schedule: the modifier starts on the first BATCH_START whose
/// current_index is in [start, end) (or at initialize when that holds at step
/// 0), receives on_update for every event while started and not ended, and
/// ends on the first BATCH_END whose current_index >= end. Misuse throws
/// RuntimeError with the seed's messages. Not thread-safe.
class MODKIT_CORE_API Modifier : public ModifierInterface {
 public:
  /// Position of the modifier in its stage (assigned by recipes).
  std::optional<int64_t> index;
  /// Name of the group (stage) the modifier belongs to.
  std::optional<std::string> group;
  /// First step (or epoch) at which the modifier is active; never starts when unset.
  std::optional<double> start;
  /// Step (or epoch) at which the modifier ends; runs until finalize when unset.
  std::optional<double> end;
  /// Update interval in steps (or epochs), for subclasses that update periodically.
  std::optional<double> update;

  bool initialized() const override;
  bool finalized() const override;
  /// True once on_start ran.
  bool started() const;
  /// True once on_end ran.
  bool ended() const;

  /// Runs on_initialize, then on_start when the schedule starts at step 0.
  /// Throws RuntimeError when already initialized or finalized.
  void initialize(State& state) override;
  /// Runs on_finalize. Throws RuntimeError when already finalized or not initialized.
  void finalize(State& state) override;
  /// Runs on_event, then on_start / on_end / on_update as the schedule says.
  /// Throws RuntimeError when not initialized or already finalized.
  void update_event(State& state, const Event& event) override;

  /// True when `start` is set and start <= event.current_index() < end (end unset: no upper bound).
  bool should_start(const Event& event) const;
  /// True when `end` is set and event.current_index() >= end.
  bool should_end(const Event& event) const;

  /// The modifier's type name, e.g. "MagnitudePruningModifier".
  virtual std::string type_name() const = 0;

 protected:
  /// Sets the modifier up; returns whether it is now initialized (Python's bool).
  virtual bool on_initialize(State& state) = 0;
  /// Tears the modifier down; returns whether it is now finalized.
  virtual bool on_finalize(State& /*state*/) { return true; }
  /// Called once when the schedule starts.
  virtual void on_start(State& /*state*/, const Event& /*event*/) {}
  /// Called for each event while started and not ended, and on the start and end events.
  virtual void on_update(State& /*state*/, const Event& /*event*/) {}
  /// Called once when the schedule ends.
  virtual void on_end(State& /*state*/, const Event& /*event*/) {}
  /// Called for every event after initialization, before the schedule hooks.
  virtual void on_event(State& /*state*/, const Event& /*event*/) {}

 private:
  bool initialized_ = false;
  bool finalized_ = false;
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace modkit
