// Where the registry cache lives and how one file serves several plugin directories and processes.
#include "cache_test_support.hpp"

#include "core/src/registry_cache.hpp"
#include <modkit/core/factory.hpp>

#include <doctest/doctest.h>

using namespace modkit::test;
using modkit::RecordSource;

TEST_CASE("the cache directory: cache_dir, then MODKIT_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache") {
  using modkit::detail::RegistryCache;
  ScopedEnv no_cache("MODKIT_NO_CACHE", nullptr);
  ScopedEnv home("HOME", "/home/someone");
  ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  ScopedEnv dir("MODKIT_CACHE_DIR", nullptr);
  modkit::FactoryOptions o;
  CHECK(RegistryCache::directory(o) == "/home/someone/.cache/modkit");
  {
    ScopedEnv set("XDG_CACHE_HOME", "/xdg/cache");
    CHECK(RegistryCache::directory(o) == "/xdg/cache/modkit");
    ScopedEnv relative("XDG_CACHE_HOME", "relative/cache");  // XDG: a relative value is ignored
    CHECK(RegistryCache::directory(o) == "/home/someone/.cache/modkit");
  }
  {
    ScopedEnv set("MODKIT_CACHE_DIR", "/var/cache/modkit-test");
    CHECK(RegistryCache::directory(o) == "/var/cache/modkit-test");
    ScopedEnv relative("MODKIT_CACHE_DIR", "cache");
    CHECK(RegistryCache::directory(o) == "/home/someone/.cache/modkit");
  }
  {
    ScopedEnv off("MODKIT_NO_CACHE", "1");
    CHECK(RegistryCache::directory(o) == "");
    CHECK(modkit::ModifierFactory(o).cache_file() == "");
    o.cache_dir = "/explicit";  // an explicit directory wins over the environment
    CHECK(RegistryCache::directory(o) == "/explicit");
    ScopedEnv zero("MODKIT_NO_CACHE", "0");
    o.cache_dir.clear();
    CHECK(RegistryCache::directory(o) == "/home/someone/.cache/modkit");
  }
  o.cache = modkit::CacheMode::Off;
  o.cache_dir = "/explicit";
  CHECK(RegistryCache::directory(o) == "");
}

TEST_CASE("the cache file is created with its directory, never group- or world-writable") {
  TempDir tmp;
  const std::string plugins = tmp / "plugins";
  copy_plugin(kGood, plugins + "/good_fixture.so");
  const mode_t old = ::umask(0);
  modkit::ModifierFactory f(cached(plugins, tmp / "a/b/cache"));
  f.refresh();
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat((tmp / "a/b/cache").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(f.cache_file().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("one cache file serves several plugin directories; entries of deleted files are pruned") {
  TempDir tmp;
  const std::string cache = tmp / "cache";
  const std::string a = tmp / "a", b = tmp / "b";
  copy_plugin(kGood, a + "/good_fixture.so");
  copy_plugin(kCachePlugins + "/cache_marker.so", b + "/marker.so");
  modkit::ModifierFactory fa(cached(a, cache));
  fa.refresh();
  modkit::ModifierFactory fb(cached(b, cache));
  fb.refresh();
  REQUIRE(fa.cache_file() == fb.cache_file());
  // b's update kept a's entry
  modkit::ModifierFactory again(cached(a, cache));
  again.refresh();
  CHECK(record_of(again, "GoodFixtureModifier").source == RecordSource::Cache);

  std::filesystem::remove(a + "/good_fixture.so");
  copy_plugin(kGood, b + "/good_fixture.so");
  modkit::ModifierFactory fb2(cached(b, cache));
  fb2.refresh();  // scans the new file, and writes: the deleted file's entry goes
  const std::string bytes = read_file(fb2.cache_file());
  const auto image = modkit::detail::decode_cache(modkit::detail::cache_bytes(bytes), "c");
  std::vector<std::string> paths;
  for (const auto& f : image.files) paths.push_back(f.path);
  CHECK(paths == std::vector<std::string>{b + "/good_fixture.so", b + "/marker.so"});
}

TEST_CASE("a cache directory another user could write is not used") {
  TempDir tmp;
  const std::string plugins = tmp / "plugins";
  copy_plugin(kGood, plugins + "/good_fixture.so");
  const std::string cache = tmp / "shared";
  std::filesystem::create_directory(cache);
  {
    modkit::ModifierFactory f(cached(plugins, cache));
    f.refresh();
  }
  ::chmod(cache.c_str(), 0777);
  modkit::ModifierFactory f(cached(plugins, cache));
  f.refresh();
  CHECK(record_of(f, "GoodFixtureModifier").source == RecordSource::Scan);
  ::chmod(cache.c_str(), 0755);
  modkit::ModifierFactory warm(cached(plugins, cache));
  warm.refresh();
  CHECK(record_of(warm, "GoodFixtureModifier").source == RecordSource::Cache);
}
