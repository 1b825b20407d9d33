// ModifierFactory over real plugin files: registries, create precedence, parameters, errors, lifetime.
#include "recording_host.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/plugin_modifier.hpp>
#include <modkit/core/session.hpp>
#include <modkit/core/stage.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <atomic>
#include <thread>

namespace {

const std::string kPlugins = MODKIT_FACTORY_PLUGIN_DIR;

modkit::FactoryOptions only(std::vector<std::string> dirs) {
  modkit::FactoryOptions o;
  o.plugin_dirs = std::move(dirs);
  o.use_environment = false;
  o.use_install_dir = false;
  return o;
}

modkit::ModifierFactory& refreshed_factory() {
  static modkit::ModifierFactory factory(only({kPlugins}));
  static bool done = (factory.refresh(), true);
  (void)done;
  return factory;
}

std::string version_of(const modkit::Modifier& m) {
  return dynamic_cast<const modkit::PluginModifier&>(m).info().version;
}

class HostSideModifier : public modkit::Modifier {
 public:
  explicit HostSideModifier(const modkit::Params& p) : params(p) {}
  std::string type_name() const override { return "HostSideModifier"; }
  modkit::Params params;

 protected:
  bool on_initialize(modkit::State&) override { return true; }
};

}  // namespace

TEST_CASE("refresh puts the experimental subtree into its own registry only") {
  auto& f = refreshed_factory();
  CHECK(f.loaded());
  int main_recorders = 0, experimental_recorders = 0;
  for (const auto& e : f.modifiers()) {
    if (e.info.name != "RecorderModifier") continue;
    (e.experimental ? experimental_recorders : main_recorders)++;
    CHECK(e.info.version == (e.experimental ? "experimental" : "main"));
  }
  CHECK(main_recorders == 1);
  CHECK(experimental_recorders == 1);
  CHECK(f.errors().empty());
}

TEST_CASE("create follows registered, experimental, main precedence") {
  modkit::ModifierFactory f(only({kPlugins}));
  f.refresh();
  SUBCASE("main when experimental is not allowed") {
    CHECK(version_of(*f.create("RecorderModifier", true, false)) == "main");
  }
  SUBCASE("experimental when allowed") {
    CHECK(version_of(*f.create("RecorderModifier", true, true)) == "experimental");
  }
  SUBCASE("registered first when allowed, skipped when not") {
    f.register_class<HostSideModifier>("RecorderModifier");
    CHECK(f.create("RecorderModifier", true, true)->type_name() == "HostSideModifier");
    CHECK(version_of(*f.create("RecorderModifier", false, true)) == "experimental");
    CHECK(version_of(*f.create("RecorderModifier", false, false)) == "main");
  }
}

TEST_CASE("an unknown type names itself, the closest names and the directories searched") {
  auto& f = refreshed_factory();
  CHECK_THROWS_WITH_AS(f.create("RecorderModifer", true, true),
                       doctest::Contains("No modifier of type 'RecorderModifer' found. Did you mean 'RecorderModifier'?"),
                       modkit::ValueError);
  CHECK_THROWS_WITH_AS(f.create("RecorderModifer", true, true), doctest::Contains(("Searched: '" + kPlugins + "'.").c_str()),
                       modkit::ValueError);
}

TEST_CASE("an experimental-only type says why it was not created") {
  auto& f = refreshed_factory();
  CHECK_THROWS_WITH_AS(f.create("ExperimentalOnlyModifier", true, false),
                       doctest::Contains("No modifier of type 'ExperimentalOnlyModifier' found. "
                                           "'ExperimentalOnlyModifier' is experimental and experimental "
                                           "modifiers are not allowed."),
                       modkit::ValueError);
  CHECK(f.create("ExperimentalOnlyModifier", true, true) != nullptr);
}

TEST_CASE("load_from_package returns one tree's modifiers, without the experimental subtree") {
  modkit::ModifierFactory f(only({}));
  const auto main = f.load_from_package(kPlugins);
  CHECK(main.count("RecorderModifier") == 1);
  CHECK(main.count("ExperimentalOnlyModifier") == 0);
  const auto experimental = f.load_from_package(kPlugins + "/experimental", true);
  CHECK(experimental.at("ExperimentalOnlyModifier").experimental);
  CHECK_THROWS_WITH_AS(f.load_from_package("/nonexistent"), "plugin directory '/nonexistent' does not exist",
                       modkit::ValueError);
}

