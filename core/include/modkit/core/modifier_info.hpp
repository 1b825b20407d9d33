// What is known about a modifier type without creating one: identity, fingerprint and parameter schema.
#pragma once

#include <modkit/core/export.hpp>

#include <modkit/modkit.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace modkit {

/// One declared parameter.
struct MODKIT_CORE_API ParamInfo {
  std::string name;
  std::string type;  ///< "bool", "int", "float", "string", "list", "table", "string_list", "any"
  bool required = false;
  nlohmann::json default_value;  ///< null when none
  nlohmann::json min;            ///< null when unbounded
  nlohmann::json max;            ///< null when unbounded
  nlohmann::json choices;        ///< null, or an array of allowed values
  std::string doc;
  bool min_exclusive = false;  ///< the value must be above min, not equal to it
  bool max_exclusive = false;  ///< the value must be below max, not equal to it
};

/// The keyword of pipeline code `code` (modkit.h's MODKIT_PIPELINES: "datafree", "basic",
/// "sequential"), or nullptr when no pipeline has that code.
MODKIT_CORE_API const char* pipeline_keyword(uint32_t code);
/// Every pipeline's keyword, in code order: what CLIs offer and reports show.
MODKIT_CORE_API std::vector<std::string> pipeline_keywords();

/// The parameter's range as a reader writes it: "[0.0, 1.0]", "[0, 1)", "(0, inf]"; "" when unbounded.
MODKIT_CORE_API std::string range_text(const ParamInfo& p);

/// A modifier type's metadata, as its plugin's metadata section or its
/// descriptor states it.
struct MODKIT_CORE_API ModifierInfo {
  std::string name;  ///< the type name, e.g. "MagnitudePruningModifier"
  uint32_t abi_major = 0;
  uint32_t abi_min_minor = 0;
  std::string version;
  std::string summary;
  std::string torch_version;  ///< "" when the plugin does not use LibTorch
  int cxx11_abi = -1;
  std::string pipeline;  ///< "datafree", "basic" or "sequential"
  std::vector<ParamInfo> params;

  const ParamInfo* find_param(const std::string& name) const;
  nlohmann::json to_json() const;
};

/// Parses one entry of a plugin's metadata section. Throws ValueError naming
/// `source` and the field that is missing or malformed.
MODKIT_CORE_API ModifierInfo parse_metadata(const std::string& json_text, const std::string& source);

/// The inverse of ModifierInfo::to_json(), as the plugin scanner reports
/// types; checked like metadata. Throws ValueError naming `source`.
MODKIT_CORE_API ModifierInfo info_from_json(nlohmann::json j, const std::string& source);

/// What every reader of metadata checks (metadata sections, descriptors,
/// the scanner's reports, the registry cache): a name, a known pipeline,
/// and for each parameter a name (declared once), a known type, a default
/// of that type, numeric bounds and an array of choices. Throws ValueError
/// naming the type or parameter.
MODKIT_CORE_API void check_info(const ModifierInfo& info);

/// Reads a descriptor's identity and schema (the descriptor was validated).
/// Throws ValueError when a default, bound or choice list is not valid JSON
/// of the declared type.
MODKIT_CORE_API ModifierInfo info_from_descriptor(const modkit_modifier_descriptor& d);

/// The keyword of a MODKIT_TYPE_* value ("float"...), "unknown" otherwise.
MODKIT_CORE_API const char* type_keyword(uint32_t type);

}  // namespace modkit
