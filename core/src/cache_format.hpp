// The registry cache file format: validated metadata and load records per plugin file, checksummed, bounds-checked on read.
#pragma once

#include "file_stamp.hpp"
#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace modkit::detail {

/// The bytes of a cache file (a mapping of it, or a string), kept alive by
/// every entry read from them.
using CacheBytes = std::shared_ptr<const std::string_view>;

/// Bytes that own a copy of `text`.
CacheBytes cache_bytes(std::string text);

/// The valid types of one cached file: known (from a scan), or still encoded
/// in the cache file they were read from and decoded on first use, so a warm
/// refresh() reads the schemas only of the types it uses.
///
/// Copies share one decoded state. Thread safety: get() may be called from
/// several threads.
class CachedTypes {
 public:
  CachedTypes();
  /// Known types.
  explicit CachedTypes(std::vector<ModifierInfo> types);
  /// Types encoded at [offset, offset + size) of `bytes` (the cache file
  /// `file`) for the plugin file `plugin`: one per name of `names`, in order.
  CachedTypes(CacheBytes bytes, size_t offset, size_t size, std::string file,
              std::string plugin, std::vector<std::string> names);
  /// As above, without copies: `plugin` and `names` are views into `bytes`
  /// (which the types keep alive) and `file` is shared by a file's entries.
  static CachedTypes encoded_in(CacheBytes bytes, size_t offset, size_t size,
                                std::shared_ptr<const std::string> file, std::string_view plugin,
                                std::vector<std::string_view> names);

  /// The types, decoded the first time. Throws ValueError "registry cache
  /// '<file>' ..." when they do not decode, fail metadata checks or do not
  /// match the names (every call throws the same).
  const std::vector<ModifierInfo>& get() const;
  /// A fresh copy of the types, decoded now when still encoded (for readers
  /// that keep them). Throws as get().
  std::vector<ModifierInfo> decode() const;
  /// How many there are (known without decoding).
  size_t size() const;
  /// The name of the `index`-th, known without decoding; valid while this (or a copy) lives.
  std::string_view name(size_t index) const;

  /// The encoded form (for writing the cache again without decoding).
  std::string encoded() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// One plugin file's outcome as the registry cache keeps it: valid while
/// the file's stamp and the host's key are unchanged.
struct CachedFile {
  std::string path;
  bool experimental = false;
  FileStamp stamp;
  /// As the scan made them, in order; never shadowed, no resolved path. An
  /// entry read from a cache file leaves this empty and keeps them encoded
  /// (checked when read) until load_records().
  std::vector<LoadRecord> records;
  /// The valid types, from their descriptors: one per `loaded` record, in the same order.
  CachedTypes types;

  /// Where decode_cache() left the records: `count` of them at [offset, offset + size) of `bytes`.
  struct EncodedRecords {
    CacheBytes bytes;
    size_t offset = 0, size = 0;
    uint32_t count = 0;
  } encoded_records;

  /// How many of the encoded records are not loaded (known without decoding them).
  uint32_t encoded_failures = 0;

  /// The records: `records`, or the encoded ones decoded now (file = path, source = cache).
  std::vector<LoadRecord> load_records() const;
  /// Appends load_records() to `out`.
  void append_records(std::vector<LoadRecord>& out) const;
  /// How many records there are.
  size_t record_count() const { return encoded_records.bytes ? encoded_records.count : records.size(); }
};

/// A whole cache file.
struct CacheImage {
  /// What the entries were validated against (ABI, LibTorch fingerprint, core build); see RegistryCache.
  std::string host_key;
  std::vector<CachedFile> files;
};

/// The bytes of a cache file: magic "MODKITRC", format version, host key,
/// payload size and checksum (word-wise FNV-1a), then the payload
/// (little-endian, length-prefixed; each file's types in a sized block).
/// Throws ValueError for a value nested too deeply to read back.
std::string encode_cache(const CacheImage& image);

/// Reads a cache file. Never reads outside `bytes`; throws ValueError
/// "registry cache '<name>' <what is wrong>" for anything but a complete,
/// intact file of this format whose records are consistent. Types stay
/// encoded (in `bytes`) until CachedTypes::get().
CacheImage decode_cache(CacheBytes bytes, const std::string& name);

/// The payload alone (what follows the checksummed header) at
/// [offset, end) of `bytes`, with the same checks: what a corrupt file that
/// kept a valid checksum would reach.
std::vector<CachedFile> decode_cache_payload(CacheBytes bytes, size_t offset,
                                             const std::string& name);

}  // namespace modkit::detail
