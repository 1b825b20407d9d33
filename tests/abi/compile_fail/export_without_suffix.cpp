// Must not compile: exporting a modifier class whose name does not end in "Modifier" (no host would load it).
#include <modkit/sdk.hpp>

class Pruner final : public modkit::sdk::Modifier {
 public:
  explicit Pruner(const modkit::sdk::Params&) {}
};

MODKIT_EXPORT_MODIFIER(Pruner, "1.0.0", "a modifier hosts would never find")
