// Builds ModifierInfo from metadata JSON or from a live descriptor, checking every field.
#include "utf8.hpp"
#include <modkit/core/errors.hpp>
#include <modkit/core/modifier_info.hpp>

#include <cstdio>

namespace modkit {
namespace {

bool is_pipeline_keyword(const std::string& keyword) {
  for (const std::string& k : pipeline_keywords()) {
    if (keyword == k) return true;
  }
  return false;
}

// "'datafree', 'basic' or 'sequential'"
std::string pipeline_choices() {
  const std::vector<std::string> keywords = pipeline_keywords();
  std::string out;
  for (size_t i = 0; i < keywords.size(); ++i) {
    out += (i == 0 ? "'" : i + 1 == keywords.size() ? " or '" : ", '") + keywords[i] + "'";
  }
  return out;
}

bool value_has_type(const nlohmann::json& v, const std::string& type) {
  if (v.is_null()) return true;  // "optional, no value"
  if (type == "bool") return v.is_boolean();
  if (type == "int") return v.is_number_integer();
  if (type == "float") return v.is_number();
  if (type == "string") return v.is_string();
  if (type == "list") return v.is_array();
  if (type == "table") return v.is_object();
  if (type == "string_list") {
    if (v.is_string()) return true;
    if (!v.is_array()) return false;
    for (const auto& item : v) {
      if (!item.is_string()) return false;
    }
    return true;
  }
  return true;  // any
}

nlohmann::json parse_json_field(const char* text, const std::string& what) {
  if (text == nullptr) return nullptr;
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw ValueError(what + " is not valid JSON: '" + text + "'");
  }
}

bool known_type(const std::string& type) {
  for (const char* t : {"bool", "int", "float", "string", "list", "table", "string_list", "any"}) {
    if (type == t) return true;
  }
  return false;
}

}  // namespace

std::string range_text(const ParamInfo& p) {
  if (p.min.is_null() && p.max.is_null()) return "";
  return std::string(p.min_exclusive ? "(" : "[") + (p.min.is_null() ? "-inf" : p.min.dump()) + ", " +
         (p.max.is_null() ? "inf" : p.max.dump()) + (p.max_exclusive ? ")" : "]");
}

namespace {

void check_param(const ParamInfo& p, const std::string& owner) {
  const std::string where = owner + " parameter '" + p.name + "'";
  if (p.name.empty()) throw ValueError(owner + " declares a parameter without a name");
  if (!value_has_type(p.default_value, p.type)) {
    throw ValueError(where + ": default " + p.default_value.dump() + " is not a " + p.type);
  }
  for (const auto* bound : {&p.min, &p.max}) {
    if (!bound->is_null() && !bound->is_number()) {
      throw ValueError(where + ": bound " + bound->dump() + " is not a number");
    }
  }
  if (!p.choices.is_null() && !p.choices.is_array()) {
    throw ValueError(where + ": choices " + p.choices.dump() + " is not an array");
  }
}

}  // namespace

const char* type_keyword(uint32_t type) {
  switch (type) {
    case MODKIT_TYPE_BOOL: return "bool";
    case MODKIT_TYPE_INT: return "int";
    case MODKIT_TYPE_FLOAT: return "float";
    case MODKIT_TYPE_STRING: return "string";
    case MODKIT_TYPE_LIST: return "list";
    case MODKIT_TYPE_TABLE: return "table";
    case MODKIT_TYPE_STRING_LIST: return "string_list";
    case MODKIT_TYPE_ANY: return "any";
  }
  return "unknown";
}

const ParamInfo* ModifierInfo::find_param(const std::string& param) const {
  for (const auto& p : params) {
    if (p.name == param) return &p;
  }
  return nullptr;
}

nlohmann::json ModifierInfo::to_json() const {
  nlohmann::json params_json = nlohmann::json::array();
  for (const auto& p : params) {
    nlohmann::json j = {{"name", p.name},   {"type", p.type},       {"required", p.required},
                        {"default", p.default_value}, {"min", p.min}, {"max", p.max},
                        {"choices", p.choices}, {"doc", p.doc}};
    // only when open, as the metadata section writes them
    if (p.min_exclusive) j["min_exclusive"] = true;
    if (p.max_exclusive) j["max_exclusive"] = true;
    params_json.push_back(std::move(j));
  }
  return {{"name", name},
          {"abi", {abi_major, abi_min_minor}},
          {"version", version},
          {"summary", summary},
          {"torch", torch_version},
          {"cxx11_abi", cxx11_abi},
          {"pipeline", pipeline},
          {"params", params_json}};
}

