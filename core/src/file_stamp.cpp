// File stamps: stat(2) identity and change times, and the coarse clock that file systems stamp changes with.
#include "file_stamp.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <ctime>

namespace modkit::detail {
namespace {

int64_t ns_of(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

}  // namespace

std::optional<FileStamp> FileStamp::of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  FileStamp s;
  s.device = static_cast<uint64_t>(st.st_dev);
  s.inode = static_cast<uint64_t>(st.st_ino);
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = ns_of(st.st_mtim);
  s.ctime_ns = ns_of(st.st_ctim);
  return s;
}

std::string FileStamp::describe() const {
  const time_t seconds = static_cast<time_t>(mtime_ns / 1000000000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-%02d %02d:%02d:%02d.%09lld UTC", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<long long>(mtime_ns % 1000000000));
  return "size " + std::to_string(size) + ", modified " + when;
}

bool operator==(const FileStamp& a, const FileStamp& b) {
  return a.device == b.device && a.inode == b.inode && a.size == b.size && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns;
}

int64_t file_clock_now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return ns_of(t);
}

bool settled(const FileStamp& stamp, int64_t now_ns) { return stamp.mtime_ns < now_ns; }

}  // namespace modkit::detail
