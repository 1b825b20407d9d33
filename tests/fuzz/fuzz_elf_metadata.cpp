// Fuzz target: the plugin ELF reader and the metadata JSON it finds (an input not starting with \x7fELF is one metadata entry).
#include "fuzz_target.hpp"

#include "core/src/elf.hpp"
#include <modkit/core/errors.hpp>
#include <modkit/core/modifier_info.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace {

// Every entry parse_metadata accepts passes the checks the registry cache applies, and reads back from its JSON.
void check_metadata(const std::string& text) {
  modkit::ModifierInfo info;
  try {
    info = modkit::parse_metadata(text, "fuzz.so");
  } catch (const modkit::ValueError&) {
    return;
  }
  try {
    modkit::check_info(info);
  } catch (const modkit::ValueError& e) {
    modkit::fuzz::require(false, std::string("accepted metadata fails check_info: ") + e.what());
  }
  const nlohmann::json j = info.to_json();
  modkit::ModifierInfo back;
  try {
    back = modkit::info_from_json(j, "fuzz.so");
  } catch (const modkit::ValueError& e) {
    modkit::fuzz::require(false, std::string("to_json() does not read back: ") + e.what() + "\n" + j.dump());
  }
  modkit::fuzz::require(back.to_json().dump() == j.dump(), "to_json() reads back as another type: " + j.dump());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4 || std::memcmp(data, "\x7f" "ELF", 4) != 0) {
    check_metadata(std::string(reinterpret_cast<const char*>(data), size));
    return 0;
  }
  modkit::detail::ElfContents elf;
  try {
    elf = modkit::detail::parse_elf(data, size, "fuzz.so");
  } catch (const modkit::ValueError&) {
    return 0;
  }
  for (const auto& entry : elf.metadata) check_metadata(entry);
  return 0;
}
