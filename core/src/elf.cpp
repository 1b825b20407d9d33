// Reads .dynsym and the modkit metadata section of a plugin file with every offset checked.
#include "elf.hpp"
#include <modkit/core/errors.hpp>
#include <modkit/modkit.h>

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace modkit::detail {
namespace {

class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  // Checks that `count` objects of T fit at `offset`, or fails with a clear error.
  template <class T>
  void check(uint64_t offset, uint64_t count, const char* what) const {
    if (offset > size_ || count > (size_ - offset) / sizeof(T)) {
      fail(std::string("is truncated: ") + what + " lies beyond the end of the file (" +
           std::to_string(size_) + " bytes)");
    }
  }
  // The `index`-th T of an array at `offset` that check() accepted. Copied out:
  // a crafted file may place any structure at any (misaligned) offset.
  template <class T>
  T get(uint64_t offset, uint64_t index = 0) const {
    T value;
    std::memcpy(&value, data_ + offset + index * sizeof(T), sizeof(T));
    return value;
  }
  // A pointer to `count` bytes at `offset`, or a clear error.
  const char* chars(uint64_t offset, uint64_t count, const char* what) const {
    check<char>(offset, count, what);
    return reinterpret_cast<const char*>(data_ + offset);
  }
  // A NUL-terminated string inside [begin, begin + limit).
  std::string string(uint64_t begin, uint64_t limit, uint64_t index, const char* what) const {
    const char* table = chars(begin, limit, what);
    if (index >= limit) fail(std::string("has a corrupt ") + what + ": name offset out of range");
    const void* end = std::memchr(table + index, '\0', limit - index);
    if (end == nullptr) fail(std::string("has a corrupt ") + what + ": unterminated name");
    return std::string(table + index, static_cast<const char*>(end));
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw ValueError("'" + name_ + "' " + what);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
};

std::string printable_prefix(const uint8_t* data, size_t size) {
  std::string out;
  for (size_t i = 0; i < size && i < 4; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", data[i]);
      out += hex;
    }
  }
  return out;
}

}  // namespace

ElfContents parse_elf(const uint8_t* data, size_t size, const std::string& name) {
  Bytes bytes(data, size, name);
  if (size < 4 || std::memcmp(data, ELFMAG, SELFMAG) != 0) {
    bytes.fail("is not an ELF file (expected the bytes '\\x7fELF', found '" +
               printable_prefix(data, size) + "')");
  }
  bytes.check<Elf64_Ehdr>(0, 1, "the ELF header");
  const auto header = bytes.get<Elf64_Ehdr>(0);
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
    bytes.fail("is not a 64-bit little-endian ELF file");
  }
  if (header.e_type != ET_DYN) {
    bytes.fail("is not a shared object (ELF type " + std::to_string(header.e_type) + ")");
  }
  if (header.e_shoff == 0 || header.e_shnum == 0) bytes.fail("has no section headers");
  if (header.e_shentsize != sizeof(Elf64_Shdr)) bytes.fail("has an unexpected section header size");
  bytes.check<Elf64_Shdr>(header.e_shoff, header.e_shnum, "the section headers");
  auto section = [&](size_t i) { return bytes.get<Elf64_Shdr>(header.e_shoff, i); };
  if (header.e_shstrndx >= header.e_shnum) bytes.fail("has a corrupt section name table index");
  const Elf64_Shdr names = section(header.e_shstrndx);

  ElfContents out;
  for (size_t i = 0; i < header.e_shnum; ++i) {
    const Elf64_Shdr s = section(i);
    if (s.sh_type == SHT_DYNSYM) {
      if (s.sh_entsize != sizeof(Elf64_Sym) || s.sh_link >= header.e_shnum) {
        bytes.fail("has a corrupt dynamic symbol table");
      }
      const Elf64_Shdr strtab = section(s.sh_link);
      const uint64_t count = s.sh_size / sizeof(Elf64_Sym);
      bytes.check<Elf64_Sym>(s.sh_offset, count, "the dynamic symbol table");
      for (uint64_t k = 0; k < count; ++k) {
        const auto sym = bytes.get<Elf64_Sym>(s.sh_offset, k);
        const unsigned bind = ELF64_ST_BIND(sym.st_info);
        if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0) continue;
        if (bind != STB_GLOBAL && bind != STB_WEAK) continue;
        if (ELF64_ST_VISIBILITY(sym.st_other) != STV_DEFAULT) continue;
        ElfSymbol symbol;
        symbol.name = bytes.string(strtab.sh_offset, strtab.sh_size, sym.st_name, "dynamic string table");
        symbol.is_function = ELF64_ST_TYPE(sym.st_info) == STT_FUNC;
        out.symbols.push_back(std::move(symbol));
      }
    } else if (s.sh_type == SHT_PROGBITS && s.sh_name != 0) {
      if (bytes.string(names.sh_offset, names.sh_size, s.sh_name, "section name table") !=
          MODKIT_METADATA_SECTION) {
        continue;
      }
      const char* blob = bytes.chars(s.sh_offset, s.sh_size, "the metadata section");
      // entries are NUL-terminated; the linker may pad between them with NULs
      size_t begin = 0;
      for (size_t k = 0; k < s.sh_size; ++k) {
        if (blob[k] != '\0') continue;
        if (k > begin) out.metadata.emplace_back(blob + begin, blob + k);
        begin = k + 1;
      }
      if (begin < s.sh_size) bytes.fail("has an unterminated metadata entry");
    }
  }
  return out;
}

ElfContents read_elf(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ValueError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw ValueError("cannot stat '" + path + "': " + std::strerror(e));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw ValueError("'" + path + "' is not an ELF file (expected the bytes '\\x7fELF', found an empty file)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw ValueError("cannot map '" + path + "': " + std::strerror(errno));
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, size};
  return parse_elf(static_cast<const uint8_t*>(map), size, path);
}

std::string unreadable_reason(const std::string& message, const std::string& path) {
  std::string reason = message;
  for (const std::string subject : {"'" + path + "' ", std::string("is ")}) {
    if (reason.rfind(subject, 0) == 0) reason.erase(0, subject.size());
  }
  return reason;
}

bool is_modifier_name(const std::string& name) {
  static const std::string suffix = "Modifier";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> modifier_symbols(const std::string& path) noexcept {
  std::vector<std::string> names;
  try {
    for (auto& sym : read_elf(path).symbols) {
      if (is_modifier_name(sym.name)) names.push_back(std::move(sym.name));
    }
  } catch (const std::exception&) {
    names.clear();  // unreadable: the caller's file-level record says why
  }
  return names;
}

}  // namespace modkit::detail
