// TOML recipes: order and grouping, TOML to JSON values, and every structural error with its location.
#include <modkit/core/recipe.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>

namespace {

const std::string kData = MODKIT_RECIPE_DATA_DIR;

// The message of the RecipeError `f` throws.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const modkit::RecipeError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string toml_error(const std::string& text) {
  return error_of([&] { modkit::Recipe::parse_toml(text, "r.toml"); });
}

}  // namespace

TEST_CASE("the example recipe keeps stage and modifier order, names and groups") {
  const auto r = modkit::Recipe::load(kData + "/example.toml");
  CHECK(r.source == kData + "/example.toml");
  REQUIRE(r.stages.size() == 2);
  CHECK(r.stages[0].name == "sparsity");
  CHECK(r.stages[0].group == "sparsity");
  CHECK(r.stages[0].run_type == "oneshot");
  CHECK(r.stages[0].where.str() == kData + "/example.toml:3:1");
  CHECK(r.stages[1].name == "quant");
  CHECK(r.stages[1].group == "quant");  // defaults to the name
  CHECK(r.stages[1].run_type == "");

  REQUIRE(r.stages[0].modifiers.size() == 1);
  const auto& prune = r.stages[0].modifiers[0];
  CHECK(prune.type == "MagnitudePruningModifier");
  CHECK(prune.group == "sparsity");
  CHECK(prune.index == 0);
  CHECK(prune.where.str() == kData + "/example.toml:8:3");
  CHECK(prune.type_where.str() == kData + "/example.toml:9:10");
  CHECK(prune.params == modkit::Params{{"targets", {"re:.*mlp.*"}},
                                       {"init_sparsity", 0.05},
                                       {"final_sparsity", 0.5},
                                       {"start", 0},
                                       {"end", 10},
                                       {"update", 1}});
  CHECK_FALSE(prune.params.contains("type"));
  CHECK(prune.location_of("final_sparsity").str() == kData + "/example.toml:12:3");

  REQUIRE(r.stages[1].modifiers.size() == 1);
  const auto& quant = r.stages[1].modifiers[0];
  CHECK(quant.type == "QuantizationModifier");
  CHECK(quant.group == "quant");
  CHECK(quant.params == modkit::Params{{"scheme", "W4A16"}, {"targets", {"Linear"}}, {"ignore", {"lm_head"}}});
}

TEST_CASE("stages default their names, the same type may appear twice, and a modifier may set its group") {
  const auto r = modkit::Recipe::parse_toml(R"(
[[stage]]
  [[stage.modifiers]]
  type = "A"
  [[stage.modifiers]]
  type = "B"
  [[stage.modifiers]]
  type = "A"
  group = "other"
  x = 2
[[stage]]
group = "g"
  [[stage.modifiers]]
  type = "A"
)");
  CHECK(r.source == "<string>");
  REQUIRE(r.stages.size() == 2);
  CHECK(r.stages[0].name == "stage_0");
  CHECK(r.stages[0].group == "stage_0");
  CHECK(r.stages[1].name == "stage_1");
  CHECK(r.stages[1].group == "g");
  REQUIRE(r.stages[0].modifiers.size() == 3);
  const auto& ms = r.stages[0].modifiers;
  CHECK(ms[0].type == "A");
  CHECK(ms[1].type == "B");
  CHECK(ms[2].type == "A");
  for (int64_t i = 0; i < 3; ++i) CHECK(ms[i].index == i);
  CHECK(ms[0].group == "stage_0");
  CHECK(ms[2].group == "other");
  CHECK(ms[2].params == modkit::Params{{"x", 2}});  // group is not a parameter
  CHECK(r.stages[1].modifiers[0].group == "g");
  CHECK(r.stages[1].modifiers[0].index == 0);
}

