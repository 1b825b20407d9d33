// Recipes: loading by extension, the canonical TOML form, checks against a factory's schemas, and building stages.
#include <modkit/core/text.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace modkit {

std::string SourceLocation::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

RecipeError::RecipeError(SourceLocation where, const std::string& message)
    : ValueError(where.str() + ": " + message), where_(std::move(where)), message_(message) {}

const SourceLocation& RecipeModifier::location_of(const std::string& key) const {
  auto it = param_locations.find(key);
  return it != param_locations.end() && it->second.known() ? it->second : where;
}

bool operator==(const RecipeModifier& a, const RecipeModifier& b) {
  return a.type == b.type && a.params == b.params && a.group == b.group && a.index == b.index;
}

bool operator==(const RecipeStage& a, const RecipeStage& b) {
  return a.name == b.name && a.group == b.group && a.run_type == b.run_type && a.modifiers == b.modifiers;
}

bool operator==(const Recipe& a, const Recipe& b) { return a.stages == b.stages; }

// ---------------------------------------------------------------------------
// Loading

Recipe Recipe::load(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool toml = ext == ".toml";
  if (!toml && ext != ".yaml" && ext != ".yml") {
    throw RecipeError({path, 0, 0}, "unknown recipe format " + (ext.empty() ? std::string("(no extension)") : "'" + ext + "'") +
                                        "; expected a .toml recipe or an llmcompressor .yaml / .yml recipe");
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw RecipeError({path, 0, 0}, "cannot read recipe: expected a file, found a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RecipeError({path, 0, 0}, std::string("cannot read recipe: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw RecipeError({path, 0, 0}, std::string("cannot read recipe: ") + std::strerror(errno));
  return toml ? parse_toml(text.str(), path) : parse_yaml(text.str(), path);
}

// ---------------------------------------------------------------------------
// The canonical TOML form

namespace {

bool bare_key(const std::string& key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string toml_key(const std::string& key) { return bare_key(key) ? key : toml_string(key); }

std::string toml_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest form that reads back exactly
  std::string s(buf, r.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // stays a float
  return s;
}

// `what` names the value for the error when TOML cannot hold it.
std::string toml_value(const nlohmann::json& v, const std::function<std::string()>& what) {
  switch (v.type()) {
    case nlohmann::json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        throw ValueError(what() + ": " + v.dump() + " does not fit a TOML integer (64-bit signed)");
      }
      return std::to_string(v.get<uint64_t>());
    }
    case nlohmann::json::value_t::number_float: return toml_float(v.get<double>());
    case nlohmann::json::value_t::string: return toml_string(v.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_value(v[i], what);
      return out + "]";
    }
    case nlohmann::json::value_t::object: {
      if (v.empty()) return "{}";
      std::string out = "{ ";
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        out += (first ? "" : ", ") + toml_key(key) + " = " + toml_value(item, what);
        first = false;
      }
      return out + " }";
    }
    default:
      throw ValueError(what() + ": TOML has no null value (leave the parameter out to use its default)");
  }
}

}  // namespace

