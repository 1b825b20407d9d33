// Tests of Session: the seed's CompressionLifecycle checks, event order and dispatch.
#include "recording_modifier.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/session.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using modkit::EventType;
using modkit::Session;
using modkit::StageModifiers;
using modkit::ValueError;
using modkit_test::RecordingModifier;
using Calls = std::vector<std::string>;

namespace {

constexpr const char* kOrderPrefix =
    "Lifecycle events must appear following order: [BATCH_START, LOSS_CALCULATED, OPTIM_PRE_STEP, "
    "OPTIM_POST_STEP, BATCH_END]. Instead, ";

std::string order_error(const char* last, const char* current) {
  return std::string(kOrderPrefix) + last + " was called before " + current;
}

// Stages of recording modifiers; returns raw pointers to them for inspection.
std::vector<StageModifiers> make_stages(const std::vector<std::vector<std::string>>& names, Calls* log,
                                        std::vector<RecordingModifier*>* out = nullptr) {
  std::vector<StageModifiers> stages;
  int64_t index = 0;
  for (const auto& stage_names : names) {
    StageModifiers stage;
    stage.group = "stage";
    stage.index = index++;
    for (const std::string& name : stage_names) {
      auto m = std::make_unique<RecordingModifier>(name, log);
      if (out != nullptr) out->push_back(m.get());
      stage.modifiers.push_back(std::move(m));
    }
    stages.push_back(std::move(stage));
  }
  return stages;
}

// An initialized session of one stage with one recording modifier.
Session make_session(Calls* log = nullptr, RecordingModifier** modifier = nullptr) {
  Session session;
  std::vector<RecordingModifier*> mods;
  session.initialize(make_stages({{"m"}}, log, &mods));
  if (modifier != nullptr) *modifier = mods[0];
  return session;
}

}  // namespace

TEST_CASE("a new session is uninitialized, unfinalized, at step 0 with the default state") {
  Session session;
  CHECK_FALSE(session.initialized());
  CHECK_FALSE(session.finalized());
  CHECK(session.global_step() == 0);
  CHECK(session.stages().empty());
  CHECK(session.state().host == modkit::default_host());
  CHECK(session.state().world_size == 1);
}

TEST_CASE("a session keeps the state it was given") {
  modkit::State state;
  state.rank = 1;
  state.world_size = 2;
  Session session(state);
  CHECK(session.state().rank == 1);
  session.state().rank = 0;
  CHECK(session.state().rank == 0);
}

TEST_CASE("session initialize and finalize run the stages in order") {
  Calls log;
  Session session;
  session.initialize(make_stages({{"a", "b"}, {"c"}}, &log));
  CHECK(session.initialized());
  REQUIRE(session.stages().size() == 2);
  CHECK(session.stages()[0].initialized());
  CHECK(session.stages()[1].unique_id() == "stage_1");
  session.finalize();
  CHECK(session.finalized());
  CHECK(session.stages()[0].applied);
  CHECK(session.stages()[1].applied);
  CHECK(log == Calls{"a.on_initialize", "b.on_initialize", "c.on_initialize", "a.on_finalize", "b.on_finalize",
                     "c.on_finalize"});
}

TEST_CASE("session initialize twice raises an explicit error") {
  Session session;
  session.initialize({});
  CHECK_THROWS_WITH_AS(session.initialize({}), "Cannot initialize a session more than once", ValueError);
  SUBCASE("also after finalize") {
    session.finalize();
    CHECK_THROWS_WITH_AS(session.initialize({}), "Cannot initialize a session more than once", ValueError);
  }
}

TEST_CASE("a session whose modifier throws during initialize stays uninitialized") {
  Calls log;
  std::vector<RecordingModifier*> mods;
  Session session;
  std::vector<StageModifiers> stages = make_stages({{"a", "b"}, {"c"}}, &log, &mods);
  mods[1]->throw_in_initialize = true;
  CHECK_THROWS_WITH_AS(session.initialize(std::move(stages)), "boom", modkit::RuntimeError);
  CHECK_FALSE(session.initialized());
  CHECK(log == Calls{"a.on_initialize", "b.on_initialize"});
  CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), "Cannot invoke event before initializing", ValueError);
  SUBCASE("it may be initialized again with new stages") {
    session.initialize(make_stages({{"d"}}, &log));
    CHECK(session.initialized());
    REQUIRE(session.stages().size() == 1);
    CHECK(session.stages()[0].initialized());
  }
}

