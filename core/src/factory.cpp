// ModifierFactory: the plugin directory walk, registries with first-wins names, and create precedence.
#include "core_library.hpp"
#include "lazy_plugin.hpp"
#include "record_list.hpp"
#include "registry_cache.hpp"
#include "type_map.hpp"
#include <modkit/core/discovery.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/text.hpp>
#include <modkit/core/plugin_modifier.hpp>

#include <boost/filesystem.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <set>

namespace fs = boost::filesystem;

namespace modkit {

using TypePtr = std::shared_ptr<const detail::LazyType>;

using detail::TypeMap;

struct ModifierFactory::Registry {
  bool loaded = false;
  TypeMap main;
  TypeMap experimental;
  std::map<std::string, Constructor> registered;
  detail::RecordList records;
  std::map<std::string, LoadRecord> errors;

  // One file's records; its failures go to `errors` at once (an entry left
  // encoded holds none: see outcome_of_cache).
  void add(detail::FileOutcome&& outcome) {
    if (outcome.encoded_records) records.append_encoded(std::move(outcome.encoded_records));
    add_records(std::move(outcome.records));
  }
  void add_records(std::vector<LoadRecord> more) {
    for (const auto& r : more) {
      if (!r.ok() && r.stage != LoadStage::Shadowed) errors.emplace(r.name, r);
    }
    records.append(std::move(more));
  }
};

namespace {

// Adds the file's types to `into`; a valid type whose name an earlier file
// provides is shadowed instead (first wins), and its record says so.
void merge(TypeMap& into, detail::FileOutcome& load) {
  std::vector<std::pair<std::string_view, std::string>> shadowed;  // name, the file that provides it first
  for (auto& type : load.types) {
    if (const TypePtr* first = into.insert_first(type)) shadowed.emplace_back(type->name(), (*first)->file()->path());
  }
  if (shadowed.empty()) return;
  for (auto& record : load.decoded_records()) {
    for (const auto& [name, first] : shadowed) {
      if (!record.ok() || record.name != name) continue;
      record.stage = LoadStage::Shadowed;
      record.reason = "shadowed by '" + first + "', which provides the same name first";
      spdlog::warn("'{}' in '{}' is shadowed by '{}' (first wins)", record.name, record.file, first);
      break;
    }
  }
}

// The entry of a type; nullopt (and a warning) when its metadata cannot be
// read (a registry cache damaged past its checksum): it is not listed.
std::optional<ModifierEntry> entry_of(const TypePtr& type, bool experimental) {
  ModifierEntry e;
  try {
    e.info = type->info();
  } catch (const std::exception& ex) {
    spdlog::warn("not listing '{}' from '{}': {}", type->name(), type->file()->path(), ex.what());
    return std::nullopt;
  }
  e.file = type->file()->path();
  e.experimental = experimental;
  return e;
}

std::vector<std::string> split_path_list(const char* text) {
  std::vector<std::string> out;
  if (text == nullptr) return out;
  std::string current;
  for (const char* p = text;; ++p) {
    if (*p == ':' || *p == '\0') {
      if (!current.empty()) out.push_back(current);
      current.clear();
      if (*p == '\0') break;
    } else {
      current += *p;
    }
  }
  return out;
}

}  // namespace

std::string installed_plugin_dir() {
  // <libdir>/modkit/plugins beside this library, so an installed tree can move
  const std::string& core = detail::core_library_path();
  if (core.empty()) return MODKIT_INSTALL_PLUGIN_DIR;
  return (fs::path(core).parent_path() / "modkit" / "plugins").string();
}

std::string FactoryOptions::default_torch_version() {
  return detail::HostFingerprint::current().torch_version;
}

ModifierFactory::ModifierFactory(FactoryOptions options)
    : options_(std::move(options)), registry_(std::make_unique<Registry>()) {
  search_dirs_ = options_.plugin_dirs;
  if (options_.use_environment) {
    for (auto& dir : split_path_list(std::getenv("MODKIT_PLUGIN_PATH"))) {
      // a relative entry loads whatever the working directory holds (the
      // LD_LIBRARY_PATH "::" trap): refuse it rather than resolve it
      if (!options_.allow_unsafe_paths && !fs::path(dir).is_absolute()) {
        LoadRecord r;
        r.file = dir;
        r.reason = "relative entry in MODKIT_PLUGIN_PATH, expected an absolute directory";
        path_records_.push_back(std::move(r));
        continue;
      }
      search_dirs_.push_back(dir);
    }
  }
  if (options_.use_install_dir) search_dirs_.push_back(installed_plugin_dir());
  auto host = detail::HostFingerprint::current();
  host.torch_version = options_.host_torch_version;
  cache_ = detail::RegistryCache::open(options_, host);
}

ModifierFactory::~ModifierFactory() = default;

ModifierFactory& ModifierFactory::instance() {
  static ModifierFactory factory;
  static std::once_flag refreshed;
  std::call_once(refreshed, [] { factory.refresh(); });
  return factory;
}

std::vector<PluginFile> ModifierFactory::walk(std::vector<LoadRecord>& records) const {
  std::vector<PluginFile> files;
  for (size_t i = 0; i < search_dirs_.size(); ++i) {
    const fs::path dir(search_dirs_[i]);
    boost::system::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      if (i < options_.plugin_dirs.size()) {  // asked for explicitly: say so
        records.push_back(LoadRecord::make("", dir.string(), LoadStage::Scan,
                                           fs::exists(dir, ec) ? "not a directory" : "plugin directory does not exist",
                                           false));
      } else {
        spdlog::debug("plugin directory '{}' does not exist", dir.string());
      }
      continue;
    }
    for (auto& file : discover_plugin_files(dir.string())) files.push_back(std::move(file));
  }
  return files;
}

