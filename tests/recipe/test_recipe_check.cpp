// Recipes against a factory: schema errors at their locations, building stages, and the canonical TOML round trip.
#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/session.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {

const std::string kData = MODKIT_RECIPE_DATA_DIR;
const std::string kPlugins = MODKIT_RECIPE_PLUGIN_DIR;
const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;

modkit::FactoryOptions only(std::vector<std::string> dirs) {
  modkit::FactoryOptions o;
  o.plugin_dirs = std::move(dirs);
  o.use_environment = false;
  o.use_install_dir = false;
  return o;
}

class HostPruning : public modkit::Modifier {
 public:
  explicit HostPruning(const modkit::Params& p) : params(p) {}
  std::string type_name() const override { return "MagnitudePruningModifier"; }
  modkit::Params params;

 protected:
  bool on_initialize(modkit::State&) override { return true; }
};

// The test plugins (RecorderModifier, BoundedModifier, experimental
// ExperimentalOnlyModifier) and a host-side MagnitudePruningModifier.
modkit::ModifierFactory& factory() {
  static modkit::ModifierFactory f(only({kPlugins}));
  static bool done = (f.refresh(), f.register_class<HostPruning>("MagnitudePruningModifier"), true);
  (void)done;
  return f;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const modkit::RecipeError& e) {
    return e.what();
  }
  return "<no error>";
}

// One stage with one modifier of `type` whose table body is `body`
// (the type is on line 3, column 10; the body starts on line 4).
std::string one(const std::string& type, const std::string& body) {
  return "[[stage]]\n  [[stage.modifiers]]\n  type = \"" + type + "\"\n" + body;
}

std::string check_error(const std::string& toml, bool allow_experimental = true) {
  const auto r = modkit::Recipe::parse_toml(toml, "r.toml");
  return error_of([&] { modkit::check_recipe(r, factory(), allow_experimental); });
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Same JSON and the same kinds of numbers (1 and 1.0 compare equal in nlohmann::json).
bool same_kinds(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!same_kinds(a[i], b[i])) return false;
    }
  }
  if (a.is_object()) {
    for (const auto& [k, v] : a.items()) {
      if (!b.contains(k) || !same_kinds(v, b.at(k))) return false;
    }
  }
  return a == b;
}

void check_round_trip(const modkit::Recipe& r) {
  const std::string text = r.to_toml();
  INFO(text);
  const auto back = modkit::Recipe::parse_toml(text);
  CHECK(back == r);
  REQUIRE(back.stages.size() == r.stages.size());
  for (size_t s = 0; s < r.stages.size(); ++s) {
    REQUIRE(back.stages[s].modifiers.size() == r.stages[s].modifiers.size());
    for (size_t m = 0; m < r.stages[s].modifiers.size(); ++m) {
      CHECK(same_kinds(back.stages[s].modifiers[m].params, r.stages[s].modifiers[m].params));
    }
  }
  CHECK(back.to_toml() == text);  // canonical: a fixed point
}

}  // namespace

TEST_CASE("a valid recipe passes the checks") {
  const auto r = modkit::Recipe::load(kData + "/bounded.toml");
  CHECK(modkit::find_recipe_errors(r, factory()).empty());
  CHECK_NOTHROW(modkit::check_recipe(r, factory()));
}

TEST_CASE("a stage without modifiers is an error at the stage") {
  const auto toml = modkit::Recipe::parse_toml("[[stage]]\nname = \"empty\"\n", "r.toml");
  CHECK(error_of([&] { modkit::check_recipe(toml, factory()); }) ==
        "r.toml:1:1: stage 'empty' has no modifiers: add one, or remove the stage");
  const auto yaml = modkit::Recipe::parse_yaml("empty_stage:\n  run_type: oneshot\n", "r.yaml");
  CHECK(error_of([&] { modkit::check_recipe(yaml, factory()); }) ==
        "r.yaml:1:1: stage 'empty' has no modifiers: add one, or remove the stage");
}

TEST_CASE("an unknown type names the closest known type at the type's location") {
  CHECK(check_error(one("MagnitudePrunningModifier", "")) ==
        "r.toml:3:10: unknown modifier type 'MagnitudePrunningModifier' (did you mean 'MagnitudePruningModifier'?)");
  CHECK(starts_with(check_error(one("Zzz", "")), "r.toml:3:10: unknown modifier type 'Zzz'; known types: "));
  SUBCASE("in an imported YAML recipe: the type key") {
    const auto r = modkit::Recipe::load(kData + "/unknown_type.yaml");
    CHECK(error_of([&] { modkit::check_recipe(r, factory()); }) ==
          kData + "/unknown_type.yaml:3:5: unknown modifier type 'BoundedModifer' (did you mean 'BoundedModifier'?)");
  }
}