TEST_CASE("session events before initialize or after finalize raise the seed's messages") {
  Session session;
  CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), "Cannot invoke event before initializing",
                       ValueError);
  CHECK_THROWS_WITH_AS(session.finalize(), "Cannot finalize before initializing", ValueError);
  session.initialize({});
  session.finalize();
  CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), "Cannot invoke event after finalizing", ValueError);
  CHECK_THROWS_WITH_AS(session.finalize(), "Cannot finalize more than once", ValueError);
}

TEST_CASE("valid training event sequences pass the order check") {
  Session session = make_session();
  SUBCASE("the full order, twice") {
    for (int step = 0; step < 2; ++step) {
      session.event(EventType::BatchStart, step);
      session.event(EventType::LossCalculated, step, 1.5);
      session.event(EventType::OptimPreStep, step);
      session.event(EventType::OptimPostStep, step);
      session.event(EventType::BatchEnd, step);
    }
  }
  SUBCASE("BATCH_START first and after any other event") {
    session.event(EventType::BatchStart);
    session.event(EventType::OptimPreStep);
    session.event(EventType::BatchStart);
    session.event(EventType::LossCalculated, std::nullopt, 0.5);
    session.event(EventType::BatchStart);
  }
  SUBCASE("events may skip ahead and repeat") {
    session.event(EventType::BatchStart);
    session.event(EventType::OptimPostStep);
    session.event(EventType::OptimPostStep);
    session.event(EventType::BatchEnd);
    session.event(EventType::BatchEnd);
  }
  SUBCASE("BATCH_END may come first: the order starts as if after a BATCH_END") {
    session.event(EventType::BatchEnd);
  }
}

TEST_CASE("BATCH_START twice raises the order error") {
  Session session = make_session();
  session.event(EventType::BatchStart);
  CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), order_error("BATCH_START", "BATCH_START").c_str(),
                       ValueError);
}

TEST_CASE("training events may not go backwards") {
  Session session = make_session();
  SUBCASE("OPTIM_PRE_STEP after OPTIM_POST_STEP") {
    session.event(EventType::BatchStart);
    session.event(EventType::OptimPostStep);
    CHECK_THROWS_WITH_AS(session.event(EventType::OptimPreStep),
                         order_error("OPTIM_POST_STEP", "OPTIM_PRE_STEP").c_str(), ValueError);
  }
  SUBCASE("LOSS_CALCULATED after BATCH_END") {
    session.event(EventType::BatchStart);
    session.event(EventType::BatchEnd);
    CHECK_THROWS_WITH_AS(session.event(EventType::LossCalculated, std::nullopt, 1.0),
                         order_error("BATCH_END", "LOSS_CALCULATED").c_str(), ValueError);
  }
  SUBCASE("anything but BATCH_START or BATCH_END first") {
    CHECK_THROWS_WITH_AS(session.event(EventType::OptimPreStep),
                         order_error("BATCH_END", "OPTIM_PRE_STEP").c_str(), ValueError);
  }
  SUBCASE("a rejected event does not change the order state") {
    session.event(EventType::BatchStart);
    session.event(EventType::OptimPostStep);
    CHECK_THROWS_AS(session.event(EventType::OptimPreStep), ValueError);
    session.event(EventType::BatchEnd);
    session.event(EventType::BatchStart);
  }
}

TEST_CASE("calibration events are exempt from the order and do not change it") {
  Session session = make_session();
  SUBCASE("anywhere, repeated") {
    session.event(EventType::CalibrationStart);
    session.event(EventType::SequentialEpochEnd);
    session.event(EventType::SequentialEpochEnd);
    session.event(EventType::CalibrationEnd);
    session.event(EventType::CalibrationStart);
  }
  SUBCASE("in the middle of a training step") {
    session.event(EventType::BatchStart);
    session.event(EventType::LossCalculated, std::nullopt, 2.0);
    session.event(EventType::CalibrationStart);
    session.event(EventType::SequentialEpochEnd);
    session.event(EventType::CalibrationEnd);
    session.event(EventType::OptimPreStep);
    session.event(EventType::BatchEnd);
  }
  SUBCASE("they do not reset the last training event") {
    session.event(EventType::BatchStart);
    session.event(EventType::CalibrationEnd);
    CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), order_error("BATCH_START", "BATCH_START").c_str(),
                         ValueError);
  }
}

TEST_CASE("LOSS_CALCULATED requires a loss") {
  Session session = make_session();
  session.event(EventType::BatchStart);
  CHECK_THROWS_WITH_AS(session.event(EventType::LossCalculated), "Loss must be provided for loss calculated event",
                       ValueError);
  SUBCASE("the order was recorded before the loss check, as in the seed") {
    // LOSS_CALCULATED is now the last event, so BATCH_START is valid again.
    session.event(EventType::BatchStart);
  }
}

