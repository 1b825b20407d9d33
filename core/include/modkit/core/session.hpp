// A compression session over ordered stages: llmcompressor's CompressionLifecycle.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/event.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/stage.hpp>
#include <modkit/core/state.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace modkit {

/// Drives ordered stages of modifiers through one lifecycle, as
/// llmcompressor's CompressionLifecycle: initialize once, events in the
/// training order (BATCH_START, LOSS_CALCULATED, OPTIM_PRE_STEP,
/// OPTIM_POST_STEP, BATCH_END; calibration events are exempt), finalize once.
/// Misuse throws ValueError with the seed's messages.
///
/// Two differences from the seed: initializing twice throws (Python silently
/// ignores the second call), and events carry the real global step (Python
/// always sends step 0, so step schedules never advance there).
///
/// Owns its stages (and so their modifiers). Not thread-safe.
class MODKIT_CORE_API Session {
 public:
  /// A session with `state` (the core host, no model, rank 0 of 1 by default).
  explicit Session(State state = {});

  /// The state passed to every modifier; may be changed between calls.
  State& state();

  /// Takes `stages` and initializes each in order. Throws ValueError("Cannot
  /// initialize a session more than once") on a second call, and whatever a
  /// modifier throws (the session then stays uninitialized and may be
  /// initialized again with new stages).
  void initialize(std::vector<StageModifiers> stages);
  /// Builds the recipe's stages with `factory` (modkit::build_stages: every
  /// modifier checked against its schema, errors with file:line:column) and
  /// initializes them, as llmcompressor's initialize(recipe=...).
  void initialize(const Recipe& recipe, const ModifierFactory& factory);

  /// Checks the event order, updates the global step when `global_step` is
  /// given, and sends an Event with the session's global step, `loss`,
  /// `modules` and `steps_per_epoch` to every stage in order. LOSS_CALCULATED
  /// requires `loss`. Event::global_batch is left 0.
  void event(EventType type, std::optional<int64_t> global_step = std::nullopt,
             std::optional<double> loss = std::nullopt, std::vector<std::string> modules = {},
             std::optional<int64_t> steps_per_epoch = std::nullopt);

  /// Finalizes every stage in order. Throws ValueError before initialize or on a second call.
  void finalize();

  /// True once initialize() succeeded.
  bool initialized() const;
  /// True once finalize() succeeded.
  bool finalized() const;
  /// The last global step given to event(), 0 before any.
  int64_t global_step() const;
  /// The stages, in order.
  const std::vector<StageModifiers>& stages() const;

 private:
  bool validate_event_order(EventType type);

  State state_;
  std::vector<StageModifiers> stages_;
  bool initialized_ = false;
  bool finalized_ = false;
  int64_t global_step_ = 0;
  EventType last_event_type_ = EventType::BatchEnd;
};

}  // namespace modkit
