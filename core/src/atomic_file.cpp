// Temporary file beside the target, flushed, renamed into place; nothing left behind on failure.
#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace modkit {
namespace {

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The process umask, read without changing it (umask(2) would race other threads).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  }
  return 022;
}

}  // namespace

int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

void write_atomically(const std::string& path, const std::function<void(int fd)>& write,
                      const std::string& prefix) {
  const std::string dir = parent_dir(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw ValueError(prefix + "directory '" + dir + "' does not exist");
  if (!S_ISDIR(st.st_mode)) throw ValueError(prefix + "'" + dir + "' is not a directory");
  mode_t mode = 0666 & ~current_umask();
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw ValueError(prefix + "expected a file path, found a directory");
    mode = st.st_mode & 07777;  // an overwritten file keeps its permissions
  }

  // hidden and in the same directory, so that rename() stays on one file system
  const auto slash = path.find_last_of('/');
  std::string tmp = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "." +
                    path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    throw RuntimeError(prefix + "cannot create a temporary file in '" + dir + "': " + std::strerror(errno));
  }
  auto fail = [&](const std::string& why, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw RuntimeError(prefix + why + ": " + std::strerror(err));
  };
  try {
    write(fd);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fchmod(fd, mode) != 0) fail("cannot set the permissions of '" + tmp + "'", errno);
  if (::fsync(fd) != 0) fail("cannot flush '" + tmp + "'", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw RuntimeError(prefix + "cannot close '" + tmp + "': " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw RuntimeError(prefix + "cannot rename the temporary file into place: " + std::strerror(err));
  }
  // make the rename itself durable; a failure here leaves a complete file, so it is not an error
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_atomically(const std::string& path, const std::string& text, const std::string& prefix) {
  write_atomically(
      path,
      [&](int fd) {
        if (const int err = write_all(fd, text.data(), text.size()); err != 0) {
          throw RuntimeError(prefix + "cannot write: " + std::strerror(err));
        }
      },
      prefix);
}

}  // namespace modkit