namespace {

// The fields of one metadata entry (or of to_json()'s form, whose name key is
// "name"), moved out of `j`.
ModifierInfo info_from_object(nlohmann::json& j, const std::string& source, const char* name_key) {
  auto field = [&](const char* key, auto check, const char* expected) -> nlohmann::json& {
    if (!j.is_object() || !j.contains(key) || !check(j[key])) {
      throw ValueError("metadata in '" + source + "' has no valid '" + key + "' (expected " +
                       expected + ")");
    }
    return j[key];
  };
  auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
  ModifierInfo info;
  info.name = std::move(field(name_key, is_string, "a string").get_ref<std::string&>());
  const auto& abi = field("abi", [](const nlohmann::json& v) {
    return v.is_array() && v.size() == 2 && v[0].is_number_unsigned() && v[1].is_number_unsigned();
  }, "[major, minor]");
  info.abi_major = abi[0].get<uint32_t>();
  info.abi_min_minor = abi[1].get<uint32_t>();
  info.version = std::move(field("version", is_string, "a string").get_ref<std::string&>());
  info.summary = std::move(field("summary", is_string, "a string").get_ref<std::string&>());
  info.torch_version = std::move(field("torch", is_string, "a string").get_ref<std::string&>());
  info.cxx11_abi = field("cxx11_abi", [](const nlohmann::json& v) { return v.is_number_integer(); },
                         "an integer").get<int>();
  info.pipeline = std::move(field("pipeline", is_string, "a string").get_ref<std::string&>());
  field("params", [](const nlohmann::json& v) { return v.is_array(); }, "an array");
  // the parsed document is ours: move its values out instead of copying them
  auto take = [](nlohmann::json& object, const char* key) {
    auto it = object.find(key);
    return it == object.end() ? nlohmann::json() : std::move(*it);
  };
  for (auto& p : j["params"]) {
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || !p.contains("type") ||
        !p["type"].is_string()) {
      throw ValueError("metadata in '" + source + "' has a parameter without a name or type");
    }
    ParamInfo param;
    param.name = std::move(p["name"].get_ref<std::string&>());
    param.type = std::move(p["type"].get_ref<std::string&>());
    if (auto required = p.find("required"); required != p.end() && !required->is_boolean()) {
      throw ValueError("metadata in '" + source + "' has parameter '" + param.name +
                       "' with 'required' " + required->dump() + " (expected true or false)");
    }
    param.required = p.value("required", false);
    param.default_value = take(p, "default");
    param.min = take(p, "min");
    param.max = take(p, "max");
    for (auto [key, flag] : {std::pair<const char*, bool*>{"min_exclusive", &param.min_exclusive},
                             {"max_exclusive", &param.max_exclusive}}) {
      if (auto it = p.find(key); it != p.end()) {
        if (!it->is_boolean()) {
          throw ValueError("metadata in '" + source + "' has parameter '" + param.name + "' with '" + key + "' " +
                           it->dump() + " (expected true or false)");
        }
        *flag = it->get<bool>();
      }
    }
    param.choices = take(p, "choices");
    if (auto doc = p.find("doc"); doc != p.end() && doc->is_string()) param.doc = std::move(doc->get_ref<std::string&>());
    info.params.push_back(std::move(param));
  }
  // what the registry cache and the loader check too, so `modkit list` shows only what would load
  try {
    check_info(info);
  } catch (const ValueError& e) {
    throw ValueError("metadata in '" + source + "' is invalid: " + e.what());
  }
  return info;
}

}  // namespace

ModifierInfo parse_metadata(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError("metadata in '" + source + "' is not valid JSON: " + e.what());
  }
  return info_from_object(j, source, "symbol");
}

ModifierInfo info_from_json(nlohmann::json j, const std::string& source) {
  return info_from_object(j, source, "name");
}

