// A plugin whose callbacks do nothing: the dispatch benchmark measures only the ABI crossing.
#include <modkit/sdk.hpp>

class NoopModifier final : public modkit::sdk::Modifier {
 public:
  explicit NoopModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
  void on_update(modkit::sdk::State&, const modkit::sdk::Event& e) override { updates_ += e.global_step(); }

 private:
  int64_t updates_ = 0;
};

MODKIT_EXPORT_MODIFIER(NoopModifier, "1.0.0", "does nothing, for benchmarks")
