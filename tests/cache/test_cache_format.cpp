// The registry cache format: what is written reads back equal; anything damaged is refused with a sentence, never read past.
#include "core/src/cache_format.hpp"
#include <modkit/core/errors.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <functional>

using modkit::LoadRecord;
using modkit::LoadStage;
using modkit::ModifierInfo;
using modkit::detail::CachedFile;
using modkit::detail::CacheImage;

namespace {

ModifierInfo sample_info(const std::string& name) {
  ModifierInfo m;
  m.name = name;
  m.abi_major = 1;
  m.abi_min_minor = 0;
  m.version = "1.2.3";
  m.summary = "a sample with every kind of value";
  m.torch_version = "2.1.2";
  m.cxx11_abi = 1;
  m.pipeline = "sequential";
  modkit::ParamInfo p;
  p.name = "sparsity";
  p.type = "float";
  p.default_value = 0.5;
  p.min = 0;
  p.max = 1.0;
  p.max_exclusive = true;  // [0, 1): the open end survives the cache
  p.doc = "fraction";
  m.params.push_back(p);
  p = {};
  p.name = "table";
  p.type = "table";
  p.default_value = {{"negative", -7}, {"big", 18446744073709551615ull}, {"list", {true, false, nullptr, "x"}},
                     {"nested", {{"deeper", {{"deepest", 1.25}}}}}};
  p.required = false;
  m.params.push_back(p);
  p = {};
  p.name = "mode";
  p.type = "string";
  p.required = true;
  p.choices = {"fast", "slow"};
  m.params.push_back(p);
  return m;
}

LoadRecord record(const std::string& name, const std::string& file, LoadStage stage, const std::string& reason) {
  LoadRecord r;
  r.name = name;
  r.file = file;
  r.stage = stage;
  r.reason = reason;
  return r;
}

CacheImage sample_image() {
  CacheImage image;
  image.host_key = "modkit registry cache 1; abi 1.0; torch 2.1.2; cxx11 1";
  CachedFile a;
  a.path = "/plugins/a.so";
  a.stamp = {1, 2, 3, -4, 5};
  a.records = {record("AModifier", a.path, LoadStage::Loaded, ""),
               record("BrokenModifier", a.path, LoadStage::Validate, "descriptor of 'BrokenModifier' is too small"),
               record("BModifier", a.path, LoadStage::Loaded, "")};
  a.types = modkit::detail::CachedTypes({sample_info("AModifier"), sample_info("BModifier")});
  CachedFile b;
  b.path = "/plugins/experimental/b.so";
  b.experimental = true;
  b.stamp = {9, 8, 7, 1700000000123456789, 1700000000987654321};
  b.records = {record("", b.path, LoadStage::Scan, "not an ELF file"),
               record("CrashModifier", b.path, LoadStage::Isolated, "crashed with SIGSEGV while loading")};
  image.files = {a, b};
  return image;
}

modkit::detail::CacheImage decode(const std::string& bytes) {
  return modkit::detail::decode_cache(modkit::detail::cache_bytes(bytes), "c.bin");
}

// Decodes a payload, the types of every entry included.
std::vector<CachedFile> decode_payload(const std::string& bytes) {
  auto files = modkit::detail::decode_cache_payload(modkit::detail::cache_bytes(bytes), 0, "p");
  for (const auto& f : files) f.types.get();
  return files;
}

// A copy of `image` whose file `file` has other types.
CacheImage with_types(CacheImage image, size_t file, const std::function<void(std::vector<ModifierInfo>&)>& edit) {
  auto types = image.files[file].types.decode();
  edit(types);
  image.files[file].types = modkit::detail::CachedTypes(std::move(types));
  return image;
}

// The payload of an encoded image (after magic, version, host key, size and checksum).
std::string payload_of(const CacheImage& image) {
  const std::string bytes = modkit::detail::encode_cache(image);
  return bytes.substr(8 + 4 + 4 + image.host_key.size() + 8 + 8);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const modkit::ValueError& e) {
    return e.what();
  }
  return "(no error)";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("a cache image reads back equal") {
  const CacheImage image = sample_image();
  const CacheImage back = decode(modkit::detail::encode_cache(image));
  CHECK(back.host_key == image.host_key);
  REQUIRE(back.files.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const auto& x = image.files[i];
    const auto& y = back.files[i];
    CHECK(y.path == x.path);
    CHECK(y.experimental == x.experimental);
    CHECK(y.stamp == x.stamp);
    CHECK(y.records.empty());  // kept encoded until asked for
    REQUIRE(y.record_count() == x.records.size());
    const auto records = y.load_records();
    REQUIRE(records.size() == x.records.size());
    for (size_t k = 0; k < x.records.size(); ++k) {
      CHECK(records[k].name == x.records[k].name);
      CHECK(records[k].file == x.path);
      CHECK(records[k].stage == x.records[k].stage);
      CHECK(records[k].reason == x.records[k].reason);
      CHECK(records[k].experimental == x.experimental);
      CHECK(records[k].source == modkit::RecordSource::Cache);
    }
    REQUIRE(y.types.size() == x.types.size());
    const auto& xt = x.types.get();
    const auto& yt = y.types.get();
    REQUIRE(yt.size() == xt.size());
    for (size_t k = 0; k < xt.size(); ++k) CHECK(yt[k].to_json() == xt[k].to_json());
  }
  // integers keep their kind: a signed default stays signed, a float stays a float
  const auto& types = back.files[0].types.get();
  const auto& table = types[0].params[1].default_value;
  CHECK(table["negative"].is_number_integer());
  CHECK(table["big"].get<uint64_t>() == 18446744073709551615ull);
  CHECK(types[0].params[0].max.is_number_float());
  CHECK(types[0].params[0].min.is_number_integer());
  // written again without decoding, it is the same bytes
  const std::string bytes = modkit::detail::encode_cache(image);
  CHECK(modkit::detail::encode_cache(decode(bytes)) == bytes);
}

TEST_CASE("every truncation of a cache file is refused") {
  const std::string bytes = modkit::detail::encode_cache(sample_image());
  for (size_t n = 0; n < bytes.size(); ++n) {
    // an exact-size copy, so a sanitizer sees any read past the end
    CAPTURE(n);
    CHECK_THROWS_AS(decode(bytes.substr(0, n)), modkit::ValueError);
  }
  CHECK(error_of([&] { decode(bytes.substr(0, bytes.size() - 10)); }) ==
        "registry cache 'c.bin' is truncated or padded: expected " + std::to_string(payload_of(sample_image()).size()) +
            " payload bytes, found " + std::to_string(payload_of(sample_image()).size() - 10));
  CHECK(starts_with(error_of([&] { decode(bytes + "x"); }), "registry cache 'c.bin' is truncated or padded: expected "));
  CHECK(error_of([&] { decode(""); }) ==
        "registry cache 'c.bin' is not a modkit registry cache (expected the magic 'MODKITRC')");
}

TEST_CASE("a damaged cache file is refused by its checksum, magic or version") {
  std::string bytes = modkit::detail::encode_cache(sample_image());
  SUBCASE("a flipped byte in the payload") {
    bytes[bytes.size() - 5] ^= 0x01;
    CHECK(starts_with(error_of([&] { decode(bytes); }), "registry cache 'c.bin' is corrupt: checksum 0x"));
  }
  SUBCASE("another magic") {
    bytes[0] = 'X';
    CHECK(error_of([&] { decode(bytes); }) ==
          "registry cache 'c.bin' is not a modkit registry cache (expected the magic 'MODKITRC')");
  }
  SUBCASE("another format version") {
    bytes[8] = 1;
    CHECK(error_of([&] { decode(bytes); }) == "registry cache 'c.bin' has format version 1, expected 2");
  }
}

TEST_CASE("a payload that does not hold together is refused even with a good checksum") {
  SUBCASE("a loaded record without its type") {
    CacheImage image = with_types(sample_image(), 0, [](auto& t) { t.pop_back(); });
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' lists 1 valid types for '/plugins/a.so', expected one per loaded record (2)");
  }
  SUBCASE("a type under another name than its record") {
    CacheImage image = with_types(sample_image(), 0, [](auto& t) { t[1].name = "OtherModifier"; });
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' has type 'OtherModifier' where its records say 'BModifier' in '/plugins/a.so'");
  }
  SUBCASE("a shadowed record (the walk decides those, never the cache)") {
    CacheImage image = sample_image();
    image.files[1].records[1].stage = LoadStage::Shadowed;
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' has a corrupt record stage " + std::to_string(static_cast<int>(LoadStage::Shadowed)) +
              " for '/plugins/experimental/b.so'");
  }
  SUBCASE("a parameter of an unknown type") {
    CacheImage image = with_types(sample_image(), 0, [](auto& t) { t[0].params[2].type = "weird"; });
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' has an invalid entry: AModifier parameter 'mode' has an unknown type 'weird'");
  }
  SUBCASE("a default that is not of its parameter's type") {
    CacheImage image = with_types(sample_image(), 0, [](auto& t) { t[0].params[0].default_value = "half"; });
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' has an invalid entry: AModifier parameter 'sparsity': default \"half\" is not a float");
  }
  SUBCASE("an unknown pipeline") {
    CacheImage image = with_types(sample_image(), 0, [](auto& t) { t[0].pipeline = "magic"; });
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) ==
          "registry cache 'p' has an invalid entry: AModifier declares pipeline 'magic', expected 'datafree', "
          "'basic' or 'sequential'");
  }
  SUBCASE("a count larger than the file") {
    CHECK(error_of([&] { decode_payload(std::string("\xff\xff\xff\xff", 4)); }) ==
          "registry cache 'p' is truncated: 4294967295 file entries cannot fit in the 0 bytes left");
  }
  SUBCASE("bytes after the last entry") {
    CHECK(error_of([&] { decode_payload(payload_of(sample_image()) + "zz"); }) ==
          "registry cache 'p' has 2 bytes after its last entry");
  }
  SUBCASE("an entry without a path") {
    CacheImage image = sample_image();
    image.files[1].path.clear();
    CHECK(error_of([&] { decode_payload(payload_of(image)); }) == "registry cache 'p' has an entry without a file path");
  }
}

