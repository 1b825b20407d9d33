// Crash-isolated scanning: plugins that crash, abort, exit or hang while loading are recorded and the host survives.
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>

#include <boost/filesystem.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <tuple>

namespace {

const std::string kHostile = MODKIT_TEST_HOSTILE_DIR;
const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;

// The hanging fixture never returns: the scan timeout is its whole cost. Tests without it keep a
// generous timeout, so a loaded machine (a slow exec, a slow first load) never looks like a hang.
constexpr std::chrono::seconds kHangTimeout{2};
constexpr std::chrono::seconds kNoHangTimeout{60};

modkit::FactoryOptions only(const std::string& dir, modkit::Isolation isolation = modkit::Isolation::Subprocess,
                            std::chrono::milliseconds scan_timeout = kNoHangTimeout) {
  modkit::FactoryOptions o;
  o.plugin_dirs = {dir};
  o.use_environment = false;
  o.use_install_dir = false;
  o.isolation = isolation;
  o.scan_timeout = scan_timeout;
  return o;
}

modkit::FactoryOptions with_hang(const std::string& dir) {
  return only(dir, modkit::Isolation::Subprocess, kHangTimeout);
}

void check_good_loads(const modkit::ModifierFactory& f) {
  // the good plugin beside the hostile one is loaded here, in the host
  CHECK(f.find("GoodFixtureModifier").has_value());
  CHECK(f.create("GoodFixtureModifier", false, false, {{"sparsity", 0.25}}) != nullptr);
}

}  // namespace

TEST_CASE("a plugin that kills or hangs the process loading it is recorded per name and the host goes on") {
  struct Case {
    const char* dir;
    const char* file;
    const char* name;
    const char* reason;
  };
  const Case cases[] = {
      {"segv_ctor", "segv_ctor.so", "SegvCtorModifier", "crashed with SIGSEGV while loading"},
      {"abort_ctor", "abort_ctor.so", "AbortCtorModifier", "aborted (SIGABRT) while loading"},
      {"exit_ctor", "exit_ctor.so", "ExitCtorModifier", "exited with status 0 before reporting"},
      {"hang_ctor", "hang_ctor.so", "HangCtorModifier", "timed out after 2 s while loading"},
      {"crash_descriptor", "crash_descriptor.so", "CrashDescriptorModifier", "crashed with SIGSEGV while loading"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.dir) {
      const std::string dir = kHostile + "/" + c.dir;
      modkit::ModifierFactory f(with_hang(dir));
      f.refresh();
      const auto errors = f.errors();
      REQUIRE(errors.count(c.name) == 1);
      const auto& r = errors.at(c.name);
      CHECK(r.stage == modkit::LoadStage::Isolated);
      CHECK(std::string(modkit::to_string(r.stage)) == "isolated");
      CHECK(r.file == dir + "/" + c.file);
      CHECK(r.reason == c.reason);
      CHECK(r.message() == "cannot load '" + std::string(c.name) + "' from '" + dir + "/" + c.file + "': " + c.reason);
      CHECK_FALSE(f.find(c.name).has_value());
      CHECK_THROWS_WITH_AS(f.create(c.name, true, true), r.message().c_str(), modkit::LoadError);
      check_good_loads(f);
    }
  }
}

TEST_CASE("an exception thrown by a static constructor through dlopen is recorded at open by the child") {
  // std::terminate only when nothing catches it: the loader does, so the child reports it
  const std::string dir = kHostile + "/throw_ctor";
  modkit::ModifierFactory f(only(dir));
  f.refresh();
  const auto errors = f.errors();
  const auto& r = errors.at("CtorAbortModifier");
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's dlopen interceptor has no unwind information: the exception ends the
  // child in std::terminate, which the parent records; the host survives either way
  CHECK(r.stage == modkit::LoadStage::Isolated);
  CHECK(r.reason == "aborted (SIGABRT) while loading");
#else
  CHECK(r.stage == modkit::LoadStage::Open);
  CHECK(r.reason == "a static constructor threw: fixture: static constructor failed");
#endif
  check_good_loads(f);
}

TEST_CASE("the whole hostile tree in one refresh: each dead child is replaced and every good copy is seen") {
  modkit::ModifierFactory f(with_hang(kHostile));
  f.refresh();
  const auto errors = f.errors();
#if defined(__SANITIZE_ADDRESS__)
  CHECK(errors.at("CtorAbortModifier").stage == modkit::LoadStage::Isolated);  // see the test above
#else
  CHECK(errors.at("CtorAbortModifier").stage == modkit::LoadStage::Open);
#endif
  for (const char* name : {"SegvCtorModifier", "AbortCtorModifier", "ExitCtorModifier", "HangCtorModifier",
                           "CrashDescriptorModifier"}) {
    REQUIRE_MESSAGE(errors.count(name) == 1, name);
    CHECK(errors.at(name).stage == modkit::LoadStage::Isolated);
  }
  check_good_loads(f);
  int good_records = 0;
  for (const auto& r : f.records()) {
    if (r.name != "GoodFixtureModifier") continue;
    ++good_records;
    CHECK((r.ok() || r.stage == modkit::LoadStage::Shadowed));
  }
  CHECK(good_records == 6);  // one copy per case directory: the first loads, the others are shadowed
}