std::string Recipe::to_toml() const {
  std::string out;
  for (size_t s = 0; s < stages.size(); ++s) {
    const RecipeStage& stage = stages[s];
    if (s > 0) out += "\n";
    out += "[[stage]]\nname = " + toml_string(stage.name) + "\n";
    if (stage.group != stage.name) out += "group = " + toml_string(stage.group) + "\n";
    if (!stage.run_type.empty()) out += "run_type = " + toml_string(stage.run_type) + "\n";
    for (const RecipeModifier& m : stage.modifiers) {
      out += "\n  [[stage.modifiers]]\n  type = " + toml_string(m.type) + "\n";
      if (m.group != stage.group) out += "  group = " + toml_string(m.group) + "\n";
      if (!m.params.is_null() && !m.params.is_object()) {
        throw ValueError(m.where.str() + ": parameters of " + m.type + " must be a table, found " + m.params.dump());
      }
      if (!m.params.is_object()) continue;
      for (const auto& item : m.params.items()) {
        // a structured binding cannot be captured in C++17 (clang refuses it)
        const std::string& key = item.key();
        const nlohmann::json& value = item.value();
        auto what = [&] { return m.where.str() + ": " + m.type + " parameter '" + key + "'"; };
        if (key == "type" || key == "group" || key == "index") {
          throw ValueError(what() + ": '" + key + "' is a recipe key, not a parameter");
        }
        out += "  " + toml_key(key) + " = " + toml_value(value, what) + "\n";
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Checks against a factory

namespace {

// What a recipe's type names resolve to in one factory, under create()'s precedence.
class TypeResolver {
 public:
  TypeResolver(const ModifierFactory& factory, bool allow_registered, bool allow_experimental)
      : allow_registered_(allow_registered), allow_experimental_(allow_experimental), errors_(factory.errors()) {
    std::set<std::string> names;
    for (auto& e : factory.modifiers()) {
      names.insert(e.info.name);
      auto& slot = e.registered ? registered_ : e.experimental ? experimental_ : main_;
      slot.emplace(e.info.name, std::move(e));
    }
    names_.assign(names.begin(), names.end());
  }

  // The entry create() would use, or the reason there is none.
  const ModifierEntry* find(const std::string& type, std::string& why) const {
    if (allow_registered_) {
      if (auto it = registered_.find(type); it != registered_.end()) return &it->second;
    }
    if (allow_experimental_) {
      if (auto it = experimental_.find(type); it != experimental_.end()) return &it->second;
    }
    if (auto it = main_.find(type); it != main_.end()) return &it->second;
    if (auto it = errors_.find(type); it != errors_.end()) {
      why = it->second.message();
    } else if (experimental_.count(type) != 0) {
      why = "modifier type '" + type + "' is experimental and experimental modifiers are not allowed";
    } else if (registered_.count(type) != 0) {
      why = "modifier type '" + type + "' is registered on the host and registered modifiers are not allowed";
    } else {
      why = "unknown modifier type '" + type + "'";
      const std::string close = did_you_mean(type, names_);
      if (!close.empty()) {
        why += close;
      } else if (names_.empty()) {
        why += "; no modifier types are available (check the plugin directories)";
      } else {
        why += "; known types: " + quoted_list(names_, ", ");
      }
    }
    return nullptr;
  }

 private:
  bool allow_registered_;
  bool allow_experimental_;
  std::map<std::string, LoadRecord> errors_;
  std::map<std::string, ModifierEntry> registered_, experimental_, main_;
  std::vector<std::string> names_;
};

bool before(const SourceLocation& a, const SourceLocation& b) {
  if (a.known() != b.known()) return a.known();  // unknown positions last
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

void check_modifier(const RecipeModifier& m, const TypeResolver& types, std::vector<RecipeError>& out) {
  std::string why;
  const ModifierEntry* entry = types.find(m.type, why);
  if (entry == nullptr) {
    out.emplace_back(m.type_where.known() ? m.type_where : m.where, why);
    return;
  }
  if (!m.params.is_null() && !m.params.is_object()) {
    out.emplace_back(m.where, "parameters of " + m.type + " must be a table, found " + m.params.dump());
    return;
  }
  // One parameter at a time, in file order, so each error carries its own
  // location; required parameters are checked once the others are valid.
  std::vector<std::string> keys;
  if (m.params.is_object()) {
    for (const auto& item : m.params.items()) keys.push_back(item.key());
  }
  std::stable_sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) {
    return before(m.location_of(a), m.location_of(b));
  });
  ModifierInfo relaxed = entry->info;  // registered types: no schema but the lifecycle keys
  relaxed.name = m.type;
  for (auto& p : relaxed.params) p.required = false;
  const size_t errors_before = out.size();
  for (const auto& key : keys) {
    const auto& lifecycle = lifecycle_keys();
    if (entry->registered && std::find(lifecycle.begin(), lifecycle.end(), key) == lifecycle.end()) continue;
    try {
      resolve_params(relaxed, Params{{key, m.params.at(key)}});
    } catch (const ValueError& e) {
      out.emplace_back(m.location_of(key), e.what());
    }
  }
  if (out.size() == errors_before && !entry->registered) {
    try {
      resolve_params(entry->info, m.params.is_null() ? Params::object() : m.params);
    } catch (const ValueError& e) {
      out.emplace_back(m.where, e.what());
    }
  }
}

std::vector<RecipeError> recipe_errors(const Recipe& recipe, const ModifierFactory& factory, bool allow_registered,
                                       bool allow_experimental) {
  const TypeResolver types(factory, allow_registered, allow_experimental);
  std::vector<RecipeError> out;
  for (const auto& stage : recipe.stages) {
    if (stage.modifiers.empty()) {
      out.emplace_back(stage.where, "stage '" + stage.name + "' has no modifiers: add one, or remove the stage");
    }
    for (const auto& m : stage.modifiers) check_modifier(m, types, out);
  }
  return out;
}

}  // namespace

std::vector<RecipeError> find_recipe_errors(const Recipe& recipe, const ModifierFactory& factory,
                                            bool allow_experimental) {
  return recipe_errors(recipe, factory, true, allow_experimental);
}

void check_recipe(const Recipe& recipe, const ModifierFactory& factory, bool allow_experimental) {
  auto errors = find_recipe_errors(recipe, factory, allow_experimental);
  if (!errors.empty()) throw errors.front();
}

std::vector<StageModifiers> build_stages(const Recipe& recipe, const ModifierFactory& factory, bool allow_registered,
                                         bool allow_experimental) {
  auto errors = recipe_errors(recipe, factory, allow_registered, allow_experimental);
  if (!errors.empty()) throw errors.front();
  std::vector<StageModifiers> stages;
  for (size_t s = 0; s < recipe.stages.size(); ++s) {
    const RecipeStage& stage = recipe.stages[s];
    StageModifiers built;
    built.index = static_cast<int64_t>(s);
    built.group = stage.group;
    for (size_t i = 0; i < stage.modifiers.size(); ++i) {
      const RecipeModifier& m = stage.modifiers[i];
      Params params = m.params.is_object() ? m.params : Params::object();
      params["group"] = m.group;
      params["index"] = static_cast<int64_t>(i);
      try {
        built.modifiers.push_back(factory.create(m.type, allow_registered, allow_experimental, params));
      } catch (const Error& e) {
        throw RecipeError(m.type_where.known() ? m.type_where : m.where, e.what());
      }
    }
    stages.push_back(std::move(built));
  }
  return stages;
}

}  // namespace modkit
