// The seed's Modifier lifecycle: state checks, the fake start event, start / update / end.
#include <modkit/core/modifier.hpp>

#include <modkit/core/errors.hpp>

namespace modkit {

ModifierInterface::~ModifierInterface() = default;

bool Modifier::initialized() const { return initialized_; }
bool Modifier::finalized() const { return finalized_; }
bool Modifier::started() const { return started_; }
bool Modifier::ended() const { return ended_; }

void Modifier::initialize(State& state) {
  if (initialized_) throw RuntimeError("Cannot initialize a modifier that has already been initialized");
  if (finalized_) throw RuntimeError("Cannot initialize a modifier that has already been finalized");
  initialized_ = on_initialize(state);
  // As the seed: a schedule that starts at step 0 starts here, even when
  // on_initialize returned false.
  Event fake_start;
  fake_start.type = EventType::BatchStart;
  fake_start.global_step = 0;
  if (should_start(fake_start)) {
    on_start(state, fake_start);
    started_ = true;
  }
}

void Modifier::finalize(State& state) {
  if (finalized_) throw RuntimeError("cannot finalize a modifier twice");
  if (!initialized_) throw RuntimeError("cannot finalize an uninitialized modifier");
  finalized_ = on_finalize(state);
}

void Modifier::update_event(State& state, const Event& event) {
  if (!initialized_) throw RuntimeError("Cannot update an uninitialized modifier");
  if (finalized_) throw RuntimeError("Cannot update a finalized modifier");
  on_event(state, event);
  if (event.type == EventType::BatchStart && !started_ && should_start(event)) {
    on_start(state, event);
    started_ = true;
    on_update(state, event);
    return;
  }
  if (event.type == EventType::BatchEnd && !ended_ && should_end(event)) {
    on_end(state, event);
    ended_ = true;
    on_update(state, event);
    return;
  }
  if (started_ && !ended_) on_update(state, event);
}

bool Modifier::should_start(const Event& event) const {
  if (!start) return false;
  const double current = event.current_index();
  return *start <= current && (!end || current < *end);
}

bool Modifier::should_end(const Event& event) const {
  // The seed computes the index first, so a malformed event throws either way.
  const double current = event.current_index();
  return end.has_value() && current >= *end;
}

}  // namespace modkit
