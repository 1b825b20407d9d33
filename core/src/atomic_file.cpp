// Temporary file beside the target, flushed, renamed into place; nothing left behind on failure.
#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/signals.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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

OutputPath check_output_path(const std::string& path, const std::string& prefix) {
  OutputPath out{path, false};
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) {
      const int err = errno;
      std::error_code ec;
      const std::string target = std::filesystem::read_symlink(path, ec).string();
      throw ValueError(prefix + "it is a symbolic link to '" + target + "', which cannot be followed (" +
                       std::strerror(err) + "); give the target's path, or remove the link");
    }
    out.path = real;
    std::free(real);
  }
  if (::stat(out.path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw ValueError(prefix + "expected a file path, found a directory");
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
      out.stream = true;  // written through, like `> /dev/null`
      return out;
    }
    if (S_ISBLK(st.st_mode)) throw ValueError(prefix + "expected a file path, found a block device");
    if (S_ISSOCK(st.st_mode)) throw ValueError(prefix + "expected a file path, found a socket");
    if (!S_ISREG(st.st_mode)) throw ValueError(prefix + "expected a file path, found a special file");
    if (st.st_nlink > 1) {
      throw ValueError(prefix + "the file has " + std::to_string(st.st_nlink) +
                       " hard links, and replacing it would leave the other names with the old content; "
                       "write elsewhere, or remove the other links first");
    }
  }
  const std::string dir = parent_dir(out.path);
  if (::stat(dir.c_str(), &st) != 0) throw ValueError(prefix + "directory '" + dir + "' does not exist");
  if (!S_ISDIR(st.st_mode)) throw ValueError(prefix + "'" + dir + "' is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw ValueError(prefix + "directory '" + dir + "' is not writable: " + std::strerror(errno));
  }
  return out;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  const bool a_exists = ::stat(a.c_str(), &sa) == 0, b_exists = ::stat(b.c_str(), &sb) == 0;
  if (a_exists && b_exists) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (a_exists || b_exists) return false;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

void write_atomically(const std::string& requested, const std::function<void(int fd)>& write,
                      const std::string& prefix) {
  const OutputPath out = check_output_path(requested, prefix);
  const std::string& path = out.path;
  if (out.stream) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw RuntimeError(prefix + "cannot open for writing: " + std::strerror(errno));
    try {
      write(fd);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) throw RuntimeError(prefix + "cannot close: " + std::strerror(errno));
    return;
  }
  const std::string dir = parent_dir(path);
  struct stat st {};
  mode_t mode = 0666 & ~current_umask();
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;  // an overwritten file keeps its permissions

  // hidden and in the same directory, so that rename() stays on one file system
  const auto slash = path.find_last_of('/');
  std::string tmp = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "." +
                    path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    throw RuntimeError(prefix + "cannot create a temporary file in '" + dir + "': " + std::strerror(errno));
  }
  const TemporaryFile removed_on_signal(tmp);
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