TEST_CASE("inline modifier tables read the same as [[stage.modifiers]]") {
  const auto r = modkit::Recipe::parse_toml(R"(
[[stage]]
name = "s"
modifiers = [{ type = "A", x = 1 }, { type = "A", x = 2 }]
)");
  REQUIRE(r.stages[0].modifiers.size() == 2);
  CHECK(r.stages[0].modifiers[1].params == modkit::Params{{"x", 2}});
  CHECK(r.stages[0].modifiers[1].index == 1);
}

TEST_CASE("TOML values become JSON of the same kind") {
  const auto r = modkit::Recipe::parse_toml(R"(
[[stage]]
  [[stage.modifiers]]
  type = "A"
  i = 3
  neg = -7
  big = 9007199254740993
  f = 3.0
  e = 1e-3
  inf = inf
  b = true
  s = "2:4"
  list = [1, 2.5, "x", [true]]
  table = { a = 1, nested = { b = "c" } }
)");
  const auto& p = r.stages[0].modifiers[0].params;
  CHECK(p["i"].is_number_integer());
  CHECK(p["i"] == 3);
  CHECK(p["neg"] == -7);
  CHECK(p["big"].get<int64_t>() == 9007199254740993LL);  // not rounded through double
  CHECK(p["f"].is_number_float());
  CHECK(p["f"].get<double>() == 3.0);
  CHECK(p["e"].get<double>() == 1e-3);
  CHECK(std::isinf(p["inf"].get<double>()));
  CHECK(p["b"].is_boolean());
  CHECK(p["s"] == "2:4");
  CHECK(p["list"] == modkit::Params::parse(R"([1, 2.5, "x", [true]])"));
  CHECK(p["list"][0].is_number_integer());
  CHECK(p["list"][1].is_number_float());
  CHECK(p["table"] == modkit::Params::parse(R"({"a": 1, "nested": {"b": "c"}})"));
}

TEST_CASE("dates and times are errors naming the parameter and its location") {
  CHECK(toml_error("[[stage]]\n  [[stage.modifiers]]\n  type = \"A\"\n  when = 2024-01-02\n") ==
        "r.toml:4:10: A parameter 'when': dates and times are not supported, found date 2024-01-02");
  CHECK(toml_error("[[stage]]\n  [[stage.modifiers]]\n  type = \"A\"\n  at = [07:30:00]\n") ==
        "r.toml:4:9: A parameter 'at': dates and times are not supported, found time 07:30:00");
}

TEST_CASE("TOML syntax errors are re-worded with file, line and column") {
  SUBCASE("a missing value") {
    CHECK(toml_error("[[stage]]\nname = \n") ==
          "r.toml:2:8: error while parsing key-value pair: expected value, saw '\\n'");
  }
  SUBCASE("an unterminated string") {
    const std::string e = toml_error("[[stage]]\nname = \"abc\n");
    CHECK(e.rfind("r.toml:2:", 0) == 0);
  }
  SUBCASE("a key defined twice") {
    const std::string e = toml_error("[[stage]]\nname = \"a\"\nname = \"b\"\n");
    CHECK(e.rfind("r.toml:3:", 0) == 0);
    CHECK(e.find("name") != std::string::npos);
  }
}

TEST_CASE("unknown keys name their location and the valid keys") {
  SUBCASE("top level") {
    CHECK(toml_error("stages = 1\n") ==
          "r.toml:1:1: unknown top-level key 'stages' (did you mean 'stage'?); valid keys: 'stage'");
  }
  SUBCASE("in a stage") {
    CHECK(toml_error("[[stage]]\nname = \"quant\"\n  grop = \"x\"\n") ==
          "r.toml:3:3: unknown key 'grop' in stage 'quant' (did you mean 'group'?); valid keys: "
          "'name', 'group', 'run_type', 'modifiers'");
  }
  SUBCASE("a misspelt [[stage.modifier]] table") {
    CHECK(toml_error("[[stage]]\n[[stage.modifier]]\ntype = \"A\"\n") ==
          "r.toml:2:9: unknown key 'modifier' in stage 'stage_0' (did you mean 'modifiers'?); valid keys: "
          "'name', 'group', 'run_type', 'modifiers'");
  }
}

