// What a process does when a signal ends it: no temporary files left behind, the progress line
// ended, and for a crash a line naming the plugin code that was running.
#pragma once

#include <modkit/core/export.hpp>

#include <string>

namespace modkit {

/// Installs the handlers, for each of SIGINT, SIGTERM, SIGHUP (interrupts) and SIGSEGV, SIGBUS,
/// SIGFPE, SIGILL, SIGABRT (crashes) whose disposition is still the default: a host application's
/// own handlers, and signals it ignores, are left alone. When one of them arrives, the handler
/// writes the preamble (set_signal_preamble) to stderr, for a crash the line
/// "<program>: crashed with SIGSEGV in GPTQModifier.on_event (...)", removes the temporary files
/// of writes in progress (TemporaryFile), and then lets the signal's default action happen, so the
/// exit status and any core dump are what they would have been. Idempotent.
MODKIT_CORE_API void install_signal_handlers(const std::string& program);

/// Text written to stderr first when a signal ends the process, e.g. "\n" to end a progress line
/// that has no newline yet; "" for none. At most 63 bytes are kept.
MODKIT_CORE_API void set_signal_preamble(const std::string& text);

/// Registers a file that a signal ending the process removes (a temporary file being written),
/// for as long as the object lives. At most 64 files at a time are registered; others are not.
class MODKIT_CORE_API TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& path);
  ~TemporaryFile();
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

 private:
  int slot_;
};

/// Names the plugin code that runs while the object lives (e.g. "GPTQModifier.on_initialize", or
/// "GPTQModifier's forward hook on 'layers.0.mlp.fc1'"), for the crash line. Scopes nest: a hook
/// inside a callback is named together with the callback (at most 8 levels are kept).
class MODKIT_CORE_API PluginCallScope {
 public:
  /// `abi_min_minor`: the host minor the running modifier declared it needs (-1 when unknown),
  /// so that a service of a newer minor can refuse a plugin that under-declares.
  explicit PluginCallScope(const std::string& what, int abi_min_minor = -1);
  ~PluginCallScope();
  PluginCallScope(const PluginCallScope&) = delete;
  PluginCallScope& operator=(const PluginCallScope&) = delete;

  /// The modifier type of the innermost scope ("GPTQModifier"), or "" outside any.
  static std::string current_modifier();
  /// The abi_min_minor of the innermost scope that knows it, or -1.
  static int current_abi_min_minor();
};

}  // namespace modkit