TEST_CASE("the order check comes before the loss check") {
  Session session = make_session();
  session.event(EventType::BatchStart);
  session.event(EventType::BatchEnd);
  CHECK_THROWS_WITH_AS(session.event(EventType::LossCalculated), order_error("BATCH_END", "LOSS_CALCULATED").c_str(),
                       ValueError);
}

TEST_CASE("the session's global step follows the steps given") {
  Session session = make_session();
  session.event(EventType::BatchStart, 4);
  CHECK(session.global_step() == 4);
  session.event(EventType::BatchEnd);
  CHECK(session.global_step() == 4);
  session.event(EventType::BatchStart, 2);
  CHECK(session.global_step() == 2);
}

TEST_CASE("modifiers receive the real global step, loss, modules and steps_per_epoch") {
  RecordingModifier* m = nullptr;
  Session session = make_session(nullptr, &m);
  session.event(EventType::BatchStart, 7);
  session.event(EventType::LossCalculated, std::nullopt, 0.75);
  session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, {"layers.0", "layers.1"});
  session.event(EventType::BatchEnd, 8, std::nullopt, {}, 4);

  REQUIRE(m->events.size() == 4);
  CHECK(m->events[0].type == EventType::BatchStart);
  CHECK(m->events[0].global_step == 7);
  CHECK_FALSE(m->events[0].loss.has_value());
  CHECK_FALSE(m->events[0].epoch_based());
  CHECK(m->events[1].type == EventType::LossCalculated);
  CHECK(m->events[1].global_step == 7);
  CHECK(m->events[1].loss == 0.75);
  CHECK(m->events[2].modules == std::vector<std::string>{"layers.0", "layers.1"});
  CHECK(m->events[3].global_step == 8);
  CHECK(m->events[3].steps_per_epoch == 4);
  CHECK(m->events[3].current_index() == 2.0);
  for (const modkit::Event& e : m->events) CHECK(e.global_batch == 0);
}

TEST_CASE("a step schedule advances through session events") {
  Calls log;
  std::vector<RecordingModifier*> mods;
  Session session;
  std::vector<StageModifiers> stages = make_stages({{"a"}, {"b"}}, &log, &mods);
  mods[0]->start = 2;
  mods[0]->end = 4;
  session.initialize(std::move(stages));
  log.clear();
  for (int64_t step = 0; step < 6; ++step) {
    session.event(EventType::BatchStart, step);
    session.event(EventType::BatchEnd, step);
  }
  CHECK(mods[0]->started());
  CHECK(mods[0]->ended());
  Calls a_calls;
  for (const std::string& call : log) {
    if (call.rfind("a.", 0) == 0 && call.find("on_event") == std::string::npos) a_calls.push_back(call);
  }
  CHECK(a_calls == Calls{"a.on_start:BATCH_START@2", "a.on_update:BATCH_START@2", "a.on_update:BATCH_END@2",
                         "a.on_update:BATCH_START@3", "a.on_update:BATCH_END@3", "a.on_update:BATCH_START@4",
                         "a.on_end:BATCH_END@4", "a.on_update:BATCH_END@4"});
  SUBCASE("every event reaches the stages in order") {
    CHECK(log[0] == "a.on_event:BATCH_START@0");
    CHECK(log[1] == "b.on_event:BATCH_START@0");
  }
}

TEST_CASE("a stage applied before the session starts receives nothing") {
  Calls log;
  Session session;
  std::vector<StageModifiers> stages = make_stages({{"a"}, {"b"}}, &log);
  stages[0].applied = true;
  session.initialize(std::move(stages));
  session.event(EventType::BatchStart, 1);
  session.finalize();
  CHECK(log == Calls{"b.on_initialize", "b.on_event:BATCH_START@1", "b.on_finalize"});
}

TEST_CASE("a modifier's error propagates through session events") {
  Session session;
  std::vector<RecordingModifier*> mods;
  std::vector<StageModifiers> stages = make_stages({{"a"}}, nullptr, &mods);
  mods[0]->initialize_result = false;  // stays uninitialized
  session.initialize(std::move(stages));
  CHECK_FALSE(session.stages()[0].initialized());
  CHECK_THROWS_WITH_AS(session.event(EventType::BatchStart), "Cannot update an uninitialized modifier",
                       modkit::RuntimeError);
}
