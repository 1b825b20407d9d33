// Helpers of the registry cache tests: private plugin directories with fixed file times, and what a process has loaded.
#pragma once

#include "temp_dir.hpp"

#include <modkit/core/factory.hpp>

#include <dlfcn.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace modkit::test {

inline const std::string kCachePlugins = MODKIT_CACHE_TEST_PLUGIN_DIR;
inline const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;
inline const std::string kHostile = MODKIT_TEST_HOSTILE_DIR;
inline const std::string kGood = kFixtures + "/good/good_fixture.so";

/// A settled file time: long before any test runs, so the cache may keep the file.
constexpr int64_t kPast = 1600000000;

/// Sets both file times of `path` to `seconds` since the epoch.
inline void set_mtime(const std::string& path, int64_t seconds) {
  const timespec times[2] = {{static_cast<time_t>(seconds), 0}, {static_cast<time_t>(seconds), 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

/// Copies `from` to `to` (creating its directory) with a settled mtime; returns `to`.
inline std::string copy_plugin(const std::string& from, const std::string& to, int64_t mtime = kPast) {
  std::filesystem::create_directories(std::filesystem::path(to).parent_path());
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
  set_mtime(to, mtime);
  return to;
}

/// Appends `bytes` to a file (an ELF file still loads: nothing reads past its sections).
inline void append(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// Lines in a file; 0 when it does not exist.
inline int line_count(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

/// Whether this process has `path` loaded (dlopen RTLD_NOLOAD never loads it).
inline bool loaded_here(const std::string& path) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  return true;
}

/// A scanner that appends a line to `count_file` each time it starts, then runs the real one.
inline std::string counting_scanner(const TempDir& dir, const std::string& count_file) {
  const std::string script = dir / "counting-scanner";
  write_file(script, "#!/bin/sh\necho started >> '" + count_file + "'\nexec '" + MODKIT_TEST_SCANNER + "' \"$@\"\n");
  ::chmod(script.c_str(), 0755);
  return script;
}

/// Options over one plugin directory with a private cache directory.
inline FactoryOptions cached(const std::string& plugin_dir, const std::string& cache_dir) {
  FactoryOptions o;
  o.plugin_dirs = {plugin_dir};
  o.use_environment = false;
  o.use_install_dir = false;
  o.cache_dir = cache_dir;
  o.scanner_path = MODKIT_TEST_SCANNER;
  return o;
}

/// The record of `name` from `f` (the first one, in scan order).
inline LoadRecord record_of(const ModifierFactory& f, const std::string& name) {
  for (const auto& r : f.records()) {
    if (r.name == name) return r;
  }
  FAIL("no record for '" << name << "'");
  return {};
}

/// Sets an environment variable for one scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace modkit::test
