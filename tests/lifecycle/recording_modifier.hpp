// A test modifier that records every lifecycle callback as a string.
#pragma once

#include <modkit/core/errors.hpp>
#include <modkit/core/modifier.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace modkit_test {

/// Records "on_initialize", "on_finalize" and "<hook>:<EVENT>@<step>" for the
/// event hooks (e.g. "on_event:BATCH_START@3", "on_start:BATCH_START@0"), in
/// its own `calls` and, prefixed with its name, in an optional shared log.
class RecordingModifier : public modkit::Modifier {
 public:
  explicit RecordingModifier(std::string name = "rec", std::vector<std::string>* shared = nullptr)
      : name_(std::move(name)), shared_(shared) {}

  std::vector<std::string> calls;
  std::vector<modkit::Event> events;  // every event on_event saw
  bool initialize_result = true;
  bool finalize_result = true;
  bool throw_in_initialize = false;  // on_initialize throws RuntimeError("boom")

  std::string type_name() const override { return "RecordingModifier"; }

 protected:
  bool on_initialize(modkit::State&) override {
    record("on_initialize");
    if (throw_in_initialize) throw modkit::RuntimeError("boom");
    return initialize_result;
  }
  bool on_finalize(modkit::State&) override {
    record("on_finalize");
    return finalize_result;
  }
  void on_start(modkit::State&, const modkit::Event& e) override { record("on_start", e); }
  void on_update(modkit::State&, const modkit::Event& e) override { record("on_update", e); }
  void on_end(modkit::State&, const modkit::Event& e) override { record("on_end", e); }
  void on_event(modkit::State&, const modkit::Event& e) override {
    events.push_back(e);
    record("on_event", e);
  }

 private:
  void record(const std::string& what) {
    calls.push_back(what);
    if (shared_ != nullptr) shared_->push_back(name_ + "." + what);
  }
  void record(const std::string& hook, const modkit::Event& e) {
    record(hook + ":" + modkit::to_string(e.type) + "@" + std::to_string(e.global_step));
  }

  std::string name_;
  std::vector<std::string>* shared_;
};

/// An event of `type` at `step`.
inline modkit::Event make_event(modkit::EventType type, int64_t step) {
  modkit::Event e;
  e.type = type;
  e.global_step = step;
  return e;
}

}  // namespace modkit_test
