// What both recipe fuzz targets check: a recipe a parser accepted, written as canonical TOML and parsed again.
#pragma once

#include "fuzz_target.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/recipe.hpp>

#include <optional>
#include <string>

namespace modkit::fuzz {

struct RoundTrip {
  std::string toml;  // what Recipe::to_toml wrote (and `modkit recipe convert` would)
  Recipe back;       // that text parsed again
};

/// nullopt when TOML cannot hold the recipe (to_toml's documented ValueError); a canonical form
/// that does not parse is a finding. `what` names the TOML text in that report, `file` in the parser's.
inline std::optional<RoundTrip> round_trip(const Recipe& recipe, const std::string& what, const std::string& file) {
  RoundTrip r;
  try {
    r.toml = recipe.to_toml();
  } catch (const ValueError&) {
    return std::nullopt;
  }
  try {
    r.back = Recipe::parse_toml(r.toml, file);
  } catch (const RecipeError& e) {
    require(false, "the " + what + " does not parse: " + e.what() + "\n" + r.toml);
  }
  return r;
}

}  // namespace modkit::fuzz
