// ModifierFactory::catalog(): the metadata-only view predicts what refresh() finds, without running plugin code.
#include <modkit/core/catalog.hpp>
#include <modkit/core/factory.hpp>

#include <doctest/doctest.h>

#include <algorithm>

namespace {

const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;

modkit::FactoryOptions options_for(const std::vector<std::string>& dirs) {
  modkit::FactoryOptions o;
  o.plugin_dirs = dirs;
  o.use_environment = false;
  o.use_install_dir = false;
  o.cache = modkit::CacheMode::Off;
  return o;
}

}  // namespace

TEST_CASE("catalog() names what refresh() registers, with the same first-wins shadowing") {
  const std::string dir = kFixtures + "/duplicate";
  const modkit::ModifierFactory factory(options_for({dir}));
  const modkit::Catalog catalog = factory.catalog();
  CHECK(catalog.search_dirs == std::vector<std::string>{dir});
  CHECK(catalog.cache_file.empty());
  CHECK(catalog.problems.empty());

  std::vector<std::string> winners;
  for (const auto& e : catalog.entries) {
    CHECK(e.source == modkit::RecordSource::Scan);
    if (e.shadowed_by.empty()) winners.push_back(e.info.name);
    if (e.file == dir + "/b_second.so") CHECK(e.shadowed_by == dir + "/a_first.so");
  }
  std::sort(winners.begin(), winners.end());

  modkit::ModifierFactory loaded(options_for({dir}));
  loaded.refresh();
  std::vector<std::string> registered;
  for (const auto& m : loaded.modifiers()) {
    registered.push_back(m.info.name);
    const modkit::CatalogEntry* entry = catalog.find(m.info.name);
    REQUIRE(entry != nullptr);
    CHECK(entry->file == m.file);
  }
  CHECK(winners == registered);
}

TEST_CASE("catalog() records what refresh() refuses before loading: incompatible builds, missing directories") {
  const std::string missing = kFixtures + "/no-such-dir";
  const modkit::ModifierFactory factory(options_for({kFixtures + "/abi_major", missing}));
  const modkit::Catalog catalog = factory.catalog();
  // in refresh()'s order: the directories, then each file
  REQUIRE(catalog.problems.size() == 2);
  CHECK(catalog.problems[0].file == missing);
  CHECK(catalog.problems[0].reason == "plugin directory does not exist");
  CHECK(catalog.problems[1].name == "AbiMajorModifier");
  CHECK(catalog.problems[1].stage == modkit::LoadStage::Validate);
  CHECK(catalog.problems[1].reason == "built for ABI 2.0, host supports 1.x");
  CHECK(catalog.find("AbiMajorModifier") == nullptr);
  CHECK(catalog.find("GoodFixtureModifier") != nullptr);
  CHECK(catalog.names() == std::vector<std::string>{"AbiMajorModifier", "GoodFixtureModifier"});
}

TEST_CASE("scan_plugin_file reads one file's metadata and says why a file is unreadable") {
  const auto good = modkit::scan_plugin_file(kFixtures + "/good/good_fixture.so", false, "");
  REQUIRE(good.entries.size() == 1);
  CHECK(good.entries[0].info.name == "GoodFixtureModifier");
  CHECK(good.unreadable.empty());

  const auto not_elf = modkit::scan_plugin_file(kFixtures + "/not_elf/bad.so", false, "");
  CHECK(not_elf.entries.empty());
  CHECK(not_elf.unreadable.rfind("'" + kFixtures + "/not_elf/bad.so' is not an ELF file", 0) == 0);
  REQUIRE(not_elf.problems.size() == 1);
  CHECK(not_elf.problems[0].reason.rfind("not an ELF file", 0) == 0);
}
