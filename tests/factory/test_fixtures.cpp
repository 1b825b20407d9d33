// Every broken-plugin fixture: the host keeps running, the good plugin beside it loads, the record says why.
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/plugin_modifier.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

namespace {

const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;

struct Scan {
  std::unique_ptr<modkit::ModifierFactory> factory;
  std::string dir;

  const modkit::LoadRecord& error(const std::string& name) const {
    static modkit::LoadRecord none;
    const auto errors = factory->errors();
    auto it = errors.find(name);
    REQUIRE_MESSAGE(it != errors.end(), "no load error recorded for '" << name << "'");
    static std::map<std::string, modkit::LoadRecord> kept;  // keep the reference valid
    return kept[dir + name] = it->second;
  }
};

Scan scan(const std::string& fixture) {
  modkit::FactoryOptions o;
  o.plugin_dirs = {kFixtures + "/" + fixture};
  o.use_environment = false;
  o.use_install_dir = false;
  Scan s{std::make_unique<modkit::ModifierFactory>(o), kFixtures + "/" + fixture};
  s.factory->refresh();
  // one bad file never hides the good one beside it
  CHECK_MESSAGE(s.factory->find("GoodFixtureModifier").has_value(), "GoodFixtureModifier missing in " << fixture);
  CHECK(s.factory->create("GoodFixtureModifier", false, false, {{"sparsity", 0.25}}) != nullptr);
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("a file named .so that is not ELF is recorded at scan with its first bytes") {
  auto s = scan("not_elf");
  const auto& r = s.error("");
  CHECK(r.stage == modkit::LoadStage::Scan);
  CHECK(r.file == s.dir + "/bad.so");
  CHECK(contains(r.reason, "not an ELF file (expected the bytes '\\x7fELF', found '"));
}

TEST_CASE("a truncated ELF file is recorded at scan, not read past its end") {
  auto s = scan("truncated");
  const auto& r = s.error("");
  CHECK(r.stage == modkit::LoadStage::Scan);
  CHECK(contains(r.reason, "truncated"));
  CHECK(contains(r.reason, "beyond the end of the file (200 bytes)"));
}

TEST_CASE("a missing DT_NEEDED dependency is recorded at open under the plugin's modifier name") {
  auto s = scan("missing_dependency");
  const auto& r = s.error("MissingDepModifier");
  CHECK(r.stage == modkit::LoadStage::Open);
  CHECK(r.reason == "libmodkit_fixture_dep.so: cannot open shared object file: No such file or directory");
  CHECK(r.message() == "cannot load 'MissingDepModifier' from '" + s.dir +
                           "/missing_dep.so': libmodkit_fixture_dep.so: cannot open shared object file: "
                           "No such file or directory");
  // create raises the recorded load error, not "not found"
  CHECK_THROWS_WITH_AS(s.factory->create("MissingDepModifier", true, true), r.message().c_str(), modkit::LoadError);
}

TEST_CASE("an undefined symbol fails dlopen with RTLD_NOW and is recorded at open") {
  auto s = scan("undefined_symbol");
  const auto& r = s.error("UndefinedSymbolModifier");
  CHECK(r.stage == modkit::LoadStage::Open);
  CHECK(r.reason == "undefined symbol: modkit_fixture_missing_function");
}

TEST_CASE("a Modifier symbol that is not a descriptor is refused by its magic") {
  auto s = scan("wrong_magic");
  const auto& r = s.error("WrongMagicModifier");
  CHECK(r.stage == modkit::LoadStage::Validate);
  CHECK(r.reason == "symbol 'WrongMagicModifier' is not a modkit descriptor (magic 0xdeadbeef, expected 0x444d4b4d)");
}

TEST_CASE("a plugin built for another ABI major is refused") {
  auto s = scan("abi_major");
  const auto& r = s.error("AbiMajorModifier");
  CHECK(r.stage == modkit::LoadStage::Validate);
  CHECK(r.reason == "built for ABI 2.0, host supports 1.x");
}

TEST_CASE("a plugin that needs a newer host minor is refused") {
  auto s = scan("newer_minor");
  const auto& r = s.error("NewerMinorModifier");
  CHECK(r.stage == modkit::LoadStage::Validate);
  CHECK(r.reason == "needs ABI 1.2 or newer, host provides 1.1");
}

TEST_CASE("a plugin built against another LibTorch is refused with a sentence") {
  auto s = scan("fingerprint");
  const auto& r = s.error("FingerprintModifier");
  CHECK(r.stage == modkit::LoadStage::Validate);
  CHECK(r.reason == "built against LibTorch 0.0.1-fixture, host uses LibTorch " +
                        modkit::FactoryOptions::default_torch_version());
}

TEST_CASE("null required callbacks are refused") {
  auto s = scan("null_callbacks");
  CHECK(s.error("NullCallbacksModifier").reason == "descriptor of 'NullCallbacksModifier' lacks required callbacks: create");
}

TEST_CASE("a descriptor smaller than the ABI's is refused before any field past its size is read") {
  auto s = scan("small_struct");
  CHECK(s.error("SmallStructModifier").reason ==
        "descriptor of 'SmallStructModifier' is too small (16 bytes, expected at least " +
            std::to_string(sizeof(modkit_modifier_descriptor)) + ")");
}

TEST_CASE("a schema whose default is not JSON is refused") {
  auto s = scan("bad_schema");
  const auto& r = s.error("BadSchemaModifier");
  CHECK(r.stage == modkit::LoadStage::Validate);
  CHECK(r.reason == "BadSchemaModifier parameter 'sparsity' default is not valid JSON: 'not json'");
}

TEST_CASE("a data object named like a modifier is refused before it is called") {
  auto s = scan("data_symbol");
  const auto& r = s.error("DataObjectModifier");
  CHECK(r.stage == modkit::LoadStage::Scan);
  CHECK(r.reason == "symbol 'DataObjectModifier' is a data object, expected a function returning a modkit descriptor");
}

TEST_CASE("a library without modifiers is not an error") {
  auto s = scan("no_entry");
  CHECK(s.factory->errors().empty());
  CHECK(s.factory->modifiers().size() == 1);
}

TEST_CASE("an exception thrown in create becomes a clear error and the factory goes on") {
  auto s = scan("throws_in_create");
  try {
    s.factory->create("ThrowsInCreateModifier", true, false);
    FAIL("create did not throw");
  } catch (const modkit::PluginError& e) {
    CHECK(e.status() == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(e.what()) == "ThrowsInCreateModifier.create failed: fixture: create refused");
  }
}

TEST_CASE("an exception thrown in on_initialize becomes a clear error and leaves the modifier uninitialized") {
  auto s = scan("throws_in_initialize");
  auto m = s.factory->create("ThrowsInInitializeModifier", true, false);
  modkit::State state;
  try {
    m->initialize(state);
    FAIL("initialize did not throw");
  } catch (const modkit::PluginError& e) {
    CHECK(e.status() == MODKIT_ERROR_INTERNAL);
    CHECK(std::string(e.what()) == "ThrowsInInitializeModifier.on_initialize failed: fixture: initialize failed");
  }
  CHECK_FALSE(m->initialized());
}

TEST_CASE("the same name in two files: the first in sorted order wins, the other is recorded as shadowed") {
  auto s = scan("duplicate");
  auto m = s.factory->create("DuplicateModifier", false, false);
  CHECK(dynamic_cast<modkit::PluginModifier&>(*m).info().version == "1.0.0-first");
  int loaded = 0, shadowed = 0;
  for (const auto& r : s.factory->records()) {
    if (r.name != "DuplicateModifier") continue;
    if (r.ok()) {
      ++loaded;
      CHECK(r.file == s.dir + "/a_first.so");
    } else {
      ++shadowed;
      CHECK(r.stage == modkit::LoadStage::Shadowed);
      CHECK(r.file == s.dir + "/b_second.so");
      CHECK(r.reason == "shadowed by '" + s.dir + "/a_first.so', which provides the same name first");
    }
  }
  CHECK(loaded == 1);
  CHECK(shadowed == 1);
  CHECK(s.factory->errors().count("DuplicateModifier") == 0);  // shadowing is not a failure
}

TEST_CASE("a stripped plugin is still discovered through .dynsym") {
  auto s = scan("stripped");
  CHECK(s.factory->find("StrippedModifier").has_value());
}

TEST_CASE("one file can export several modifiers, and other symbols are ignored") {
  auto s = scan("multi");
  CHECK(s.factory->find("AlphaModifier").has_value());
  const auto beta = s.factory->find("BetaModifier");
  REQUIRE(beta.has_value());
  CHECK(beta->info.pipeline == "basic");
  CHECK(beta->info.find_param("steps")->default_value == 3);
  CHECK(s.factory->errors().empty());
}

TEST_CASE("the walk recurses, and the top-level experimental subtree is a registry of its own") {
  auto s = scan("tree");
  for (const char* name : {"TreeMainModifier", "TreeNestedModifier"}) {
    const auto e = s.factory->find(name);
    REQUIRE(e.has_value());
    CHECK_FALSE(e->experimental);
  }
  for (const char* name : {"TreeExperimentalModifier", "TreeDeepExperimentalModifier"}) {
    const auto e = s.factory->find(name);
    REQUIRE(e.has_value());
    CHECK(e->experimental);
    CHECK_THROWS_AS(s.factory->create(name, true, false), modkit::ValueError);
    CHECK(s.factory->create(name, true, true) != nullptr);
  }
}

TEST_CASE("every fixture directory scanned together: each failure is recorded and every good plugin loads") {
  modkit::FactoryOptions o;
  o.plugin_dirs = {kFixtures};
  o.use_environment = false;
  o.use_install_dir = false;
  modkit::ModifierFactory f(o);
  f.refresh();
  const auto errors = f.errors();
  for (const char* name : {"MissingDepModifier", "UndefinedSymbolModifier", "WrongMagicModifier", "AbiMajorModifier",
                           "NewerMinorModifier", "FingerprintModifier", "NullCallbacksModifier",
                           "SmallStructModifier", "BadSchemaModifier", "DataObjectModifier"}) {
    CHECK_MESSAGE(errors.count(name) == 1, name);
  }
  for (const char* name : {"GoodFixtureModifier", "StrippedModifier", "AlphaModifier", "BetaModifier",
                           "DuplicateModifier", "ThrowsInCreateModifier", "ThrowsInInitializeModifier"}) {
    CHECK_MESSAGE(f.find(name).has_value(), name);
  }
}
