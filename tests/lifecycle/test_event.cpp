// Tests of EventType names, Event::current_index, AbiEvent and State::to_abi.
#include <modkit/core/errors.hpp>
#include <modkit/core/event.hpp>
#include <modkit/core/state.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

using modkit::AbiEvent;
using modkit::Event;
using modkit::EventType;

TEST_CASE("event types carry the ABI's numbers and the Python names") {
  struct Row {
    EventType type;
    uint32_t abi;
    const char* name;
  };
  const Row rows[] = {
      {EventType::BatchStart, MODKIT_EVENT_BATCH_START, "BATCH_START"},
      {EventType::LossCalculated, MODKIT_EVENT_LOSS_CALCULATED, "LOSS_CALCULATED"},
      {EventType::OptimPreStep, MODKIT_EVENT_OPTIM_PRE_STEP, "OPTIM_PRE_STEP"},
      {EventType::OptimPostStep, MODKIT_EVENT_OPTIM_POST_STEP, "OPTIM_POST_STEP"},
      {EventType::BatchEnd, MODKIT_EVENT_BATCH_END, "BATCH_END"},
      {EventType::CalibrationStart, MODKIT_EVENT_CALIBRATION_START, "CALIBRATION_START"},
      {EventType::SequentialEpochEnd, MODKIT_EVENT_SEQUENTIAL_EPOCH_END, "SEQUENTIAL_EPOCH_END"},
      {EventType::CalibrationEnd, MODKIT_EVENT_CALIBRATION_END, "CALIBRATION_END"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CHECK(static_cast<uint32_t>(row.type) == row.abi);
    CHECK(std::string(modkit::to_string(row.type)) == row.name);
  }
  CHECK(std::string(modkit::to_string(static_cast<EventType>(99))) == "UNKNOWN");
}

TEST_CASE("a default event is a step-based BATCH_START at step 0") {
  Event e;
  CHECK(e.type == EventType::BatchStart);
  CHECK(e.global_step == 0);
  CHECK(e.global_batch == 0);
  CHECK_FALSE(e.epoch_based());
  CHECK_FALSE(e.loss.has_value());
  CHECK(e.modules.empty());
  CHECK(e.current_index() == 0.0);
}

TEST_CASE("current_index is the global step, or fractional epochs when epoch based") {
  Event e;
  e.global_step = 7;
  SUBCASE("step based") {
    CHECK_FALSE(e.epoch_based());
    CHECK(e.current_index() == 7.0);
  }
  SUBCASE("epoch based") {
    e.steps_per_epoch = 2;
    CHECK(e.epoch_based());
    CHECK(e.current_index() == doctest::Approx(3.5));
  }
  SUBCASE("epoch based on an epoch boundary") {
    e.global_step = 8;
    e.steps_per_epoch = 4;
    CHECK(e.current_index() == 2.0);
  }
  SUBCASE("a non-positive steps_per_epoch is rejected") {
    e.steps_per_epoch = 0;
    CHECK_THROWS_WITH_AS(e.current_index(),
                         "steps_per_epoch must be positive for an epoch based event, got 0",
                         modkit::ValueError);
    e.steps_per_epoch = -3;
    CHECK_THROWS_AS(e.current_index(), modkit::ValueError);
  }
}

TEST_CASE("AbiEvent fills every field of the C event") {
  Event e;
  e.type = EventType::SequentialEpochEnd;
  e.global_step = 6;
  e.global_batch = 11;

  SUBCASE("step based, no loss, no modules") {
    AbiEvent abi(e);
    const modkit_event* raw = abi.get();
    CHECK(raw->struct_size == sizeof(modkit_event));
    CHECK(raw->type == MODKIT_EVENT_SEQUENTIAL_EPOCH_END);
    CHECK(raw->global_step == 6);
    CHECK(raw->global_batch == 11);
    CHECK(raw->steps_per_epoch == 0);
    CHECK(raw->current_index == 6.0);
    CHECK(std::isnan(raw->loss));
    CHECK(raw->module_count == 0);
    CHECK(raw->modules == nullptr);
  }
  SUBCASE("epoch based, with loss and modules") {
    e.steps_per_epoch = 4;
    e.loss = 0.25;
    e.modules = {"model.layers.0", "model.layers.1"};
    AbiEvent abi(e);
    const modkit_event* raw = abi.get();
    CHECK(raw->steps_per_epoch == 4);
    CHECK(raw->current_index == doctest::Approx(1.5));
    CHECK(raw->loss == 0.25);
    REQUIRE(raw->module_count == 2);
    CHECK(std::strcmp(raw->modules[0], "model.layers.0") == 0);
    CHECK(std::strcmp(raw->modules[1], "model.layers.1") == 0);
    // The names are borrowed from the Event, not copied.
    CHECK(raw->modules[0] == e.modules[0].c_str());
  }
  SUBCASE("a moved view still points at valid names") {
    e.modules = {"a", "b", "c"};
    AbiEvent first(e);
    AbiEvent moved(std::move(first));
    const modkit_event* raw = moved.get();
    REQUIRE(raw->module_count == 3);
    CHECK(std::strcmp(raw->modules[2], "c") == 0);
  }
  SUBCASE("a malformed epoch-based event is refused") {
    e.steps_per_epoch = 0;
    CHECK_THROWS_AS(AbiEvent{e}, modkit::ValueError);
  }
}

TEST_CASE("State defaults to the core host and converts to modkit_state") {
  modkit::State state;
  CHECK(state.host == modkit::default_host());
  CHECK(state.model == nullptr);
  CHECK(state.rank == 0);
  CHECK(state.world_size == 1);

  state.rank = 2;
  state.world_size = 4;
  state.model = reinterpret_cast<modkit_model*>(0x1000);
  const modkit_state abi = state.to_abi();
  CHECK(abi.struct_size == sizeof(modkit_state));
  CHECK(abi.reserved == 0);
  CHECK(abi.host == modkit::default_host());
  CHECK(abi.model == state.model);
  CHECK(abi.rank == 2);
  CHECK(abi.world_size == 4);
}
