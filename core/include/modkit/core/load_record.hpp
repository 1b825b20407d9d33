// The outcome of loading one modifier name from one plugin file.
#pragma once

#include <modkit/core/export.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace modkit {

/// Where in discovery a record was made.
enum class LoadStage {
  Scan,      ///< reading the file's symbols and metadata (no code ran)
  Open,      ///< dlopen (RTLD_NOW | RTLD_LOCAL)
  Resolve,   ///< looking up or calling the descriptor function
  Validate,  ///< checking the descriptor (magic, sizes, ABI, fingerprint, schema)
  Shadowed,  ///< valid, but an earlier file provides the same name (first wins)
  Loaded,    ///< valid and registered
  Isolated,  ///< the crash-isolated scanner process died or timed out loading the file (it was not loaded here)
};

MODKIT_CORE_API const char* to_string(LoadStage stage);

/// Where refresh() got a record from.
enum class RecordSource {
  Scan,    ///< this refresh examined the file (in the scanner child or in this process)
  Cache,   ///< the registry cache: the file is unchanged since a scan recorded it (no code ran)
  Memory,  ///< the file is already loaded in this process and unchanged (cache off)
};

MODKIT_CORE_API const char* to_string(RecordSource source);

/// One load record: per modifier name and file, as the Python factory's
/// errors map but with the file and stage kept.
struct MODKIT_CORE_API LoadRecord {
  std::string name;  ///< the *Modifier name; "" when the file lists none (e.g. not ELF)
  std::string file;  ///< the plugin file (or directory, for a missing directory)
  std::string resolved;  ///< `file` with symlinks resolved, when a symlink leads elsewhere (else "")
  LoadStage stage = LoadStage::Scan;
  std::string reason;  ///< one sentence; "" when loaded
  bool experimental = false;
  RecordSource source = RecordSource::Scan;

  /// A record of `stage` for `name` in `file` (source: scan).
  static LoadRecord make(std::string name, std::string file, LoadStage stage, std::string reason, bool experimental);

  bool ok() const { return stage == LoadStage::Loaded; }
  /// "cannot load 'Name' from 'file': reason"
  std::string message() const;
  /// {name, file, stage, reason, experimental, source}, plus "resolved" when set.
  nlohmann::json to_json() const;
};

}  // namespace modkit