TEST_CASE("parameters are checked against the plugin's schema") {
  auto& f = refreshed_factory();
  SUBCASE("unknown key with the closest valid name") {
    CHECK_THROWS_WITH_AS(f.create("BoundedModifier", true, false, {{"ratio", 0.5}, {"rato", 1}}),
                         doctest::Contains("BoundedModifier has no parameter 'rato' (did you mean 'ratio'?)"),
                         modkit::ValueError);
  }
  SUBCASE("wrong type") {
    CHECK_THROWS_WITH_AS(f.create("BoundedModifier", true, false, {{"ratio", "half"}}),
                         "BoundedModifier parameter 'ratio': expected float, found string \"half\"",
                         modkit::ValueError);
  }
  SUBCASE("out of range") {
    CHECK_THROWS_WITH_AS(f.create("BoundedModifier", true, false, {{"ratio", 1.5}}),
                         "BoundedModifier parameter 'ratio': 1.5 is out of range [0, 1]", modkit::ValueError);
  }
  SUBCASE("not among the choices") {
    CHECK_THROWS_WITH_AS(f.create("BoundedModifier", true, false, {{"ratio", 0.1}, {"mode", "warp"}}),
                         "BoundedModifier parameter 'mode': \"warp\" is not one of [\"fast\",\"slow\"]",
                         modkit::ValueError);
  }
  SUBCASE("missing required") {
    CHECK_THROWS_WITH_AS(f.create("BoundedModifier", true, false),
                         "BoundedModifier is missing required parameter 'ratio' (float: a required ratio)",
                         modkit::ValueError);
  }
  SUBCASE("an int where a float is declared, a string where a string list is") {
    auto m = f.create("BoundedModifier", true, false, {{"ratio", 1}, {"targets", "Linear"}});
    const auto& params = dynamic_cast<const modkit::PluginModifier&>(*m).params();
    CHECK(params["count"] == 3);  // default filled in
    CHECK(params["mode"] == "fast");
  }
  SUBCASE("lifecycle keys reach the core modifier") {
    auto m = f.create("RecorderModifier", true, false,
                      {{"start", 2}, {"end", 5.5}, {"update", 1}, {"index", 3}, {"group", "g"}});
    CHECK(*m->start == 2.0);
    CHECK(*m->end == 5.5);
    CHECK(*m->update == 1.0);
    CHECK(*m->index == 3);
    CHECK(*m->group == "g");
  }
}

TEST_CASE("a plugin modifier follows the seed lifecycle through the ABI with real steps") {
  auto& f = refreshed_factory();
  RecordingHost host;
  modkit::StageModifiers stage;
  stage.group = "test";
  stage.index = 0;
  stage.modifiers.push_back(f.create("RecorderModifier", true, false, {{"start", 1}, {"end", 3}}));
  std::vector<modkit::StageModifiers> stages;
  stages.push_back(std::move(stage));
  modkit::Session session(host.state());
  session.initialize(std::move(stages));
  for (int64_t step = 0; step < 4; ++step) {
    session.event(modkit::EventType::BatchStart, step);
    session.event(modkit::EventType::BatchEnd, step);
  }
  session.finalize();
  const std::vector<std::string> expected{
      "on_initialize",  "on_event@0", "on_event@0",                               // not started at 0
      "on_event@1",     "on_start@1", "on_update@1", "on_event@1", "on_update@1",  // starts at 1
      "on_event@2",     "on_update@2", "on_event@2", "on_update@2",
      "on_event@3",     "on_update@3", "on_event@3", "on_end@3",    "on_update@3",  // ends at 3
      "on_finalize"};
  CHECK(host.lines() == expected);
}

