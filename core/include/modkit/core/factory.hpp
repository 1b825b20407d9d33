// ModifierFactory: discovers plugin modifiers in plugin directories and creates modifiers by type name.
#pragma once

#include <modkit/core/catalog.hpp>
#include <modkit/core/discovery.hpp>
#include <modkit/core/export.hpp>
#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier.hpp>
#include <modkit/core/modifier_info.hpp>
#include <modkit/core/params.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace modkit {

namespace detail {
class LazyType;
struct FileOutcome;
class RegistryCache;
}

/// Where plugin code first runs during refresh().
enum class Isolation {
  /// Each new or changed plugin file is loaded and validated first by
  /// `modkit-plugin-scanner`, a child process (as GStreamer's plugin
  /// scanner): a file that crashes, exits or hangs there is recorded (stage
  /// `isolated`) and never loaded by the host. The host loads a file that
  /// passed when a modifier from it is first created.
  Subprocess,
  /// New or changed plugin files are loaded directly in the host during
  /// refresh(), for hosts that cannot spawn processes: a plugin that crashes
  /// while loading takes the host down.
  InProcess,
};

/// What refresh() does with the registry cache: validated metadata and load
/// records of each plugin file, kept between processes and reused while the
/// file (path, size, mtime, inode) and the host (ABI version, LibTorch
/// fingerprint, core build) are unchanged. With every file cached, refresh()
/// runs no plugin code and starts no scanner; libraries load when a
/// modifier from them is first created.
enum class CacheMode {
  Use,      ///< read it, and write what was scanned afresh
  Rebuild,  ///< scan every file afresh and rewrite the entries
  Off,      ///< neither read nor write it
};

/// Where a factory looks for plugins and what it accepts.
struct MODKIT_CORE_API FactoryOptions {
  /// Searched first, in order (e.g. from --plugin-dir).
  std::vector<std::string> plugin_dirs;
  /// Then the colon-separated MODKIT_PLUGIN_PATH.
  bool use_environment = true;
  /// Then the install default, <prefix>/lib/modkit/plugins.
  bool use_install_dir = true;
  /// Checked against each plugin's fingerprint; "" accepts any.
  std::string host_torch_version = default_torch_version();
  /// Crash-isolated scanning (default) or loading in this process.
  Isolation isolation = Isolation::Subprocess;
  /// How long the scanner child may spend loading one file before it is
  /// killed and the file recorded as timed out.
  std::chrono::milliseconds scan_timeout{10000};
  /// The scanner executable; "" uses MODKIT_PLUGIN_SCANNER, then
  /// `modkit-plugin-scanner` beside libmodkit_core or in <libexecdir>/modkit.
  /// Without one, Subprocess falls back to InProcess with a warning.
  std::string scanner_path;
  /// Accept plugin files and directories that are world-writable or owned by
  /// a user other than root and this process's effective user, and relative
  /// entries in MODKIT_PLUGIN_PATH (resolved against the working directory).
  /// Off by default, as ssh's StrictModes: such files are recorded, not loaded.
  bool allow_unsafe_paths = false;
  /// The registry cache (see CacheMode). MODKIT_NO_CACHE=1 in the
  /// environment turns Use into Off unless cache_dir is set.
  CacheMode cache = CacheMode::Use;
  /// The cache directory; "" uses MODKIT_CACHE_DIR, then
  /// $XDG_CACHE_HOME/modkit, then ~/.cache/modkit (relative values are
  /// ignored). Both variables are read whatever use_environment says.
  std::string cache_dir;
  static std::string default_torch_version();
};

/// A known modifier type.
struct MODKIT_CORE_API ModifierEntry {
  ModifierInfo info;
  std::string file;  ///< "" for registered host-side types
  bool experimental = false;
  bool registered = false;
};

/// The C++ counterpart of llmcompressor's ModifierFactory, as an object the
/// host owns. Plugin directories are walked like the Python package walk:
/// every *.so below a directory, in sorted order, goes to the main registry,
/// except the top-level experimental/ subtree, which forms the experimental
/// registry. The first file to provide a name wins; every failure is recorded
/// per name. Plugin files in unsafe places are refused (see
/// FactoryOptions::allow_unsafe_paths), by default each new or changed file
/// is loaded in a scanner child process first (see Isolation), and what was
/// learnt is kept in the registry cache (see CacheMode). A library is loaded
/// into the host when a modifier from it is first created.
///
/// Thread safety: create(), refresh() and the accessors may be called from
/// several threads at once; refresh(), load_from_package() and
/// register_type() swap or change the registry under an exclusive lock.
/// Libraries are never unloaded, so refresh() with live modifiers is safe.
class MODKIT_CORE_API ModifierFactory {
 public:
  /// Builds a host-side modifier from resolved parameters.
  using Constructor = std::function<std::unique_ptr<Modifier>(const Params&)>;

  explicit ModifierFactory(FactoryOptions options = {});
  ~ModifierFactory();
  ModifierFactory(const ModifierFactory&) = delete;
  ModifierFactory& operator=(const ModifierFactory&) = delete;

  /// A process-wide factory with default options, for convenience.
  static ModifierFactory& instance();

