// The crash-isolated plugin scanner: the child's report loop and the parent's spawn, stream and restart logic.
#include "core_library.hpp"
#include "plugin_library.hpp"
#include "scanner.hpp"
#include <modkit/core/plugin_scanner.hpp>

#include <boost/filesystem.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fs = boost::filesystem;

namespace modkit::detail {
namespace {

constexpr const char* kScannerName = "modkit-plugin-scanner";
constexpr int kReportFd = 3;
// bounds one child's argv; a longer list just takes several children in turn
constexpr size_t kMaxFilesPerChild = 512;

bool is_executable(const std::string& path) {
  boost::system::error_code ec;
  return !path.empty() && fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

bool write_all(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// A file or symbol name need not be UTF-8: what JSON cannot carry is replaced (U+FFFD), not thrown on.
bool write_line(int fd, const nlohmann::json& j) {
  return write_all(fd, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

LoadStage stage_from(const std::string& s) {
  for (LoadStage st : {LoadStage::Scan, LoadStage::Open, LoadStage::Resolve, LoadStage::Validate,
                       LoadStage::Shadowed, LoadStage::Loaded, LoadStage::Isolated}) {
    if (s == to_string(st)) return st;
  }
  return LoadStage::Scan;
}

LoadRecord record_from_json(const nlohmann::json& j) {
  LoadRecord r;
  r.name = j.value("name", "");
  r.file = j.value("file", "");
  r.stage = stage_from(j.value("stage", ""));
  r.reason = j.value("reason", "");
  r.experimental = j.value("experimental", false);
  return r;
}

// One file's report. A report that does not hold together (a plugin may
// have scribbled over the child) fails the file rather than the host.
ScanResult result_from_json(const nlohmann::json& j, const std::string& path) {
  ScanResult r;
  try {
    std::vector<std::string> loaded;
    for (const auto& rec : j.at("records")) {
      r.records.push_back(record_from_json(rec));
      if (r.records.back().ok()) loaded.push_back(r.records.back().name);
    }
    for (const auto& info : j.at("modifiers")) r.types.push_back(info_from_json(info, path));
    if (r.types.size() != loaded.size()) throw std::runtime_error("types and loaded records differ");
    for (size_t k = 0; k < loaded.size(); ++k) {
      if (r.types[k].name != loaded[k]) throw std::runtime_error("types and loaded records differ");
    }
    r.complete = true;
  } catch (const std::exception& e) {
    r = ScanResult{};
    r.failure = std::string("reported malformed load records while loading (") + e.what() + ")";
  }
  return r;
}

std::string signal_name(int sig) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
#endif
  return "signal " + std::to_string(sig);
}

std::string seconds_text(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

// Why a child that had started `file` gave no complete report for it.
std::string failure_of(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGABRT) return "aborted (SIGABRT) while loading";
    return "crashed with " + signal_name(sig) + " while loading";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status)) + " before reporting";
  return "stopped with wait status " + std::to_string(status) + " while loading";
}

// One running scanner child and the read end of its report pipe.
class Child {
 public:
  Child(const std::string& scanner, const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    read_fd_ = fds[0];
    int write_fd = fds[1];
    // dup2 onto the same number would keep O_CLOEXEC: move it out of the way first
    if (write_fd == kReportFd) {
      write_fd = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
      ::close(fds[1]);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_fd, kReportFd);
    // plugins may print: keep their stdout out of the report stream; their
    // stderr (e.g. "terminate called ...") only when the host logs debug
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (!spdlog::should_log(spdlog::level::debug)) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(scanner.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, scanner.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(write_fd);
    if (rc != 0) {
      ::close(read_fd_);
      throw std::runtime_error("cannot start '" + scanner + "': " + std::strerror(rc));
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill_now();
      wait();
    }
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The next complete line; nullopt on EOF; "timeout" sets `timed_out`.
  std::optional<std::string> next_line(std::chrono::steady_clock::time_point deadline, bool& timed_out) {
    timed_out = false;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (eof_) return std::nullopt;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        return std::nullopt;
      }
      pollfd p{read_fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) continue;  // the deadline check above decides
      char chunk[65536];
      const ssize_t got = ::read(read_fd_, chunk, sizeof chunk);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        eof_ = true;
        continue;
      }
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }

  void kill_now() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  // Reaps the child; its wait status.
  int wait() {
    int status = 0;
    while (pid_ > 0 && ::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace

std::string find_plugin_scanner(const std::string& override_path) {
  if (!override_path.empty()) return is_executable(override_path) ? override_path : "";
  if (const char* env = std::getenv("MODKIT_PLUGIN_SCANNER"); env != nullptr && *env != '\0') {
    return is_executable(env) ? env : "";
  }
  const std::string& core = core_library_path();
  if (core.empty()) return "";
  const fs::path libdir = fs::path(core).parent_path();
  // beside the library (the build tree), then <libexecdir>/modkit for lib/ and lib/<multiarch>/
  for (const fs::path& candidate :
       {libdir / kScannerName, libdir / "modkit" / kScannerName, libdir / ".." / "libexec" / "modkit" / kScannerName,
        libdir / ".." / ".." / "libexec" / "modkit" / kScannerName}) {
    if (is_executable(candidate.string())) return candidate.lexically_normal().string();
  }
  return "";
}

std::vector<ScanResult> scan_in_subprocess(const std::string& scanner, const std::vector<ScanRequest>& files,
                                           const std::string& torch_version, std::chrono::milliseconds timeout) {
  std::vector<ScanResult> results(files.size());
  size_t next = 0;  // the first file no child has finished or failed
  while (next < files.size()) {
    const size_t first = next;
    const size_t last = std::min(files.size(), first + kMaxFilesPerChild);
    std::vector<std::string> args{"--fd=" + std::to_string(kReportFd), "--torch=" + torch_version};
    for (size_t i = first; i < last; ++i) args.push_back((files[i].experimental ? "x:" : "m:") + files[i].path);

    Child child(scanner, args);
    bool ready = false;
    constexpr size_t kNone = static_cast<size_t>(-1);
    size_t current = kNone;  // begun, not yet reported
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    while (auto line = child.next_line(deadline, timed_out)) {
      nlohmann::json j = nlohmann::json::parse(*line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) continue;
      if (j.contains("ready")) {
        ready = true;
      } else if (j.contains("begin")) {
        // the child runs plugin code, which can write to the report fd too:
        // a line that does not hold together is skipped, never thrown on
        if (!j["begin"].is_number_unsigned() || j["begin"].get<size_t>() >= last - first) continue;
        current = first + j["begin"].get<size_t>();
        deadline = std::chrono::steady_clock::now() + timeout;
      } else if (j.contains("done")) {
        if (!j["done"].is_number_unsigned() || j["done"].get<size_t>() >= last - first) continue;
        const size_t i = first + j["done"].get<size_t>();
        results[i] = result_from_json(j, files[i].path);
        current = kNone;
        next = i + 1;
        deadline = std::chrono::steady_clock::now() + timeout;
      }
    }
    if (timed_out) child.kill_now();
    const int status = child.wait();
    if (!ready) {
      const std::string why = "plugin scanner '" + scanner + "' did not start: " +
                              (timed_out ? "no answer within " + seconds_text(timeout) : failure_of(status));
      if (first == 0) throw std::runtime_error(why);
      // it worked before: refuse the rest rather than load them unchecked
      for (size_t i = first; i < files.size(); ++i) {
        results[i].failure = why;
        results[i].scanner_failed = true;
      }
      break;
    }
    if (next >= last) continue;  // this child finished its share
    // the child stopped inside `current` (or between files: then retry the next one)
    if (current != kNone) {
      results[current].failure = timed_out ? "timed out after " + seconds_text(timeout) + " while loading"
                                            : failure_of(status);
      spdlog::debug("plugin scanner: '{}' {}", files[current].path, results[current].failure);
      next = current + 1;
    } else if (next == first) {
      // stopped before starting any file: blame the first, so the loop ends
      results[next].failure = timed_out ? "timed out after " + seconds_text(timeout) + " while loading"
                                        : failure_of(status);
      ++next;
    }
    // else: it stopped between two files (the child leaves after a file that
    // left the dynamic loader in doubt): a new child takes the rest
  }
  return results;
}

}  // namespace modkit::detail

namespace modkit {

using namespace detail;

int plugin_scanner_main(int argc, char** argv) {
  // the parent logs every record; the child stays quiet
  spdlog::set_level(spdlog::level::off);
  int fd = -1;
  HostFingerprint host = HostFingerprint::current();
  std::vector<ScanRequest> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--fd=", 0) == 0) {
      fd = std::atoi(a.c_str() + 5);
    } else if (a.rfind("--torch=", 0) == 0) {
      host.torch_version = a.substr(8);
    } else if (a.size() > 2 && (a[0] == 'm' || a[0] == 'x') && a[1] == ':') {
      files.push_back({a.substr(2), a[0] == 'x'});
    } else {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n"
                   "usage: %s --fd=N [--torch=VERSION] {m|x}:<plugin.so>...\n"
                   "  loads each plugin file and reports its load records as JSON lines on fd N\n",
                   kScannerName, a.c_str(), kScannerName);
      return 2;
    }
  }
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
    std::fprintf(stderr, "%s: --fd=N must name an open file descriptor\n", kScannerName);
    return 2;
  }
  if (!write_line(fd, {{"ready", true}})) return 3;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!write_line(fd, {{"begin", i}})) return 3;
    const FileLoad load = load_plugin_file(files[i].path, files[i].experimental, host);
    nlohmann::json records = nlohmann::json::array(), infos = nlohmann::json::array();
    for (const auto& r : load.records) records.push_back(r.to_json());
    for (const auto& t : load.types) infos.push_back(t->info.to_json());
    if (!write_line(fd, {{"done", i}, {"file", files[i].path}, {"records", records}, {"modifiers", infos}})) return 3;
    // an exception that unwound through dlopen skipped the loader's own
    // cleanup (its lock, a half-added object): let a fresh child go on
    for (const auto& r : load.records) {
      if (r.stage == LoadStage::Open && r.reason.rfind("a static constructor threw", 0) == 0) ::_exit(0);
    }
  }
  // plugins stay loaded until the end; their static destructors never run
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace modkit
