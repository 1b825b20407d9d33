// Runs test code in a forked child process, as a fresh program would run, and reports how it ended.
#pragma once

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <string>

namespace modkit::test {

struct ChildResult {
  int signal = 0;  // the signal that ended the child, or 0
  int code = -1;   // its exit status otherwise
  std::string err;
};

// Runs `body` in a child process whose stderr is captured, with the default disposition of every
// signal the handlers take (doctest installs its own, as a fresh process would not have them).
inline ChildResult in_child(const std::function<void()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // a crash the test expects leaves no core file
    body();
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  return r;
}

}  // namespace modkit::test
