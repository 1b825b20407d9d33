// Recipes: ordered stages of modifiers read from TOML (or imported from llmcompressor YAML), checked and built.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/params.hpp>
#include <modkit/core/stage.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace modkit {

class ModifierFactory;

// ---------------------------------------------------------------------------
// The TOML recipe format (tests/recipe/data/example.toml is a complete file)
//
//   [[stage]]                      # one table per stage, in the order they run
//   name = "sparsity"              # optional; default "stage_<i>" (i = position, from 0)
//   group = "sparsity"             # optional; default = name (llmcompressor's <group>_modifiers)
//   run_type = "oneshot"           # optional; "oneshot" or "train" (llmcompressor's run_type)
//
//     [[stage.modifiers]]          # one table per modifier, in the order they run
//     type = "MagnitudePruningModifier"   # required: the modifier type name
//     targets = ["re:.*mlp.*"]     # every other key is a parameter of that type
//     init_sparsity = 0.05
//     final_sparsity = 0.5
//     start = 0                    # lifecycle keys (start, end, update) are parameters too
//     end = 10
//     update = 1
//
//   [[stage]]
//   name = "quant"
//     [[stage.modifiers]]
//     type = "QuantizationModifier"
//     scheme = "W4A16"
//     targets = ["Linear"]
//     ignore = ["lm_head"]
//
// - The only top-level key is `stage`; a stage takes `name`, `group`,
//   `run_type` and `modifiers`. Any other key is an error naming its file,
//   line and column and the valid keys. Stage names are unique.
// - A modifier may set `group` to differ from its stage's group (as YAML
//   recipes with several <group>_modifiers in one stage do); `index` is
//   assigned (the position in its stage) and may not be set.
// - The same type may appear twice, in the same stage or in different ones.
// - Values become JSON parameters: integers stay integers, floats floats,
//   arrays and tables convert recursively; dates and times are errors.
//
// The llmcompressor YAML format (imported by Recipe::parse_yaml)
//
//   sparsity_stage:                # <name>_stage: a stage named <name> (its group is <name>)
//     run_type: oneshot            # optional; "oneshot" or "train"
//     sparsity_modifiers:          # <group>_modifiers: modifiers of group <group>, in order
//       SparseGPTModifier:         # <Type>: {parameters}
//         sparsity: 0.5
//         mask_structure: "2:4"
//   quant_stage:
//     quant_modifiers:
//       QuantizationModifier:
//         scheme: W4A16
//         targets: [Linear]
//         ignore: [lm_head]
//
// - A stage may hold several <group>_modifiers keys; their modifiers are
//   flattened in document order, each keeping its own group.
// - Without any <name>_stage key, top-level <group>_modifiers keys form one
//   stage named "default" (llmcompressor's default stage); mixing both forms
//   is an error.
// - A <group>_modifiers value may also be a list of one-key mappings
//   (`- QuantizationModifier: {...}`), which can repeat a type; a repeated
//   key in a mapping is an error (YAML would silently keep only one).
// - A modifier's parameters may set `group` (as llmcompressor allows).
// - Scalars follow the YAML 1.2 core schema: true/false are bools, integers
//   and floats are numbers, null/~ is null, everything else (quoted or not,
//   e.g. 2:4 or yes) is a string; !!str, !!int, !!float, !!bool and !!null
//   tags are honoured.
// - Everything else llmcompressor may accept (recipe `args`, `version`,
//   `metadata`, stage `args`, `enabled`, `exclude_default`...) is an error
//   naming its location: keys modkit does not support are errors, not silence.
// ---------------------------------------------------------------------------

/// A position in a recipe file: 1-based line and column; 0 when unknown.
struct MODKIT_CORE_API SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  /// "recipe.toml:12:5", or just the file when the line is unknown.
  std::string str() const;
  /// True when line and column are known.
  bool known() const { return line > 0; }
};

/// A recipe that cannot be read, or does not fit the factory's modifiers.
/// what() is "<file>:<line>:<col>: <message>".
class MODKIT_CORE_API RecipeError : public ValueError {
 public:
  RecipeError(SourceLocation where, const std::string& message);
  /// Where the problem is.
  const SourceLocation& where() const noexcept { return where_; }
  /// The message without its location.
  const std::string& message() const noexcept { return message_; }

 private:
  SourceLocation where_;
  std::string message_;
};