TEST_CASE("structural errors name what was expected and what was found") {
  SUBCASE("a modifier without type") {
    CHECK(toml_error("[[stage]]\nname = \"s\"\n\n  [[stage.modifiers]]\n  ratio = 1\n") ==
          "r.toml:4:3: modifier 0 of stage 's' has no 'type' key (expected type = \"<name of a modifier type>\")");
  }
  SUBCASE("a type that is not a string") {
    CHECK(toml_error("[[stage]]\n  [[stage.modifiers]]\n  type = 3\n") ==
          "r.toml:3:10: modifier key 'type' must be a string, found integer 3");
  }
  SUBCASE("[stage] instead of [[stage]]") {
    CHECK(toml_error("[stage]\nname = \"s\"\n") ==
          "r.toml:1:1: 'stage' must be an array of tables ([[stage]]), found table (each stage starts with [[stage]])");
  }
  SUBCASE("[[stage.modifiers]] before any [[stage]]") {
    CHECK(toml_error("[[stage.modifiers]]\ntype = \"A\"\n") ==
          "r.toml:1:1: 'stage' must be an array of tables ([[stage]]), found table (each stage starts with [[stage]])");
  }
  SUBCASE("modifiers that are not tables") {
    CHECK(toml_error("[[stage]]\nmodifiers = [\"A\"]\n") ==
          "r.toml:2:13: stage 'stage_0' key 'modifiers' must be an array of tables ([[stage.modifiers]]), found array");
  }
  SUBCASE("a bad run_type") {
    CHECK(toml_error("[[stage]]\nrun_type = \"once\"\n") ==
          "r.toml:2:12: stage 'stage_0' key 'run_type': expected 'oneshot' or 'train', found 'once'");
  }
  SUBCASE("an index set by hand") {
    CHECK(toml_error("[[stage]]\n  [[stage.modifiers]]\n  type = \"A\"\n  index = 4\n") ==
          "r.toml:4:3: A key 'index' cannot be set: the index of a modifier is its position in its stage");
  }
  SUBCASE("two stages with one name") {
    CHECK(toml_error("[[stage]]\nname = \"a\"\n[[stage]]\nname = \"a\"\n") ==
          "r.toml:3:1: duplicate stage name 'a' (first at r.toml:1:1)");
  }
  SUBCASE("no stages") {
    CHECK(toml_error("# nothing\n") == "r.toml: recipe defines no stages (expected [[stage]] tables)");
  }
}

TEST_CASE("load chooses the format by extension and names unreadable files") {
  CHECK(modkit::Recipe::load(kData + "/example.yaml").stages.size() == 2);
  CHECK(error_of([] { modkit::Recipe::load(kData + "/missing.toml"); }) ==
        kData + "/missing.toml: cannot read recipe: No such file or directory");
  CHECK(error_of([] { modkit::Recipe::load(kData + "/example.json"); }) ==
        kData + "/example.json: unknown recipe format '.json'; expected a .toml recipe or an llmcompressor "
                ".yaml / .yml recipe");
  CHECK(error_of([] { modkit::Recipe::load(kData + ".toml"); }).find("cannot read recipe") != std::string::npos);
}

TEST_CASE("RecipeError keeps the location and the bare message apart") {
  try {
    modkit::Recipe::parse_toml("stages = 1\n", "r.toml");
    FAIL("no error");
  } catch (const modkit::RecipeError& e) {
    CHECK(e.where().file == "r.toml");
    CHECK(e.where().line == 1);
    CHECK(e.where().column == 1);
    CHECK(e.message().rfind("unknown top-level key 'stages'", 0) == 0);
  }
  // a RecipeError is a ValueError
  CHECK_THROWS_AS(modkit::Recipe::parse_toml("x = 1"), modkit::ValueError);
}
