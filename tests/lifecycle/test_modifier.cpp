// Tests of the seed's Modifier lifecycle: state checks, schedule, start / update / end.
#include "recording_modifier.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/modifier.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using modkit::Event;
using modkit::EventType;
using modkit::RuntimeError;
using modkit_test::make_event;
using modkit_test::RecordingModifier;
using Calls = std::vector<std::string>;

TEST_CASE("a new modifier is neither initialized, started, ended nor finalized") {
  RecordingModifier m;
  CHECK_FALSE(m.initialized());
  CHECK_FALSE(m.started());
  CHECK_FALSE(m.ended());
  CHECK_FALSE(m.finalized());
  CHECK_FALSE(m.index.has_value());
  CHECK_FALSE(m.group.has_value());
  CHECK_FALSE(m.start.has_value());
  CHECK_FALSE(m.end.has_value());
  CHECK_FALSE(m.update.has_value());
  CHECK(m.type_name() == "RecordingModifier");
  CHECK(m.calls.empty());
}

TEST_CASE("initialize calls on_initialize and marks the modifier initialized") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  CHECK(m.initialized());
  CHECK_FALSE(m.started());
  CHECK(m.calls == Calls{"on_initialize"});
}

TEST_CASE("initialize twice raises the seed's message") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  CHECK_THROWS_WITH_AS(m.initialize(state),
                       "Cannot initialize a modifier that has already been initialized", RuntimeError);
  CHECK(m.calls == Calls{"on_initialize"});
}

TEST_CASE("initialize after finalize raises a lifecycle error") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  m.finalize(state);
  // The initialized check comes first, as in the seed; the "already been
  // finalized" message is unreachable through the public API (finalize needs
  // an initialized modifier and nothing clears that flag), in Python too.
  CHECK_THROWS_WITH_AS(m.initialize(state),
                       "Cannot initialize a modifier that has already been initialized", RuntimeError);
}

TEST_CASE("on_initialize returning false leaves the modifier uninitialized") {
  modkit::State state;
  RecordingModifier m;
  m.initialize_result = false;
  m.initialize(state);
  CHECK_FALSE(m.initialized());
  SUBCASE("it may be initialized again") {
    m.initialize_result = true;
    m.initialize(state);
    CHECK(m.initialized());
    CHECK(m.calls == Calls{"on_initialize", "on_initialize"});
  }
  SUBCASE("it cannot be updated") {
    CHECK_THROWS_WITH_AS(m.update_event(state, make_event(EventType::BatchStart, 0)),
                         "Cannot update an uninitialized modifier", RuntimeError);
  }
  SUBCASE("it cannot be finalized") {
    CHECK_THROWS_WITH_AS(m.finalize(state), "cannot finalize an uninitialized modifier", RuntimeError);
  }
}

TEST_CASE("initialize sends a fake BATCH_START at step 0 to the schedule") {
  modkit::State state;
  RecordingModifier m;
  SUBCASE("start = 0 starts the modifier") {
    m.start = 0;
    m.initialize(state);
    CHECK(m.started());
    CHECK(m.calls == Calls{"on_initialize", "on_start:BATCH_START@0"});
  }
  SUBCASE("start unset does not start it") {
    m.initialize(state);
    CHECK_FALSE(m.started());
    CHECK(m.calls == Calls{"on_initialize"});
  }
  SUBCASE("start = 1 does not start it") {
    m.start = 1;
    m.initialize(state);
    CHECK_FALSE(m.started());
    CHECK(m.calls == Calls{"on_initialize"});
  }
  SUBCASE("start = 0 with end = 0 does not start it") {
    m.start = 0;
    m.end = 0;
    m.initialize(state);
    CHECK_FALSE(m.started());
  }
  SUBCASE("start = 0 starts it even when on_initialize returned false, as the seed does") {
    m.start = 0;
    m.initialize_result = false;
    m.initialize(state);
    CHECK_FALSE(m.initialized());
    CHECK(m.started());
  }
}

TEST_CASE("finalize calls on_finalize and records its result") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  SUBCASE("true finalizes") {
    m.finalize(state);
    CHECK(m.finalized());
    CHECK(m.calls == Calls{"on_initialize", "on_finalize"});
  }
  SUBCASE("false leaves it unfinalized, so it may be finalized again") {
    m.finalize_result = false;
    m.finalize(state);
    CHECK_FALSE(m.finalized());
    m.finalize_result = true;
    m.finalize(state);
    CHECK(m.finalized());
  }
}

TEST_CASE("finalize twice raises the seed's message") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  m.finalize(state);
  CHECK_THROWS_WITH_AS(m.finalize(state), "cannot finalize a modifier twice", RuntimeError);
  CHECK(m.calls == Calls{"on_initialize", "on_finalize"});
}

