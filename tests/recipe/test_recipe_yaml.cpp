// llmcompressor YAML import: stages, groups, YAML 1.2 scalars, and unsupported keys as located errors.
#include <modkit/core/recipe.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>

namespace {

const std::string kData = MODKIT_RECIPE_DATA_DIR;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const modkit::RecipeError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string yaml_error(const std::string& text) {
  return error_of([&] { modkit::Recipe::parse_yaml(text, "r.yaml"); });
}

modkit::Params params_of(const std::string& yaml_args) {
  const auto r = modkit::Recipe::parse_yaml("s_stage:\n  g_modifiers:\n    AModifier:\n" + yaml_args);
  return r.stages.at(0).modifiers.at(0).params;
}

}  // namespace

TEST_CASE("an llmcompressor recipe imports with its stages, groups and values") {
  const std::string path = kData + "/example.yaml";
  const auto r = modkit::Recipe::load(path);
  CHECK(r.source == path);
  REQUIRE(r.stages.size() == 2);
  CHECK(r.stages[0].name == "sparsity");
  CHECK(r.stages[0].group == "sparsity");
  CHECK(r.stages[0].run_type == "oneshot");
  CHECK(r.stages[0].where.str() == path + ":2:1");
  CHECK(r.stages[1].name == "quant");
  CHECK(r.stages[1].run_type == "");

  REQUIRE(r.stages[0].modifiers.size() == 1);
  const auto& gpt = r.stages[0].modifiers[0];
  CHECK(gpt.type == "SparseGPTModifier");
  CHECK(gpt.group == "sparsity");
  CHECK(gpt.index == 0);
  CHECK(gpt.where.str() == path + ":5:5");
  CHECK(gpt.params["sparsity"].is_number_float());
  CHECK(gpt.params["sparsity"] == 0.5);
  CHECK(gpt.params["mask_structure"].is_string());
  CHECK(gpt.params["mask_structure"] == "2:4");
  CHECK(gpt.location_of("mask_structure").str() == path + ":7:7");

  REQUIRE(r.stages[1].modifiers.size() == 1);
  const auto& quant = r.stages[1].modifiers[0];
  CHECK(quant.type == "QuantizationModifier");
  CHECK(quant.group == "quant");
  CHECK(quant.params == modkit::Params{{"scheme", "W4A16"}, {"targets", {"Linear"}}, {"ignore", {"lm_head"}}});
}

TEST_CASE("several groups in one stage flatten in order, each modifier keeping its group") {
  const auto r = modkit::Recipe::parse_yaml(R"(
test_stage:
  pruning_modifiers:
    ConstantPruningModifier:
      start: 0.0
      end: 2.0
      targets: ['re:.*weight']
    MagnitudePruningModifier:
  quant_modifiers:
    QuantizationModifier:
      group: custom
      scheme: W8A8
)");
  REQUIRE(r.stages.size() == 1);
  const auto& ms = r.stages[0].modifiers;
  REQUIRE(ms.size() == 3);
  CHECK(ms[0].type == "ConstantPruningModifier");
  CHECK(ms[0].group == "pruning");
  CHECK(ms[0].params == modkit::Params{{"start", 0.0}, {"end", 2.0}, {"targets", {"re:.*weight"}}});
  CHECK(ms[1].type == "MagnitudePruningModifier");
  CHECK(ms[1].params == modkit::Params::object());  // no parameters
  CHECK(ms[2].group == "custom");                    // a modifier may set its group
  CHECK(ms[2].params == modkit::Params{{"scheme", "W8A8"}});
  for (int64_t i = 0; i < 3; ++i) CHECK(ms[i].index == i);
}

