// Atomic file writes: readers see the old file or the whole new one, never a part.
#pragma once

#include <modkit/core/export.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace modkit {

/// Where an output goes, by the rules every output of modkit follows (models, reports, recipes):
/// - a new path or a regular file: written atomically (a temporary file renamed over it);
/// - a symbolic link: written through to its target, which these rules then judge (a dangling
///   link is refused: its target would be created somewhere the user may not expect);
/// - a character device or a FIFO (/dev/null, /dev/stdout, a named pipe): written through as a
///   stream, as a shell redirection does;
/// - a directory, a block device, a socket, or a regular file with other hard links (replacing
///   it would leave the other names with the old content): refused.
struct MODKIT_CORE_API OutputPath {
  std::string path;     ///< the file written: `path` with symbolic links resolved
  bool stream = false;  ///< written through (device or FIFO), not replaced
};

/// Applies the rules above to `path` (and checks that a replaced file's directory exists and is
/// writable). Throws ValueError with `prefix` and the reason.
MODKIT_CORE_API OutputPath check_output_path(const std::string& path, const std::string& prefix);

/// Whether two paths name the same file: the same inode when both exist, the same resolved path
/// otherwise (an output not written yet).
MODKIT_CORE_API bool same_file(const std::string& a, const std::string& b);

/// Writes `path` by the rules of check_output_path. Atomically for a file: `write(fd)` fills a
/// hidden temporary file in the same directory, which is flushed, given `path`'s permissions
/// (0666 & ~umask for a new file) and renamed over `path`, then the directory is synced; the
/// temporary file is registered as a TemporaryFile (signals.hpp), so a signal ending the process
/// removes it too. `write` reports failure by throwing. On any failure the temporary file is
/// removed and `path` is untouched. Every message starts with `prefix` (e.g. "cannot save model
/// 'out.pt': "): ValueError for a bad destination (see check_output_path, a missing directory),
/// RuntimeError for I/O failures; what `write` throws propagates unchanged.
MODKIT_CORE_API void write_atomically(const std::string& path, const std::function<void(int fd)>& write,
                                      const std::string& prefix);

/// The same for text.
MODKIT_CORE_API void write_atomically(const std::string& path, const std::string& text, const std::string& prefix);

/// Writes all of `data` to `fd`, retrying on EINTR. Returns 0, or the errno of the failure.
MODKIT_CORE_API int write_all(int fd, const void* data, size_t size);

}  // namespace modkit
