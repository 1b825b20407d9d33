// HookProbeModifier: a test plugin that counts what its forward hooks see and writes it into buffers at each epoch end.
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/tensor.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::HookKind;
using modkit::sdk::HookView;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;

// Per module: forwards seen before and after, rows of input seen, the sum of
// the output, and the hooks to remove once it is "compressed". Written at the
// epoch end naming the module as the buffer `probe`: [pre, post, rows, output
// sum, which epoch end (1, 2, ...)].
struct Seen {
  int64_t pre = 0, post = 0, rows = 0;
  double output_sum = 0;
  std::vector<uint64_t> hooks;
};

class HookProbeModifier final : public modkit::sdk::Modifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  static constexpr uint16_t abi_min_minor = 1;

  explicit HookProbeModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")),
        fail_on_(p.get<std::string>("fail_on")),
        abort_on_(p.get<std::string>("abort_on")),
        keep_hooks_(p.get<bool>("keep_hooks")) {}

  bool on_initialize(State& state) override {
    for (const auto& m : modkit::sdk::match_with_tensor(state, targets_, {}, "HookProbeModifier")) {
      Seen& s = seen_[m.name];
      s.hooks.push_back(register_hook(state, m.name, HookKind::ForwardPre, [this, &s, name = m.name](const modkit_hook_call& c) {
        if (name == fail_on_) throw modkit::sdk::Error(MODKIT_ERROR_INVALID_ARGUMENT, "probe refuses '" + name + "'");
        if (name == abort_on_) std::abort();  // a plugin that crashes the process
        const at::Tensor x = HookView(c).input(0);
        ++s.pre;
        s.rows += x.numel() / x.size(-1);
      }));
      s.hooks.push_back(register_hook(state, m.name, HookKind::Forward, [&s](const modkit_hook_call& c) {
        ++s.post;
        s.output_sum += HookView(c).output(0).sum().item<double>();
      }));
    }
    return true;
  }

  void on_event(State& state, const Event& e) override {
    if (e.type() == EventType::SequentialEpochEnd) {
      ++epochs_;
      for (const std::string& name : e.modules()) {
        const auto it = seen_.find(name);
        if (it == seen_.end() || it->second.hooks.empty()) continue;
        const Seen& s = it->second;
        modkit::sdk::set_tensor(state, name, "probe", at::tensor({static_cast<double>(s.pre), static_cast<double>(s.post),
                                                                  static_cast<double>(s.rows), s.output_sum,
                                                                  static_cast<double>(epochs_)}),
                                MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE);
        if (keep_hooks_) continue;  // the SDK removes them after on_finalize
        for (uint64_t id : s.hooks) remove_hook(id);  // "compressed": no more statistics
        it->second.hooks.clear();
      }
    }
  }

 private:
  std::vector<std::string> targets_;
  std::string fail_on_;
  std::string abort_on_;
  bool keep_hooks_;
  std::map<std::string, Seen> seen_;
  int64_t epochs_ = 0;
};

// Registers a hook (ABI 1.1) without declaring abi_min_minor = 1: the mistake hosts must catch.
class UnderDeclaredProbeModifier final : public modkit::sdk::Modifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_BASIC;
  explicit UnderDeclaredProbeModifier(const Params&) {}
  bool on_initialize(State& state) override {
    register_hook(state, "layers.0.mlp.fc1", HookKind::Forward, [](const modkit_hook_call&) {});
    return true;
  }
};

// sdk::CalibratingModifier with counting statistics: writes, as the buffer `calibration` of each unit it
// compresses, [forwards observed, rows observed, 1 when reduce() ran first, which compression (1, 2, ...)].
struct Counts {
  int64_t forwards = 0, rows = 0;
  bool reduced = false;
};

class CalibrationProbeModifier final : public modkit::sdk::CalibratingModifier<Counts> {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  static constexpr uint16_t abi_min_minor = 1;

  explicit CalibrationProbeModifier(const Params& p)
      : targets_(p.get<std::vector<std::string>>("targets")), require_data_(p.get<bool>("require_data")) {}

  bool on_initialize(State& state) override {
    reset_calibration();
    compressed_ = 0;
    for (const auto& m : modkit::sdk::match_with_tensor(state, targets_, {}, source())) {
      calibrate(state, m.name, m.name, HookKind::ForwardPre, Counts{});
    }
    return true;
  }

 private:
  void observe(const std::string&, Counts& counts, const modkit_hook_call& call) override {
    const at::Tensor x = HookView(call).input(0);
    ++counts.forwards;
    counts.rows += x.numel() / x.size(-1);
  }
  bool has_data(const Counts& counts) const override { return counts.forwards > 0; }
  void reduce(State&, const std::string&, Counts& counts) override { counts.reduced = true; }
  void compress(State& state, const std::string& unit, Counts counts) override {
    modkit::sdk::set_tensor(state, unit, "calibration",
                            at::tensor({static_cast<double>(counts.forwards), static_cast<double>(counts.rows),
                                        counts.reduced ? 1.0 : 0.0, static_cast<double>(++compressed_)}),
                            MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE);
  }
  std::string idle_warning(const std::string& unit) const override { return "'" + unit + "' saw nothing"; }
  std::string no_data_error(const std::vector<std::string>& idle) const override {
    return require_data_ ? "none of " + std::to_string(idle.size()) + " units saw data" : "";
  }
  const char* source() const override { return "CalibrationProbeModifier"; }

  std::vector<std::string> targets_;
  bool require_data_;
  int64_t compressed_ = 0;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(CalibrationProbeModifier, "1.0.0", "test plugin: sdk::CalibratingModifier with counts",
                       (ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]), "units to calibrate"}),
                       (ParamSpec{"require_data", Type::Bool, MODKIT_JSON(true), "no data at all is an error"}))
MODKIT_EXPORT_MODIFIER(UnderDeclaredProbeModifier, "1.0.0", "test plugin: uses hooks, declares ABI 1.0")
MODKIT_EXPORT_MODIFIER(HookProbeModifier, "1.0.0", "test plugin: counts what forward hooks see",
                       (ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]), "modules to probe"}),
                       (ParamSpec{"fail_on", Type::String, MODKIT_JSON(""), "a module whose pre-hook throws"}),
                       (ParamSpec{"abort_on", Type::String, MODKIT_JSON(""), "a module whose pre-hook aborts"}),
                       (ParamSpec{"keep_hooks", Type::Bool, MODKIT_JSON(false), "leave the hooks to on_finalize"}))