TEST_CASE("a second refresh gives the same records and does not rescan what is loaded") {
  modkit::ModifierFactory f(only(kHostile + "/segv_ctor"));
  f.refresh();
  const auto first = f.records();
  f.refresh();
  const auto second = f.records();
  REQUIRE(first.size() == second.size());
  for (size_t i = 0; i < first.size(); ++i) CHECK(first[i].to_json() == second[i].to_json());
}

TEST_CASE("crash-isolated and in-process loading give the same records for the normal fixtures") {
  modkit::ModifierFactory isolated(only(kFixtures));
  modkit::ModifierFactory in_process(only(kFixtures, modkit::Isolation::InProcess));
  isolated.refresh();
  in_process.refresh();
  const auto a = isolated.records();
  const auto b = in_process.records();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_json() == b[i].to_json());
  CHECK(isolated.modifiers().size() == in_process.modifiers().size());
  CHECK(in_process.create("GoodFixtureModifier", false, false) != nullptr);
  CHECK(isolated.create("TreeExperimentalModifier", false, true) != nullptr);
}

TEST_CASE("load_from_package scans in the child too") {
  modkit::ModifierFactory f(only(kFixtures));
  const auto found = f.load_from_package(kHostile + "/crash_descriptor");
  CHECK(found.count("GoodFixtureModifier") == 1);
  CHECK(found.count("CrashDescriptorModifier") == 0);
  CHECK(f.errors().at("CrashDescriptorModifier").reason == "crashed with SIGSEGV while loading");
}

TEST_CASE("the scanner is found beside modkit_core, or where the options or environment say") {
  SUBCASE("an explicit scanner path") {
    auto o = only(kHostile + "/abort_ctor");
    o.scanner_path = MODKIT_TEST_SCANNER;
    modkit::ModifierFactory f(o);
    f.refresh();
    CHECK(f.errors().at("AbortCtorModifier").reason == "aborted (SIGABRT) while loading");
  }
  SUBCASE("MODKIT_PLUGIN_SCANNER") {
    ::setenv("MODKIT_PLUGIN_SCANNER", MODKIT_TEST_SCANNER, 1);
    modkit::ModifierFactory f(only(kHostile + "/abort_ctor"));
    f.refresh();
    ::unsetenv("MODKIT_PLUGIN_SCANNER");
    CHECK(f.errors().at("AbortCtorModifier").reason == "aborted (SIGABRT) while loading");
  }
  SUBCASE("no scanner: the normal fixtures load in this process") {
    auto o = only(kFixtures + "/multi");
    o.scanner_path = "/nonexistent/modkit-plugin-scanner";
    modkit::ModifierFactory f(o);
    f.refresh();
    CHECK(f.find("AlphaModifier").has_value());
    check_good_loads(f);
  }
  SUBCASE("a scanner that does not start: the normal fixtures load in this process") {
    auto o = only(kFixtures + "/multi");
    o.scanner_path = "/bin/false";
    modkit::ModifierFactory f(o);
    f.refresh();
    CHECK(f.find("BetaModifier").has_value());
    check_good_loads(f);
  }
}

TEST_CASE("in-process mode still loads and refuses the normal fixtures") {
  modkit::ModifierFactory f(only(kFixtures + "/missing_dependency", modkit::Isolation::InProcess));
  f.refresh();
  CHECK(f.errors().at("MissingDepModifier").stage == modkit::LoadStage::Open);
  check_good_loads(f);
}

TEST_CASE("a long list is shared by several scanner children, and a crash in one share costs only its file") {
  namespace fs = boost::filesystem;
  const fs::path dir = fs::temp_directory_path() / fs::unique_path("modkit-isolation-%%%%%%");
  fs::create_directories(dir);
  char name[32];
  for (int i = 0; i < 100; ++i) {
    std::snprintf(name, sizeof name, "p%03d.so", i);
    fs::copy_file(kFixtures + "/good/good_fixture.so", dir / name);
  }
  // sorted into the middle of the second and the last share
  fs::copy_file(kHostile + "/segv_ctor/segv_ctor.so", dir / "p040_crash.so");
  fs::copy_file(kHostile + "/abort_ctor/abort_ctor.so", dir / "p099_crash.so");
  {
    modkit::ModifierFactory f(only(dir.string()));
    f.refresh();
    const auto errors = f.errors();
    CHECK(errors.at("SegvCtorModifier").reason == "crashed with SIGSEGV while loading");
    CHECK(errors.at("AbortCtorModifier").reason == "aborted (SIGABRT) while loading");
    int loaded = 0, shadowed = 0;
    for (const auto& r : f.records()) {
      if (r.name != "GoodFixtureModifier") continue;
      loaded += r.ok() ? 1 : 0;
      shadowed += r.stage == modkit::LoadStage::Shadowed ? 1 : 0;
    }
    CHECK(loaded == 1);
    CHECK(shadowed == 99);
    CHECK(f.records().front().file == (dir / "p000.so").string());  // walk order kept
  }
  boost::system::error_code ec;
  fs::remove_all(dir, ec);
}
