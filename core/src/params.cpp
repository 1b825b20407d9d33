// Schema checks with precise messages, and JSON to modkit_value conversion.
#include <modkit/core/text.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/params.hpp>

#include <cmath>

namespace modkit {
namespace {

std::string kind_of(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "bool";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "int";
    case nlohmann::json::value_t::number_float: return "float";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::array: return "list";
    case nlohmann::json::value_t::object: return "table";
    default: return "value";
  }
}

std::string shown(const nlohmann::json& v) {
  // JSON has no spelling for them: dump() writes null
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double x = v.get<double>();
    return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
  }
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool matches(const nlohmann::json& v, const std::string& type) {
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
  return true;
}

// The schema of the lifecycle keys, unless a plugin declares them itself.
const ParamInfo* lifecycle_param(const std::string& key) {
  static const std::vector<ParamInfo> params = [] {
    std::vector<ParamInfo> p(5);
    p[0] = {"index", "int", false, nullptr, nullptr, nullptr, nullptr, "position in its stage"};
    p[1] = {"group", "string", false, nullptr, nullptr, nullptr, nullptr, "name of its stage group"};
    p[2] = {"start", "float", false, nullptr, nullptr, nullptr, nullptr, "step or epoch at which it starts"};
    p[3] = {"end", "float", false, nullptr, nullptr, nullptr, nullptr, "step or epoch at which it ends"};
    p[4] = {"update", "float", false, nullptr, nullptr, nullptr, nullptr, "steps between updates"};
    return p;
  }();
  for (const auto& p : params) {
    if (p.name == key) return &p;
  }
  return nullptr;
}

void check_value(const ModifierInfo& info, const ParamInfo& p, const nlohmann::json& v) {
  const std::string where = info.name + " parameter '" + p.name + "'";
  if (v.is_null()) {
    if (p.required) throw ValueError(where + ": expected " + p.type + ", found null");
    return;
  }
  if (!matches(v, p.type)) {
    throw ValueError(where + ": expected " + p.type + ", found " + kind_of(v) + " " + shown(v));
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    // NaN compares false with every bound: it would pass any range and then compute nothing
    if (std::isnan(x)) throw ValueError(where + ": expected " + p.type + ", found nan");
    const bool below = p.min.is_number() && (p.min_exclusive ? x <= p.min.get<double>() : x < p.min.get<double>());
    const bool above = p.max.is_number() && (p.max_exclusive ? x >= p.max.get<double>() : x > p.max.get<double>());
    if (below || above) throw ValueError(where + ": " + shown(v) + " is out of range " + range_text(p));
  }
  if (p.choices.is_array()) {
    bool allowed = false;
    for (const auto& c : p.choices) allowed = allowed || c == v;
    if (!allowed) throw ValueError(where + ": " + shown(v) + " is not one of " + p.choices.dump());
  }
}

}  // namespace

const std::vector<std::string>& lifecycle_keys() {
  static const std::vector<std::string> keys{"index", "group", "start", "end", "update"};
  return keys;
}

Params resolve_params(const ModifierInfo& info, const Params& params) {
  if (!params.is_null() && !params.is_object()) {
    throw ValueError("parameters of " + info.name + " must be a table, found " + kind_of(params));
  }
  Params out = nlohmann::json::object();
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      const ParamInfo* p = info.find_param(key);
      if (p == nullptr) p = lifecycle_param(key);
      if (p == nullptr) {
        std::vector<std::string> valid;
        for (const auto& q : info.params) valid.push_back(q.name);
        for (const auto& k : lifecycle_keys()) valid.push_back(k);
        throw ValueError(info.name + " has no parameter '" + key + "'" +
                         did_you_mean(key, valid) + "; valid parameters: " +
                         quoted_list(valid, ", "));
      }
      check_value(info, *p, value);
      out[key] = value;
    }
  }
  for (const auto& p : info.params) {
    if (out.contains(p.name)) continue;
    if (p.required) {
      throw ValueError(info.name + " is missing required parameter '" + p.name + "' (" + p.type +
                       (p.doc.empty() ? "" : ": " + p.doc) + ")");
    }
    out[p.name] = p.default_value;
  }
  return out;
}

ValueTree::ValueTree(const nlohmann::json& json) { root_ = build(json); }

const modkit_value* ValueTree::build(const nlohmann::json& json) {
  modkit_value v{};
  v.struct_size = sizeof(modkit_value);
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      v.type = MODKIT_TYPE_BOOL;
      v.int_value = json.get<bool>() ? 1 : 0;
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      v.type = MODKIT_TYPE_INT;
      v.int_value = json.get<int64_t>();
      v.float_value = static_cast<double>(v.int_value);
      break;
    case nlohmann::json::value_t::number_float:
      v.type = MODKIT_TYPE_FLOAT;
      v.float_value = json.get<double>();
      break;
    case nlohmann::json::value_t::string:
      v.type = MODKIT_TYPE_STRING;
      v.string_value = strings_.emplace_back(json.get<std::string>()).c_str();
      break;
    case nlohmann::json::value_t::array: {
      v.type = MODKIT_TYPE_LIST;
      auto& items = items_.emplace_back();
      for (const auto& item : json) items.push_back(build(item));
      v.count = items.size();
      v.items = items.data();
      break;
    }
    case nlohmann::json::value_t::object: {
      v.type = MODKIT_TYPE_TABLE;
      auto& keys = keys_.emplace_back();
      auto& items = items_.emplace_back();
      for (const auto& [key, item] : json.items()) {
        keys.push_back(strings_.emplace_back(key).c_str());
        items.push_back(build(item));
      }
      v.count = items.size();
      v.keys = keys.data();
      v.items = items.data();
      break;
    }
    default:
      v.type = MODKIT_TYPE_NULL;
      break;
  }
  return &nodes_.emplace_back(v);
}

}  // namespace modkit
