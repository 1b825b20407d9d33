// Metadata-only discovery: what the plugin directories provide, read from ELF metadata and the registry cache,
// without loading any plugin (`modkit list` and `inspect`; a host's own plugin browser).
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace modkit {

/// A modifier as its plugin file's metadata (or the registry cache) describes it.
struct MODKIT_CORE_API CatalogEntry {
  ModifierInfo info;
  std::string file;
  bool experimental = false;
  std::string shadowed_by;  ///< the file that provides the name first in the same registry, or ""
  bool searched = true;     ///< false for a file read by path outside every plugin directory
  RecordSource source = RecordSource::Scan;  ///< scan: the file's metadata; cache: the registry cache

  /// "main", "experimental", or "none" outside the plugin directories.
  const char* registry() const { return !searched ? "none" : experimental ? "experimental" : "main"; }
  /// info.to_json() plus file, registry, shadowed, shadowed_by and source.
  nlohmann::json to_json() const;
};

/// What one plugin file's ELF symbols and metadata section say.
struct MODKIT_CORE_API PluginFileScan {
  std::vector<CatalogEntry> entries;  ///< sorted by name
  std::vector<LoadRecord> problems;   ///< unreadable file, names without metadata, incompatible builds
  std::string unreadable;             ///< the ELF reader's sentence when the file cannot be read at all, else ""
};

/// Reads one file's dynamic symbols and metadata section (never runs its
/// code) and checks each modifier against this host, whose LibTorch version
/// is `host_torch_version` ("" accepts any). Never throws: every failure is
/// a problem record.
MODKIT_CORE_API PluginFileScan scan_plugin_file(const std::string& path, bool experimental,
                                                const std::string& host_torch_version);

/// Why this host would refuse a modifier built as `info` describes ("" when
/// it would accept it): ABI major, minimum minor, LibTorch version and C++
/// ABI; the loader's own check, so a catalog predicts what refresh() refuses.
MODKIT_CORE_API std::string incompatibility(const ModifierInfo& info, const std::string& host_torch_version);

/// Every plugin file of a factory's search directories, in its walk order
/// (see ModifierFactory::catalog()).
struct MODKIT_CORE_API Catalog {
  std::vector<std::string> search_dirs;
  std::string cache_file;             ///< the registry cache read, "" when off
  std::vector<CatalogEntry> entries;  ///< walk order; later providers of a name are shadowed
  std::vector<LoadRecord> problems;   ///< walk order

  /// Every name seen (entries and problems), for "did you mean".
  std::vector<std::string> names() const;
  /// The entry create(type, true, true) would use: experimental, then main.
  const CatalogEntry* find(const std::string& name) const;
};

}  // namespace modkit