TEST_CASE("parameter errors carry the parameter's own location and resolve_params' message") {
  SUBCASE("wrong type") {
    CHECK(check_error(one("BoundedModifier", "  ratio = \"high\"\n")) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': expected float, found string \"high\"");
  }
  SUBCASE("out of range") {
    CHECK(check_error(one("BoundedModifier", "  mode = \"fast\"\n  ratio = 1.5\n")) ==
          "r.toml:5:3: BoundedModifier parameter 'ratio': 1.5 is out of range [0, 1]");
  }
  SUBCASE("an open bound refuses the bound itself") {
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  keep = 1.0\n")) ==
          "r.toml:5:3: BoundedModifier parameter 'keep': 1.0 is out of range [0, 1)");
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  keep = 0.0\n")) == "<no error>");
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  keep = 0.999\n")) == "<no error>");
  }
  SUBCASE("nan is refused, infinities are out of range and named as such") {
    CHECK(check_error(one("BoundedModifier", "  ratio = nan\n")) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': expected float, found nan");
    CHECK(check_error(one("BoundedModifier", "  ratio = -nan\n")) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': expected float, found nan");
    CHECK(check_error(one("BoundedModifier", "  ratio = inf\n")) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': inf is out of range [0, 1]");
    CHECK(check_error(one("BoundedModifier", "  ratio = -inf\n")) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': -inf is out of range [0, 1]");
    const auto r = modkit::Recipe::parse_yaml("s_stage:\n  b_modifiers:\n    BoundedModifier:\n      ratio: 1e400\n", "r.yaml");
    CHECK(error_of([&] { modkit::check_recipe(r, factory()); }) ==
          "r.yaml:4:7: BoundedModifier parameter 'ratio': inf is out of range [0, 1]");
  }
  SUBCASE("not among the choices") {
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  mode = \"medium\"\n")) ==
          "r.toml:5:3: BoundedModifier parameter 'mode': \"medium\" is not one of [\"fast\",\"slow\"]");
  }
  SUBCASE("unknown parameter, with the closest name") {
    CHECK(starts_with(check_error(one("BoundedModifier", "  ratio = 0.5\n  rato = 0.5\n")),
                      "r.toml:5:3: BoundedModifier has no parameter 'rato' (did you mean 'ratio'?); valid parameters: "
                      "'ratio', 'mode', 'targets', 'count', "));
  }
  SUBCASE("a string list that is not one") {
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  targets = [1]\n")) ==
          "r.toml:5:3: BoundedModifier parameter 'targets': expected string_list, found list [1]");
  }
  SUBCASE("a lifecycle key of the wrong type") {
    CHECK(check_error(one("BoundedModifier", "  ratio = 0.5\n  start = \"soon\"\n")) ==
          "r.toml:5:3: BoundedModifier parameter 'start': expected float, found string \"soon\"");
  }
  SUBCASE("missing required: at the modifier's table") {
    CHECK(check_error("[[stage]]\n\n  [[stage.modifiers]]\n  type = \"BoundedModifier\"\n  count = 2\n") ==
          "r.toml:3:3: BoundedModifier is missing required parameter 'ratio' (float: a required ratio)");
  }
  SUBCASE("in YAML: at the parameter's key") {
    const auto r = modkit::Recipe::parse_yaml(
        "s_stage:\n  b_modifiers:\n    BoundedModifier:\n      ratio: 2\n", "r.yaml");
    CHECK(error_of([&] { modkit::check_recipe(r, factory()); }) ==
          "r.yaml:4:7: BoundedModifier parameter 'ratio': 2 is out of range [0, 1]");
  }
}

TEST_CASE("find_recipe_errors reports every problem in file order") {
  const auto r = modkit::Recipe::parse_toml(R"([[stage]]
  [[stage.modifiers]]
  type = "BoundedModifier"
  mode = "x"
  ratio = 7
  [[stage.modifiers]]
  type = "Nope"
[[stage]]
  [[stage.modifiers]]
  type = "BoundedModifier"
)", "r.toml");
  const auto errors = modkit::find_recipe_errors(r, factory());
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].where().str() == "r.toml:4:3");
  CHECK(errors[0].message() == "BoundedModifier parameter 'mode': \"x\" is not one of [\"fast\",\"slow\"]");
  CHECK(errors[1].where().str() == "r.toml:5:3");
  CHECK(errors[2].where().str() == "r.toml:7:10");
  CHECK(starts_with(errors[2].message(), "unknown modifier type 'Nope'"));
  CHECK(errors[3].where().str() == "r.toml:9:3");
  CHECK(starts_with(errors[3].message(), "BoundedModifier is missing required parameter 'ratio'"));
}

