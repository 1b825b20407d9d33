// Fuzz target: the registry cache reader, with and without its checksum; what it accepts writes back byte for byte.
#include "fuzz_target.hpp"

#include "core/src/cache_format.hpp"
#include <modkit/core/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// Reads every entry the way a factory and `modkit list` would.
bool use(const std::vector<modkit::detail::CachedFile>& files) {
  bool types_ok = true;
  for (const auto& f : files) {
    const auto records = f.load_records();
    modkit::fuzz::require(records.size() == f.record_count(), "record count differs from the records read");
    try {
      const auto& types = f.types.get();
      modkit::fuzz::require(types.size() == f.types.size(), "type count differs from the types read");
      for (size_t k = 0; k < types.size(); ++k) {
        modkit::fuzz::require(types[k].name == f.types.name(k), "a type's name differs from its record's");
      }
    } catch (const modkit::ValueError&) {
      types_ok = false;  // a damaged types block: refused when used
    }
  }
  return types_ok;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = modkit::detail::cache_bytes(std::string(reinterpret_cast<const char*>(data), size));
  // a whole file: the checksum guards the payload
  try {
    use(modkit::detail::decode_cache(bytes, "fuzz.bin").files);
  } catch (const modkit::ValueError&) {
  }
  // the payload alone: what a corrupt file that kept its checksum reaches
  std::vector<modkit::detail::CachedFile> files;
  try {
    files = modkit::detail::decode_cache_payload(bytes, 0, "fuzz.bin");
  } catch (const modkit::ValueError&) {
    return 0;
  }
  const bool types_ok = use(files);
  // accepted entries are written back as they were read
  modkit::detail::CacheImage image;
  image.host_key = "fuzz";
  image.files = files;
  const std::string written = modkit::detail::encode_cache(image);
  modkit::fuzz::require(written.size() >= size, "an accepted payload writes back shorter");
  modkit::fuzz::require(written.compare(written.size() - size, size, reinterpret_cast<const char*>(data), size) == 0,
                        "an accepted payload writes back other bytes");
  const auto again = modkit::detail::decode_cache(modkit::detail::cache_bytes(written), "again.bin");
  modkit::fuzz::require(again.files.size() == files.size(), "a written cache reads back with other entries");
  modkit::fuzz::require(use(again.files) == types_ok, "a written cache reads back with other types");
  return 0;
}
