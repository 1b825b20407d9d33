// Atomic file writes: readers see the old file or the whole new one, never a part.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace modkit {

/// Writes `path` atomically: `write(fd)` fills a hidden temporary file in the
/// same directory, which is flushed, given `path`'s permissions (0666 & ~umask
/// for a new file) and renamed over `path`, then the directory is synced.
/// `write` reports failure by throwing. On any failure the temporary file is
/// removed and `path` is untouched. Every message starts with `prefix` (e.g.
/// "cannot save model 'out.pt': "): ValueError for a bad destination (missing
/// directory, parent that is not a directory, a path that is a directory),
/// RuntimeError for I/O failures; what `write` throws propagates unchanged.
void write_atomically(const std::string& path, const std::function<void(int fd)>& write,
                      const std::string& prefix);

/// The same for text.
void write_atomically(const std::string& path, const std::string& text, const std::string& prefix);

/// Writes all of `data` to `fd`, retrying on EINTR. Returns 0, or the errno of the failure.
int write_all(int fd, const void* data, size_t size);

}  // namespace modkit
