// A test plugin that reports every callback it receives through the host's log service.
#include <modkit/sdk.hpp>

#include <string>

#ifndef RECORDER_VERSION
#define RECORDER_VERSION "1.0.0"
#endif

namespace recorder {

using modkit::sdk::Event;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

// Logs "<callback>@<step>" for each callback; throws from the callback named
// by `fail_on`; on_initialize returns `initialize_result`.
class RecorderModifier final : public modkit::sdk::Modifier {
 public:
  explicit RecorderModifier(const Params& p)
      : fail_on_(p.get<std::string>("fail_on")),
        initialize_result_(p.get<bool>("initialize_result")),
        tag_(p.get<std::string>("tag")) {
    if (fail_on_ == "create") throw modkit::sdk::Error("recorder refused to be created");
  }

  bool on_initialize(State& s) override {
    record(s, "on_initialize", -1);
    return initialize_result_;
  }
  bool on_finalize(State& s) override {
    record(s, "on_finalize", -1);
    return true;
  }
  void on_start(State& s, const Event& e) override { record(s, "on_start", e.global_step()); }
  void on_update(State& s, const Event& e) override { record(s, "on_update", e.global_step()); }
  void on_end(State& s, const Event& e) override { record(s, "on_end", e.global_step()); }
  void on_event(State& s, const Event& e) override { record(s, "on_event", e.global_step()); }

 private:
  void record(State& s, const std::string& callback, int64_t step) {
    if (callback == fail_on_) throw std::runtime_error("recorder failed in " + callback);
    std::string line = tag_ + callback;
    if (step >= 0) line += "@" + std::to_string(step);
    s.log(MODKIT_LOG_INFO, "recorder", line);
  }
  std::string fail_on_;
  bool initialize_result_;
  std::string tag_;
};

// A second type in the same file, with a required and a bounded parameter.
class BoundedModifier final : public modkit::sdk::Modifier {
 public:
  explicit BoundedModifier(const Params& p) : ratio_(p.get<double>("ratio")) {}
  bool on_initialize(State&) override { return ratio_ >= 0; }

 private:
  double ratio_;
};

MODKIT_EXPORT_MODIFIER(RecorderModifier, RECORDER_VERSION, "records every callback through the host log",
                       ParamSpec{"fail_on", Type::String, MODKIT_JSON(""), "callback that throws"},
                       ParamSpec{"initialize_result", Type::Bool, MODKIT_JSON(true), "what on_initialize returns"},
                       ParamSpec{"tag", Type::String, MODKIT_JSON(""), "prefix of each record"})

MODKIT_EXPORT_MODIFIER(BoundedModifier, RECORDER_VERSION, "a \"bounded\" parameter test",
                       ParamSpec{"ratio", Type::Float, nullptr, "a required ratio"}.range("0", "1"),
                       ParamSpec{"mode", Type::String, MODKIT_JSON("fast"), "speed"}.choices(MODKIT_JSON(["fast", "slow"])),
                       ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]), "modules"},
                       ParamSpec{"count", Type::Int, MODKIT_JSON(3), "an integer"},
                       ParamSpec{"keep", Type::Float, MODKIT_JSON(0.5), "a fraction that must leave something"}
                           .range_open("0", "1", false, true))

#ifdef RECORDER_EXPERIMENTAL_ONLY
// Only in the experimental build of this file.
class ExperimentalOnlyModifier final : public modkit::sdk::Modifier {
 public:
  explicit ExperimentalOnlyModifier(const Params&) {}
  bool on_initialize(State&) override { return true; }
};
MODKIT_EXPORT_MODIFIER(ExperimentalOnlyModifier, RECORDER_VERSION, "exists only in the experimental registry")
#endif

}  // namespace recorder
