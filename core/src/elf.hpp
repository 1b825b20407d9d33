// A bounds-checked reader for what discovery needs from an ELF shared object, without loading it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace modkit::detail {

/// A defined, exported symbol of the dynamic symbol table.
struct ElfSymbol {
  std::string name;
  bool is_function = false;  ///< STT_FUNC (else a data object or other)
};

/// What discovery reads from a plugin file.
struct ElfContents {
  std::vector<ElfSymbol> symbols;     ///< exported symbols of .dynsym, in table order
  std::vector<std::string> metadata;  ///< the NUL-separated entries of the metadata section
};

/// Reads `path` (memory-mapped). Throws modkit::ValueError naming the file and
/// what was expected vs found when it is not a readable 64-bit little-endian
/// ELF shared object.
ElfContents read_elf(const std::string& path);

/// The same over bytes in memory; `name` is used in messages. Never reads
/// outside [data, data + size).
ElfContents parse_elf(const uint8_t* data, size_t size, const std::string& name);

/// read_elf()'s error about `path` as a load record's reason, which names
/// the file already: "'f.so' is not an ELF file ..." -> "not an ELF file ...".
std::string unreadable_reason(const std::string& message, const std::string& path);

/// Whether hosts load a symbol of this name: it ends in "Modifier", as
/// llmcompressor's factory finds its modifiers by class name.
bool is_modifier_name(const std::string& name);

/// The *Modifier names `path`'s dynamic symbol table exports, in table
/// order; empty when the file cannot be read. Never throws.
std::vector<std::string> modifier_symbols(const std::string& path) noexcept;

}  // namespace modkit::detail