void check_info(const ModifierInfo& info) {
  if (info.name.empty()) throw ValueError("a modifier type without a name");
  // JSON output and TOML recipes carry only UTF-8 text
  auto text = [&](const std::string& value, const std::string& what) {
    if (const size_t at = detail::invalid_utf8_offset(value); at != std::string::npos) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(value[at]));
      throw ValueError(what + " is not UTF-8 text (byte " + byte + " at offset " + std::to_string(at) + ")");
    }
  };
  text(info.name, "the type name");
  text(info.version, info.name + " version");
  text(info.summary, info.name + " summary");
  text(info.torch_version, info.name + " LibTorch version");
  for (const auto& p : info.params) {
    text(p.name, info.name + " parameter name");
    text(p.doc, info.name + " parameter '" + p.name + "' doc");
  }
  if (!is_pipeline_keyword(info.pipeline)) {
    throw ValueError(info.name + " declares pipeline '" + info.pipeline + "', expected " + pipeline_choices());
  }
  for (size_t i = 0; i < info.params.size(); ++i) {
    const ParamInfo& p = info.params[i];
    check_param(p, info.name);
    if (!known_type(p.type)) {
      throw ValueError(info.name + " parameter '" + p.name + "' has an unknown type '" + p.type + "'");
    }
    for (size_t k = 0; k < i; ++k) {
      if (info.params[k].name == p.name) throw ValueError(info.name + " parameter '" + p.name + "' is declared twice");
    }
  }
}

ModifierInfo info_from_descriptor(const modkit_modifier_descriptor& d) {
  ModifierInfo info;
  info.name = d.type_name;
  info.abi_major = d.abi_major;
  info.abi_min_minor = d.abi_min_minor;
  info.version = d.version != nullptr ? d.version : "";
  info.summary = d.summary != nullptr ? d.summary : "";
  info.torch_version = d.torch_version != nullptr ? d.torch_version : "";
  info.cxx11_abi = d.cxx11_abi;
  const char* pipeline = pipeline_keyword(d.pipeline);
  if (pipeline == nullptr) {
    throw ValueError(info.name + " declares pipeline code " + std::to_string(d.pipeline) + ", expected " +
                     pipeline_choices() + " (MODKIT_PIPELINE_*)");
  }
  info.pipeline = pipeline;
  const auto* base = reinterpret_cast<const unsigned char*>(d.params);
  for (uint32_t i = 0; i < d.param_count; ++i) {
    const auto& spec = *reinterpret_cast<const modkit_param_spec*>(base + size_t{i} * d.param_spec_size);
    ParamInfo p;
    p.name = spec.name != nullptr ? spec.name : "";
    p.type = type_keyword(spec.type);
    if (p.type == "unknown") {
      throw ValueError(info.name + " parameter '" + p.name + "' has an unknown type code " +
                       std::to_string(spec.type));
    }
    const std::string what = info.name + " parameter '" + p.name + "'";
    p.required = (spec.flags & MODKIT_PARAM_REQUIRED) != 0;
    p.default_value = parse_json_field(spec.default_json, what + " default");
    p.min = parse_json_field(spec.min_json, what + " minimum");
    p.max = parse_json_field(spec.max_json, what + " maximum");
    p.min_exclusive = (spec.flags & MODKIT_PARAM_MIN_EXCLUSIVE) != 0;
    p.max_exclusive = (spec.flags & MODKIT_PARAM_MAX_EXCLUSIVE) != 0;
    p.choices = parse_json_field(spec.choices_json, what + " choices");
    p.doc = spec.doc != nullptr ? spec.doc : "";
    check_param(p, info.name);
    for (const auto& earlier : info.params) {
      if (earlier.name == p.name) throw ValueError(what + " is declared twice");
    }
    info.params.push_back(std::move(p));
  }
  check_info(info);  // the strings, as every other reader checks them
  return info;
}

const char* pipeline_keyword(uint32_t code) {
#define MODKIT_PIPELINE_KEYWORD_(NAME, VALUE, KEYWORD) \
  if (code == VALUE) return KEYWORD;
  MODKIT_PIPELINES(MODKIT_PIPELINE_KEYWORD_)
#undef MODKIT_PIPELINE_KEYWORD_
  return nullptr;
}

std::vector<std::string> pipeline_keywords() {
  return {
#define MODKIT_PIPELINE_KEYWORD_(NAME, VALUE, KEYWORD) KEYWORD,
      MODKIT_PIPELINES(MODKIT_PIPELINE_KEYWORD_)
#undef MODKIT_PIPELINE_KEYWORD_
  };
}

}  // namespace modkit
