// Test plugin whose static constructor aborts: reading its metadata must never run it.
#include <modkit/sdk.hpp>

#include <cstdlib>

namespace {
int abort_now() { std::abort(); }
[[maybe_unused]] const int aborted = abort_now();
}  // namespace

class AbortOnLoadModifier final : public modkit::sdk::Modifier {
 public:
  explicit AbortOnLoadModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
};

MODKIT_EXPORT_MODIFIER(AbortOnLoadModifier, "1.0.0", "abort: kills any process that loads it")