TEST_CASE("a list of one-key mappings repeats a type; a repeated mapping key is an error") {
  const auto r = modkit::Recipe::parse_yaml(R"(
s_stage:
  quant_modifiers:
    - GPTQModifier: {block_size: 64}
    - GPTQModifier: {block_size: 128}
)");
  REQUIRE(r.stages[0].modifiers.size() == 2);
  CHECK(r.stages[0].modifiers[1].params == modkit::Params{{"block_size", 128}});
  CHECK(r.stages[0].modifiers[1].index == 1);

  CHECK(yaml_error("s_stage:\n  quant_modifiers:\n    GPTQModifier: {}\n    GPTQModifier: {}\n") ==
        "r.yaml:4:5: duplicate modifier type in 'quant_modifiers': 'GPTQModifier' (first at r.yaml:3:5); to use a "
        "type twice, write 'quant_modifiers' as a list: - GPTQModifier: {...}");
}

TEST_CASE("an empty modifier type is refused, as TOML refuses it (found by fuzzing)") {
  // `!` is a tag with no value: an empty key
  CHECK(yaml_error("s_stage:\n  quant_modifiers:\n    GPTQModifier: {}\n    ! : {}\n") ==
        "r.yaml:4:5: a modifier type in 'quant_modifiers' must not be empty");
  CHECK(yaml_error("quant_modifiers:\n  - \"\": {}\n") ==
        "r.yaml:2:5: a modifier type in 'quant_modifiers' must not be empty");
}

TEST_CASE("top-level <group>_modifiers form llmcompressor's default stage") {
  const auto r = modkit::Recipe::parse_yaml("quant_modifiers:\n  QuantizationModifier:\n    scheme: W4A16\n");
  REQUIRE(r.stages.size() == 1);
  CHECK(r.stages[0].name == "default");
  CHECK(r.stages[0].modifiers[0].group == "quant");
  CHECK(yaml_error("a_stage:\n  x_modifiers:\nquant_modifiers:\n  QuantizationModifier:\n") ==
        "r.yaml:3:1: 'quant_modifiers': top-level <group>_modifiers cannot be mixed with <name>_stage keys "
        "(first at r.yaml:1:1)");
}

TEST_CASE("YAML scalars follow the 1.2 core schema") {
  const auto p = params_of(
      "      b: true\n      c: False\n      i: 42\n      neg: -3\n      hex: 0x1F\n      f: 0.5\n      e: 1e-3\n"
      "      inf: .inf\n      n: ~\n      colon: 2:4\n      quoted: \"2:4\"\n      qnum: '7'\n      yes_: yes\n"
      "      tagged: !!str 12\n      tf: !!float 3\n      list: [1, 2.0, x]\n      map: {k: v}\n");
  CHECK(p["b"] == true);
  CHECK(p["c"] == false);
  CHECK(p["i"].is_number_integer());
  CHECK(p["i"] == 42);
  CHECK(p["neg"] == -3);
  CHECK(p["hex"] == 31);
  CHECK(p["f"].is_number_float());
  CHECK(p["e"].get<double>() == 1e-3);
  CHECK(std::isinf(p["inf"].get<double>()));
  CHECK(p["n"].is_null());
  CHECK(p["colon"] == "2:4");  // YAML 1.1 would read 124 (base 60)
  CHECK(p["quoted"] == "2:4");
  CHECK(p["qnum"] == "7");
  CHECK(p["yes_"] == "yes");  // YAML 1.1 would read true
  CHECK(p["tagged"] == "12");
  CHECK(p["tf"].is_number_float());
  CHECK(p["list"] == modkit::Params::parse(R"([1, 2.0, "x"])"));
  CHECK(p["list"][1].is_number_float());
  CHECK(p["map"] == modkit::Params{{"k", "v"}});
}

