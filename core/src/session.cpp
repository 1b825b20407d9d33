// The seed's CompressionLifecycle: state checks, event-order rules, dispatch to stages.
#include <modkit/core/session.hpp>

#include <modkit/core/errors.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <utility>

namespace modkit {
namespace {

// The seed's _event_order.
constexpr std::array<EventType, 5> kEventOrder = {
    EventType::BatchStart, EventType::LossCalculated, EventType::OptimPreStep,
    EventType::OptimPostStep, EventType::BatchEnd};

// Position of `type` in kEventOrder, or -1 for events the order does not cover.
int order_index(EventType type) {
  auto it = std::find(kEventOrder.begin(), kEventOrder.end(), type);
  return it == kEventOrder.end() ? -1 : static_cast<int>(it - kEventOrder.begin());
}

}  // namespace

Session::Session(State state) : state_(state) {}

State& Session::state() { return state_; }

void Session::initialize(std::vector<StageModifiers> stages) {
  if (initialized_) throw ValueError("Cannot initialize a session more than once");
  stages_ = std::move(stages);
  for (StageModifiers& stage : stages_) stage.initialize(state_);
  initialized_ = true;
  spdlog::debug("session initialized with {} stages", stages_.size());
}

bool Session::validate_event_order(EventType type) {
  const int current = order_index(type);
  // Events outside the order (calibration) are always valid and not remembered.
  if (current < 0) return true;
  const bool valid = type == EventType::BatchStart
                         ? last_event_type_ != EventType::BatchStart
                         : order_index(last_event_type_) <= current;
  if (valid) last_event_type_ = type;
  return valid;
}

void Session::event(EventType type, std::optional<int64_t> global_step, std::optional<double> loss,
                    std::vector<std::string> modules, std::optional<int64_t> steps_per_epoch) {
  if (!initialized_) throw ValueError("Cannot invoke event before initializing");
  if (finalized_) throw ValueError("Cannot invoke event after finalizing");
  const EventType last = last_event_type_;
  if (!validate_event_order(type)) {
    throw ValueError(
        std::string("Lifecycle events must appear following order: [BATCH_START, LOSS_CALCULATED, "
                    "OPTIM_PRE_STEP, OPTIM_POST_STEP, BATCH_END]. Instead, ") +
        to_string(last) + " was called before " + to_string(type));
  }
  // As the seed, the order is recorded before the loss is checked.
  if (type == EventType::LossCalculated && !loss) {
    throw ValueError("Loss must be provided for loss calculated event");
  }
  spdlog::debug("session event {} at step {}", to_string(type), global_step.value_or(global_step_));
  if (global_step) global_step_ = *global_step;

  Event e;
  e.type = type;
  e.global_step = global_step_;
  e.steps_per_epoch = steps_per_epoch;
  e.loss = loss;
  e.modules = std::move(modules);
  for (StageModifiers& stage : stages_) stage.update_event(state_, e);
}

void Session::initialize(const Recipe& recipe, const ModifierFactory& factory) {
  initialize(build_stages(recipe, factory));
}

void Session::finalize() {
  if (!initialized_) throw ValueError("Cannot finalize before initializing");
  if (finalized_) throw ValueError("Cannot finalize more than once");
  for (StageModifiers& stage : stages_) stage.finalize(state_);
  finalized_ = true;
  spdlog::debug("session finalized");
}

bool Session::initialized() const { return initialized_; }
bool Session::finalized() const { return finalized_; }
int64_t Session::global_step() const { return global_step_; }
const std::vector<StageModifiers>& Session::stages() const { return stages_; }

}  // namespace modkit
