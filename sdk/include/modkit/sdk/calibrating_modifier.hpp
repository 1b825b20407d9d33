// CalibratingModifier<Stats>: llmcompressor's calibration lifecycle (GPTQ, SparseGPT, Wanda, SmoothQuant) written
// once: statistics accumulated from hooks, compressed when the pipeline says their block is done.
#pragma once

#include <modkit/sdk/error.hpp>
#include <modkit/sdk/modifier.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace modkit::sdk {

/// Base of the modifiers that compress from calibration statistics. A
/// derived class calls calibrate() for each unit it will compress (a module,
/// or e.g. SmoothQuant's smooth layer with its balance layers) and implements
/// the mathematics:
///  - observe(): one hook call into the unit's statistics;
///  - reduce(): the statistics as the compression must see them, called once
///    per unit right before compress() — the one place where statistics
///    gathered in pieces are combined (identity in one process);
///  - compress(): the unit's compression from its statistics.
///
/// The lifecycle is the base's: SEQUENTIAL_EPOCH_END compresses the units it
/// covers (listed, or below a listed module) that saw data, removes their
/// hooks (later forwards, the next blocks' inputs, must not accumulate again)
/// and frees their statistics, so a sequential pipeline holds one block's;
/// CALIBRATION_END compresses every unit left with data and reports the
/// others (idle_warning(), and no_data_error() when no unit saw any data);
/// on_finalize does the same for a host that sent no CALIBRATION_END, where a
/// lack of data is only a warning (finalize also runs after failures).
/// A derived class overriding on_event or on_finalize calls the base's.
template <class Stats>
class CalibratingModifier : public Modifier {
 public:
  void on_event(State& state, const Event& event) override {
    if (event.type() == EventType::SequentialEpochEnd) {
      const std::vector<std::string> modules = event.modules();
      for (auto& unit : units_) {
        if (!unit->done && has_data(*unit->stats) && covered(unit->name, modules)) compress_unit(state, *unit);
      }
    } else if (event.type() == EventType::CalibrationEnd) {
      finish(state, true);
    }
  }

  bool on_finalize(State& state) override {
    if (!finished_) finish(state, false);
    reset_calibration();
    return true;
  }

 protected:
  /// Starts calibrating `unit`: every forward of `hook_module` (before it:
  /// ForwardPre, after it: Forward) is observed into `stats`. Returns the
  /// statistics, valid until the unit is compressed or calibration is reset.
  Stats& calibrate(const State& state, std::string unit, const std::string& hook_module, HookKind kind, Stats stats) {
    auto entry = std::make_unique<Unit>(Unit{std::move(unit), std::move(stats), 0, false});
    Unit* raw = entry.get();  // stable: the hook points at its unit
    raw->hook = register_hook(state, hook_module, kind, [this, raw](const modkit_hook_call& call) {
      if (!raw->done) observe(raw->name, *raw->stats, call);
    });
    units_.push_back(std::move(entry));
    return *raw->stats;
  }

  /// Forgets every unit and removes the hooks (on_initialize of a modifier
  /// initialized again).
  void reset_calibration() {
    remove_hooks();
    units_.clear();
    finished_ = false;
    compressed_ = 0;
  }

  /// How many units calibrate() started.
  size_t unit_count() const { return units_.size(); }

  /// Accumulates one forward of the unit's hooked module.
  virtual void observe(const std::string& unit, Stats& stats, const modkit_hook_call& call) = 0;
  /// Whether `stats` hold any data (a unit without data is never compressed).
  virtual bool has_data(const Stats& stats) const = 0;
  /// Combines the unit's statistics before compress(); the default keeps them.
  virtual void reduce(State& state, const std::string& unit, Stats& stats) { (void)state, (void)unit, (void)stats; }
  /// Compresses the unit from its statistics (consumed).
  virtual void compress(State& state, const std::string& unit, Stats stats) = 0;
  /// The warning for a unit that saw no data by the end of calibration (it stays as it was).
  virtual std::string idle_warning(const std::string& unit) const = 0;
  /// The error when no unit saw any data ("" to warn per unit instead); an
  /// error at CALIBRATION_END, a warning at on_finalize.
  virtual std::string no_data_error(const std::vector<std::string>& idle) const {
    (void)idle;
    return "";
  }
  /// The log source of the warnings: the modifier's type name.
  virtual const char* source() const = 0;

 private:
  struct Unit {
    std::string name;
    std::optional<Stats> stats;  // empty once compressed: its memory is freed
    uint64_t hook;
    bool done;
  };

  // True when `module` is one of `names` or lies below one of them ("layers.3" covers "layers.3.mlp.fc1").
  static bool covered(const std::string& module, const std::vector<std::string>& names) {
    for (const std::string& n : names) {
      if (module == n || n.empty()) return true;
      if (module.size() > n.size() && module.compare(0, n.size(), n) == 0 && module[n.size()] == '.') return true;
    }
    return false;
  }

  void compress_unit(State& state, Unit& unit) {
    remove_hook(unit.hook);
    unit.done = true;
    Stats stats = std::move(*unit.stats);
    unit.stats.reset();
    reduce(state, unit.name, stats);
    ++compressed_;
    compress(state, unit.name, std::move(stats));
  }

  void finish(State& state, bool strict) {
    finished_ = true;
    std::vector<std::string> idle;
    for (auto& unit : units_) {
      if (unit->done) continue;
      if (has_data(*unit->stats)) {
        compress_unit(state, *unit);
      } else {
        idle.push_back(unit->name);
        unit->done = true;
      }
    }
    remove_hooks();
    if (compressed_ == 0 && !units_.empty()) {
      const std::string message = no_data_error(idle);
      if (!message.empty()) {
        if (strict) throw Error(MODKIT_ERROR_FAILED_PRECONDITION, message);
        state.log(MODKIT_LOG_WARN, source(), message);
        return;
      }
    }
    for (const std::string& name : idle) state.log(MODKIT_LOG_WARN, source(), idle_warning(name));
  }

  std::vector<std::unique_ptr<Unit>> units_;
  size_t compressed_ = 0;
  bool finished_ = false;
};

}  // namespace modkit::sdk
