// Test plugin for the experimental registry.
#include <modkit/sdk.hpp>

class GammaModifier final : public modkit::sdk::Modifier {
 public:
  explicit GammaModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
};

MODKIT_EXPORT_MODIFIER(GammaModifier, "0.1.0", "gamma: an experimental modifier")