TEST_CASE("a failing plugin callback becomes a PluginError naming modifier and callback") {
  auto& f = refreshed_factory();
  RecordingHost host;
  auto state = host.state();
  SUBCASE("create") {
    CHECK_THROWS_WITH_AS(f.create("RecorderModifier", true, false, {{"fail_on", "create"}}),
                         "RecorderModifier.create failed: recorder refused to be created", modkit::PluginError);
  }
  SUBCASE("on_start during initialize, on_update on an event, and the host goes on") {
    auto m = f.create("RecorderModifier", true, false, {{"fail_on", "on_start"}, {"start", 0}});
    CHECK_THROWS_WITH_AS(m->initialize(state), "RecorderModifier.on_start failed: recorder failed in on_start",
                         modkit::PluginError);
    auto n = f.create("RecorderModifier", true, false, {{"fail_on", "on_update"}, {"start", 1}});
    n->initialize(state);
    CHECK_THROWS_WITH_AS(n->update_event(state, modkit::Event{modkit::EventType::BatchStart, 1}),
                         "RecorderModifier.on_update failed: recorder failed in on_update", modkit::PluginError);
    auto ok = f.create("RecorderModifier", true, false);
    ok->initialize(state);
    CHECK(ok->initialized());
  }
  SUBCASE("on_initialize returning false leaves the modifier uninitialized") {
    auto m = f.create("RecorderModifier", true, false, {{"initialize_result", false}});
    m->initialize(state);
    CHECK_FALSE(m->initialized());
  }
}

TEST_CASE("register rejects what is not a modifier class with the seed's messages") {
  modkit::ModifierFactory f(only({}));
  f.refresh();
  CHECK_THROWS_WITH_AS(f.register_type("X", nullptr), "The provided class is not a type.", modkit::ValueError);
  f.register_type("NullModifier", [](const modkit::Params&) { return std::unique_ptr<modkit::Modifier>(); });
  CHECK_THROWS_WITH_AS(f.create("NullModifier", true, false),
                       "The provided class does not subclass the Modifier base class.", modkit::ValueError);
  f.register_class<HostSideModifier>("HostSideModifier");
  auto m = f.create("HostSideModifier", true, false, {{"anything", 1}, {"start", 4}});
  CHECK(static_cast<HostSideModifier&>(*m).params["anything"] == 1);
  CHECK(*m->start == 4.0);
}

TEST_CASE("modifiers keep their plugin loaded across refresh and factory destruction") {
  std::unique_ptr<modkit::Modifier> m;
  RecordingHost host;
  auto state = host.state();
  {
    modkit::ModifierFactory f(only({kPlugins}));
    f.refresh();
    m = f.create("RecorderModifier", true, false, {{"start", 0}, {"tag", "kept:"}});
    f.refresh();
  }
  m->initialize(state);
  m->update_event(state, modkit::Event{modkit::EventType::BatchStart, 7});
  m->finalize(state);
  CHECK(host.lines().back() == "kept:on_finalize");
}

TEST_CASE("create is safe from several threads once refreshed") {
  auto& f = refreshed_factory();
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (f.create("BoundedModifier", true, true, {{"ratio", 0.25}})) ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == 200);
}

TEST_CASE("search directories: explicit, then MODKIT_PLUGIN_PATH, then the install default") {
  ::setenv("MODKIT_PLUGIN_PATH", "/env/one::/env/two", 1);
  modkit::FactoryOptions o;
  o.plugin_dirs = {"/explicit"};
  modkit::ModifierFactory f(o);
  ::unsetenv("MODKIT_PLUGIN_PATH");
  REQUIRE(f.search_dirs().size() == 4);
  CHECK(f.search_dirs()[0] == "/explicit");
  CHECK(f.search_dirs()[1] == "/env/one");
  CHECK(f.search_dirs()[2] == "/env/two");
  CHECK(f.search_dirs()[3].find("/modkit/plugins") != std::string::npos);
}

TEST_CASE("a missing explicit plugin directory is recorded, not fatal") {
  modkit::ModifierFactory f(only({"/nonexistent/modkit-plugins", kPlugins}));
  f.refresh();
  const auto errors = f.errors();
  REQUIRE(errors.count("") == 1);
  CHECK(errors.at("").message() == "cannot load '/nonexistent/modkit-plugins': plugin directory does not exist");
  CHECK(f.find("RecorderModifier").has_value());
}
