// The plugin directory walk shared by the factory and the CLI: which files, in which order, in which registry.
#pragma once

#include <modkit/core/export.hpp>

#include <string>
#include <vector>

namespace modkit {

/// One candidate plugin file found by the walk.
struct MODKIT_CORE_API PluginFile {
  std::string path;           ///< the file, as found below its search directory
  bool experimental = false;  ///< below the search directory's top-level experimental/ subtree
  std::string dir;            ///< the search directory it was found under
};

/// Every `*.so` regular file below `root`, recursively, in sorted order.
/// `skip` (a directory below `root`, e.g. its experimental/ subtree) is not
/// entered; "" skips nothing. A missing `root` yields nothing. Never throws.
MODKIT_CORE_API std::vector<std::string> plugin_files_in_tree(const std::string& root, const std::string& skip = "");

/// The plugin files of one search directory in walk order: its main tree
/// (the top-level experimental/ subtree excluded), then that experimental/
/// subtree, each sorted. A missing directory yields nothing. Never throws;
/// no file is opened, so no plugin code runs.
MODKIT_CORE_API std::vector<PluginFile> discover_plugin_files(const std::string& dir);

/// The same over several search directories, in order: the factory's walk
/// order, where the first file to provide a name in a registry wins.
MODKIT_CORE_API std::vector<PluginFile> discover_plugin_files(const std::vector<std::string>& dirs);

}  // namespace modkit
