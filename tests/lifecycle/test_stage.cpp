// Tests of StageModifiers: fan-out, the applied skip, all() semantics, unique_id.
#include "recording_modifier.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/stage.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using modkit::EventType;
using modkit::StageModifiers;
using modkit_test::make_event;
using modkit_test::RecordingModifier;
using Calls = std::vector<std::string>;

namespace {

// A stage of `names.size()` recording modifiers that log into `log`.
StageModifiers make_stage(std::vector<std::string> names, std::vector<std::string>* log) {
  StageModifiers stage;
  for (const std::string& name : names) stage.modifiers.push_back(std::make_unique<RecordingModifier>(name, log));
  return stage;
}

RecordingModifier& at(StageModifiers& stage, size_t i) {
  return static_cast<RecordingModifier&>(*stage.modifiers.at(i));
}

}  // namespace

TEST_CASE("a stage fans initialize, update_event and finalize out to its modifiers in order") {
  modkit::State state;
  Calls log;
  StageModifiers stage = make_stage({"a", "b"}, &log);
  CHECK_FALSE(stage.initialized());

  stage.initialize(state);
  CHECK(stage.initialized());
  stage.update_event(state, make_event(EventType::BatchStart, 1));
  CHECK_FALSE(stage.finalized());
  stage.finalize(state);
  CHECK(stage.finalized());
  CHECK(stage.applied);

  CHECK(log == Calls{"a.on_initialize", "b.on_initialize", "a.on_event:BATCH_START@1",
                     "b.on_event:BATCH_START@1", "a.on_finalize", "b.on_finalize"});
}

TEST_CASE("stage initialize skips modifiers that are already initialized") {
  modkit::State state;
  Calls log;
  StageModifiers stage = make_stage({"a", "b"}, &log);
  stage.modifiers[0]->initialize(state);
  stage.initialize(state);
  CHECK(log == Calls{"a.on_initialize", "b.on_initialize"});
  SUBCASE("so initializing a stage twice is harmless") {
    stage.initialize(state);
    CHECK(log.size() == 2);
  }
}

TEST_CASE("an applied stage skips initialize, update_event and finalize") {
  modkit::State state;
  Calls log;
  StageModifiers stage = make_stage({"a"}, &log);
  stage.initialize(state);
  stage.finalize(state);
  log.clear();

  stage.initialize(state);
  stage.update_event(state, make_event(EventType::BatchStart, 1));
  stage.finalize(state);
  CHECK(log.empty());

  SUBCASE("even when marked applied before it ran") {
    Calls other_log;
    StageModifiers other = make_stage({"x"}, &other_log);
    other.applied = true;
    other.initialize(state);
    other.update_event(state, make_event(EventType::BatchStart, 1));
    other.finalize(state);
    CHECK(other_log.empty());
    CHECK_FALSE(other.initialized());
  }
}

TEST_CASE("stage initialized and finalized are all() over the modifiers") {
  modkit::State state;
  SUBCASE("an empty stage is both, as Python's all([])") {
    StageModifiers empty;
    CHECK(empty.initialized());
    CHECK(empty.finalized());
  }
  SUBCASE("one uninitialized modifier makes the stage uninitialized") {
    StageModifiers stage = make_stage({"a", "b"}, nullptr);
    at(stage, 1).initialize_result = false;
    stage.initialize(state);
    CHECK(at(stage, 0).initialized());
    CHECK_FALSE(stage.initialized());
  }
  SUBCASE("one unfinalized modifier makes the stage unfinalized, yet applied") {
    StageModifiers stage = make_stage({"a", "b"}, nullptr);
    at(stage, 0).finalize_result = false;
    stage.initialize(state);
    stage.finalize(state);
    CHECK_FALSE(stage.finalized());
    CHECK(stage.applied);
  }
}

TEST_CASE("stage errors from a modifier propagate and leave the stage unapplied") {
  modkit::State state;
  StageModifiers stage = make_stage({"a"}, nullptr);
  CHECK_THROWS_WITH_AS(stage.update_event(state, make_event(EventType::BatchStart, 0)),
                       "Cannot update an uninitialized modifier", modkit::RuntimeError);
  CHECK_THROWS_WITH_AS(stage.finalize(state), "cannot finalize an uninitialized modifier",
                       modkit::RuntimeError);
  CHECK_FALSE(stage.applied);
}

TEST_CASE("unique_id joins group and index") {
  StageModifiers stage;
  SUBCASE("both set") {
    stage.group = "quant";
    stage.index = 0;
    CHECK(stage.unique_id() == "quant_0");
    stage.index = 12;
    CHECK(stage.unique_id() == "quant_12");
  }
  SUBCASE("group unset") {
    stage.index = 3;
    CHECK_THROWS_WITH_AS(stage.unique_id(), "cannot make the unique id of stage 3: its group is unset",
                         modkit::ValueError);
  }
  SUBCASE("index unset") {
    stage.group = "sparsity";
    CHECK_THROWS_WITH_AS(stage.unique_id(), "cannot make the unique id of stage 'sparsity': its index is unset",
                         modkit::ValueError);
  }
  SUBCASE("both unset") {
    CHECK_THROWS_WITH_AS(stage.unique_id(), "cannot make the unique id of a stage: its group and index are unset",
                         modkit::ValueError);
  }
}

TEST_CASE("a stage is movable and usable through ModifierInterface") {
  modkit::State state;
  Calls log;
  StageModifiers stage = make_stage({"a"}, &log);
  stage.group = "g";
  stage.index = 1;
  StageModifiers moved = std::move(stage);
  modkit::ModifierInterface& i = moved;
  i.initialize(state);
  i.finalize(state);
  CHECK(i.finalized());
  CHECK(moved.unique_id() == "g_1");
  CHECK(log == Calls{"a.on_initialize", "a.on_finalize"});
}
