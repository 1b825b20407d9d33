// Dispatch benchmark: update_event fan-out over 100 plugin modifiers through the ABI, next to host-side C++ modifiers.
#include <modkit/core/factory.hpp>
#include <modkit/core/stage.hpp>

#include <benchmark/benchmark.h>

namespace {

constexpr int kModifiers = 100;

class HostNoopModifier final : public modkit::Modifier {
 public:
  std::string type_name() const override { return "HostNoopModifier"; }

 protected:
  bool on_initialize(modkit::State&) override { return true; }
  void on_update(modkit::State&, const modkit::Event& e) override { benchmark::DoNotOptimize(sum_ += e.global_step); }

 private:
  int64_t sum_ = 0;
};

modkit::ModifierFactory& factory() {
  static modkit::ModifierFactory f([] {
    modkit::FactoryOptions o;
    o.plugin_dirs = {MODKIT_BENCH_PLUGIN_DIR};
    o.use_environment = false;
    o.use_install_dir = false;
    return o;
  }());
  static bool refreshed = (f.refresh(), f.register_class<HostNoopModifier>("HostNoopModifier"), true);
  (void)refreshed;
  return f;
}

// Started modifiers receive on_event and on_update for every non-boundary event.
void run(benchmark::State& st, const std::string& type) {
  modkit::StageModifiers stage;
  for (int i = 0; i < kModifiers; ++i) stage.modifiers.push_back(factory().create(type, true, false, {{"start", 0}}));
  modkit::State state;
  stage.initialize(state);
  modkit::Event event{modkit::EventType::OptimPostStep, 1};
  for (auto _ : st) {
    stage.update_event(state, event);
    ++event.global_step;
  }
  st.counters["ns_per_modifier_event"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * kModifiers * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_PluginModifiersThroughAbi(benchmark::State& st) { run(st, "NoopModifier"); }
void BM_HostSideModifiers(benchmark::State& st) { run(st, "HostNoopModifier"); }

}  // namespace

BENCHMARK(BM_PluginModifiersThroughAbi);
BENCHMARK(BM_HostSideModifiers);
BENCHMARK_MAIN();
