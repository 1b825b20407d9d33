// The registry cache through the factory: warm refreshes run no plugin code, lazy loading, invalidation, cached failures.
#include "cache_test_support.hpp"
#include "recording_host.hpp"

#include "core/src/core_library.hpp"
#include "core/src/registry_cache.hpp"
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>

#include <doctest/doctest.h>

using namespace modkit::test;
using modkit::LoadStage;
using modkit::RecordSource;

namespace {

std::vector<std::string> cached_paths(const std::string& cache_file) {
  const std::string bytes = read_file(cache_file);
  const auto image = modkit::detail::decode_cache(modkit::detail::cache_bytes(bytes), cache_file);
  std::vector<std::string> paths;
  for (const auto& f : image.files) paths.push_back(f.path);
  return paths;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A plugin directory with the good fixture and the marker plugin, and a cache directory beside it.
struct Setup {
  TempDir tmp;
  std::string plugins = tmp / "plugins";
  std::string cache = tmp / "cache";
  std::string good = copy_plugin(kGood, plugins + "/good_fixture.so");
  std::string marker_plugin = copy_plugin(kCachePlugins + "/cache_marker.so", plugins + "/marker.so");
  std::string marker = tmp / "marker.txt";
  std::string scans = tmp / "scans.txt";
  ScopedEnv marker_env{"MODKIT_TEST_MARKER", marker.c_str()};

  modkit::FactoryOptions options() const {
    auto o = cached(plugins, cache);
    o.scanner_path = counting_scanner(tmp, scans);
    return o;
  }
};

}  // namespace

TEST_CASE("a warm cache gives every record without starting the scanner or loading a library") {
  Setup s;
  modkit::ModifierFactory cold(s.options());
  cold.refresh();
  CHECK(record_of(cold, "GoodFixtureModifier").source == RecordSource::Scan);
  CHECK(record_of(cold, "MarkerModifier").source == RecordSource::Scan);
  CHECK(line_count(s.scans) == 1);
  CHECK(line_count(s.marker) == 1);  // the marker's static constructor ran in the scanner child only
  CHECK_FALSE(loaded_here(s.good));  // a file that passed the scan is loaded when first used
  CHECK_FALSE(loaded_here(s.marker_plugin));
  CHECK(cold.cache_file().rfind(s.cache + "/registry-", 0) == 0);

  modkit::ModifierFactory warm(s.options());
  warm.refresh();
  const auto records = warm.records();
  REQUIRE(records.size() == 2);
  for (const auto& r : records) {
    CAPTURE(r.name);
    CHECK(r.ok());
    CHECK(r.source == RecordSource::Cache);
    CHECK(r.to_json()["source"] == "cache");
  }
  CHECK(warm.errors().empty());
  CHECK(line_count(s.scans) == 1);   // no scanner started
  CHECK(line_count(s.marker) == 1);  // no plugin code ran
  CHECK_FALSE(loaded_here(s.good));
  CHECK_FALSE(loaded_here(s.marker_plugin));
  const auto entry = warm.find("GoodFixtureModifier");
  REQUIRE(entry.has_value());
  CHECK(entry->file == s.good);
  CHECK(entry->info.version == "1.0.0");

  SUBCASE("the first create loads the library and validates it") {
    auto m = warm.create("MarkerModifier", false, false);
    REQUIRE(m != nullptr);
    CHECK(line_count(s.marker) == 2);  // now in this process
    CHECK(loaded_here(s.marker_plugin));
    CHECK_FALSE(loaded_here(s.good));  // only the file that was used
    RecordingHost host;
    auto state = host.state();
    auto good = warm.create("GoodFixtureModifier", false, false, {{"sparsity", 0.25}});
    good->initialize(state);
    CHECK(good->initialized());
    good->finalize(state);
    CHECK(loaded_here(s.good));
    warm.create("MarkerModifier", false, false);
    CHECK(line_count(s.marker) == 2);  // loaded once
  }
  SUBCASE("parameters are checked against the cached schema before anything is loaded") {
    CHECK_THROWS_AS(warm.create("GoodFixtureModifier", false, false, {{"sparsity", 2.0}}), modkit::ValueError);
    CHECK_FALSE(loaded_here(s.good));
  }
}

TEST_CASE("a warm refresh gives the cold one's records in the same order: shadowed, failed and symlinked ones too") {
  Setup s;
  const std::string second = s.tmp / "second";
  copy_plugin(kFixtures + "/wrong_magic/wrong_magic.so", s.plugins + "/wrong_magic.so");
  copy_plugin(kGood, second + "/a_good_again.so");  // the first directory provides its name: shadowed
  REQUIRE(::symlink(s.marker_plugin.c_str(), (second + "/b_link.so").c_str()) == 0);
  copy_plugin(kCachePlugins + "/cache_marker.so", second + "/experimental/marker.so");
  auto options = s.options();
  options.plugin_dirs.push_back(second);

  auto fields = [](const modkit::LoadRecord& r) {
    return r.name + "|" + r.file + "|" + r.resolved + "|" + to_string(r.stage) + "|" + r.reason + "|" +
           (r.experimental ? "x" : "m");
  };
  modkit::ModifierFactory cold(options);
  cold.refresh();
  modkit::ModifierFactory warm(options);
  warm.refresh();
  const auto cold_records = cold.records(), warm_records = warm.records();
  REQUIRE(cold_records.size() == 6);
  REQUIRE(warm_records.size() == cold_records.size());
  for (size_t i = 0; i < cold_records.size(); ++i) {
    CAPTURE(i);
    CHECK(fields(warm_records[i]) == fields(cold_records[i]));
    CHECK(cold_records[i].source == RecordSource::Scan);
    CHECK(warm_records[i].source == RecordSource::Cache);
  }
  CHECK(line_count(s.scans) == 1);
  const auto shadowed = std::find_if(warm_records.begin(), warm_records.end(), [&](const auto& r) {
    return r.file == second + "/a_good_again.so";
  });
  REQUIRE(shadowed != warm_records.end());
  CHECK(shadowed->stage == LoadStage::Shadowed);
  CHECK(shadowed->reason == "shadowed by '" + s.good + "', which provides the same name first");
  const auto link = std::find_if(warm_records.begin(), warm_records.end(), [&](const auto& r) {
    return r.file == second + "/b_link.so";
  });
  REQUIRE(link != warm_records.end());
  CHECK(link->resolved == s.marker_plugin);
  CHECK(warm.errors().size() == cold.errors().size());
  CHECK(warm.errors().at("WrongMagicModifier").source == RecordSource::Cache);
  REQUIRE(warm.find("MarkerModifier").has_value());
  CHECK(warm.find("MarkerModifier")->experimental);  // the experimental registry is searched first
  CHECK(warm.find("GoodFixtureModifier")->file == s.good);
}

TEST_CASE("an entry is used only while the file and the host are unchanged") {
  Setup s;
  {
    modkit::ModifierFactory f(s.options());
    f.refresh();
  }
  auto source_now = [&](const modkit::FactoryOptions& o) {
    modkit::ModifierFactory f(o);
    f.refresh();
    return record_of(f, "GoodFixtureModifier").source;
  };
  REQUIRE(source_now(s.options()) == RecordSource::Cache);
  SUBCASE("another mtime") {
    set_mtime(s.good, kPast + 60);
    CHECK(source_now(s.options()) == RecordSource::Scan);
    CHECK(source_now(s.options()) == RecordSource::Cache);  // and cached again
  }
  SUBCASE("another size") {
    append(s.good, "more bytes");
    set_mtime(s.good, kPast);
    CHECK(source_now(s.options()) == RecordSource::Scan);
  }
  SUBCASE("another file under the same name (inode)") {
    copy_plugin(kGood, s.tmp / "replacement.so");
    std::filesystem::rename(s.tmp / "replacement.so", s.good);
    CHECK(source_now(s.options()) == RecordSource::Scan);
  }
  SUBCASE("another LibTorch fingerprint uses another cache file") {
    auto o = s.options();
    o.host_torch_version = "9.9.9-other";
    CHECK(modkit::ModifierFactory(o).cache_file() != modkit::ModifierFactory(s.options()).cache_file());
    CHECK(source_now(o) == RecordSource::Scan);
    CHECK(source_now(s.options()) == RecordSource::Cache);  // both are kept
  }
  SUBCASE("a cache written for another host key is ignored and replaced") {
    const std::string file = modkit::ModifierFactory(s.options()).cache_file();
    modkit::detail::CacheImage image;
    image.host_key = "modkit registry cache 1; abi 1.99; another core";
    image.files.push_back({s.good, false, *modkit::detail::FileStamp::of(s.good), {}, {}});
    write_file(file, modkit::detail::encode_cache(image));
    CHECK(source_now(s.options()) == RecordSource::Scan);
    CHECK(source_now(s.options()) == RecordSource::Cache);
  }
}

TEST_CASE("the host key names the ABI version, the LibTorch fingerprint and the core build") {
  auto host = modkit::detail::HostFingerprint::current();
  host.torch_version = "1.2.3";
  const std::string key = modkit::detail::cache_host_key(host);
  CHECK(key.rfind("modkit registry cache 1; abi " + std::to_string(MODKIT_ABI_MAJOR) + "." +
                      std::to_string(MODKIT_ABI_MINOR) + "; torch 1.2.3; cxx11 ", 0) == 0);
  // this test links the core statically (modkit_core_internal): the core build is the test executable
  REQUIRE(!modkit::detail::core_library_path().empty());
  CHECK(key.find("; core " + modkit::detail::core_library_path() + " ") != std::string::npos);
  host.abi_minor += 1;
  CHECK(modkit::detail::cache_host_key(host) != key);
}

TEST_CASE("a corrupt, truncated or foreign-writable cache file is ignored and rebuilt") {
  Setup s;
  std::string file;
  {
    modkit::ModifierFactory f(s.options());
    f.refresh();
    file = f.cache_file();
  }
  const std::string intact = read_file(file);
  REQUIRE(intact.size() > 100);
  SUBCASE("truncated") { write_file(file, intact.substr(0, intact.size() / 2)); }
  SUBCASE("one byte flipped") {
    std::string bytes = intact;
    bytes[bytes.size() - 20] ^= 0x55;
    write_file(file, bytes);
  }
  SUBCASE("empty") { write_file(file, ""); }
  SUBCASE("not a cache") { write_file(file, "this is not a registry cache\n"); }
  SUBCASE("world-writable") { ::chmod(file.c_str(), 0666); }
  SUBCASE("a directory in its place") {
    std::filesystem::remove(file);
    std::filesystem::create_directory(file);
  }
  modkit::ModifierFactory rebuilt(s.options());
  rebuilt.refresh();
  for (const auto& r : rebuilt.records()) {
    CAPTURE(r.name);
    CHECK(r.ok());
    CHECK(r.source == RecordSource::Scan);
  }
  if (std::filesystem::is_regular_file(file)) {
    CHECK_NOTHROW(cached_paths(file));  // rewritten whole
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    modkit::ModifierFactory warm(s.options());
    warm.refresh();
    CHECK(record_of(warm, "GoodFixtureModifier").source == RecordSource::Cache);
  }
}

TEST_CASE("failures are cached like successes, except a failure to open, which depends on more than the file") {
  Setup s;
  copy_plugin(kHostile + "/segv_ctor/segv_ctor.so", s.plugins + "/segv_ctor.so");
  copy_plugin(kFixtures + "/missing_dependency/missing_dep.so", s.plugins + "/missing_dep.so");
  copy_plugin(kFixtures + "/wrong_magic/wrong_magic.so", s.plugins + "/wrong_magic.so");
  modkit::ModifierFactory cold(s.options());
  cold.refresh();
  CHECK(line_count(s.scans) == 2);  // the crash ends the first child; a second takes the rest
  const auto segv = cold.errors().at("SegvCtorModifier");
  CHECK(segv.reason == "crashed with SIGSEGV while loading");

  modkit::ModifierFactory warm(s.options());
  warm.refresh();
  CHECK(line_count(s.scans) == 3);  // one child, for missing_dep.so alone
  const auto errors = warm.errors();
  CHECK(errors.at("SegvCtorModifier").source == RecordSource::Cache);
  CHECK(errors.at("SegvCtorModifier").stage == LoadStage::Isolated);
  CHECK(errors.at("SegvCtorModifier").message() == segv.message());
  CHECK(errors.at("WrongMagicModifier").source == RecordSource::Cache);
  CHECK(errors.at("WrongMagicModifier").stage == LoadStage::Validate);
  CHECK(errors.at("MissingDepModifier").source == RecordSource::Scan);
  CHECK(errors.at("MissingDepModifier").stage == LoadStage::Open);
  CHECK(record_of(warm, "GoodFixtureModifier").source == RecordSource::Cache);
  CHECK_THROWS_WITH_AS(warm.create("SegvCtorModifier", true, true), segv.message().c_str(), modkit::LoadError);
}

TEST_CASE("a file changed between refresh and create is not loaded: create throws and the record says why") {
  Setup s;
  modkit::ModifierFactory cold(s.options());
  cold.refresh();
  modkit::ModifierFactory f(s.options());
  f.refresh();
  REQUIRE(record_of(f, "GoodFixtureModifier").source == RecordSource::Cache);
  const std::string file = f.cache_file();
  REQUIRE(contains(cached_paths(file), s.good));

  const auto before = *modkit::detail::FileStamp::of(s.good);
  append(s.good, "changed");
  const auto after = *modkit::detail::FileStamp::of(s.good);
  const std::string expected = "cannot load 'GoodFixtureModifier' from '" + s.good +
                               "': changed since it was scanned (expected " + before.describe() + ", found " +
                               after.describe() + "); refresh() scans it again";
  CHECK(before.describe().rfind("size " + std::to_string(before.size) + ", modified 20", 0) == 0);
  CHECK_THROWS_WITH_AS(f.create("GoodFixtureModifier", false, false), expected.c_str(), modkit::LoadError);
  CHECK_FALSE(loaded_here(s.good));
  // the record is updated, the type leaves the registry, the cache forgets the file
  const auto r = f.errors().at("GoodFixtureModifier");
  CHECK(r.stage == LoadStage::Open);
  CHECK(r.source == RecordSource::Scan);
  CHECK(record_of(f, "GoodFixtureModifier").message() == expected);
  CHECK_FALSE(f.find("GoodFixtureModifier").has_value());
  CHECK_THROWS_WITH_AS(f.create("GoodFixtureModifier", false, false), expected.c_str(), modkit::LoadError);
  CHECK_FALSE(contains(cached_paths(file), s.good));
  CHECK(contains(cached_paths(file), s.marker_plugin));
  // the other file of the directory is not affected
  CHECK(f.create("MarkerModifier", false, false) != nullptr);
  // and a refresh scans the changed file again
  f.refresh();
  CHECK(record_of(f, "GoodFixtureModifier").ok());
  CHECK(f.create("GoodFixtureModifier", false, false) != nullptr);
}

TEST_CASE("a file modified in the current clock tick is scanned but not cached until it has settled") {
  Setup s;
  const int64_t future = static_cast<int64_t>(::time(nullptr)) + 3600;
  set_mtime(s.good, future);  // as if modified after the refresh began
  modkit::ModifierFactory cold(s.options());
  cold.refresh();
  CHECK_FALSE(contains(cached_paths(cold.cache_file()), s.good));
  CHECK(contains(cached_paths(cold.cache_file()), s.marker_plugin));
  modkit::ModifierFactory again(s.options());
  again.refresh();
  CHECK(record_of(again, "GoodFixtureModifier").source == RecordSource::Scan);
  CHECK(record_of(again, "MarkerModifier").source == RecordSource::Cache);
  set_mtime(s.good, kPast);
  again.refresh();
  CHECK(contains(cached_paths(cold.cache_file()), s.good));
}

TEST_CASE("CacheMode: Rebuild scans everything and rewrites the entries, Off neither reads nor writes") {
  Setup s;
  {
    modkit::ModifierFactory f(s.options());
    f.refresh();
  }
  SUBCASE("Rebuild") {
    auto o = s.options();
    o.cache = modkit::CacheMode::Rebuild;
    modkit::ModifierFactory f(o);
    f.refresh();
    CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Scan);
    CHECK(line_count(s.scans) == 2);
    modkit::ModifierFactory warm(s.options());
    warm.refresh();
    CHECK(record_of(warm, "GoodFixtureModifier").source == RecordSource::Cache);
  }
  SUBCASE("Off") {
    auto o = s.options();
    o.cache = modkit::CacheMode::Off;
    o.cache_dir = s.tmp / "never";
    modkit::ModifierFactory f(o);
    CHECK(f.cache_file().empty());
    f.refresh();
    CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Scan);
    CHECK_FALSE(std::filesystem::exists(s.tmp / "never"));
  }
}