TEST_CASE("keys modkit does not support are errors with their location") {
  SUBCASE("recipe args") {
    CHECK(yaml_error("args:\n  x: 1\ns_stage:\n  q_modifiers:\n") ==
          "r.yaml:1:1: unknown top-level key 'args': recipe arguments (and the eval expressions that use them) are "
          "not supported by modkit; expected <name>_stage keys (e.g. sparsity_stage)");
  }
  SUBCASE("a stage key") {
    CHECK(yaml_error("s_stage:\n  run_type: oneshot\n  enabled: true\n") ==
          "r.yaml:3:3: unknown key 'enabled' in stage 's': stage key 'enabled' is not supported by modkit; valid "
          "keys: 'run_type' and <group>_modifiers (e.g. quant_modifiers)");
  }
  SUBCASE("a misspelt group key") {
    CHECK(yaml_error("s_stage:\n  quant_modifier:\n    QuantizationModifier: {}\n") ==
          "r.yaml:2:3: unknown key 'quant_modifier' in stage 's'; valid keys: 'run_type' and <group>_modifiers "
          "(e.g. quant_modifiers)");
  }
  SUBCASE("a bad run_type") {
    CHECK(yaml_error("s_stage:\n  run_type: sometimes\n") ==
          "r.yaml:2:13: stage 's' key 'run_type': expected 'oneshot' or 'train', found 'sometimes'");
  }
  SUBCASE("an unsupported tag") {
    CHECK(yaml_error("s_stage:\n  q_modifiers:\n    AModifier:\n      x: !!binary aGk=\n") ==
          "r.yaml:4:10: AModifier parameter 'x': unsupported YAML tag '!!binary'");
  }
  SUBCASE("parameters that are not a mapping") {
    CHECK(yaml_error("s_stage:\n  q_modifiers:\n    AModifier: 3\n") ==
          "r.yaml:3:16: AModifier parameters must be a mapping, found scalar");
  }
  SUBCASE("a list at the top") {
    CHECK(yaml_error("- a\n- b\n") == "r.yaml:1:1: expected a mapping of <name>_stage keys, found sequence");
  }
  SUBCASE("an empty document") {
    CHECK(yaml_error("# nothing\n") == "r.yaml: recipe defines no stages (expected <name>_stage keys)");
  }
}

TEST_CASE("YAML syntax errors are re-worded with file, line and column") {
  const std::string e = yaml_error("s_stage:\n  q_modifiers:\n    AModifier: {x: 1\n");
  CHECK(e.rfind("r.yaml:", 0) == 0);
  CHECK(e.find("end of map flow not found") != std::string::npos);
}

TEST_CASE("a YAML recipe that is not UTF-8 is refused where the bad byte is") {
  // found by fuzzing (tests/fuzz/regressions/recipe_yaml): yaml-cpp passed the bytes through and
  // `modkit recipe convert` wrote TOML that nothing could read back
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    X\xa3Modifier: {}\n", "r.yaml"),
                       "r.yaml:3:6: invalid UTF-8 (byte 0xa3); a recipe is UTF-8 text", modkit::RecipeError);
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml("\xed\xa0\x80: 1\n", "r.yaml"),  // a surrogate, U+D800
                       "r.yaml:1:1: invalid UTF-8 (byte 0xed); a recipe is UTF-8 text", modkit::RecipeError);
  CHECK_NOTHROW(modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    Modifier\xc3\xa9: {}\n", "r.yaml"));
}

TEST_CASE("run_type is read from a node that outlives its iterator") {
  // found by fuzzing with AddressSanitizer (tests/fuzz/regressions/recipe_yaml): the value was a
  // reference into a proxy destroyed at the end of its statement
  const auto r = modkit::Recipe::parse_yaml("a_stage:\n  run_type: train\n  q_modifiers:\n    XModifier: {}\n", "r.yaml");
  REQUIRE(r.stages.size() == 1);
  CHECK(r.stages[0].run_type == "train");
}

TEST_CASE("an alias inside the collection it names, or nesting deeper than 64 levels, is refused") {
  // found by fuzzing (tests/fuzz/regressions/recipe_yaml): the conversion recursed until the stack overflowed
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    XModifier: &d\n      <<: *d\n", "r.yaml"),
                       "r.yaml:3:16: XModifier parameter '<<': an alias refers to a collection that contains it",
                       modkit::RecipeError);
  const std::string deep = std::string(70, '[') + std::string(70, ']');
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    XModifier:\n      p: " + deep + "\n", "r.yaml"),
                       "r.yaml:4:74: XModifier parameter 'p': nested deeper than 64 levels", modkit::RecipeError);
  const std::string fine = std::string(60, '[') + std::string(60, ']');
  CHECK_NOTHROW(modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    XModifier:\n      p: " + fine + "\n", "r.yaml"));
}

