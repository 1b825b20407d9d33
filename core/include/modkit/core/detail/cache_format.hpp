// The registry cache file format: validated metadata and load records per plugin file, checksummed, bounds-checked on read.
#pragma once

#include <modkit/core/detail/file_stamp.hpp>
#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace modkit::detail {

/// One plugin file's outcome as the registry cache keeps it: valid while
/// the file's stamp and the host's key are unchanged.
struct CachedFile {
  std::string path;
  bool experimental = false;
  FileStamp stamp;
  /// As the scan made them, in order (file = path; never shadowed, no resolved path).
  std::vector<LoadRecord> records;
  /// The valid types, from their descriptors: one per `loaded` record, in the same order.
  std::vector<ModifierInfo> types;
};

/// A whole cache file.
struct CacheImage {
  /// What the entries were validated against (ABI, LibTorch fingerprint, core build); see RegistryCache.
  std::string host_key;
  std::vector<CachedFile> files;
};

/// The bytes of a cache file: magic "MODKITRC", format version, host key,
/// payload size and FNV-1a checksum, then the payload (little-endian,
/// length-prefixed). Throws ValueError for a value nested too deeply to read back.
std::string encode_cache(const CacheImage& image);

/// Reads a cache file. Never reads outside [data, data + size); throws
/// ValueError "registry cache '<name>' <what is wrong>" for anything but a
/// complete, intact file of this format whose every entry is consistent.
CacheImage decode_cache(const uint8_t* data, size_t size, const std::string& name);

/// The payload alone (what follows the checksummed header), with the same
/// checks: what a corrupt file that kept a valid checksum would reach.
std::vector<CachedFile> decode_cache_payload(const uint8_t* data, size_t size, const std::string& name);

}  // namespace modkit::detail
