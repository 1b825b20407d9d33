// The crash-isolated plugin scanner's entry point, for hosts that ship their own scanner executable.
#pragma once

#include <modkit/core/export.hpp>

namespace modkit {

/// The body of `modkit-plugin-scanner` (FactoryOptions::scanner_path), which
/// the factory starts with `--fd=N --torch=V {m|x}:<file>...`: loads and
/// validates each file and reports on fd N. Returns the exit status (and on
/// success leaves through _exit, so plugins' static destructors never run).
/// A host's own scanner is `int main(int c, char** v) { return modkit::plugin_scanner_main(c, v); }`.
MODKIT_CORE_API int plugin_scanner_main(int argc, char** argv);

}  // namespace modkit
