// Importing llmcompressor YAML recipes with yaml-cpp: <name>_stage / <group>_modifiers / <Type>: {args}, with locations.
#include <modkit/core/text.hpp>
#include "utf8.hpp"
#include <modkit/core/recipe.hpp>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <regex>
#include <sstream>

namespace modkit {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "scalar";
    case YAML::NodeType::Sequence: return "sequence";
    case YAML::NodeType::Map: return "mapping";
    default: return "nothing";
  }
}

// llmcompressor keys modkit knows of but does not support, with why.
std::string unsupported_reason(const std::string& key) {
  if (key == "args") return "recipe arguments (and the eval expressions that use them) are not supported by modkit";
  if (key == "version" || key == "metadata") return "recipe " + key + " is not supported by modkit";
  if (key == "enabled" || key == "exclude_default") return "stage key '" + key + "' is not supported by modkit";
  if (key == "modifiers") return "a bare 'modifiers' key is not supported: name the group, e.g. quant_modifiers";
  return "";
}

// yaml-cpp recurses once per level when values are converted: deeper ones are refused, not a
// stack overflow.
constexpr size_t kMaxDepth = 64;
// Aliases are copied where they are used, so a few hundred bytes of nested aliases expand to
// gigabytes ("billion laughs"): the values a recipe expands to are counted and bounded.
constexpr size_t kMaxValues = 100000;
constexpr size_t kMaxScalarBytes = size_t{16} << 20;

class YamlReader {
 public:
  explicit YamlReader(const std::string& source) : source_(source) {}