TEST_CASE("finalize before initialize raises the seed's message") {
  modkit::State state;
  RecordingModifier m;
  CHECK_THROWS_WITH_AS(m.finalize(state), "cannot finalize an uninitialized modifier", RuntimeError);
  CHECK(m.calls.empty());
}

TEST_CASE("update before initialize or after finalize raises the seed's messages") {
  modkit::State state;
  RecordingModifier m;
  const Event e = make_event(EventType::BatchStart, 0);
  SUBCASE("before initialize") {
    CHECK_THROWS_WITH_AS(m.update_event(state, e), "Cannot update an uninitialized modifier", RuntimeError);
  }
  SUBCASE("after finalize") {
    m.initialize(state);
    m.finalize(state);
    CHECK_THROWS_WITH_AS(m.update_event(state, e), "Cannot update a finalized modifier", RuntimeError);
  }
  CHECK(std::count(m.calls.begin(), m.calls.end(), "on_event:BATCH_START@0") == 0);
}

TEST_CASE("an unscheduled modifier receives on_event only") {
  modkit::State state;
  RecordingModifier m;
  m.initialize(state);
  m.calls.clear();
  m.update_event(state, make_event(EventType::BatchStart, 3));
  m.update_event(state, make_event(EventType::BatchEnd, 3));
  CHECK(m.calls == Calls{"on_event:BATCH_START@3", "on_event:BATCH_END@3"});
}

TEST_CASE("the start event runs on_event, on_start and on_update, then returns") {
  modkit::State state;
  RecordingModifier m;
  m.start = 2;
  m.initialize(state);
  m.calls.clear();

  m.update_event(state, make_event(EventType::BatchStart, 1));
  CHECK(m.calls == Calls{"on_event:BATCH_START@1"});
  CHECK_FALSE(m.started());

  m.calls.clear();
  m.update_event(state, make_event(EventType::BatchStart, 2));
  CHECK(m.started());
  // One on_update only: the start branch returns before the general update.
  CHECK(m.calls == Calls{"on_event:BATCH_START@2", "on_start:BATCH_START@2", "on_update:BATCH_START@2"});

  SUBCASE("later events update without starting again") {
    m.calls.clear();
    m.update_event(state, make_event(EventType::LossCalculated, 2));
    m.update_event(state, make_event(EventType::BatchStart, 3));
    CHECK(m.calls == Calls{"on_event:LOSS_CALCULATED@2", "on_update:LOSS_CALCULATED@2",
                           "on_event:BATCH_START@3", "on_update:BATCH_START@3"});
  }
}

TEST_CASE("only a BATCH_START starts the modifier") {
  modkit::State state;
  RecordingModifier m;
  m.start = 2;
  m.initialize(state);
  m.calls.clear();
  for (EventType t : {EventType::LossCalculated, EventType::OptimPreStep, EventType::OptimPostStep,
                      EventType::BatchEnd, EventType::CalibrationStart, EventType::SequentialEpochEnd,
                      EventType::CalibrationEnd}) {
    CAPTURE(modkit::to_string(t));
    m.update_event(state, make_event(t, 5));
    CHECK_FALSE(m.started());
  }
  CHECK(m.calls.size() == 7);
}

TEST_CASE("the end event runs on_event, on_end and on_update, and nothing updates after it") {
  modkit::State state;
  RecordingModifier m;
  m.start = 0;
  m.end = 3;
  m.initialize(state);
  m.calls.clear();

  m.update_event(state, make_event(EventType::BatchEnd, 2));
  CHECK(m.calls == Calls{"on_event:BATCH_END@2", "on_update:BATCH_END@2"});
  CHECK_FALSE(m.ended());

  SUBCASE("a BATCH_START at the end step neither starts nor ends it") {
    m.calls.clear();
    m.update_event(state, make_event(EventType::BatchStart, 3));
    CHECK(m.calls == Calls{"on_event:BATCH_START@3", "on_update:BATCH_START@3"});
    CHECK_FALSE(m.ended());
  }

  m.calls.clear();
  m.update_event(state, make_event(EventType::BatchEnd, 3));
  CHECK(m.ended());
  CHECK(m.calls == Calls{"on_event:BATCH_END@3", "on_end:BATCH_END@3", "on_update:BATCH_END@3"});

  m.calls.clear();
  m.update_event(state, make_event(EventType::BatchStart, 4));
  m.update_event(state, make_event(EventType::BatchEnd, 4));
  CHECK(m.calls == Calls{"on_event:BATCH_START@4", "on_event:BATCH_END@4"});
  CHECK(m.ended());
}

