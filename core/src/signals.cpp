// Signal handlers that clean up and explain, then let the default action happen. Everything the
// handler reads lives in fixed static buffers published through atomics, and it calls only
// async-signal-safe functions (write, unlink, sigaction, raise).
#include <modkit/core/signals.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace modkit {
namespace {

constexpr int kTemporaries = 64;
constexpr size_t kPathBytes = 4096;
struct TemporarySlot {
  std::atomic<bool> taken{false};
  std::atomic<bool> ready{false};
  char path[kPathBytes];
};
TemporarySlot g_temporaries[kTemporaries];

constexpr int kCallDepth = 8;
constexpr size_t kCallBytes = 256;
char g_calls[kCallDepth][kCallBytes];
size_t g_modifier_length[kCallDepth];
int g_min_minor[kCallDepth];
thread_local int t_depth = 0;        // scopes opened on this thread
std::atomic<int> g_depth{0};         // the depth of the thread that opened a scope last

char g_preamble[64];
std::atomic<bool> g_has_preamble{false};
char g_program[64] = "modkit";

constexpr int kInterrupts[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kCrashes[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void copy_bounded(char* out, size_t capacity, const std::string& text) {
  const size_t n = std::min(text.size(), capacity - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

void put(const char* text) {
  size_t n = std::strlen(text);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

const char* crash_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "crashed with SIGSEGV (invalid memory access)";
    case SIGBUS: return "crashed with SIGBUS (bus error)";
    case SIGFPE: return "crashed with SIGFPE (arithmetic error)";
    case SIGILL: return "crashed with SIGILL (illegal instruction)";
    case SIGABRT: return "aborted (SIGABRT)";
    default: return nullptr;
  }
}

void on_signal(int sig) {
  const int saved_errno = errno;
  if (g_has_preamble.load()) put(g_preamble);
  if (const char* crash = crash_name(sig)) {
    put(g_program);
    put(": ");
    put(crash);
    const int depth = std::min(g_depth.load(), kCallDepth);
    if (depth == 0) {
      put(" outside any plugin callback\n");
    } else {
      put(" in ");
      put(g_calls[depth - 1]);
      for (int i = depth - 2; i >= 0; --i) {
        put(i == depth - 2 ? " (during " : ", during ");
        put(g_calls[i]);
        if (i == 0) put(")");
      }
      put("\n");
    }
  }
  for (TemporarySlot& slot : g_temporaries) {
    if (slot.ready.load()) ::unlink(slot.path);
  }
  errno = saved_errno;
  // SA_RESETHAND restored the default action: raising again ends the process as the signal would have
  ::raise(sig);
}

}  // namespace

void install_signal_handlers(const std::string& program) {
  static std::once_flag once;
  std::call_once(once, [&] {
    copy_bounded(g_program, sizeof g_program, program);
    // a stack of its own, so that a stack overflow can still be reported
    static char alternate_stack[1 << 16];
    stack_t ss{};
    ss.ss_sp = alternate_stack;
    ss.ss_size = sizeof alternate_stack;
    ::sigaltstack(&ss, nullptr);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
    ::sigemptyset(&sa.sa_mask);
    auto install = [&](int sig) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_DFL && (old.sa_flags & SA_SIGINFO) == 0) {
        ::sigaction(sig, &sa, nullptr);
      }
    };
    for (int sig : kInterrupts) install(sig);
    for (int sig : kCrashes) install(sig);
  });
}

void set_signal_preamble(const std::string& text) {
  g_has_preamble.store(false);
  copy_bounded(g_preamble, sizeof g_preamble, text);
  g_has_preamble.store(!text.empty());
}

TemporaryFile::TemporaryFile(const std::string& path) : slot_(-1) {
  if (path.size() >= kPathBytes) return;
  for (int i = 0; i < kTemporaries; ++i) {
    bool expected = false;
    if (g_temporaries[i].taken.compare_exchange_strong(expected, true)) {
      copy_bounded(g_temporaries[i].path, kPathBytes, path);
      g_temporaries[i].ready.store(true);
      slot_ = i;
      return;
    }
  }
}

TemporaryFile::~TemporaryFile() {
  if (slot_ < 0) return;
  g_temporaries[slot_].ready.store(false);
  g_temporaries[slot_].taken.store(false);
}

PluginCallScope::PluginCallScope(const std::string& what, int abi_min_minor) {
  const int depth = t_depth++;
  if (depth < kCallDepth) {
    g_min_minor[depth] = abi_min_minor >= 0 || depth == 0 ? abi_min_minor : g_min_minor[depth - 1];
    copy_bounded(g_calls[depth], kCallBytes, what);
    const size_t end = what.find_first_of(".' ");
    g_modifier_length[depth] = std::min(end == std::string::npos ? what.size() : end, kCallBytes - 1);
  }
  g_depth.store(t_depth);
}

PluginCallScope::~PluginCallScope() { g_depth.store(--t_depth); }

int PluginCallScope::current_abi_min_minor() {
  const int depth = std::min(t_depth, kCallDepth);
  return depth == 0 ? -1 : g_min_minor[depth - 1];
}

std::string PluginCallScope::current_modifier() {
  const int depth = std::min(t_depth, kCallDepth);
  return depth == 0 ? std::string() : std::string(g_calls[depth - 1], g_modifier_length[depth - 1]);
}

}  // namespace modkit
