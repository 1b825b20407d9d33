// The seed's StageModifiers: fan-out of the lifecycle, skipped once applied.
#include <modkit/core/stage.hpp>

#include <modkit/core/errors.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace modkit {

bool StageModifiers::initialized() const {
  return std::all_of(modifiers.begin(), modifiers.end(),
                     [](const std::unique_ptr<Modifier>& m) { return m->initialized(); });
}

bool StageModifiers::finalized() const {
  return std::all_of(modifiers.begin(), modifiers.end(),
                     [](const std::unique_ptr<Modifier>& m) { return m->finalized(); });
}

std::string StageModifiers::unique_id() const {
  if (!group && !index) throw ValueError("cannot make the unique id of a stage: its group and index are unset");
  if (!group) throw ValueError("cannot make the unique id of stage " + std::to_string(*index) + ": its group is unset");
  if (!index) throw ValueError("cannot make the unique id of stage '" + *group + "': its index is unset");
  return *group + "_" + std::to_string(*index);
}

void StageModifiers::initialize(State& state) {
  if (applied) return;
  for (const auto& modifier : modifiers) {
    if (!modifier->initialized()) modifier->initialize(state);
  }
  spdlog::debug("stage '{}': {} modifiers initialized", group.value_or(""), modifiers.size());
}

void StageModifiers::finalize(State& state) {
  if (applied) return;
  for (const auto& modifier : modifiers) modifier->finalize(state);
  applied = true;
  spdlog::debug("stage '{}': {} modifiers finalized", group.value_or(""), modifiers.size());
}

void StageModifiers::update_event(State& state, const Event& event) {
  if (applied) return;
  for (const auto& modifier : modifiers) modifier->update_event(state, event);
}

}  // namespace modkit
