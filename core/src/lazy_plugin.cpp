// Lazy plugin files: loaded and re-validated on first use, with the change since the scan detected and recorded.
#include "lazy_plugin.hpp"
#include "elf.hpp"
#include "loaded_libraries.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace modkit::detail {

LazyFile::LazyFile(std::string path, bool experimental, std::optional<FileStamp> stamp, HostFingerprint host)
    : path_(std::move(path)), experimental_(experimental), stamp_(stamp), host_(std::move(host)) {}

LazyFile::LazyFile(std::string path, bool experimental, std::optional<FileStamp> stamp, HostFingerprint host,
                   FileLoad load)
    : LazyFile(std::move(path), experimental, stamp, std::move(host)) {
  attempted_ = true;
  load_ = std::move(load);
  for (const auto& type : load_.types) verified_.emplace(type->info.name, type);
}

LoadRecord LazyFile::failure_record(const std::string& name, LoadStage stage, std::string reason) const {
  return LoadRecord::make(name, path_, stage, std::move(reason), experimental_);
}

std::shared_ptr<const PluginModifierType> LazyFile::resolve(const ModifierInfo& expected, LoadRecord& failure) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = verified_.find(expected.name); it != verified_.end()) return it->second;
  if (!attempted_) {
    attempted_ = true;
    // what was scanned is what may be loaded: a file replaced since then has
    // not been through the crash-isolating scan
    if (stamp_) {
      const auto now = FileStamp::of(path_);
      if (!now) {
        file_failure_ = std::string("cannot be read any more: ") + std::strerror(errno);
      } else if (*now != *stamp_) {
        file_failure_ = "changed since it was scanned (expected " + stamp_->describe() + ", found " + now->describe() +
                        "); refresh() scans it again";
      }
    }
    if (file_failure_.empty()) load_ = LoadedLibraries::instance().load(path_, experimental_, stamp_, host_);
  }
  if (!file_failure_.empty()) {
    failure = failure_record(expected.name, LoadStage::Open, file_failure_);
    return nullptr;
  }
  for (const auto& type : load_.types) {
    if (type->info.name != expected.name) continue;
    if (type->info.to_json() != expected.to_json()) {
      failure = failure_record(expected.name, LoadStage::Validate,
                               "its descriptor differs from what the scan recorded (an older copy of the file may "
                               "be loaded in this process already; refresh() scans it again)");
      return nullptr;
    }
    verified_.emplace(expected.name, type);
    return type;
  }
  for (const auto& r : load_.records) {
    if (r.name == expected.name || r.name.empty()) {
      failure = r;
      failure.name = expected.name;
      return nullptr;
    }
  }
  failure = failure_record(expected.name, LoadStage::Resolve,
                           "symbol '" + expected.name + "' was scanned but the loaded file does not export it");
  return nullptr;
}

LazyType::LazyType(std::shared_ptr<LazyFile> file, std::shared_ptr<const ModifierInfo> info)
    : file_(std::move(file)), name_(info->name), info_(std::move(info)) {}

LazyType::LazyType(std::shared_ptr<LazyFile> file, std::string_view name, std::shared_ptr<const CachedFile> entry,
                   size_t index)
    : file_(std::move(file)), name_(name), entry_(std::move(entry)), index_(index) {}

const ModifierInfo& LazyType::info() const {
  if (info_) return *info_;
  return entry_->types.get().at(index_);  // names were checked against the records when decoded
}

std::vector<LoadRecord> refusal_records(const std::string& path, bool experimental, LoadStage stage,
                                        const std::string& reason) {
  std::vector<std::string> names = modifier_symbols(path);
  std::sort(names.begin(), names.end());  // the linker decides the table's order
  if (names.empty()) names.push_back("");
  std::vector<LoadRecord> records;
  for (auto& name : names) records.push_back(LoadRecord::make(std::move(name), path, stage, reason, experimental));
  return records;
}

FileOutcome outcome_of_load(const FileLoad& load, const std::string& path, bool experimental,
                            const std::optional<FileStamp>& stamp, const HostFingerprint& host, RecordSource source) {
  FileOutcome out;
  out.records = load.records;
  for (auto& r : out.records) r.source = source;
  auto file = std::make_shared<LazyFile>(path, experimental, stamp, host, load);
  for (const auto& type : load.types) {
    out.types.push_back(std::make_shared<const LazyType>(file, std::shared_ptr<const ModifierInfo>(type, &type->info)));
  }
  return out;
}

FileOutcome outcome_of_scan(std::vector<LoadRecord> records, std::vector<ModifierInfo> types,
                            const std::string& path, bool experimental, const std::optional<FileStamp>& stamp,
                            const HostFingerprint& host) {
  FileOutcome out;
  out.records = std::move(records);
  if (!types.empty()) {
    auto file = std::make_shared<LazyFile>(path, experimental, stamp, host);
    for (auto& info : types) {
      out.types.push_back(std::make_shared<const LazyType>(file, std::make_shared<const ModifierInfo>(std::move(info))));
    }
  }
  return out;
}

std::vector<LoadRecord>& FileOutcome::decoded_records() {
  if (encoded_records) {
    records = encoded_records->load_records();
    encoded_records.reset();
  }
  return records;
}

FileOutcome outcome_of_cache(const std::shared_ptr<const CachedFile>& entry, const std::optional<FileStamp>& stamp,
                             const HostFingerprint& host) {
  FileOutcome out;
  // the failures are wanted at once (for errors()); records of loaded types only when asked for
  if (entry->encoded_records.bytes && entry->encoded_failures == 0) {
    out.encoded_records = entry;
  } else {
    out.records = entry->load_records();
  }
  const size_t n = entry->types.size();
  if (n == 0) return out;
  auto file = std::make_shared<LazyFile>(entry->path, entry->experimental, stamp, host);
  // one allocation for the file's types, each shared through it
  auto types = std::make_shared<std::vector<LazyType>>();
  types->reserve(n);
  out.types.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    // the name lives in the entry, which the type keeps
    const LazyType& type = types->emplace_back(file, entry->types.name(k), entry, k);
    out.types.push_back(std::shared_ptr<const LazyType>(types, &type));
  }
  return out;
}

}  // namespace modkit::detail
