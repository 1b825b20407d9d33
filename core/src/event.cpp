// Event names, the seed's current_index, and the C view of an event.
#include <modkit/core/event.hpp>

#include <modkit/core/errors.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace modkit {

const char* to_string(EventType type) {
  switch (type) {
    case EventType::BatchStart: return "BATCH_START";
    case EventType::LossCalculated: return "LOSS_CALCULATED";
    case EventType::OptimPreStep: return "OPTIM_PRE_STEP";
    case EventType::OptimPostStep: return "OPTIM_POST_STEP";
    case EventType::BatchEnd: return "BATCH_END";
    case EventType::CalibrationStart: return "CALIBRATION_START";
    case EventType::SequentialEpochEnd: return "SEQUENTIAL_EPOCH_END";
    case EventType::CalibrationEnd: return "CALIBRATION_END";
  }
  return "UNKNOWN";
}

double Event::epoch_index() const {
  // Python raises ZeroDivisionError for 0; a negative count has no meaning.
  if (*steps_per_epoch <= 0) {
    throw ValueError("steps_per_epoch must be positive for an epoch based event, got " +
                     std::to_string(*steps_per_epoch));
  }
  const double epoch_full = static_cast<double>(global_step) / static_cast<double>(*steps_per_epoch);
  const double epoch = std::floor(epoch_full);
  // Kept from the seed, although floor() makes it unreachable for finite values.
  if (epoch_full - epoch > 1.0) throw ValueError("Too many steps per epoch for epoch based event");
  return epoch_full;
}

void AbiEvent::set_modules(const std::vector<std::string>& modules) {
  names_.reserve(modules.size());
  for (const std::string& name : modules) names_.push_back(name.c_str());
  raw_.module_count = names_.size();
  raw_.modules = names_.data();
}

}  // namespace modkit