void ModifierFactory::refresh() {
  auto fresh = std::make_unique<Registry>();
  std::vector<LoadRecord> dir_records = path_records_;
  const std::vector<PluginFile> files = walk(dir_records);
  for (const auto& r : dir_records) spdlog::warn("{}", r.message());
  fresh->add_records(std::move(dir_records));
  std::vector<detail::FileOutcome> loads = load_files(files);
  for (size_t i = 0; i < files.size(); ++i) {
    merge(files[i].experimental ? fresh->experimental : fresh->main, loads[i]);
    fresh->add(std::move(loads[i]));
  }
  fresh->loaded = true;
  std::unique_lock lock(mutex_);
  fresh->registered = std::move(registry_->registered);
  registry_ = std::move(fresh);
}

bool ModifierFactory::loaded() const {
  std::shared_lock lock(mutex_);
  return registry_->loaded;
}

std::map<std::string, ModifierEntry> ModifierFactory::load_from_package(const std::string& dir,
                                                                        bool experimental) {
  TypeMap types;
  const fs::path root(dir);
  boost::system::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw ValueError("plugin directory '" + dir + "' does not exist");
  }
  std::vector<PluginFile> files;
  for (auto& file : plugin_files_in_tree(dir, experimental ? "" : (root / "experimental").string())) {
    files.push_back({std::move(file), experimental, dir});
  }
  std::vector<detail::FileOutcome> loads = load_files(files);
  for (auto& load : loads) merge(types, load);
  {
    std::unique_lock lock(mutex_);
    for (auto& load : loads) registry_->add(std::move(load));
  }
  std::map<std::string, ModifierEntry> out;
  for (const auto& [name, type] : types) {
    if (auto e = entry_of(type, experimental)) out.emplace(std::string(name), std::move(*e));
  }
  return out;
}

std::unique_ptr<Modifier> ModifierFactory::create_plugin(const TypePtr& type, const Params& params) const {
  // parameters are checked against what the scan recorded before any plugin code runs
  const ModifierInfo* info = nullptr;
  LoadRecord failure;
  try {
    info = &type->info();
  } catch (const std::exception& e) {
    failure = LoadRecord::make(std::string(type->name()), type->file()->path(), LoadStage::Scan,
                               std::string("its registry cache entry does not decode (") + e.what() +
                                   "); refresh() scans the file again",
                               type->file()->experimental());
    record_failure(type, failure);
    throw LoadError(failure.message());
  }
  const Params resolved = resolve_params(*info, params);
  auto loaded = type->file()->resolve(*info, failure);
  if (!loaded) {
    record_failure(type, failure);
    throw LoadError(failure.message());
  }
  auto modifier = std::make_unique<PluginModifier>(std::move(loaded), resolved);
  apply_lifecycle_params(*modifier, resolved);
  return modifier;
}

void ModifierFactory::record_failure(const TypePtr& type, const LoadRecord& failure) const {
  spdlog::warn("{}", failure.message());
  {
    std::unique_lock lock(mutex_);
    Registry& r = *registry_;  // a refresh since then may have replaced the type already
    bool present = false;
    for (auto* registry : {&r.main, &r.experimental}) {
      auto it = registry->find(type->name());
      if (it != registry->end() && it->second == type) {
        registry->erase(it);
        present = true;
      }
    }
    if (present) {
      for (auto& record : r.records.all()) {
        if (record.name == failure.name && record.file == failure.file && record.ok()) {
          const std::string resolved = record.resolved;
          record = failure;
          record.resolved = resolved;
        }
      }
      r.errors.insert_or_assign(failure.name, failure);
    }
  }
  // the cache said this file was fine: scan it again next time
  if (cache_) cache_->update({}, {failure.file});
}