TEST_CASE("a type whose plugin failed to load reports the recorded load error") {
  modkit::ModifierFactory f(only({kFixtures + "/missing_dependency"}));
  f.refresh();
  const auto r = modkit::Recipe::parse_toml(one("MissingDepModifier", ""), "r.toml");
  const std::string e = error_of([&] { modkit::check_recipe(r, f); });
  CHECK(e == "r.toml:3:10: " + f.errors().at("MissingDepModifier").message());
  CHECK(starts_with(e, "r.toml:3:10: cannot load 'MissingDepModifier' from '"));
}

TEST_CASE("experimental types are refused when experimental modifiers are not allowed") {
  const std::string toml = one("ExperimentalOnlyModifier", "");
  CHECK(check_error(toml, true) == "<no error>");
  CHECK(check_error(toml, false) ==
        "r.toml:3:10: modifier type 'ExperimentalOnlyModifier' is experimental and experimental modifiers are not "
        "allowed");
}

TEST_CASE("registered host-side types have no schema: only their lifecycle keys are checked") {
  CHECK(check_error(one("MagnitudePruningModifier", "  anything = [1, 2]\n  start = 2\n")) == "<no error>");
  CHECK(check_error(one("MagnitudePruningModifier", "  end = \"late\"\n")) ==
        "r.toml:4:3: MagnitudePruningModifier parameter 'end': expected float, found string \"late\"");
}

TEST_CASE("build_stages creates the stages with group, index and schedule set") {
  const auto r = modkit::Recipe::load(kData + "/bounded.toml");
  auto stages = modkit::build_stages(r, factory());
  REQUIRE(stages.size() == 2);

  CHECK(stages[0].index == 0);
  CHECK(stages[0].group == "prune");
  CHECK(stages[0].unique_id() == "prune_0");
  REQUIRE(stages[0].modifiers.size() == 2);
  for (int64_t i = 0; i < 2; ++i) {
    const auto& m = *stages[0].modifiers[i];
    CHECK(m.type_name() == "BoundedModifier");
    CHECK(m.index == i);
    CHECK(m.group == "prune");
  }
  CHECK(stages[0].modifiers[0]->start == 1.0);
  CHECK(stages[0].modifiers[0]->end == 4.0);
  CHECK_FALSE(stages[0].modifiers[1]->start.has_value());
  CHECK_FALSE(stages[0].modifiers[1]->end.has_value());

  CHECK(stages[1].index == 1);
  CHECK(stages[1].group == "recorders");
  CHECK(stages[1].unique_id() == "recorders_1");
  REQUIRE(stages[1].modifiers.size() == 1);
  const auto& rec = *stages[1].modifiers[0];
  CHECK(rec.type_name() == "RecorderModifier");
  CHECK(rec.index == 0);
  CHECK(rec.group == "recorders");
  CHECK(rec.start == 0.0);
  CHECK_FALSE(rec.end.has_value());
  CHECK(rec.update == 2.0);
}

TEST_CASE("build_stages keeps a YAML modifier's own group and hands host-side types their parameters") {
  const auto r = modkit::Recipe::parse_yaml(R"(
prune_stage:
  pruning_modifiers:
    MagnitudePruningModifier: {final_sparsity: 0.5, start: 1}
  bounded_modifiers:
    BoundedModifier: {ratio: 0.1}
)");
  auto stages = modkit::build_stages(r, factory());
  REQUIRE(stages.size() == 1);
  CHECK(stages[0].group == "prune");
  const auto& host = dynamic_cast<const HostPruning&>(*stages[0].modifiers[0]);
  CHECK(host.params["final_sparsity"] == 0.5);
  CHECK(host.group == "pruning");
  CHECK(host.index == 0);
  CHECK(host.start == 1.0);
  CHECK(stages[0].modifiers[1]->group == "bounded");
  CHECK(stages[0].modifiers[1]->index == 1);
}

