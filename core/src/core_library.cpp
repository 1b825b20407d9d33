// Finds the loaded modkit_core object by address: the program headers of each loaded object, no symbol lookup.
#include "core_library.hpp"

#include <climits>
#include <link.h>
#include <unistd.h>

#include <cstdint>

namespace modkit::detail {
namespace {

struct Search {
  uintptr_t address;
  std::string path;
};

int visit(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<Search*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    if (search->address >= begin && search->address < begin + ph.p_memsz) {
      search->path = info->dlpi_name != nullptr ? info->dlpi_name : "";
      // the main program has an empty name: the core is linked statically (modkit_core_internal)
      if (search->path.empty()) {
        char exe[PATH_MAX];
        const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) search->path.assign(exe, static_cast<size_t>(n));
      }
      return 1;
    }
  }
  return 0;
}

}  // namespace

const std::string& core_library_path() {
  static const std::string path = [] {
    Search search{reinterpret_cast<uintptr_t>(&core_library_path), ""};
    dl_iterate_phdr(visit, &search);
    return search.path;
  }();
  return path;
}

}  // namespace modkit::detail
