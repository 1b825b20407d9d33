// Where the modkit_core library in use was loaded from: the anchor for the install default plugin directory, the scanner and the cache key.
#pragma once

#include <string>

namespace modkit::detail {

/// The path of the loaded modkit_core shared object, or of the executable
/// when the core is linked into it statically ("" when it cannot be found). Found once by the address of this function among the loaded
/// objects' segments (dl_iterate_phdr): unlike dladdr, no symbol table is scanned.
const std::string& core_library_path();

}  // namespace modkit::detail
