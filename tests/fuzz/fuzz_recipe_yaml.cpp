// Fuzz target: the llmcompressor YAML recipe importer; a recipe it accepts must convert to TOML that parses back to as many stages.
#include "recipe_round_trip.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  modkit::Recipe recipe;
  try {
    recipe = modkit::Recipe::parse_yaml(text, "fuzz.yaml");
  } catch (const modkit::RecipeError&) {
    return 0;
  }
  const auto converted = modkit::fuzz::round_trip(recipe, "converted recipe", "converted.toml");  // `recipe convert`
  if (!converted) return 0;
  modkit::fuzz::require(converted->back.stages.size() == recipe.stages.size(),
                        "the converted recipe has other stages:\n" + converted->toml);
  return 0;
}