TEST_CASE("in-process loading fills and uses the cache too") {
  Setup s;
  auto o = s.options();
  o.isolation = modkit::Isolation::InProcess;
  modkit::ModifierFactory cold(o);
  cold.refresh();
  CHECK(loaded_here(s.good));  // in process: loaded during refresh
  CHECK(line_count(s.scans) == 0);
  modkit::ModifierFactory warm(o);
  warm.refresh();
  CHECK(record_of(warm, "MarkerModifier").source == RecordSource::Cache);
  CHECK(line_count(s.marker) == 1);
  CHECK(warm.create("MarkerModifier", false, false) != nullptr);
  CHECK(line_count(s.marker) == 1);  // the library was already loaded in this process
}

TEST_CASE("without a cache, a file already loaded in this process is not scanned again") {
  Setup s;
  auto o = s.options();
  o.cache = modkit::CacheMode::Off;
  modkit::ModifierFactory f(o);
  f.refresh();
  f.create("MarkerModifier", false, false);
  f.refresh();
  CHECK(record_of(f, "MarkerModifier").source == RecordSource::Memory);
  CHECK(record_of(f, "MarkerModifier").to_json()["source"] == "memory");
  CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Scan);  // never loaded here
  CHECK(line_count(s.scans) == 2);
}

TEST_CASE("an entry damaged past its checksum is found when its type is first used, and forgotten") {
  Setup s;
  std::string file;
  {
    modkit::ModifierFactory f(s.options());
    f.refresh();
    file = f.cache_file();
  }
  // re-encode the cache with the good fixture's types block altered: the checksum is right, the block is not
  const std::string bytes = read_file(file);
  auto image = modkit::detail::decode_cache(modkit::detail::cache_bytes(bytes), file);
  bool altered = false;
  for (auto& entry : image.files) {
    if (entry.path != s.good) continue;
    std::string block = entry.types.encoded();
    const auto at = block.find("datafree");
    REQUIRE(at != std::string::npos);
    block[at + 7] = 'X';
    entry.types = modkit::detail::CachedTypes(modkit::detail::cache_bytes(block), 0, block.size(), file,
                                              entry.path, {"GoodFixtureModifier"});
    altered = true;
  }
  REQUIRE(altered);
  write_file(file, modkit::detail::encode_cache(image));

  modkit::ModifierFactory f(s.options());
  f.refresh();
  CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Cache);  // its records are intact
  CHECK_FALSE(f.find("GoodFixtureModifier").has_value());                    // its schema is not
  const std::string expected = "cannot load 'GoodFixtureModifier' from '" + s.good +
                               "': its registry cache entry does not decode (registry cache '" + file +
                               "' has an invalid entry: GoodFixtureModifier declares pipeline 'datafreX', expected "
                               "'datafree', 'basic' or 'sequential'); refresh() scans the file again";
  CHECK_THROWS_WITH_AS(f.create("GoodFixtureModifier", false, false), expected.c_str(), modkit::LoadError);
  CHECK(f.errors().at("GoodFixtureModifier").stage == LoadStage::Scan);
  CHECK_FALSE(loaded_here(s.good));
  CHECK_FALSE(contains(cached_paths(file), s.good));
  f.refresh();
  CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Scan);
  CHECK(f.create("GoodFixtureModifier", false, false) != nullptr);
}
