// The metadata-only view of the plugin directories behind `list` and `inspect`: no plugin is loaded.
#pragma once

#include "plugin_dirs.hpp"

#include <modkit/core/detail/registry_cache.hpp>
#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace modkit::cli {

/// A modifier as its plugin file's metadata section describes it.
struct CatalogEntry {
  ModifierInfo info;
  std::string file;
  bool experimental = false;
  std::string shadowed_by;  ///< the file that provides the name first in the same registry, or ""
  bool searched = true;     ///< false for a file inspected by path outside every plugin directory
  RecordSource source = RecordSource::Scan;  ///< scan: the file's metadata; cache: the registry cache

  /// "main", "experimental", or "none" outside the plugin directories.
  const char* registry() const { return !searched ? "none" : experimental ? "experimental" : "main"; }
  /// info.to_json() plus file, registry, shadowed, shadowed_by and source.
  nlohmann::json to_json() const;
};

/// What one file's ELF symbols and metadata say.
struct FileScan {
  std::vector<CatalogEntry> entries;  ///< sorted by name
  std::vector<LoadRecord> problems;   ///< unreadable file, names without metadata, incompatible builds
};

/// Reads one file's dynamic symbols and metadata section (never runs its
/// code). Never throws: every failure is a problem record.
FileScan scan_file(const std::string& path, bool experimental);

/// Every plugin file of the search directories, in the factory's walk order.
struct Catalog {
  std::vector<std::string> search_dirs;
  std::vector<CatalogEntry> entries;  ///< walk order; later providers of a name are shadowed
  std::vector<LoadRecord> problems;   ///< walk order

  /// Every name seen (entries and problems), for "did you mean".
  std::vector<std::string> names() const;
  /// The entry create(type, true, true) would use: experimental, then main.
  const CatalogEntry* find(const std::string& name) const;
};

/// What the registry cache knows of one file, as a FileScan: its valid types
/// as entries, its failures as problems (source `cache`). Moves out of
/// `cached`. Throws ValueError when its types do not decode.
FileScan from_cache(detail::CachedFile&& cached);

/// Scans `dirs` (the first `explicit_dirs` were asked for explicitly: a
/// missing one is a problem, as in the factory). A file the registry cache
/// image `cache` holds unchanged is taken from it (and its entry moved out),
/// the others from their metadata.
Catalog scan_catalog(const SearchPath& path, size_t explicit_dirs, detail::CacheImage* cache = nullptr);

/// Why the host would refuse a modifier built as `info` describes ("" when it
/// would accept it): ABI major, minimum minor, LibTorch version and C++ ABI.
std::string incompatibility(const ModifierInfo& info);

}  // namespace modkit::cli
