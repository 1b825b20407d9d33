// Discovery benchmark: `modkit list` and refresh(), without and with a warm registry cache, and the Python walk, side by side.
//
//   bench_discovery --plugin-dir DIR --modkit BIN --python-walk SCRIPT --python-package PKGDIR [--runs N]
//
// Whole-process figures are the best of N runs (wall time, peak RSS from wait4).
// refresh() is timed in fresh child processes (this binary with --child-*):
// cold over an empty cache directory (every file goes through the scanner
// child, and the cache is written), then warm over that directory (nothing is
// scanned or loaded). Per plugin file, loading in process: the first (which
// pays for the first dlopen) and the mean and maximum of the others.
#include "core/src/plugin_library.hpp"
#include <modkit/core/factory.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// CPU time of this process so far (every thread), in ms.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

struct ProcessRun {
  double wall_ms;
  long peak_rss_kib;
  int status;
};

// Runs argv with stdout to /dev/null; wall time and peak RSS of that child.
ProcessRun run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // MODKIT_CACHE_DIR, as set by main(), decides which cache the child sees
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  const auto t0 = Clock::now();
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::perror(argv[0]);
    std::exit(1);
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  return {ms_since(t0), usage.ru_maxrss, status};
}

ProcessRun best_of(int runs, const std::vector<std::string>& args) {
  ProcessRun best{1e300, 0, 0};
  for (int i = 0; i < runs; ++i) {
    ProcessRun r = run_process(args);
    if (r.status != 0) {
      std::cerr << "bench_discovery: '" << args[0] << "' exited with status " << r.status << "\n";
      std::exit(1);
    }
    if (r.wall_ms < best.wall_ms) best.wall_ms = r.wall_ms;
    best.peak_rss_kib = std::max(best.peak_rss_kib, r.peak_rss_kib);
  }
  return best;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Child: loads each plugin file as refresh() does, timing each; prints "first mean max total count".
int child_per_file(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() == ".so") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  const auto host = modkit::detail::HostFingerprint::current();
  std::vector<double> times;
  size_t loaded = 0;
  for (const auto& f : files) {
    const auto t0 = Clock::now();
    auto load = modkit::detail::load_plugin_file(f, false, host);
    times.push_back(ms_since(t0));
    loaded += load.types.size();
    static std::vector<modkit::detail::FileLoad> keep;  // keep libraries loaded, as the factory does
    keep.push_back(std::move(load));
  }
  double rest = 0, worst = 0;
  for (size_t i = 1; i < times.size(); ++i) rest += times[i], worst = std::max(worst, times[i]);
  double total = 0;
  for (double t : times) total += t;
  std::printf("%f %f %f %f %zu %zu\n", times.empty() ? 0 : times[0],
              times.size() > 1 ? rest / static_cast<double>(times.size() - 1) : 0, worst, total, files.size(), loaded);
  return 0;
}

// Child: one refresh() of a factory over `dir` with the registry cache in
// `cache_dir`; prints "ms modifiers errors records-from-cache".
int child_refresh(const std::string& dir, const std::string& cache_dir) {
  modkit::FactoryOptions o;
  o.plugin_dirs = {dir};
  o.use_environment = false;
  o.use_install_dir = false;
  o.cache_dir = cache_dir;
  modkit::ModifierFactory factory(o);
  const double cpu0 = cpu_ms();
  const auto t0 = Clock::now();
  factory.refresh();
  const double ms = ms_since(t0);
  const double cpu = cpu_ms() - cpu0;
  size_t cached = 0;
  for (const auto& r : factory.records()) cached += r.source == modkit::RecordSource::Cache ? 1 : 0;
  std::printf("%f %f %zu %zu %zu\n", ms, cpu, factory.modifiers().size(), factory.errors().size(), cached);
  return 0;
}

struct Refresh {
  double ms = 1e300;
  double cpu_ms = 0;  // of this process (a cold refresh's scanner children are not counted)
  size_t modifiers = 0, errors = 0, cached = 0;
};

