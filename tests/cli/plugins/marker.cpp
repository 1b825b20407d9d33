// Test plugin whose static constructor appends to the file named by MODKIT_TEST_MARKER: proves whether it was loaded.
#include <modkit/sdk.hpp>

#include <cstdio>
#include <cstdlib>

namespace {
int write_marker() {
  if (const char* path = std::getenv("MODKIT_TEST_MARKER")) {
    if (std::FILE* f = std::fopen(path, "a")) {
      std::fputs("loaded\n", f);
      std::fclose(f);
    }
  }
  return 0;
}
[[maybe_unused]] const int marker_written = write_marker();
}  // namespace

class MarkerModifier final : public modkit::sdk::Modifier {
 public:
  explicit MarkerModifier(const modkit::sdk::Params&) {}
  bool on_initialize(modkit::sdk::State&) override { return true; }
};

MODKIT_EXPORT_MODIFIER(MarkerModifier, "1.0.0", "marker: records that its code ran")