TEST_CASE("a modifier that never started still ends on its end event") {
  // As the seed: the end branch does not look at started_.
  modkit::State state;
  RecordingModifier m;
  m.end = 2;
  m.initialize(state);
  m.calls.clear();
  m.update_event(state, make_event(EventType::BatchEnd, 2));
  CHECK_FALSE(m.started());
  CHECK(m.ended());
  CHECK(m.calls == Calls{"on_event:BATCH_END@2", "on_end:BATCH_END@2", "on_update:BATCH_END@2"});
}

TEST_CASE("a start event past the end does not start the modifier") {
  modkit::State state;
  RecordingModifier m;
  m.start = 1;
  m.end = 3;
  m.initialize(state);
  m.update_event(state, make_event(EventType::BatchStart, 5));
  CHECK_FALSE(m.started());
}

TEST_CASE("should_start and should_end follow the seed's schedule") {
  RecordingModifier m;
  SUBCASE("no start never starts, no end never ends") {
    CHECK_FALSE(m.should_start(make_event(EventType::BatchStart, 0)));
    CHECK_FALSE(m.should_start(make_event(EventType::BatchStart, 100)));
    CHECK_FALSE(m.should_end(make_event(EventType::BatchEnd, 100)));
  }
  SUBCASE("start only: from start on") {
    m.start = 2;
    CHECK_FALSE(m.should_start(make_event(EventType::BatchStart, 1)));
    CHECK(m.should_start(make_event(EventType::BatchStart, 2)));
    CHECK(m.should_start(make_event(EventType::BatchStart, 1000)));
  }
  SUBCASE("start and end: the half-open range [start, end)") {
    m.start = 2;
    m.end = 4;
    CHECK_FALSE(m.should_start(make_event(EventType::BatchStart, 1)));
    CHECK(m.should_start(make_event(EventType::BatchStart, 3)));
    CHECK_FALSE(m.should_start(make_event(EventType::BatchStart, 4)));
    CHECK_FALSE(m.should_end(make_event(EventType::BatchEnd, 3)));
    CHECK(m.should_end(make_event(EventType::BatchEnd, 4)));
    CHECK(m.should_end(make_event(EventType::BatchEnd, 9)));
  }
  SUBCASE("epoch based events compare fractional epochs") {
    m.start = 1.5;
    m.end = 2.5;
    Event e = make_event(EventType::BatchStart, 5);
    e.steps_per_epoch = 4;  // 1.25 epochs
    CHECK_FALSE(m.should_start(e));
    e.global_step = 6;  // 1.5 epochs
    CHECK(m.should_start(e));
    CHECK_FALSE(m.should_end(e));
    e.global_step = 10;  // 2.5 epochs
    CHECK_FALSE(m.should_start(e));
    CHECK(m.should_end(e));
  }
  SUBCASE("the same step is a different index when epoch based") {
    m.start = 3;
    Event e = make_event(EventType::BatchStart, 3);
    CHECK(m.should_start(e));
    e.steps_per_epoch = 2;  // 1.5 epochs
    CHECK_FALSE(m.should_start(e));
  }
}

TEST_CASE("an epoch-based schedule starts and ends through update_event") {
  modkit::State state;
  RecordingModifier m;
  m.start = 1;
  m.end = 2;
  m.initialize(state);
  m.calls.clear();
  auto epoch_event = [](EventType t, int64_t step) {
    Event e = make_event(t, step);
    e.steps_per_epoch = 10;
    return e;
  };
  m.update_event(state, epoch_event(EventType::BatchStart, 9));
  CHECK_FALSE(m.started());
  m.update_event(state, epoch_event(EventType::BatchStart, 10));
  CHECK(m.started());
  m.update_event(state, epoch_event(EventType::BatchEnd, 19));
  CHECK_FALSE(m.ended());
  m.update_event(state, epoch_event(EventType::BatchEnd, 20));
  CHECK(m.ended());
  CHECK(m.calls == Calls{"on_event:BATCH_START@9", "on_event:BATCH_START@10", "on_start:BATCH_START@10",
                         "on_update:BATCH_START@10", "on_event:BATCH_END@19", "on_update:BATCH_END@19",
                         "on_event:BATCH_END@20", "on_end:BATCH_END@20", "on_update:BATCH_END@20"});
}

TEST_CASE("a modifier works through its ModifierInterface") {
  modkit::State state;
  RecordingModifier m;
  m.start = 0;
  modkit::ModifierInterface& i = m;
  i.initialize(state);
  i.update_event(state, make_event(EventType::BatchStart, 1));
  i.finalize(state);
  CHECK(i.initialized());
  CHECK(i.finalized());
  CHECK(m.calls == Calls{"on_initialize", "on_start:BATCH_START@0", "on_event:BATCH_START@1",
                         "on_update:BATCH_START@1", "on_finalize"});
}
