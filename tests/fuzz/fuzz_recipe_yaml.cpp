// Fuzz target: the llmcompressor YAML recipe importer; a recipe it accepts must convert to TOML and back unchanged.
#include "fuzz_target.hpp"

#include <modkit/core/recipe.hpp>

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
  std::string toml;
  try {
    toml = recipe.to_toml();  // what `modkit recipe convert` writes
  } catch (const modkit::ValueError&) {
    return 0;
  }
  try {
    const modkit::Recipe back = modkit::Recipe::parse_toml(toml, "converted.toml");
    modkit::fuzz::require(back.stages.size() == recipe.stages.size(), "the converted recipe has other stages:\n" + toml);
  } catch (const modkit::RecipeError& e) {
    modkit::fuzz::require(false, std::string("the converted recipe does not parse: ") + e.what() + "\n" + toml);
  }
  return 0;
}