/// One modifier entry of a recipe stage.
struct MODKIT_CORE_API RecipeModifier {
  /// The modifier type name, e.g. "MagnitudePruningModifier".
  std::string type;
  /// Its parameters: a JSON object, without "type", "group" and "index".
  Params params = Params::object();
  /// Its group: the stage's group unless the entry sets its own.
  std::string group;
  /// Its position in its stage, from 0.
  int64_t index = 0;
  /// Where the entry starts (TOML: its [[stage.modifiers]] table; YAML: its type key).
  SourceLocation where;
  /// Where the type name is written.
  SourceLocation type_where;
  /// Where each parameter's key is written.
  std::map<std::string, SourceLocation> param_locations;

  /// The location of parameter `key`, or the entry's when unknown.
  const SourceLocation& location_of(const std::string& key) const;
};

/// One stage of a recipe: modifiers applied together.
struct MODKIT_CORE_API RecipeStage {
  /// The stage's name, e.g. "sparsity" (YAML: sparsity_stage).
  std::string name;
  /// The stage's group (StageModifiers::group); defaults to the name.
  std::string group;
  /// "oneshot", "train", or "" when the recipe does not say.
  std::string run_type;
  /// The modifiers, in the order they run.
  std::vector<RecipeModifier> modifiers;
  /// Where the stage starts.
  SourceLocation where;
};

/// An ordered list of stages, as read from a file or string. A plain value:
/// copyable, no reference to the text it was parsed from.
struct MODKIT_CORE_API Recipe {
  std::vector<RecipeStage> stages;
  /// The file path, or "<string>".
  std::string source;

  /// Reads a recipe file, by extension: .toml, or .yaml / .yml (llmcompressor
  /// format). Throws RecipeError when the file cannot be read, has another
  /// extension, or is not a valid recipe.
  static Recipe load(const std::string& path);
  /// Parses a TOML recipe. Throws RecipeError with the location of the first
  /// problem (TOML syntax errors included).
  static Recipe parse_toml(const std::string& text, const std::string& source = "<string>");
  /// Imports an llmcompressor YAML recipe. Throws RecipeError with the
  /// location of the first problem (YAML syntax errors included).
  static Recipe parse_yaml(const std::string& text, const std::string& source = "<string>");
  /// The canonical TOML form: parse_toml(to_toml()) gives an equal recipe.
  /// Throws ValueError for what TOML cannot hold (a null parameter, a
  /// parameter named type, group or index).
  std::string to_toml() const;
};

/// Equal in content: names, groups, run types, types, parameters (as JSON
/// compares them) and indexes. Locations and sources are not compared.
MODKIT_CORE_API bool operator==(const RecipeModifier& a, const RecipeModifier& b);
MODKIT_CORE_API bool operator==(const RecipeStage& a, const RecipeStage& b);
MODKIT_CORE_API bool operator==(const Recipe& a, const Recipe& b);
inline bool operator!=(const RecipeModifier& a, const RecipeModifier& b) { return !(a == b); }
inline bool operator!=(const RecipeStage& a, const RecipeStage& b) { return !(a == b); }
inline bool operator!=(const Recipe& a, const Recipe& b) { return !(a == b); }

/// Every problem of `recipe` against `factory`'s types and schemas, in file
/// order (at most one per parameter): unknown types (with the closest
/// names), types that failed to load (their recorded load error),
/// experimental types when they are not allowed, unknown parameters, wrong
/// types, values out of range or not among the choices, missing required
/// parameters. Registered host-side types have no schema: only their
/// lifecycle keys are checked. Empty when the recipe is valid.
MODKIT_CORE_API std::vector<RecipeError> find_recipe_errors(const Recipe& recipe,
                                                            const ModifierFactory& factory,
                                                            bool allow_experimental = true);

/// Checks every modifier against `factory` and throws the first problem
/// find_recipe_errors() reports: RecipeError "<file>:<line>:<col>: <message>".
MODKIT_CORE_API void check_recipe(const Recipe& recipe, const ModifierFactory& factory, bool allow_experimental = true);

/// Builds one StageModifiers per stage (group = the stage's group, index =
/// its position), each holding its modifiers created in order with index =
/// position in the stage and group set. Checks the recipe first (as
/// check_recipe) and throws RecipeError naming the modifier's location when
/// creating one fails. Creation follows ModifierFactory::create's precedence.
MODKIT_CORE_API std::vector<StageModifiers> build_stages(const Recipe& recipe, const ModifierFactory& factory,
                                                         bool allow_registered = true,
                                                         bool allow_experimental = true);

}  // namespace modkit
