// Outputs: what write_atomically does with each kind of destination, and what a signal leaves behind.
#include "child_process.hpp"
#include "temp_dir.hpp"

#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/signals.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using modkit::test::ChildResult;
using modkit::test::in_child;
using modkit::test::TempDir;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string write_error(const std::string& path) {
  try {
    modkit::write_atomically(path, "new", "cannot write '" + path + "': ");
  } catch (const modkit::ValueError& e) {
    return e.what();
  }
  return "(no error)";
}

// Names in `dir`, hidden ones (temporary files) included.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("a regular file or a new path is written atomically, nothing left beside it") {
  TempDir dir;
  modkit::write_atomically(dir / "out", "one", "");
  CHECK(read(dir / "out") == "one");
  ::chmod((dir / "out").c_str(), 0600);
  modkit::write_atomically(dir / "out", "two", "");
  CHECK(read(dir / "out") == "two");
  struct stat st {};
  REQUIRE(::stat((dir / "out").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // an overwritten file keeps its permissions
  CHECK_THROWS_AS(modkit::write_atomically(dir / "out", [](int) { throw std::runtime_error("disk on fire"); }, ""),
                  std::runtime_error);
  CHECK(read(dir / "out") == "two");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"out"});
}

TEST_CASE("a symbolic link is written through: the link stays, its target changes") {
  TempDir dir;
  write(dir / "model.pt", "old");
  fs::create_symlink("model.pt", dir / "link.pt");
  modkit::write_atomically(dir / "link.pt", "new", "");
  CHECK(fs::is_symlink(dir / "link.pt"));
  CHECK(read(dir / "model.pt") == "new");
  CHECK(modkit::check_output_path(dir / "link.pt", "").path == dir / "model.pt");

  fs::create_symlink("nowhere/x.pt", dir / "dangling.pt");
  CHECK(write_error(dir / "dangling.pt") ==
        "cannot write '" + (dir / "dangling.pt") +
            "': it is a symbolic link to 'nowhere/x.pt', which cannot be followed (No such file or directory); "
            "give the target's path, or remove the link");
  CHECK(fs::is_symlink(dir / "dangling.pt"));
}

TEST_CASE("a FIFO or a character device is written through as a stream, never replaced") {
  TempDir dir;
  SUBCASE("a named pipe") {
    REQUIRE(::mkfifo((dir / "pipe").c_str(), 0600) == 0);
    std::string received;
    std::thread reader([&] { received = read(dir / "pipe"); });
    CHECK(modkit::check_output_path(dir / "pipe", "").stream);
    modkit::write_atomically(dir / "pipe", "through the pipe", "");
    reader.join();
    CHECK(received == "through the pipe");
    struct stat st {};
    REQUIRE(::stat((dir / "pipe").c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK(names_in(dir.path()) == std::vector<std::string>{"pipe"});
  }
  SUBCASE("/dev/null") {
    modkit::write_atomically("/dev/null", "discarded", "");
    struct stat st {};
    REQUIRE(::stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  SUBCASE("/dev/full: the write error is reported") {
    try {
      modkit::write_atomically("/dev/full", "x", "cannot write '/dev/full': ");
      FAIL("no error");
    } catch (const modkit::RuntimeError& e) {
      CHECK(std::string(e.what()) == "cannot write '/dev/full': cannot write: No space left on device");
    }
  }
}

TEST_CASE("destinations that cannot be replaced safely are refused with the reason") {
  TempDir dir;
  write(dir / "a", "original");
  REQUIRE(::link((dir / "a").c_str(), (dir / "b").c_str()) == 0);
  CHECK(write_error(dir / "a") ==
        "cannot write '" + (dir / "a") +
            "': the file has 2 hard links, and replacing it would leave the other names with the old content; "
            "write elsewhere, or remove the other links first");
  CHECK(read(dir / "a") == "original");
  fs::create_directory(dir / "d");
  CHECK(write_error(dir / "d") == "cannot write '" + (dir / "d") + "': expected a file path, found a directory");
  CHECK(write_error(dir / "missing/x") ==
        "cannot write '" + (dir / "missing/x") + "': directory '" + (dir / "missing") + "' does not exist");
}

TEST_CASE("same_file sees one file behind links and spellings, written or not") {
  TempDir dir;
  write(dir / "a", "x");
  fs::create_symlink("a", dir / "sym");
  REQUIRE(::link((dir / "a").c_str(), (dir / "hard").c_str()) == 0);
  fs::create_directory(dir / "d");
  CHECK(modkit::same_file(dir / "a", dir / "sym"));
  CHECK(modkit::same_file(dir / "a", dir / "hard"));
  CHECK(modkit::same_file(dir / "d/../new", dir / "new"));  // neither exists yet
  CHECK_FALSE(modkit::same_file(dir / "a", dir / "new"));
  CHECK_FALSE(modkit::same_file(dir / "new", dir / "other"));
}

TEST_CASE("a signal ending the process removes the temporary files of writes in progress") {
  TempDir dir;
  const std::string tmp = dir / ".out.tmp.123456";
  const ChildResult r = in_child([&] {
    modkit::install_signal_handlers("prog");
    modkit::set_signal_preamble("\n");
    write(tmp, "partial");
    const modkit::TemporaryFile registered(tmp);
    ::raise(SIGTERM);
  });
  CHECK(r.signal == SIGTERM);  // the default action still ends it: the exit status is unchanged
  CHECK(r.err == "\n");        // a progress line is ended
  CHECK_FALSE(fs::exists(tmp));

  SUBCASE("a file no longer registered stays") {
    write(tmp, "kept");
    const ChildResult done = in_child([&] {
      modkit::install_signal_handlers("prog");
      { const modkit::TemporaryFile registered(tmp); }
      ::raise(SIGINT);
    });
    CHECK(done.signal == SIGINT);
    CHECK(fs::exists(tmp));
  }
}

TEST_CASE("a crash names the plugin code that was running, then ends the process as the signal would") {
  // SIGILL and SIGABRT: the sanitizers keep SIGSEGV, SIGBUS and SIGFPE for their own reports
  const ChildResult r = in_child([] {
    modkit::install_signal_handlers("prog");
    const modkit::PluginCallScope callback("GPTQModifier.on_event");
    const modkit::PluginCallScope hook("GPTQModifier's forward hook on 'fc1'");
    ::raise(SIGILL);
  });
  CHECK(r.signal == SIGILL);
  CHECK(r.err == "prog: crashed with SIGILL (illegal instruction) in GPTQModifier's forward hook on 'fc1' "
                 "(during GPTQModifier.on_event)\n");
  const ChildResult outside = in_child([] {
    modkit::install_signal_handlers("prog");
    ::abort();
  });
  CHECK(outside.signal == SIGABRT);
  CHECK(outside.err == "prog: aborted (SIGABRT) outside any plugin callback\n");

  {
    const modkit::PluginCallScope callback("GPTQModifier.on_initialize");
    CHECK(modkit::PluginCallScope::current_modifier() == "GPTQModifier");  // hooks registered now are its
  }
  CHECK(modkit::PluginCallScope::current_modifier().empty());
}

TEST_CASE("handlers a program set itself, and ignored signals, are left alone") {
  const ChildResult r = in_child([] {
    ::signal(SIGHUP, SIG_IGN);
    modkit::install_signal_handlers("prog");
    ::raise(SIGHUP);  // still ignored
  });
  CHECK(r.signal == 0);
  CHECK(r.code == 0);
}