// The best of `runs` refresh() calls, each in a fresh process; `fresh_cache`
// empties the cache directory before each run (a cold start).
Refresh time_refresh(const std::string& self, const std::string& dir, const std::string& cache_dir, int runs,
                     bool fresh_cache) {
  Refresh best;
  for (int i = 0; i < runs; ++i) {
    if (fresh_cache) fs::remove_all(cache_dir);
    Refresh r;
    std::sscanf(capture(self + " --child-refresh '" + dir + "' --cache-dir '" + cache_dir + "'").c_str(),
                "%lf %lf %zu %zu %zu", &r.ms, &r.cpu_ms, &r.modifiers, &r.errors, &r.cached);
    if (r.ms < best.ms) best = r;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt;
  for (int i = 1; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
  if (opt.count("--child-per-file")) return child_per_file(opt["--child-per-file"]);
  if (opt.count("--child-refresh")) return child_refresh(opt["--child-refresh"], opt["--cache-dir"]);
  for (const char* required : {"--plugin-dir", "--modkit", "--python-walk", "--python-package"}) {
    if (!opt.count(required)) {
      std::cerr << "usage: bench_discovery --plugin-dir DIR --modkit BIN --python-walk SCRIPT "
                   "--python-package DIR [--runs N] [--python PYTHON]\n";
      return 2;
    }
  }
  const int runs = opt.count("--runs") ? std::stoi(opt["--runs"]) : 5;
  const std::string python = opt.count("--python") ? opt["--python"] : "python3";
  const std::string dir = opt["--plugin-dir"];

  // a private cache directory: the user's cache is never read or written
  const std::string cache_dir = (fs::temp_directory_path() / ("modkit-bench-cache-" + std::to_string(::getpid()))).string();
  ::setenv("MODKIT_CACHE_DIR", cache_dir.c_str(), 1);
  ::unsetenv("MODKIT_NO_CACHE");

  // cold, then warm: the warm runs read what the last cold run wrote
  const Refresh cold = time_refresh(argv[0], dir, cache_dir, std::min(runs, 3), true);
  const Refresh warm = time_refresh(argv[0], dir, cache_dir, runs, false);
  if (warm.cached == 0) {
    std::cerr << "bench_discovery: the warm refresh() read nothing from the cache in '" << cache_dir << "'\n";
    return 1;
  }

  const ProcessRun list = best_of(runs, {opt["--modkit"], "--no-cache", "--plugin-dir", dir, "list"});
  const ProcessRun list_json = best_of(runs, {opt["--modkit"], "--no-cache", "--plugin-dir", dir, "list", "--json"});
  const ProcessRun list_warm = best_of(runs, {opt["--modkit"], "--plugin-dir", dir, "list"});
  const ProcessRun list_json_warm = best_of(runs, {opt["--modkit"], "--plugin-dir", dir, "list", "--json"});
  fs::remove_all(cache_dir);
  const ProcessRun walk = best_of(runs, {python, opt["--python-walk"], "--mode", "walk", "--dir", opt["--python-package"]});
  const ProcessRun empty_python = best_of(runs, {python, "-c", "pass"});

  double first = 1e300, mean = 1e300, worst = 1e300, total = 1e300;
  size_t files = 0, loaded = 0;
  for (int i = 0; i < std::min(runs, 3); ++i) {
    double f = 0, m = 0, w = 0, t = 0;
    std::sscanf(capture(std::string(argv[0]) + " --child-per-file '" + dir + "'").c_str(), "%lf %lf %lf %lf %zu %zu",
                &f, &m, &w, &t, &files, &loaded);
    first = std::min(first, f), mean = std::min(mean, m), worst = std::min(worst, w), total = std::min(total, t);
  }

  std::printf("discovery over %zu plugin files (%zu modifiers), best of %d runs\n", files, loaded, runs);
  std::printf("  modkit list, no cache (whole process)        : %8.1f ms  peak RSS %6.1f MiB\n", list.wall_ms,
              list.peak_rss_kib / 1024.0);
  std::printf("  modkit list, warm cache (whole process)      : %8.1f ms  peak RSS %6.1f MiB  (target <= 20 ms)\n",
              list_warm.wall_ms, list_warm.peak_rss_kib / 1024.0);
  std::printf("  modkit list --json, no cache (whole process) : %8.1f ms  peak RSS %6.1f MiB\n", list_json.wall_ms,
              list_json.peak_rss_kib / 1024.0);
  std::printf("  modkit list --json, warm cache               : %8.1f ms  peak RSS %6.1f MiB\n", list_json_warm.wall_ms,
              list_json_warm.peak_rss_kib / 1024.0);
  std::printf("  python walk (whole process)        : %8.1f ms  peak RSS %6.1f MiB  (python3 -c pass: %.1f ms)\n",
              walk.wall_ms, walk.peak_rss_kib / 1024.0, empty_python.wall_ms);
  std::printf("  ratio list (no cache) / python walk : %8.3f   (target <= 0.333)\n", list.wall_ms / walk.wall_ms);
  std::printf("  refresh() cold (empty cache)        : %8.2f ms  (%zu modifiers, %zu errors)\n", cold.ms, cold.modifiers,
              cold.errors);
  std::printf("  refresh() warm cache                : %8.2f ms  (CPU %.2f ms; %zu modifiers, %zu records from the cache)\n",
              warm.ms, warm.cpu_ms, warm.modifiers, warm.cached);
  std::printf("  ratio cold / warm refresh()         : %8.1f   (target >= 50)\n", cold.ms / warm.ms);
  std::printf("  per plugin file: first %.2f ms, others mean %.3f ms, max %.3f ms  (target <= 2 ms)\n", first, mean,
              worst);
  return 0;
}
