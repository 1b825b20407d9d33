// Plugin path safety: world-writable or foreign-owned plugin files and directories, relative MODKIT_PLUGIN_PATH entries, symlinks.
#include "temp_dir.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>

#include <boost/filesystem.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = boost::filesystem;
using modkit::test::TempDir;

namespace {

const std::string kGood = std::string(MODKIT_TEST_FIXTURE_DIR) + "/good/good_fixture.so";

// `dir` (created) holding a copy of the good plugin; returns the copy's path.
std::string good_plugin_in(const std::string& dir) {
  fs::create_directories(dir);
  const std::string file = dir + "/good_fixture.so";
  fs::copy_file(kGood, file, fs::copy_options::overwrite_existing);
  ::chmod(file.c_str(), 0755);
  return file;
}

modkit::FactoryOptions only(const std::string& dir) {
  modkit::FactoryOptions o;
  o.plugin_dirs = {dir};
  o.use_environment = false;
  o.use_install_dir = false;
  return o;
}

// The record for GoodFixtureModifier after refreshing a factory over `dir`.
modkit::LoadRecord good_record(const modkit::FactoryOptions& o) {
  modkit::ModifierFactory f(o);
  f.refresh();
  for (const auto& r : f.records()) {
    if (r.name == "GoodFixtureModifier") return r;
  }
  FAIL("no record for GoodFixtureModifier");
  return {};
}

const std::string kMe = std::to_string(::geteuid());

}  // namespace

TEST_CASE("a world-writable plugin file is refused before it is loaded") {
  TempDir tmp;
  const std::string file = good_plugin_in(tmp / "plugins");
  ::chmod(file.c_str(), 0777);
  modkit::ModifierFactory f(only(tmp / "plugins"));
  f.refresh();
  const auto errors = f.errors();
  REQUIRE(errors.count("GoodFixtureModifier") == 1);
  const auto& r = errors.at("GoodFixtureModifier");
  CHECK(r.stage == modkit::LoadStage::Scan);
  CHECK(r.file == file);
  CHECK(r.reason == "'" + file + "' is world-writable (mode 0777)");
  CHECK_FALSE(f.find("GoodFixtureModifier").has_value());
  CHECK_THROWS_WITH_AS(f.create("GoodFixtureModifier", true, true), r.message().c_str(), modkit::LoadError);

  SUBCASE("allow_unsafe_paths loads it") {
    auto o = only(tmp / "plugins");
    o.allow_unsafe_paths = true;
    CHECK(good_record(o).ok());
  }
}

TEST_CASE("a world-writable plugin directory, or one below it, is refused") {
  TempDir tmp;
  SUBCASE("the search directory") {
    const std::string file = good_plugin_in(tmp / "plugins");
    ::chmod((tmp / "plugins").c_str(), 0777);
    CHECK(good_record(only(tmp / "plugins")).reason == "'" + tmp / "plugins" + "' is world-writable (mode 0777)");
  }
  SUBCASE("a subdirectory the walk enters, sticky bit or not") {
    good_plugin_in(tmp / "plugins/sub");
    ::chmod((tmp / "plugins/sub").c_str(), 01777);
    CHECK(good_record(only(tmp / "plugins")).reason == "'" + tmp / "plugins/sub" + "' is world-writable (mode 1777)");
  }
  SUBCASE("a safe search directory below an unsafe one is not checked above itself") {
    good_plugin_in(tmp / "open/plugins");
    ::chmod((tmp / "open").c_str(), 0777);
    CHECK(good_record(only(tmp / "open/plugins")).ok());
  }
}

TEST_CASE("a plugin file or directory owned by another user is refused") {
  TempDir tmp;
  SUBCASE("the file") {
    const std::string file = good_plugin_in(tmp / "plugins");
    REQUIRE(::chown(file.c_str(), 12345, static_cast<gid_t>(-1)) == 0);
    const auto r = good_record(only(tmp / "plugins"));
    CHECK(r.stage == modkit::LoadStage::Scan);
    CHECK(r.reason == "'" + file + "' is owned by uid 12345, expected root or uid " + kMe);
  }
  SUBCASE("the directory") {
    good_plugin_in(tmp / "plugins");
    REQUIRE(::chown((tmp / "plugins").c_str(), 12345, static_cast<gid_t>(-1)) == 0);
    CHECK(good_record(only(tmp / "plugins")).reason ==
          "'" + tmp / "plugins" + "' is owned by uid 12345, expected root or uid " + kMe);
    auto o = only(tmp / "plugins");
    o.allow_unsafe_paths = true;
    CHECK(good_record(o).ok());
  }
}

TEST_CASE("a relative MODKIT_PLUGIN_PATH entry is recorded, not resolved against the working directory") {
  TempDir tmp;
  ::setenv("MODKIT_PLUGIN_PATH", (tmp.path() + ":relative/plugins").c_str(), 1);
  modkit::FactoryOptions o;
  o.use_install_dir = false;
  modkit::ModifierFactory f(o);
  ::unsetenv("MODKIT_PLUGIN_PATH");
  REQUIRE(f.search_dirs().size() == 1);
  CHECK(f.search_dirs()[0] == tmp.path());
  f.refresh();
  const auto errors = f.errors();
  REQUIRE(errors.count("") == 1);
  CHECK(errors.at("").message() ==
        "cannot load 'relative/plugins': relative entry in MODKIT_PLUGIN_PATH, expected an absolute directory");

  SUBCASE("allow_unsafe_paths keeps it") {
    ::setenv("MODKIT_PLUGIN_PATH", "relative/plugins", 1);
    o.allow_unsafe_paths = true;
    modkit::ModifierFactory g(o);
    ::unsetenv("MODKIT_PLUGIN_PATH");
    REQUIRE(g.search_dirs().size() == 1);
    CHECK(g.search_dirs()[0] == "relative/plugins");
  }
}

TEST_CASE("a symlinked plugin is checked and recorded at its resolved path") {
  TempDir tmp;
  const std::string real = good_plugin_in(tmp / "real");
  fs::create_directories(tmp / "plugins");
  fs::create_symlink(real, tmp / "plugins/link.so");
  SUBCASE("safe: loaded, and the record keeps both paths") {
    const auto r = good_record(only(tmp / "plugins"));
    CHECK(r.ok());
    CHECK(r.file == tmp / "plugins/link.so");
    CHECK(r.resolved == real);
    CHECK(r.to_json().at("resolved") == real);
  }
  SUBCASE("the directory that really holds it is world-writable") {
    ::chmod((tmp / "real").c_str(), 0777);
    const auto r = good_record(only(tmp / "plugins"));
    CHECK(r.stage == modkit::LoadStage::Scan);
    CHECK(r.reason == "'" + tmp / "real" + "' is world-writable (mode 0777)");
    CHECK(r.resolved == real);
  }
  SUBCASE("a plain file has no resolved path in its record") {
    good_plugin_in(tmp / "plain");
    const auto r = good_record(only(tmp / "plain"));
    CHECK(r.ok());
    CHECK(r.resolved.empty());
    CHECK(r.to_json().count("resolved") == 0);
  }
}