TEST_CASE("values nest up to 32 levels; deeper ones are refused when written and when read") {
  auto nested = [](int levels) {
    nlohmann::json v = 1;
    for (int i = 0; i < levels; ++i) v = nlohmann::json::array({v});
    return v;
  };
  auto deep = [&](int levels) {
    return with_types(sample_image(), 0, [&](auto& t) {
      t[0].params[1].type = "any";
      t[0].params[1].default_value = nested(levels);
    });
  };
  CHECK(decode(modkit::detail::encode_cache(deep(32))).files[0].types.get()[0].params[1].default_value == nested(32));
  CHECK(error_of([&] { modkit::detail::encode_cache(deep(33)); }) == "a value nested deeper than 32 levels");
  // a hand-made payload that nests deeper: tag 7 (array) of one item, 40 times, around a null
  std::string value;
  for (int i = 0; i < 40; ++i) value += std::string("\x07\x01\x00\x00\x00", 5);
  value += std::string("\x00", 1);
  CachedFile f;
  f.path = "/x.so";
  f.records = {record("DeepModifier", f.path, LoadStage::Loaded, "")};
  ModifierInfo m = sample_info("DeepModifier");
  m.params.resize(1);
  m.params[0].type = "any";
  m.params[0].default_value = 12345;  // replaced below by the deep value's bytes
  f.types = modkit::detail::CachedTypes({m});
  CacheImage one;
  one.files = {f};
  std::string bytes = payload_of(one);
  const std::string twelve_345 = std::string("\x03", 1) + std::string("\x39\x30\x00\x00\x00\x00\x00\x00", 8);
  const auto at = bytes.find(twelve_345);
  REQUIRE(at != std::string::npos);
  bytes.replace(at, twelve_345.size(), value);
  // the types block keeps its old size: fix it (the 8 bytes before the block's count)
  const std::string old_block = one.files[0].types.encoded();
  const auto block_at = bytes.rfind(old_block.substr(0, 8));  // the records before it start alike
  REQUIRE(block_at != std::string::npos);
  const uint64_t new_size = old_block.size() - twelve_345.size() + value.size();
  for (int i = 0; i < 8; ++i) bytes[block_at - 8 + i] = static_cast<char>((new_size >> (8 * i)) & 0xff);
  CHECK(error_of([&] { decode_payload(bytes); }) == "registry cache 'p' has a value nested deeper than 32 levels");
}

TEST_CASE("types stay encoded until used, and a damaged block fails only when read") {
  CacheImage image = sample_image();
  std::string payload = payload_of(image);
  // flip the pipeline of BModifier ("sequential" -> "sequentiaX") inside file a's types block
  const auto at = payload.rfind("sequential");
  REQUIRE(at != std::string::npos);
  payload[at + 9] = 'X';
  auto files = modkit::detail::decode_cache_payload(modkit::detail::cache_bytes(payload), 0, "p");
  REQUIRE(files.size() == 2);
  CHECK(files[0].types.size() == 2);  // known from the records, without decoding
  const std::string expected = "registry cache 'p' has an invalid entry: BModifier declares pipeline 'sequentiaX', "
                               "expected 'datafree', 'basic' or 'sequential'";
  CHECK(error_of([&] { files[0].types.get(); }) == expected);
  CHECK(error_of([&] { files[0].types.get(); }) == expected);  // the same, every time
  CHECK(files[1].types.get().empty());
}
