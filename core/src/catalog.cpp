// Metadata-only discovery: a plugin file's ELF symbols and metadata, and the factory's walk over them, no dlopen.
#include "elf.hpp"
#include "lazy_plugin.hpp"
#include "path_safety.hpp"
#include "plugin_library.hpp"
#include "registry_cache.hpp"
#include <modkit/core/catalog.hpp>
#include <modkit/core/factory.hpp>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

namespace modkit {
namespace {

// What the registry cache knows of one file: its valid types as entries, its failures as problems (source
// `cache`). Throws ValueError when its types do not decode.
PluginFileScan scan_of_cache(const detail::CachedFile& cached) {
  PluginFileScan out;
  std::vector<ModifierInfo> types = cached.types.decode();
  for (auto& r : cached.load_records()) {
    if (!r.ok()) out.problems.push_back(std::move(r));
  }
  out.entries.reserve(types.size());
  for (auto& info : types) {
    CatalogEntry entry;
    entry.info = std::move(info);
    entry.file = cached.path;
    entry.experimental = cached.experimental;
    entry.source = RecordSource::Cache;
    out.entries.push_back(std::move(entry));
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const CatalogEntry& a, const CatalogEntry& b) { return a.info.name < b.info.name; });
  return out;
}

}  // namespace

nlohmann::json CatalogEntry::to_json() const {
  nlohmann::json j = info.to_json();
  j["file"] = file;
  j["registry"] = registry();
  j["shadowed"] = !shadowed_by.empty();
  j["shadowed_by"] = shadowed_by.empty() ? nlohmann::json() : nlohmann::json(shadowed_by);
  j["source"] = to_string(source);
  return j;
}

std::string incompatibility(const ModifierInfo& info, const std::string& host_torch_version) {
  auto host = detail::HostFingerprint::current();
  host.torch_version = host_torch_version;
  return detail::check_compatibility(info.abi_major, info.abi_min_minor, info.torch_version, info.cxx11_abi, host);
}

PluginFileScan scan_plugin_file(const std::string& path, bool experimental, const std::string& host_torch_version) {
  PluginFileScan out;
  detail::ElfContents elf;
  try {
    elf = detail::read_elf(path);
  } catch (const std::exception& e) {
    out.unreadable = e.what();
    out.problems.push_back(
        LoadRecord::make("", path, LoadStage::Scan, detail::unreadable_reason(e.what(), path), experimental));
    return out;
  }

  std::map<std::string, ModifierInfo> metadata;
  std::string metadata_error;  // the first malformed entry, blamed on names left without metadata
  for (const auto& text : elf.metadata) {
    try {
      ModifierInfo info = parse_metadata(text, path);
      std::string name = info.name;
      metadata.emplace(std::move(name), std::move(info));
    } catch (const std::exception& e) {
      if (metadata_error.empty()) metadata_error = e.what();
    }
  }

  std::set<std::string> symbols;
  for (const auto& sym : elf.symbols) {
    if (!detail::is_modifier_name(sym.name)) continue;
    symbols.insert(sym.name);
    if (!sym.is_function) {
      out.problems.push_back(LoadRecord::make(
          sym.name, path, LoadStage::Scan,
          "symbol '" + sym.name + "' is a data object, expected a function returning a modkit descriptor",
          experimental));
    } else if (metadata.count(sym.name) == 0) {
      out.problems.push_back(LoadRecord::make(
          sym.name, path, LoadStage::Scan,
          metadata_error.empty()
              ? "symbol '" + sym.name + "' has no entry in the metadata section (expected one written by "
                "MODKIT_EXPORT_MODIFIER, found none)"
              : "symbol '" + sym.name + "' has no valid metadata: " + metadata_error,
          experimental));
    }
  }
  // by name: the linker decides the section's order
  for (auto& [name, info] : metadata) {
    if (symbols.count(name) == 0) {
      const std::string why =
          detail::is_modifier_name(name)
              ? "metadata describes '" + name + "' but the file exports no such symbol (is it hidden?)"
              : "metadata describes '" + name + "', but hosts load only symbols whose names end in 'Modifier' (as "
                "llmcompressor finds its modifiers): rename it, e.g. '" + name + "Modifier'";
      out.problems.push_back(LoadRecord::make(name, path, LoadStage::Scan, why, experimental));
      continue;
    }
    if (std::string why = incompatibility(info, host_torch_version); !why.empty()) {
      out.problems.push_back(LoadRecord::make(name, path, LoadStage::Validate, why, experimental));
      continue;
    }
    CatalogEntry entry;
    entry.info = std::move(info);
    entry.file = path;
    entry.experimental = experimental;
    out.entries.push_back(std::move(entry));
  }
  return out;
}

std::vector<std::string> Catalog::names() const {
  std::set<std::string> names;
  for (const auto& e : entries) names.insert(e.info.name);
  for (const auto& p : problems) {
    if (!p.name.empty()) names.insert(p.name);
  }
  return {names.begin(), names.end()};
}

const CatalogEntry* Catalog::find(const std::string& name) const {
  for (bool experimental : {true, false}) {
    for (const auto& e : entries) {
      if (e.info.name == name && e.experimental == experimental && e.shadowed_by.empty()) return &e;
    }
  }
  return nullptr;
}

Catalog ModifierFactory::catalog() const {
  Catalog catalog;
  catalog.search_dirs = search_dirs_;
  catalog.cache_file = cache_file();
  catalog.problems = path_records_;
  const std::vector<PluginFile> files = walk(catalog.problems);
  // read, never written: no plugin code runs, so nothing is learnt that the cache could keep
  const auto snapshot = cache_ ? cache_->snapshot() : nullptr;
  std::map<std::string, std::string> first[2];  // per registry: name -> the file that wins
  const uid_t uid = ::geteuid();
  detail::PathMemo memo;
  for (const auto& file : files) {
    // the checks refresh() makes, in its order: path safety, then the cache, then the file itself
    const detail::PluginPath where =
        detail::examine_plugin_path(file.path, file.dir, uid, !options_.allow_unsafe_paths, memo);
    if (!where.unsafe.empty()) {
      for (auto& r : detail::refusal_records(file.path, file.experimental, LoadStage::Scan, where.unsafe)) {
        catalog.problems.push_back(std::move(r));
      }
      continue;
    }
    std::optional<PluginFileScan> scan;
    if (snapshot && where.stamp) {
      if (auto hit = detail::RegistryCache::lookup(*snapshot, file.path, file.experimental, *where.stamp)) {
        try {
          scan = scan_of_cache(*hit);
        } catch (const std::exception&) {
          // an entry damaged past its checksum: the file itself is the truth
        }
      }
    }
    if (!scan) scan = scan_plugin_file(file.path, file.experimental, options_.host_torch_version);
    for (auto& entry : scan->entries) {
      auto& winners = first[entry.experimental ? 1 : 0];
      auto [it, inserted] = winners.emplace(entry.info.name, entry.file);
      if (!inserted) entry.shadowed_by = it->second;
      catalog.entries.push_back(std::move(entry));
    }
    for (auto& p : scan->problems) catalog.problems.push_back(std::move(p));
  }
  return catalog;
}

}  // namespace modkit
