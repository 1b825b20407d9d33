// Lifecycle events of the host side (llmcompressor's EventType and Event) and their C view.
#pragma once

#include <modkit/core/export.hpp>

#include <modkit/modkit.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace modkit {

/// The kind of a lifecycle event, as llmcompressor's EventType. The values are
/// the ABI's MODKIT_EVENT_* numbers, so a cast converts either way.
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

/// The upper-case name of `type` as Python spells the enum member:
/// "BATCH_START", "LOSS_CALCULATED", ..., "CALIBRATION_END"; "UNKNOWN" for a
/// value outside the enum. Returns a static string.
MODKIT_CORE_API const char* to_string(EventType type);

/// One lifecycle event, as llmcompressor's Event. A plain value type.
struct MODKIT_CORE_API Event {
  EventType type = EventType::BatchStart;
  int64_t global_step = 0;
  int64_t global_batch = 0;
  /// Set when the schedule is epoch based (start / end / update count epochs).
  std::optional<int64_t> steps_per_epoch;
  /// LOSS_CALCULATED: the loss.
  std::optional<double> loss;
  /// SEQUENTIAL_EPOCH_END: the modules just calibrated.
  std::vector<std::string> modules;

  /// True when `steps_per_epoch` is set.
  bool epoch_based() const { return steps_per_epoch.has_value(); }

  /// The index a schedule compares against: `global_step`, or
  /// `global_step / steps_per_epoch` (fractional epochs) when epoch based.
  /// Throws ValueError when `steps_per_epoch` is not positive, and (as the
  /// seed does) "Too many steps per epoch for epoch based event" when the
  /// fractional part exceeds one epoch.
  double current_index() const {
    return epoch_based() ? epoch_index() : static_cast<double>(global_step);
  }

 private:
  double epoch_index() const;  // the epoch-based branch, with the seed's checks
};

/// A C view of an Event for one ABI call. It owns the array of module-name
/// pointers, but the names themselves are borrowed from the Event: the Event
/// must outlive this view and must not change while it is used. Loss is NaN
/// when absent, steps_per_epoch 0 when not epoch based, struct_size is
/// sizeof(modkit_event). Movable, not copyable (the view points into itself).
class MODKIT_CORE_API AbiEvent {
 public:
  /// Builds the view; throws what Event::current_index throws.
  explicit AbiEvent(const Event& event)
      : raw_{sizeof(modkit_event),
             static_cast<uint32_t>(event.type),
             event.global_step,
             event.global_batch,
             event.steps_per_epoch.value_or(0),
             event.current_index(),
             event.loss.value_or(std::numeric_limits<double>::quiet_NaN()),
             0,
             nullptr} {
    if (!event.modules.empty()) set_modules(event.modules);  // the common case allocates nothing
  }
  AbiEvent(const AbiEvent&) = delete;
  AbiEvent& operator=(const AbiEvent&) = delete;
  AbiEvent(AbiEvent&&) noexcept = default;
  AbiEvent& operator=(AbiEvent&&) noexcept = default;

  /// The C event; valid while this object and its Event live.
  const modkit_event* get() const { return &raw_; }

 private:
  void set_modules(const std::vector<std::string>& modules);
  modkit_event raw_;
  std::vector<const char*> names_;
};

}  // namespace modkit
