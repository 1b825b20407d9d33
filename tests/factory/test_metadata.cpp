// Metadata entries (the JSON in a plugin's .modkit_meta section): what is accepted is exactly what would load.
#include <modkit/core/errors.hpp>
#include <modkit/core/modifier_info.hpp>

#include <doctest/doctest.h>

namespace {

std::string entry(const std::string& pipeline, const std::string& params) {
  return R"({"symbol":"MetaModifier","abi":[1,0],"version":"1.0","summary":"s","torch":"","cxx11_abi":1,"pipeline":")" +
         pipeline + R"(","params":[)" + params + "]}";
}

}  // namespace

TEST_CASE("metadata with a parameter of an unknown type, a parameter declared twice or an unknown pipeline is refused") {
  // found by fuzzing (tests/fuzz/regressions/elf_metadata): `modkit list` showed what the loader refuses
  CHECK_THROWS_WITH_AS(modkit::parse_metadata(entry("datafree", R"({"name":"x","type":"floanything"})"), "m.so"),
                       "metadata in 'm.so' is invalid: MetaModifier parameter 'x' has an unknown type 'floanything'",
                       modkit::ValueError);
  CHECK_THROWS_WITH_AS(
      modkit::parse_metadata(entry("datafree", R"({"name":"x","type":"int"},{"name":"x","type":"float"})"), "m.so"),
      "metadata in 'm.so' is invalid: MetaModifier parameter 'x' is declared twice", modkit::ValueError);
  CHECK_THROWS_WITH_AS(modkit::parse_metadata(entry("magic", ""), "m.so"),
                       "metadata in 'm.so' is invalid: MetaModifier declares pipeline 'magic', expected 'datafree', "
                       "'basic' or 'sequential'",
                       modkit::ValueError);
}

TEST_CASE("accepted metadata reads back from its JSON form unchanged") {
  const auto info = modkit::parse_metadata(
      entry("sequential", R"({"name":"s","type":"float","default":0.5,"min":0,"max":1,"doc":"d"},)"
                          R"({"name":"m","type":"string","required":true,"choices":["a","b"]})"),
      "m.so");
  CHECK(info.pipeline == "sequential");
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[1].required);
  const auto back = modkit::info_from_json(info.to_json(), "report");
  CHECK(back.to_json() == info.to_json());
  CHECK_THROWS_WITH_AS(modkit::info_from_json(nlohmann::json::object(), "report"),
                       "metadata in 'report' has no valid 'name' (expected a string)", modkit::ValueError);
}

TEST_CASE("metadata whose required flag is not a boolean is refused with a sentence") {
  // found by fuzzing: nlohmann's type_error escaped instead of a ValueError
  CHECK_THROWS_WITH_AS(
      modkit::parse_metadata(entry("datafree", R"({"name":"sparsity","type":"float","required":"any"})"), "m.so"),
      "metadata in 'm.so' has parameter 'sparsity' with 'required' \"any\" (expected true or false)",
      modkit::ValueError);
}

TEST_CASE("metadata strings that are not UTF-8 are refused: JSON output could not carry them") {
  std::string text = entry("datafree", "");
  text.replace(text.find("\"s\""), 3, "\"s\xff\"");
  // nlohmann's parser already refuses invalid UTF-8 in JSON text; check_info covers descriptors and the cache
  CHECK_THROWS_AS(modkit::parse_metadata(text, "m.so"), modkit::ValueError);
  modkit::ModifierInfo info;
  info.name = "MetaModifier";
  info.pipeline = "datafree";
  info.summary = "caf\xc3";  // a truncated sequence
  CHECK_THROWS_WITH_AS(modkit::check_info(info), "MetaModifier summary is not UTF-8 text (byte 0xc3 at offset 3)",
                       modkit::ValueError);
}