  /// The plugin directories, in search order (existing or not).
  const std::vector<std::string>& search_dirs() const { return search_dirs_; }
  /// The MODKIT_PLUGIN_PATH entries left out of search_dirs() (relative ones), one record each
  /// with the reason; refresh() records them too.
  const std::vector<LoadRecord>& refused_search_dirs() const { return path_records_; }

  /// What refresh() would find, read from the registry cache and each
  /// file's metadata alone: the same walk, path checks, first-wins
  /// shadowing and compatibility checks, but no plugin code runs, no
  /// scanner starts and nothing is written. A file whose code would fail to
  /// load is listed from its metadata (refresh() would record the failure).
  Catalog catalog() const;

  /// Rescans every search directory: rebuilds the main and experimental
  /// registries and the load records. Registered types are kept.
  void refresh();
  /// True once refresh() ran.
  bool loaded() const;

  /// Scans one directory tree (its experimental/ subtree excluded unless
  /// `experimental`, in which case `dir` is that subtree) and returns what it
  /// provides; its failures are added to errors() and records().
  std::map<std::string, ModifierEntry> load_from_package(const std::string& dir, bool experimental = false);

  /// Creates a modifier: registered (if allowed) -> experimental (if allowed)
  /// -> main. `params` are checked against the type's schema (plugin types)
  /// and the lifecycle keys (index, group, start, end, update) are applied.
  /// The type's library is loaded on first use and its descriptor validated
  /// again; if that fails (the file changed since it was scanned, dlopen
  /// fails, the descriptor differs) the type's record is updated, the type
  /// leaves the registry and LoadError is thrown with the record's message.
  /// Throws LoadError with the recorded reason when the name failed to load
  /// and has no valid provider; otherwise ValueError "No modifier of type
  /// 'X' found." with the directories searched and the closest known names.
  std::unique_ptr<Modifier> create(const std::string& type, bool allow_registered,
                                   bool allow_experimental, const Params& params = Params::object()) const;

  /// Registers a host-side modifier type. Throws ValueError("The provided
  /// class is not a type.") for an empty constructor.
  void register_type(const std::string& type, Constructor constructor);

  /// Registers a C++ class derived from Modifier with a constructor taking
  /// `const Params&` (or a default constructor).
  template <class T>
  void register_class(const std::string& type) {
    static_assert(std::is_base_of_v<Modifier, T>,
                  "The provided class does not subclass the Modifier base class.");
    register_type(type, [](const Params& params) -> std::unique_ptr<Modifier> {
      if constexpr (std::is_constructible_v<T, const Params&>) {
        return std::make_unique<T>(params);
      } else {
        (void)params;
        return std::make_unique<T>();
      }
    });
  }

  /// The first failure recorded for each name that failed ("" for file-level failures).
  std::map<std::string, LoadRecord> errors() const;
  /// Every record, in scan order (loaded, shadowed and failed).
  std::vector<LoadRecord> records() const;
  /// Every known type: main, then experimental, then registered, each sorted by name.
  std::vector<ModifierEntry> modifiers() const;
  /// The entry `create(type, true, true)` would use, if any.
  std::optional<ModifierEntry> find(const std::string& type) const;
  /// The registry cache file in use, "" when the cache is off.
  std::string cache_file() const;

 private:
  struct Registry;
  std::unique_ptr<Modifier> create_plugin(const std::shared_ptr<const detail::LazyType>& type,
                                          const Params& params) const;
  /// After a lazy load failed: the record replaces the type's, and the type leaves the registry.
  void record_failure(const std::shared_ptr<const detail::LazyType>& type, const LoadRecord& failure) const;
  std::vector<std::string> known_names() const;
  /// Throws the error create() gives for a name it cannot build; under mutex_ (shared).
  [[noreturn]] void throw_not_found(const std::string& type) const;
  /// The plugin files of every search directory, in walk order; a record is
  /// appended to `records` for each directory asked for explicitly
  /// (FactoryOptions::plugin_dirs) that cannot be searched.
  std::vector<PluginFile> walk(std::vector<LoadRecord>& records) const;
  /// Examines `files` in walk order (safety checks, the registry cache, the
  /// scanner child, then this process); one FileOutcome per file.
  std::vector<detail::FileOutcome> load_files(const std::vector<PluginFile>& files) const;

  FactoryOptions options_;
  std::vector<std::string> search_dirs_;
  std::vector<LoadRecord> path_records_;  ///< rejected MODKIT_PLUGIN_PATH entries, recorded by each refresh()
  std::shared_ptr<detail::RegistryCache> cache_;  ///< null when off
  mutable std::shared_mutex mutex_;
  std::unique_ptr<Registry> registry_;
};

/// The install default plugin directory: <libdir>/modkit/plugins, found
/// beside the modkit_core library in use (so an installed tree can move).
MODKIT_CORE_API std::string installed_plugin_dir();

/// Applies the lifecycle keys of `params` (index, group, start, end, update) to `m`.
MODKIT_CORE_API void apply_lifecycle_params(Modifier& m, const Params& params);

}  // namespace modkit
