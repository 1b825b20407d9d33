// Fuzz target: the TOML recipe parser; a recipe it accepts must survive its canonical TOML form unchanged.
#include "recipe_round_trip.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// Recipe equality, except that NaN parameters (TOML's nan) equal each other.
bool same(const modkit::Recipe& a, const modkit::Recipe& b) {
  if (a.stages.size() != b.stages.size()) return false;
  for (size_t s = 0; s < a.stages.size(); ++s) {
    const auto& x = a.stages[s];
    const auto& y = b.stages[s];
    if (x.name != y.name || x.group != y.group || x.run_type != y.run_type || x.modifiers.size() != y.modifiers.size()) {
      return false;
    }
    for (size_t m = 0; m < x.modifiers.size(); ++m) {
      const auto& p = x.modifiers[m];
      const auto& q = y.modifiers[m];
      if (p.type != q.type || p.group != q.group || p.index != q.index || p.params.dump() != q.params.dump()) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  modkit::Recipe recipe;
  try {
    recipe = modkit::Recipe::parse_toml(text, "fuzz.toml");
  } catch (const modkit::RecipeError&) {
    return 0;  // refused with a location: what bad input should get
  }
  const auto canonical = modkit::fuzz::round_trip(recipe, "canonical form", "canonical.toml");
  if (!canonical) return 0;  // documented: what TOML cannot hold
  modkit::fuzz::require(same(recipe, canonical->back), "the canonical form parses to another recipe:\n" + canonical->toml);
  return 0;
}
