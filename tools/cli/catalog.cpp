// Metadata-only discovery for `list` and `inspect`: the factory's walk, ELF symbols and metadata, no dlopen.
#include "catalog.hpp"

#include <modkit/core/detail/elf.hpp>
#include <modkit/core/detail/path_safety.hpp>
#include <modkit/core/detail/plugin_library.hpp>
#include <modkit/core/discovery.hpp>
#include <modkit/core/factory.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

namespace modkit::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Drops a leading subject the record already names, as the loader does.
std::string without_subject(const std::string& message, const std::string& subject) {
  return message.rfind(subject, 0) == 0 ? message.substr(subject.size()) : message;
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

std::string incompatibility(const ModifierInfo& info) {
  // the loader's own check, so list predicts exactly what refresh() will refuse
  auto host = detail::HostFingerprint::current();
  host.torch_version = FactoryOptions::default_torch_version();
  return detail::check_compatibility(info.abi_major, info.abi_min_minor, info.torch_version, info.cxx11_abi, host);
}

FileScan scan_file(const std::string& path, bool experimental) {
  FileScan out;
  detail::ElfContents elf;
  try {
    elf = detail::read_elf(path);
  } catch (const std::exception& e) {
    out.problems.push_back(LoadRecord::make("", path, LoadStage::Scan,
                                   without_subject(without_subject(e.what(), "'" + path + "' "), "is "),
                                   experimental));
    return out;
  }

  std::map<std::string, ModifierInfo> metadata;
  std::vector<std::string> metadata_order;
  std::string metadata_error;  // the first malformed entry, blamed on names left without metadata
  for (const auto& text : elf.metadata) {
    try {
      ModifierInfo info = parse_metadata(text, path);
      std::string name = info.name;
      if (metadata.emplace(name, std::move(info)).second) metadata_order.push_back(std::move(name));
    } catch (const std::exception& e) {
      if (metadata_error.empty()) metadata_error = e.what();
    }
  }

  // the linker decides the section's order; readers expect names in order
  std::sort(metadata_order.begin(), metadata_order.end());

  std::set<std::string> symbols;
  for (const auto& sym : elf.symbols) {
    if (!ends_with(sym.name, "Modifier")) continue;
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
  for (const auto& name : metadata_order) {
    if (symbols.count(name) == 0) {
      const std::string why =
          ends_with(name, "Modifier")
              ? "metadata describes '" + name + "' but the file exports no such symbol (is it hidden?)"
              : "metadata describes '" + name + "', but hosts load only symbols whose names end in 'Modifier' (as "
                "llmcompressor finds its modifiers): rename it, e.g. '" + name + "Modifier'";
      out.problems.push_back(LoadRecord::make(name, path, LoadStage::Scan, why, experimental));
      continue;
    }
    ModifierInfo& info = metadata.at(name);
    if (std::string why = incompatibility(info); !why.empty()) {
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

FileScan from_cache(detail::CachedFile&& cached) {
  FileScan out;
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

Catalog scan_catalog(const SearchPath& path, size_t explicit_dirs, detail::CacheImage* cache) {
  const std::vector<std::string>& dirs = path.dirs;
  Catalog catalog;
  catalog.search_dirs = dirs;
  catalog.problems = path.refused_dirs;
  for (size_t i = 0; i < dirs.size() && i < explicit_dirs; ++i) {
    struct stat st {};
    if (::stat(dirs[i].c_str(), &st) != 0) {
      catalog.problems.push_back(LoadRecord::make("", dirs[i], LoadStage::Scan, "plugin directory does not exist", false));
    } else if (!S_ISDIR(st.st_mode)) {
      catalog.problems.push_back(LoadRecord::make("", dirs[i], LoadStage::Scan, "not a directory", false));
    }
  }
  std::map<std::string, detail::CachedFile*> cached_files;
  if (cache != nullptr) {
    for (auto& f : cache->files) cached_files.emplace(detail::RegistryCache::key_of(f.path, f.experimental), &f);
  }
  std::map<std::string, std::string> first[2];  // per registry: name -> the file that wins
  const uid_t uid = ::geteuid();
  detail::PathMemo memo;
  for (const auto& file : discover_plugin_files(dirs)) {
    // as the factory does: a file others could have written is refused, by each name it describes
    const std::string unsafe = detail::examine_plugin_path(file.path, file.dir, uid, path.check_safety, memo).unsafe;
    if (!unsafe.empty()) {
      const FileScan described = scan_file(file.path, file.experimental);
      for (const auto& entry : described.entries) {
        catalog.problems.push_back(LoadRecord::make(entry.info.name, file.path, LoadStage::Scan, unsafe, file.experimental));
      }
      if (described.entries.empty()) {
        catalog.problems.push_back(LoadRecord::make("", file.path, LoadStage::Scan, unsafe, file.experimental));
      }
      continue;
    }
    detail::CachedFile* cached = nullptr;
    if (auto it = cached_files.find(detail::RegistryCache::key_of(file.path, file.experimental));
        it != cached_files.end()) {
      const auto stamp = detail::FileStamp::of(file.path);
      if (stamp && *stamp == it->second->stamp) cached = it->second;
      cached_files.erase(it);  // moved from below; a path searched twice is read from its metadata
    }
    FileScan scan;
    bool from_metadata = cached == nullptr;
    if (cached != nullptr) {
      try {
        scan = from_cache(std::move(*cached));
      } catch (const std::exception&) {
        from_metadata = true;  // an entry damaged past its checksum: the file itself is the truth
      }
    }
    if (from_metadata) scan = scan_file(file.path, file.experimental);
    for (auto& entry : scan.entries) {
      auto& winners = first[entry.experimental ? 1 : 0];
      auto [it, inserted] = winners.emplace(entry.info.name, entry.file);
      if (!inserted) entry.shadowed_by = it->second;
      catalog.entries.push_back(std::move(entry));
    }
    for (auto& p : scan.problems) catalog.problems.push_back(std::move(p));
  }
  return catalog;
}

}  // namespace modkit::cli