TEST_CASE("build_stages errors carry the modifier's location") {
  SUBCASE("a schema error, as check_recipe") {
    const auto r = modkit::Recipe::parse_toml(one("BoundedModifier", "  ratio = -1\n"), "r.toml");
    CHECK(error_of([&] { modkit::build_stages(r, factory()); }) ==
          "r.toml:4:3: BoundedModifier parameter 'ratio': -1 is out of range [0, 1]");
  }
  SUBCASE("a plugin that refuses to be created") {
    const auto r = modkit::Recipe::parse_toml(one("RecorderModifier", "  fail_on = \"create\"\n"), "r.toml");
    const std::string e = error_of([&] { modkit::build_stages(r, factory()); });
    CHECK(starts_with(e, "r.toml:3:10: "));
    CHECK(e.find("recorder refused to be created") != std::string::npos);
  }
  SUBCASE("a registered type when registered modifiers are not allowed") {
    const auto r = modkit::Recipe::parse_toml(one("MagnitudePruningModifier", ""), "r.toml");
    CHECK(error_of([&] { modkit::build_stages(r, factory(), false, true); }) ==
          "r.toml:3:10: modifier type 'MagnitudePruningModifier' is registered on the host and registered "
          "modifiers are not allowed");
  }
}

TEST_CASE("to_toml writes the canonical form, which parses back to the same recipe") {
  SUBCASE("the canonical text") {
    const auto r = modkit::Recipe::parse_toml(R"(
[[stage]]
group = "g"
run_type = "train"
  [[stage.modifiers]]
  update = 1
  type = "A"
  f = 2.0
  [[stage.modifiers]]
  type = "B"
  group = "h"
)");
    CHECK(r.to_toml() ==
          "[[stage]]\nname = \"stage_0\"\ngroup = \"g\"\nrun_type = \"train\"\n"
          "\n  [[stage.modifiers]]\n  type = \"A\"\n  f = 2.0\n  update = 1\n"
          "\n  [[stage.modifiers]]\n  type = \"B\"\n  group = \"h\"\n");
  }
  SUBCASE("the example recipes") {
    check_round_trip(modkit::Recipe::load(kData + "/example.toml"));
    check_round_trip(modkit::Recipe::load(kData + "/bounded.toml"));
  }
  SUBCASE("an imported YAML recipe, groups included") {
    check_round_trip(modkit::Recipe::load(kData + "/example.yaml"));
    check_round_trip(modkit::Recipe::parse_yaml(
        "s_stage:\n  a_modifiers:\n    AModifier: {x: 1}\n  b_modifiers:\n    - BModifier: {}\n    - BModifier: {y: [1.5]}\n"));
  }
  SUBCASE("values TOML must quote or spell carefully") {
    modkit::Recipe r;
    modkit::RecipeStage s;
    s.name = "a \"quoted\" name";
    s.group = "grp.with.dots";
    modkit::RecipeModifier m;
    m.type = "AModifier";
    m.group = s.group;
    m.params = modkit::Params{{"plain", "tab\there \\ \"q\" \x01 ü"},
                              {"key with spaces", 1},
                              {"whole_float", 3.0},
                              {"tiny", 1e-300},
                              {"huge", 1.5e300},
                              {"third", 1.0 / 3.0},
                              {"negative", -2},
                              {"max", INT64_MAX},
                              {"empty_list", modkit::Params::array()},
                              {"empty_table", modkit::Params::object()},
                              {"nested", {{"a", {1, 2.5, "x"}}, {"b c", {{"d", false}}}}}};
    s.modifiers.push_back(m);
    s.modifiers.push_back(m);
    s.modifiers[1].index = 1;
    r.stages.push_back(s);
    check_round_trip(r);
  }
  SUBCASE("what TOML cannot hold is an error") {
    modkit::Recipe r = modkit::Recipe::parse_yaml("s_stage:\n  g_modifiers:\n    AModifier:\n      x: ~\n", "r.yaml");
    CHECK_THROWS_WITH_AS(r.to_toml(),
                         "r.yaml:3:5: AModifier parameter 'x': TOML has no null value (leave the parameter out to "
                         "use its default)",
                         modkit::ValueError);
  }
}

TEST_CASE("a session initializes from a recipe and runs its modifiers with real steps") {
  const auto r = modkit::Recipe::load(kData + "/bounded.toml");
  modkit::Session session;
  session.initialize(r, factory());
  REQUIRE(session.stages().size() == 2);
  CHECK(session.stages()[0].initialized());
  CHECK(session.stages()[1].initialized());
  session.event(modkit::EventType::BatchStart, 5);
  CHECK(session.global_step() == 5);
  CHECK(session.stages()[1].modifiers[0]->started());
  session.finalize();
  CHECK(session.stages()[0].applied);

  modkit::Session broken;
  CHECK_THROWS_AS(broken.initialize(modkit::Recipe::parse_toml("[[stage]]\n[[stage.modifiers]]\ntype = \"NoSuchModifier\"\n"),
                                    factory()),
                  modkit::RecipeError);
  CHECK_FALSE(broken.initialized());
}
