// Parameters of a modifier: checking them against its schema and handing them to a plugin.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/modifier_info.hpp>
#include <modkit/modkit.h>

#include <nlohmann/json.hpp>

#include <deque>
#include <string>
#include <vector>

namespace modkit {

/// Parameters as the host holds them: a JSON object (recipes, the CLI and
/// hosts build it; TOML and YAML recipes convert to it).
using Params = nlohmann::json;

/// Keys every modifier accepts, as llmcompressor's Modifier fields.
MODKIT_CORE_API const std::vector<std::string>& lifecycle_keys();

/// Checks `params` against `info`'s schema and returns them with defaults
/// filled in. Throws ValueError naming the modifier and the parameter, with
/// what was expected and what was found: unknown keys (with the closest valid
/// names), wrong types, values out of range or not among the choices, and
/// missing required parameters.
MODKIT_CORE_API Params resolve_params(const ModifierInfo& info, const Params& params);

/// A modkit_value tree built from JSON; owns every node and string, so the
/// root stays valid as long as the tree lives.
class MODKIT_CORE_API ValueTree {
 public:
  explicit ValueTree(const nlohmann::json& json);
  ValueTree(const ValueTree&) = delete;
  ValueTree& operator=(const ValueTree&) = delete;
  const modkit_value* root() const { return root_; }

 private:
  const modkit_value* build(const nlohmann::json& json);
  std::deque<modkit_value> nodes_;
  std::deque<std::string> strings_;
  std::deque<std::vector<const char*>> keys_;
  std::deque<std::vector<const modkit_value*>> items_;
  const modkit_value* root_ = nullptr;
};

}  // namespace modkit
