// A loaded plugin file and the validation of the descriptors it exports.
#pragma once

#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>
#include <modkit/modkit.h>

#include <memory>
#include <string>
#include <vector>

namespace modkit::detail {

/// What the host checks plugins against.
struct HostFingerprint {
  uint16_t abi_major = MODKIT_ABI_MAJOR;
  uint16_t abi_minor = MODKIT_ABI_MINOR;
  std::string torch_version;  ///< "" to accept any
  int cxx11_abi = -1;         ///< -1 to accept any

  /// The fingerprint modkit_core was built with.
  static HostFingerprint current();
};

/// An open plugin library. Shared by every modifier created from it; once
/// opened it is never unloaded (RTLD_NODELETE), as its static constructors
/// may have left pointers into it anywhere.
class PluginLibrary {
 public:
  /// dlopen(RTLD_NOW | RTLD_LOCAL). Throws ValueError with the loader's message.
  explicit PluginLibrary(const std::string& path);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const std::string& path() const { return path_; }
  /// The address of `symbol`, or nullptr.
  void* symbol(const std::string& symbol) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

/// A validated modifier type from a plugin.
struct PluginModifierType {
  std::shared_ptr<PluginLibrary> library;
  const modkit_modifier_descriptor* descriptor = nullptr;
  ModifierInfo info;
};

/// Everything one plugin file yields.
struct FileLoad {
  std::vector<LoadRecord> records;  ///< one per *Modifier name (or one file-level record)
  std::vector<std::shared_ptr<const PluginModifierType>> types;  ///< the valid ones
};

/// Scans, loads and validates one plugin file. Never throws: every failure
/// becomes a record under each *Modifier name the file's symbol table lists.
FileLoad load_plugin_file(const std::string& path, bool experimental, const HostFingerprint& host);

/// Whether a plugin built for `abi_major`.`min_minor` against LibTorch
/// `torch_version` ("" if none) with `cxx11_abi` can run in `host`: "" when it
/// can, else the reason (one sentence). Used on descriptors and on metadata.
std::string check_compatibility(uint32_t abi_major, uint32_t min_minor, const std::string& torch_version,
                                int cxx11_abi, const HostFingerprint& host);

/// Checks a descriptor returned by symbol `name`; returns "" when valid, else
/// the reason (one sentence). `image_symbol` is an address inside the same
/// library, used to check that the descriptor lies within it.
std::string validate_descriptor(const std::string& name, const modkit_modifier_descriptor* d,
                                const void* image_symbol, const HostFingerprint& host);

}  // namespace modkit::detail
