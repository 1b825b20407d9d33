// Reading TOML recipes with toml++: structure checks with file:line:column, TOML values to JSON parameters.
#include <modkit/core/text.hpp>
#include <modkit/core/recipe.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace modkit {
namespace {

const std::vector<std::string>& top_level_keys() {
  static const std::vector<std::string> keys{"stage"};
  return keys;
}

const std::vector<std::string>& stage_keys() {
  static const std::vector<std::string> keys{"name", "group", "run_type", "modifiers"};
  return keys;
}

const char* kind_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    case toml::node_type::array: return "array";
    case toml::node_type::table: return "table";
    default: return "value";
  }
}

// The node as TOML writes it, shortened for a message.
std::string shown(const toml::node& n) {
  std::ostringstream os;
  n.visit([&](const auto& v) { os << v; });
  std::string s = os.str();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

class TomlReader {
 public:
  TomlReader(const std::string& source) : source_(source) {}

  Recipe read(const std::string& text) {
    toml::table doc;
    try {
      doc = toml::parse(text, source_);
    } catch (const toml::parse_error& e) {
      // toml++'s own description, at toml++'s position, in our format (lower-case start)
      std::string description(e.description());
      if (!description.empty()) description[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(description[0])));
      throw RecipeError(at(e.source()), description);
    }
    Recipe recipe;
    recipe.source = source_;
    for (const auto& [key, node] : in_file_order(doc)) {
      if (key->str() != "stage") {
        throw RecipeError(at(key->source()), "unknown top-level key '" + std::string(key->str()) + "'" +
                                                  did_you_mean(std::string(key->str()), top_level_keys()) +
                                                  "; valid keys: " + quoted_list(top_level_keys(), ", "));
      }
      const toml::array* stages = node->as_array();
      if (stages == nullptr || !stages->is_array_of_tables()) {
        throw RecipeError(at(node->source()), std::string("'stage' must be an array of tables ([[stage]]), found ") +
                                                  kind_of(*node) +
                                                  (node->is_table() ? " (each stage starts with [[stage]])" : ""));
      }
      for (const auto& stage : *stages) recipe.stages.push_back(read_stage(*stage.as_table(), recipe.stages.size()));
    }
    if (recipe.stages.empty()) {
      throw RecipeError({source_, 0, 0}, "recipe defines no stages (expected [[stage]] tables)");
    }
    for (size_t i = 0; i < recipe.stages.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (recipe.stages[i].name == recipe.stages[j].name) {
          throw RecipeError(recipe.stages[i].where, "duplicate stage name '" + recipe.stages[i].name +
                                                        "' (first at " + recipe.stages[j].where.str() + ")");
        }
      }
    }
    return recipe;
  }

 private:
  SourceLocation at(const toml::source_region& r) const {
    return {source_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }

  // toml++ tables are ordered by key; errors are reported in file order.
  static std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
    std::vector<std::pair<const toml::key*, const toml::node*>> out;
    for (const auto& [key, node] : t) out.emplace_back(&key, &node);
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      const auto& x = a.first->source().begin;
      const auto& y = b.first->source().begin;
      return x.line != y.line ? x.line < y.line : x.column < y.column;
    });
    return out;
  }

  std::string string_value(const toml::node& n, const std::string& what) const {
    const auto* s = n.as_string();
    if (s == nullptr) {
      throw RecipeError(at(n.source()), what + " must be a string, found " + kind_of(n) + " " + shown(n));
    }
    if (s->get().empty()) throw RecipeError(at(n.source()), what + " must not be empty");
    return s->get();
  }

  RecipeStage read_stage(const toml::table& t, size_t position) {
    RecipeStage stage;
    stage.where = at(t.source());
    stage.name = "stage_" + std::to_string(position);
    if (const toml::node* name = t.get("name")) stage.name = string_value(*name, "stage key 'name'");
    const std::string label = "stage '" + stage.name + "'";
    const toml::array* modifiers = nullptr;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string k(key->str());
      if (k == "name") continue;
      if (k == "group") {
        stage.group = string_value(*node, label + " key 'group'");
      } else if (k == "run_type") {
        stage.run_type = string_value(*node, label + " key 'run_type'");
        if (stage.run_type != "oneshot" && stage.run_type != "train") {
          throw RecipeError(at(node->source()), label + " key 'run_type': expected 'oneshot' or 'train', found '" +
                                                    stage.run_type + "'");
        }
      } else if (k == "modifiers") {
        modifiers = node->as_array();
        if (modifiers == nullptr || !modifiers->is_array_of_tables()) {
          throw RecipeError(at(node->source()), label + " key 'modifiers' must be an array of tables "
                                                        "([[stage.modifiers]]), found " + kind_of(*node) +
                                                    (node->is_table() ? " (each modifier starts with [[stage.modifiers]])" : ""));
        }
      } else {
        throw RecipeError(at(key->source()), "unknown key '" + k + "' in " + label +
                                                  did_you_mean(k, stage_keys()) +
                                                  "; valid keys: " + quoted_list(stage_keys(), ", "));
      }
    }
    if (stage.group.empty()) stage.group = stage.name;
    if (modifiers != nullptr) {
      for (const auto& m : *modifiers) {
        stage.modifiers.push_back(read_modifier(*m.as_table(), stage, stage.modifiers.size()));
      }
    }
    return stage;
  }

  RecipeModifier read_modifier(const toml::table& t, const RecipeStage& stage, size_t position) {
    RecipeModifier m;
    m.where = at(t.source());
    m.index = static_cast<int64_t>(position);
    m.group = stage.group;
    const toml::node* type = t.get("type");
    if (type == nullptr) {
      throw RecipeError(m.where, "modifier " + std::to_string(position) + " of stage '" + stage.name +
                                     "' has no 'type' key (expected type = \"<name of a modifier type>\")");
    }
    m.type = string_value(*type, "modifier key 'type'");
    m.type_where = at(type->source());
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string k(key->str());
      if (k == "type") continue;
      if (k == "group") {
        m.group = string_value(*node, m.type + " key 'group'");
      } else if (k == "index") {
        throw RecipeError(at(key->source()), m.type + " key 'index' cannot be set: the index of a modifier "
                                                       "is its position in its stage");
      } else {
        m.params[k] = to_json(*node, m.type + " parameter '" + k + "'");
      }
      m.param_locations[k] = at(key->source());
    }
    return m;
  }

  nlohmann::json to_json(const toml::node& n, const std::string& what) const {
    switch (n.type()) {
      case toml::node_type::string: return n.as_string()->get();
      case toml::node_type::integer: return n.as_integer()->get();
      case toml::node_type::floating_point: return n.as_floating_point()->get();
      case toml::node_type::boolean: return n.as_boolean()->get();
      case toml::node_type::array: {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& item : *n.as_array()) out.push_back(to_json(item, what));
        return out;
      }
      case toml::node_type::table: {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, item] : *n.as_table()) out[std::string(key.str())] = to_json(item, what);
        return out;
      }
      default:
        throw RecipeError(at(n.source()), what + ": dates and times are not supported, found " + kind_of(n) +
                                              " " + shown(n));
    }
  }

  std::string source_;
};

}  // namespace

Recipe Recipe::parse_toml(const std::string& text, const std::string& source) {
  return TomlReader(source).read(text);
}

}  // namespace modkit