  Recipe read(const std::string& text) {
    check_text(text);
    YAML::Node root;
    try {
      check_one_document(text);
      root = YAML::Load(text);
    } catch (const YAML::DeepRecursion& e) {  // its own message is "bad file"
      throw RecipeError(at(e.mark), "nested too deeply: the YAML reader stops at depth " +
                                        std::to_string(e.depth()) + " (a recipe value may nest " +
                                        std::to_string(kMaxDepth) + " levels)");
    } catch (const YAML::Exception& e) {
      throw RecipeError(at(e.mark), e.msg);
    }
    Recipe recipe;
    recipe.source = source_;
    if (root.IsNull() || !root.IsDefined()) {
      throw RecipeError({source_, 0, 0}, "recipe defines no stages (expected <name>_stage keys)");
    }
    if (!root.IsMap()) {
      throw RecipeError(at(root.Mark()), std::string("expected a mapping of <name>_stage keys, found ") + kind_of(root));
    }
    std::map<std::string, SourceLocation> seen;
    SourceLocation first_stage, first_group;
    RecipeStage default_stage;  // llmcompressor's default stage: top-level <group>_modifiers
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = key_of(it->first);
      const SourceLocation where = at(it->first.Mark());
      check_unique(seen, key, where, "top-level key");
      if (ends_with(key, "_stage") && key.size() > 6) {
        if (first_group.known()) {
          throw RecipeError(where, "'" + key + "': <name>_stage keys cannot be mixed with top-level "
                                               "<group>_modifiers (first at " + first_group.str() + ")");
        }
        if (!first_stage.known()) first_stage = where;
        recipe.stages.push_back(read_stage(key.substr(0, key.size() - 6), where, it->second));
      } else if (ends_with(key, "_modifiers") && key.size() > 10) {
        if (first_stage.known()) {
          throw RecipeError(where, "'" + key + "': top-level <group>_modifiers cannot be mixed with "
                                               "<name>_stage keys (first at " + first_stage.str() + ")");
        }
        if (!first_group.known()) {
          first_group = where;
          default_stage.name = default_stage.group = "default";
          default_stage.where = where;
        }
        read_group(default_stage, key.substr(0, key.size() - 10), it->second);
      } else {
        const std::string why = unsupported_reason(key);
        throw RecipeError(where, "unknown top-level key '" + key + "'" + (why.empty() ? "" : ": " + why) +
                                     "; expected <name>_stage keys (e.g. sparsity_stage)");
      }
    }
    if (first_group.known()) recipe.stages.push_back(std::move(default_stage));
    if (recipe.stages.empty()) {
      throw RecipeError(at(root.Mark()), "recipe defines no stages (expected <name>_stage keys)");
    }
    return recipe;
  }

 private:
  // yaml-cpp passes bytes through that YAML does not allow (it even turned a
  // NUL into invalid UTF-8, found by fuzzing), and the TOML a recipe converts
  // to must be UTF-8: refuse what is not UTF-8 and control characters other
  // than tab, line feed and carriage return (YAML's c-printable).
  void check_text(const std::string& text) const {
    size_t bad = detail::invalid_utf8_offset(text);
    std::string why;
    if (bad != std::string::npos) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[bad]));
      why = std::string("invalid UTF-8 (byte ") + byte + "); a recipe is UTF-8 text";
    } else {
      const auto control = std::find_if(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
      });
      if (control == text.end()) return;
      bad = static_cast<size_t>(control - text.begin());
      char code[16];
      std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned char>(*control));
      why = std::string("control character ") + code + " (YAML text allows tab, line feed and carriage return only)";
    }
    const size_t line_start = bad == 0 ? std::string::npos : text.rfind('\n', bad - 1);
    const size_t column = line_start == std::string::npos ? bad + 1 : bad - line_start;
    const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n') + 1;
    throw RecipeError({source_, static_cast<int>(line), static_cast<int>(column)}, why);
  }

  // Counts documents by their start, without building them.
  struct DocumentStarts : YAML::EventHandler {
    std::vector<YAML::Mark> starts;
    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };

  // A recipe is one document. yaml-cpp's LoadAll never returns on some
  // malformed input (", a:" yields empty documents forever, found by
  // fuzzing): a document that starts where the previous one did is refused.
  void check_one_document(const std::string& text) const {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts documents;
    while (parser.HandleNextDocument(documents)) {
      const auto& s = documents.starts;
      if (s.size() >= 2 && s.back().pos <= s[s.size() - 2].pos) {
        const size_t pos = static_cast<size_t>(std::max(0, s.back().pos));
        const std::string found = pos < text.size() ? "'" + std::string(1, text[pos]) + "'" : "the end of the text";
        throw RecipeError(at(s.back()), "expected a YAML document, found " + found);
      }
      if (s.size() > 1) {
        throw RecipeError(at(s[1]), "a recipe is one YAML document, found a second one here");
      }
    }
  }

  SourceLocation at(const YAML::Mark& m) const {
    if (m.is_null()) return {source_, 0, 0};
    return {source_, m.line + 1, m.column + 1};
  }

  std::string key_of(const YAML::Node& key) const {
    if (!key.IsScalar()) {
      throw RecipeError(at(key.Mark()), std::string("expected a string key, found ") + kind_of(key));
    }
    return key.Scalar();
  }

  // YAML mappings may repeat a key (yaml-cpp keeps both, llmcompressor's
  // PyYAML keeps the last): an error here.
  void check_unique(std::map<std::string, SourceLocation>& seen, const std::string& key,
                    const SourceLocation& where, const std::string& what, const std::string& hint = "") const {
    auto [it, fresh] = seen.emplace(key, where);
    if (!fresh) {
      throw RecipeError(where, "duplicate " + what + " '" + key + "' (first at " + it->second.str() + ")" + hint);
    }
  }

  RecipeStage read_stage(const std::string& name, const SourceLocation& where, const YAML::Node& node) {
    RecipeStage stage;
    stage.name = stage.group = name;
    stage.where = where;
    if (node.IsNull()) return stage;
    if (!node.IsMap()) {
      throw RecipeError(at(node.Mark()), "stage '" + name + "' must be a mapping of <group>_modifiers keys, found " +
                                             kind_of(node));
    }
    std::map<std::string, SourceLocation> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = key_of(it->first);
      const SourceLocation key_where = at(it->first.Mark());
      check_unique(seen, key, key_where, "key in stage '" + name + "':");
      if (key == "run_type") {
        // a copy (a Node is a handle): `it->second` lives in a proxy that dies with this statement
        const YAML::Node v = it->second;
        if (!v.IsScalar() || (v.Scalar() != "oneshot" && v.Scalar() != "train")) {
          throw RecipeError(at(v.Mark().is_null() ? it->first.Mark() : v.Mark()),
                            "stage '" + name + "' key 'run_type': expected 'oneshot' or 'train', found " +
                                (v.IsScalar() ? "'" + v.Scalar() + "'" : std::string(kind_of(v))));
        }
        stage.run_type = v.Scalar();
      } else if (ends_with(key, "_modifiers") && key.size() > 10) {
        read_group(stage, key.substr(0, key.size() - 10), it->second);
      } else {
        const std::string why = unsupported_reason(key);
        throw RecipeError(key_where, "unknown key '" + key + "' in stage '" + name + "'" +
                                         (why.empty() ? "" : ": " + why) +
                                         "; valid keys: 'run_type' and <group>_modifiers (e.g. quant_modifiers)");
      }
    }
    return stage;
  }

  // <group>_modifiers: a mapping of <Type>: {args}, or a list of one-key mappings.
  void read_group(RecipeStage& stage, const std::string& group, const YAML::Node& node) {
    const std::string label = group + "_modifiers";
    if (node.IsNull()) return;
    if (node.IsMap()) {
      std::map<std::string, SourceLocation> seen;
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string type = key_of(it->first);
        const SourceLocation where = at(it->first.Mark());
        check_unique(seen, type, where, "modifier type in '" + label + "':",
                     "; to use a type twice, write '" + label + "' as a list: - " + type + ": {...}");
        stage.modifiers.push_back(read_modifier(stage, group, type, where, it->second));
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        if (!item.IsMap() || item.size() != 1) {
          throw RecipeError(at(item.Mark()), "each entry of '" + label + "' must be a one-key mapping "
                                             "<Type>: {parameters}, found " +
                                                 (item.IsMap() ? "a mapping of " + std::to_string(item.size()) + " keys"
                                                               : std::string(kind_of(item))));
        }
        const auto it = item.begin();
        stage.modifiers.push_back(
            read_modifier(stage, group, key_of(it->first), at(it->first.Mark()), it->second));
      }
    } else {
      throw RecipeError(at(node.Mark()), "'" + label + "' must be a mapping of <Type>: {parameters}, found " +
                                             kind_of(node));
    }
  }

  RecipeModifier read_modifier(const RecipeStage& stage, const std::string& group, const std::string& type,
                               const SourceLocation& where, const YAML::Node& args) {
    // an empty key (`"": {}`, or `!` alone) names no type; TOML refuses an empty `type` too
    if (type.empty()) throw RecipeError(where, "a modifier type in '" + group + "_modifiers' must not be empty");
    RecipeModifier m;
    m.type = type;
    m.group = group;
    m.index = static_cast<int64_t>(stage.modifiers.size());
    m.where = m.type_where = where;
    if (args.IsNull()) return m;  // `ConstantPruningModifier:` with no parameters
    if (!args.IsMap()) {
      throw RecipeError(at(args.Mark()), type + " parameters must be a mapping, found " + kind_of(args));
    }
    std::map<std::string, SourceLocation> seen;
    for (auto it = args.begin(); it != args.end(); ++it) {
      const std::string key = key_of(it->first);
      const SourceLocation key_where = at(it->first.Mark());
      check_unique(seen, key, key_where, type + " parameter");
      m.param_locations[key] = key_where;
      if (key == "group") {
        const nlohmann::json g = to_json(it->second, key_where, type + " key 'group'");
        if (!g.is_string() || g.get<std::string>().empty()) {
          throw RecipeError(key_where, type + " key 'group' must be a non-empty string, found " + g.dump());
        }
        m.group = g.get<std::string>();
      } else if (key == "index") {
        throw RecipeError(key_where, type + " key 'index' cannot be set: the index of a modifier "
                                            "is its position in its stage");
      } else {
        m.params[key] = to_json(it->second, key_where, type + " parameter '" + key + "'");
      }
    }
    return m;
  }

  // `inside` holds the collections being converted: an alias to one of them is a cycle.
  nlohmann::json to_json(const YAML::Node& n, const SourceLocation& parent, const std::string& what,
                         std::vector<YAML::Node>* inside = nullptr) const {
    std::vector<YAML::Node> outermost;
    if (inside == nullptr) inside = &outermost;
    const SourceLocation where = n.Mark().is_null() ? parent : at(n.Mark());
    if (++values_ > kMaxValues || (n.IsScalar() && (scalar_bytes_ += n.Scalar().size()) > kMaxScalarBytes)) {
      throw RecipeError(where, what + ": the recipe expands to more than " +
                                   (values_ > kMaxValues ? std::to_string(kMaxValues) + " values"
                                                         : std::to_string(kMaxScalarBytes >> 20) + " MiB of text") +
                                   " (aliases are copied where they are used); expected a recipe of reasonable size");
    }
    if (n.IsSequence() || n.IsMap()) {
      for (const auto& outer : *inside) {
        if (outer.is(n)) throw RecipeError(where, what + ": an alias refers to a collection that contains it");
      }
      if (inside->size() >= kMaxDepth) {
        throw RecipeError(where, what + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
      }
      inside->push_back(n);
    }
    struct Pop {
      std::vector<YAML::Node>* v;
      bool pushed;
      ~Pop() {
        if (pushed) v->pop_back();
      }
    } pop{inside, n.IsSequence() || n.IsMap()};
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Sequence: {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& item : n) out.push_back(to_json(item, where, what, inside));
        return out;
      }
      case YAML::NodeType::Map: {
        nlohmann::json out = nlohmann::json::object();
        std::map<std::string, SourceLocation> seen;
        for (auto it = n.begin(); it != n.end(); ++it) {
          const std::string key = key_of(it->first);
          check_unique(seen, key, at(it->first.Mark()), "key in " + what);
          out[key] = to_json(it->second, where, what, inside);
        }
        return out;
      }
      case YAML::NodeType::Scalar:
        return scalar(n, where, what);
    }
    return nullptr;
  }

  // The YAML 1.2 core schema: plain scalars resolve to null, bool, int or
  // float when they match; quoted scalars (tag "!") are strings.
  nlohmann::json scalar(const YAML::Node& n, const SourceLocation& where, const std::string& what) const {
    static const std::regex null_re("null|Null|NULL|~|");
    static const std::regex true_re("true|True|TRUE");
    static const std::regex false_re("false|False|FALSE");
    static const std::regex int_re("[-+]?[0-9]+");
    static const std::regex oct_re("0o[0-7]+");
    static const std::regex hex_re("0x[0-9a-fA-F]+");
    static const std::regex float_re("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
    static const std::regex inf_re("[-+]?\\.(inf|Inf|INF)");
    static const std::regex nan_re("\\.(nan|NaN|NAN)");
    const std::string& s = n.Scalar();
    const std::string& tag = n.Tag();
    const std::string prefix = "tag:yaml.org,2002:";
    std::string want;  // "" resolve, or the explicit type
    if (tag == "!") return s;
    if (tag != "?" && !tag.empty()) {
      if (tag.compare(0, prefix.size(), prefix) != 0) {
        throw RecipeError(where, what + ": unsupported YAML tag '" + tag + "'");
      }
      want = tag.substr(prefix.size());
      if (want == "str") return s;
      if (want != "int" && want != "float" && want != "bool" && want != "null") {
        throw RecipeError(where, what + ": unsupported YAML tag '!!" + want + "'");
      }
    }
    auto fail = [&]() -> nlohmann::json { throw RecipeError(where, what + ": '" + s + "' is not a valid " + want); };
    if (std::regex_match(s, null_re)) return want.empty() || want == "null" ? nlohmann::json(nullptr) : fail();
    if (want == "null") return fail();
    if (std::regex_match(s, true_re) || std::regex_match(s, false_re)) {
      return want.empty() || want == "bool" ? nlohmann::json(s[0] == 't' || s[0] == 'T') : fail();
    }
    if (want == "bool") return fail();
    const bool is_int = std::regex_match(s, int_re), is_oct = std::regex_match(s, oct_re),
               is_hex = std::regex_match(s, hex_re);
    if (is_int || is_oct || is_hex) {
      if (want == "float") return std::strtod(s.c_str(), nullptr);
      errno = 0;
      const long long v = is_int ? std::strtoll(s.c_str(), nullptr, 10)
                                 : std::strtoll(s.c_str() + 2, nullptr, is_oct ? 8 : 16);
      if (errno == ERANGE) throw RecipeError(where, what + ": integer " + s + " is out of the 64-bit range");
      return static_cast<int64_t>(v);
    }
    if (std::regex_match(s, float_re)) {
      if (want == "int") return fail();
      return std::strtod(s.c_str(), nullptr);
    }
    if (std::regex_match(s, inf_re)) {
      if (want == "int") return fail();
      return s[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    }
    if (std::regex_match(s, nan_re)) {
      if (want == "int") return fail();
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (!want.empty()) return fail();
    return s;
  }

  std::string source_;
  mutable size_t values_ = 0;        // values converted so far, aliases counted at each use
  mutable size_t scalar_bytes_ = 0;  // and their text
};

}  // namespace

Recipe Recipe::parse_yaml(const std::string& text, const std::string& source) {
  return YamlReader(source).read(text);
}

}  // namespace modkit