std::unique_ptr<Modifier> ModifierFactory::create(const std::string& type, bool allow_registered,
                                                  bool allow_experimental, const Params& params) const {
  Constructor constructor;
  TypePtr plugin_type;
  {
    // look up under the lock, build outside it: plugin code never runs while refresh() waits
    std::shared_lock lock(mutex_);
    const Registry& r = *registry_;
    if (auto it = r.registered.find(type); it != r.registered.end()) {
      if (allow_registered) {
        constructor = it->second;
      } else {
        spdlog::debug("skipping registered modifier '{}': registered modifiers are not allowed", type);
      }
    }
    if (!constructor) {
      if (auto it = r.experimental.find(type); it != r.experimental.end()) {
        if (allow_experimental) {
          plugin_type = it->second;
        } else {
          spdlog::debug("skipping experimental modifier '{}': experimental modifiers are not allowed", type);
        }
      }
    }
    if (!constructor && !plugin_type) {
      if (auto it = r.main.find(type); it != r.main.end()) plugin_type = it->second;
    }
    if (!constructor && !plugin_type) throw_not_found(type);
  }
  if (plugin_type) return create_plugin(plugin_type, params);
  std::unique_ptr<Modifier> m = constructor(params);
  if (!m) throw ValueError("The provided class does not subclass the Modifier base class.");
  apply_lifecycle_params(*m, params);
  return m;
}

void ModifierFactory::throw_not_found(const std::string& type) const {
  const Registry& r = *registry_;
  if (auto it = r.errors.find(type); it != r.errors.end()) throw LoadError(it->second.message());
  std::string message = "No modifier of type '" + type + "' found.";
  if (r.experimental.count(type) != 0) {
    message += " '" + type + "' is experimental and experimental modifiers are not allowed.";
  } else if (r.registered.count(type) != 0) {
    message += " '" + type + "' is registered and registered modifiers are not allowed.";
  } else {
    const auto close = closest_names(type, known_names());
    if (!close.empty()) message += " Did you mean " + quoted_list(close) + "?";
  }
  message += r.loaded ? " Searched: " + (search_dirs_.empty() ? std::string("no plugin directories")
                                                              : quoted_list(search_dirs_, ", ")) + "."
                      : " The factory has not been refreshed yet.";
  throw ValueError(message);
}

std::vector<std::string> ModifierFactory::known_names() const {
  std::set<std::string> names;
  for (const auto& [n, t] : registry_->main) names.emplace(n);
  for (const auto& [n, t] : registry_->experimental) names.emplace(n);
  for (const auto& [n, c] : registry_->registered) names.insert(n);
  for (const auto& [n, e] : registry_->errors) {
    if (!n.empty()) names.insert(n);
  }
  return {names.begin(), names.end()};
}

void ModifierFactory::register_type(const std::string& type, Constructor constructor) {
  if (!constructor) throw ValueError("The provided class is not a type.");
  std::unique_lock lock(mutex_);
  registry_->registered[type] = std::move(constructor);
}

std::map<std::string, LoadRecord> ModifierFactory::errors() const {
  std::shared_lock lock(mutex_);
  return registry_->errors;
}

std::vector<LoadRecord> ModifierFactory::records() const {
  std::shared_lock lock(mutex_);
  return registry_->records.all();
}

std::vector<ModifierEntry> ModifierFactory::modifiers() const {
  std::shared_lock lock(mutex_);
  std::vector<ModifierEntry> out;
  for (const auto& [name, type] : registry_->main) {
    if (auto e = entry_of(type, false)) out.push_back(std::move(*e));
  }
  for (const auto& [name, type] : registry_->experimental) {
    if (auto e = entry_of(type, true)) out.push_back(std::move(*e));
  }
  for (const auto& [name, ctor] : registry_->registered) {
    ModifierEntry e;
    e.info.name = name;
    e.registered = true;
    out.push_back(std::move(e));
  }
  return out;
}

std::string ModifierFactory::cache_file() const { return cache_ ? cache_->file() : ""; }

std::optional<ModifierEntry> ModifierFactory::find(const std::string& type) const {
  std::shared_lock lock(mutex_);
  if (registry_->registered.count(type) != 0) {
    ModifierEntry e;
    e.info.name = type;
    e.registered = true;
    return e;
  }
  if (auto it = registry_->experimental.find(type); it != registry_->experimental.end()) {
    return entry_of(it->second, true);  // nullopt when unreadable
  }
  if (auto it = registry_->main.find(type); it != registry_->main.end()) return entry_of(it->second, false);
  return std::nullopt;
}

void apply_lifecycle_params(Modifier& m, const Params& params) {
  if (!params.is_object()) return;
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = params.find(key);
    if (it == params.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) throw ValueError(m.type_name() + " parameter '" + key + "': expected float, found " + it->dump());
    return it->get<double>();
  };
  if (auto it = params.find("index"); it != params.end() && it->is_number_integer()) m.index = it->get<int64_t>();
  if (auto it = params.find("group"); it != params.end() && it->is_string()) m.group = it->get<std::string>();
  m.start = number("start");
  m.end = number("end");
  m.update = number("update");
}

}  // namespace modkit