TEST_CASE("YAML deeper than yaml-cpp reads says so, not 'bad file'") {
  const std::string deep = std::string(500, '[') + std::string(500, ']');
  const std::string m = [&] {
    try {
      modkit::Recipe::parse_yaml("s_stage:\n  q_modifiers:\n    XModifier:\n      p: " + deep + "\n", "r.yaml");
    } catch (const modkit::RecipeError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  }();
  CHECK(m.rfind("r.yaml:4:", 0) == 0);
  CHECK(m.find(": nested too deeply: the YAML reader stops at depth ") != std::string::npos);
  CHECK(m.find("(a recipe value may nest 64 levels)") != std::string::npos);
}

TEST_CASE("aliases that expand beyond any recipe's size are refused at once (billion laughs)") {
  std::string yaml = "s_stage:\n  q_modifiers:\n    XModifier:\n      a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n";
  const std::string names = "abcdefghi";
  for (size_t i = 1; i < names.size(); ++i) {
    std::string items;
    for (int k = 0; k < 9; ++k) items += std::string(k ? ", " : "") + "*" + names[i - 1];
    yaml += std::string("      ") + names[i] + ": &" + names[i] + " [" + items + "]\n";
  }
  // 9^9 strings from 700 bytes: refused where the limit is crossed, at the aliased value
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml(yaml, "r.yaml"),
                       "r.yaml:4:28: XModifier parameter 'f': the recipe expands to more than 100000 values (aliases "
                       "are copied where they are used); expected a recipe of reasonable size",
                       modkit::RecipeError);
  // a long scalar used through many aliases: bounded by its text
  const std::string big(1 << 20, 'x');
  std::string wide = "s_stage:\n  q_modifiers:\n    XModifier:\n      a: &a \"" + big + "\"\n      b: [";
  for (int k = 0; k < 20; ++k) wide += std::string(k ? ", " : "") + "*a";
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml(wide + "]\n", "r.yaml"),
                       "r.yaml:4:10: XModifier parameter 'b': the recipe expands to more than 16 MiB of text (aliases "
                       "are copied where they are used); expected a recipe of reasonable size",
                       modkit::RecipeError);
}

TEST_CASE("YAML that yaml-cpp reads as endless empty documents is refused, and a second document is named") {
  // found by fuzzing (tests/fuzz/regressions/recipe_yaml): YAML::LoadAll never returned on ", a:"
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml(", a:", "r.yaml"), "r.yaml:1:1: expected a YAML document, found ','",
                       modkit::RecipeError);
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml("a_stage: {}\n---\nb_stage: {}\n", "r.yaml"),
                       "r.yaml:2:1: a recipe is one YAML document, found a second one here", modkit::RecipeError);
}

TEST_CASE("control characters in a YAML recipe are refused where they are") {
  // found by fuzzing (tests/fuzz/regressions/recipe_yaml): yaml-cpp turned a NUL into invalid UTF-8
  static const char with_nul[] = "s_stage:\n  q_modifiers:\n    X\0Modifier: {}\n";
  CHECK_THROWS_WITH_AS(modkit::Recipe::parse_yaml(std::string(with_nul, sizeof with_nul - 1), "r.yaml"),
                       "r.yaml:3:6: control character U+0000 (YAML text allows tab, line feed and carriage return only)",
                       modkit::RecipeError);
  CHECK_NOTHROW(modkit::Recipe::parse_yaml("s_stage:\r\n  q_modifiers:\r\n    XModifier: {a: \"\\t\"}\r\n", "r.yaml"));
}
