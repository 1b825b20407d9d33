// White-box tests of the ELF reader behind discovery (core/src/elf.hpp): bounds, alignment, stripped files.
#include "core/src/elf.hpp"
#include <modkit/core/errors.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <vector>

namespace {

const std::string kFixtures = MODKIT_TEST_FIXTURE_DIR;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("a stripped plugin keeps its symbols in .dynsym and its metadata section") {
  const auto elf = modkit::detail::read_elf(kFixtures + "/stripped/stripped.so");
  CHECK(elf.metadata.size() == 1);
  CHECK(modkit::detail::modifier_symbols(kFixtures + "/stripped/stripped.so") ==
        std::vector<std::string>{"StrippedModifier"});
}

TEST_CASE("modifier_symbols is empty for a file that is not ELF, and read_elf says why") {
  const std::string path = MODKIT_TEST_SOURCE_DIR "/README.md";
  CHECK(modkit::detail::modifier_symbols(path).empty());
  CHECK_THROWS_AS(modkit::detail::read_elf(path), modkit::ValueError);
  try {
    modkit::detail::read_elf(path);
  } catch (const modkit::ValueError& e) {
    CHECK(modkit::detail::unreadable_reason(e.what(), path).rfind("not an ELF file", 0) == 0);
  }
}

TEST_CASE("the ELF reader never reads outside the buffer, whatever prefix of a plugin it gets") {
  const std::vector<uint8_t> bytes = read_bytes(kFixtures + "/good/good_fixture.so");
  REQUIRE(bytes.size() > 1000);
  for (size_t n = 0; n < bytes.size(); n += (n < 4096 ? 1 : 97)) {
    // a copy of exactly n bytes, so a sanitizer catches any read past the end
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    // the section headers sit at the end of the file: every proper prefix is refused cleanly
    CHECK_THROWS_AS(modkit::detail::parse_elf(prefix.data(), prefix.size(), "prefix"), modkit::ValueError);
  }
  const auto whole = modkit::detail::parse_elf(bytes.data(), bytes.size(), "whole");
  REQUIRE(whole.metadata.size() == 1);
  CHECK(whole.metadata[0].find("\"symbol\":\"GoodFixtureModifier\"") != std::string::npos);
}

TEST_CASE("the ELF reader accepts structures at any offset, aligned or not") {
  // found by fuzzing with UBSan (tests/fuzz/regressions/elf_metadata): a crafted file put the symbol
  // table at an odd offset and the reader bound references to misaligned Elf64_Sym objects
  const std::vector<uint8_t> bytes = read_bytes(kFixtures + "/good/good_fixture.so");
  // the same file one byte into a buffer: every structure misaligned
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  const auto elf = modkit::detail::parse_elf(shifted.data() + 1, bytes.size(), "shifted");
  REQUIRE(elf.metadata.size() == 1);
  bool found = false;
  for (const auto& s : elf.symbols) found = found || s.name == "GoodFixtureModifier";
  CHECK(found);
}
