// The crash-isolated plugin scanner (as GStreamer's gst-plugin-scanner): plugin files are loaded first in a child process.
#pragma once

#include <modkit/core/load_record.hpp>
#include <modkit/core/modifier_info.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace modkit::detail {

/// One file for the scanner.
struct ScanRequest {
  std::string path;
  bool experimental = false;
};

/// What the scanner child reported for one file.
struct ScanResult {
  bool complete = false;            ///< the child finished the file and reported it
  std::string failure;              ///< when !complete: why ("crashed with SIGSEGV while loading", ...)
  std::vector<LoadRecord> records;  ///< when complete: the child's records (as load_plugin_file made them)
  std::vector<ModifierInfo> types;  ///< when complete: the valid types (from their descriptors), one per `loaded` record
  bool scanner_failed = false;      ///< when !complete: the scanner itself failed, not this file
};

/// The scanner executable to use: `override` if not "", else the environment
/// variable MODKIT_PLUGIN_SCANNER, else `modkit-plugin-scanner` beside the
/// modkit_core library in use or in <prefix>/libexec/modkit. "" when none is
/// an executable file.
std::string find_plugin_scanner(const std::string& override_path);

/// Scans `files` in child processes running `scanner`: one child takes the
/// files in order and reports each as it finishes; when it dies or a file
/// takes longer than `timeout`, that file gets a failure and a new child
/// takes the rest. Returns one result per file. Throws std::runtime_error
/// when the scanner itself cannot start (the caller may then load in-process).
std::vector<ScanResult> scan_in_subprocess(const std::string& scanner, const std::vector<ScanRequest>& files,
                                           const std::string& torch_version, std::chrono::milliseconds timeout);


}  // namespace modkit::detail
