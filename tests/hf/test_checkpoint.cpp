// Hugging Face checkpoint directories and the safetensors format: the writer's bytes, the reader's checks, shards.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hf/checkpoint.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/safetensors.hpp>

#include "plugin_harness.hpp"
#include "temp_dir.hpp"
#include "tensor_operators.hpp"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>

using modkit::hf::Checkpoint;
using modkit::test::message_of;
using modkit::test::TempDir;
namespace st = modkit::safetensors;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A safetensors file written by hand from the format's description: u64 little-endian header
// length, the JSON header, the data.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t{header.size()} >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string float_bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return out;
}

// A checkpoint of two shards and an index, as transformers writes it.
struct ShardedCheckpoint {
  TempDir dir{"modkit-hf"};
  at::Tensor embed = at::randn({10, 4}).to(at::kBFloat16);
  at::Tensor q0 = at::randn({4, 4}).to(at::kBFloat16);
  at::Tensor q10 = at::randn({4, 4}).to(at::kBFloat16);
  at::Tensor norm = at::randn({4});

  ShardedCheckpoint() {
    write_bytes(dir / "config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 4})");
    st::write(dir / "model-00001-of-00002.safetensors",
              {{"model.embed_tokens.weight", embed}, {"model.layers.10.self_attn.q_proj.weight", q10}});
    st::write(dir / "model-00002-of-00002.safetensors",
              {{"model.layers.0.self_attn.q_proj.weight", q0}, {"model.norm.weight", norm}});
    write_index(R"({"metadata": {"total_size": 0}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "model.layers.10.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
        "model.layers.0.self_attn.q_proj.weight": "model-00002-of-00002.safetensors",
        "model.norm.weight": "model-00002-of-00002.safetensors"}})");
  }
  void write_index(const std::string& text) const { write_bytes(dir / "model.safetensors.index.json", text); }
  std::string error() const { return message_of<modkit::ValueError>([&] { Checkpoint::open(dir.path()); }); }
};

}  // namespace

TEST_CASE("safetensors::write writes the format byte for byte: length, JSON header padded to 8, data in order") {
  TempDir dir("modkit-st");
  st::write(dir / "a.safetensors", {{"b", at::tensor({1.0f, 2.0f})}, {"a", at::tensor({3.0f})}}, {{"format", "pt"}});
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  CHECK(read_bytes(dir / "a.safetensors") == safetensors_bytes(padded, float_bytes({1, 2, 3})));
}

TEST_CASE("parse_header reads a hand-written file and refuses what the format forbids, naming the tensor") {
  const std::string data = float_bytes({1, 2, 3});
  const auto parse = [](const std::string& bytes) { return st::parse_header(bytes.data(), bytes.size(), "f: "); };
  const st::Header h = parse(safetensors_bytes(
      R"({"x.10":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"x.2":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      data));
  REQUIRE(h.tensors.size() == 2);
  CHECK(h.tensors[0].name == "x.2");  // natural order
  CHECK(h.tensors[1].name == "x.10");
  CHECK(h.tensors[0].shape == std::vector<int64_t>{2});
  CHECK(h.tensors[1].begin == 8);

  const auto error = [&](const std::string& header, const std::string& bytes) {
    return message_of<modkit::ValueError>([&] { parse(safetensors_bytes(header, bytes)); });
  };
  CHECK(error(R"({"x":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd") ==
        "f: tensor 'x': expected dtype F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL, found \"F8_E4M3\"");
  CHECK(error(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", data.substr(0, 8)) ==
        "f: tensor 'x': data_offsets [0, 12] lie outside the 8 data bytes (truncated file?)");
  CHECK(error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", data) ==
        "f: tensor 'x': shape [2] of F32 needs 8 bytes, found 12");
  CHECK(message_of<modkit::ValueError>([&] { parse("abc"); }) ==
        "f: expected a safetensors file (an 8-byte header length first), found 3 bytes");
}

TEST_CASE("a single-file checkpoint: config.json, natural tensor order, zero-copy views of the stored dtype") {
  TempDir dir("modkit-hf");
  write_bytes(dir / "config.json", R"({"hidden_size": 4, "torch_dtype": "bfloat16"})");
  const at::Tensor w = at::randn({4, 4}).to(at::kBFloat16);
  const at::Tensor h = at::randn({2, 4}).to(at::kHalf);
  const at::Tensor i = at::arange(6, at::kLong);
  st::write(dir / "model.safetensors", {{"layers.10.w", w}, {"layers.2.h", h}, {"ids", i}});
  const Checkpoint c = Checkpoint::open(dir.path());
  CHECK(c.config()["hidden_size"] == 4);
  CHECK(c.files() == std::vector<std::string>{"model.safetensors"});
  CHECK(c.tensor_names() == std::vector<std::string>{"ids", "layers.2.h", "layers.10.w"});
  CHECK((c.tensor("layers.10.w").scalar_type() == at::kBFloat16));
  CHECK(c.tensor("layers.10.w").equal(w));
  CHECK(c.tensor("layers.2.h").equal(h));
  CHECK(c.tensor("ids").equal(i));
  CHECK(c.locate("layers.2.h").entry.dtype == "F16");
  CHECK(message_of<modkit::LookupError>([&] { c.tensor("nope"); }) ==
        "checkpoint '" + dir.path() + "' has no tensor 'nope'");
}

TEST_CASE("views are private: writing one never changes the checkpoint, and release() keeps the data readable") {
  ShardedCheckpoint s;
  {
    const Checkpoint c = Checkpoint::open(s.dir.path());
    at::Tensor view = c.tensor("model.norm.weight");
    view.fill_(7.0f);
    CHECK(c.tensor("model.norm.weight").eq(7.0f).all().item<bool>());  // this process's copy
    c.release("model.embed_tokens.weight");
    CHECK(c.tensor("model.embed_tokens.weight").equal(s.embed));
  }
  CHECK(Checkpoint::open(s.dir.path()).tensor("model.norm.weight").equal(s.norm));  // the file: unchanged
}

TEST_CASE("a sharded checkpoint: every tensor from the shard its index names, views outlive the checkpoint") {
  ShardedCheckpoint s;
  at::Tensor kept;
  {
    const Checkpoint c = Checkpoint::open(s.dir.path());
    CHECK(c.files() == std::vector<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"});
    CHECK(c.tensor_names() == std::vector<std::string>{"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                                                       "model.layers.10.self_attn.q_proj.weight", "model.norm.weight"});
    CHECK(c.locate("model.layers.0.self_attn.q_proj.weight").file == "model-00002-of-00002.safetensors");
    CHECK(c.tensor("model.layers.0.self_attn.q_proj.weight").equal(s.q0));
    CHECK(c.tensor("model.layers.10.self_attn.q_proj.weight").equal(s.q10));
    kept = c.tensor("model.embed_tokens.weight");
    c.expect_shape("model.norm.weight", {4}, "hidden_size 4");
    CHECK(message_of<modkit::ValueError>([&] { c.expect_shape("model.norm.weight", {8}, "hidden_size 8"); }) ==
          "checkpoint '" + s.dir.path() + "': tensor 'model.norm.weight' in 'model-00002-of-00002.safetensors' has "
          "shape [4], expected [8] (hidden_size 8)");
    CHECK(message_of<modkit::ValueError>([&] { c.expect_shape("lm_head.weight", {10, 4}, "vocab_size 10"); }) ==
          "checkpoint '" + s.dir.path() + "': expected tensor 'lm_head.weight' of shape [10, 4] (vocab_size 10), found none");
  }
  CHECK(kept.equal(s.embed));  // the mapping lives as long as a view
}

TEST_CASE("an inconsistent checkpoint is refused, naming the directory, the file and the tensor") {
  const std::string index = "model.safetensors.index.json";
  SUBCASE("a shard the index names is missing") {
    ShardedCheckpoint s;
    std::remove((s.dir / "model-00002-of-00002.safetensors").c_str());
    CHECK(s.error() == "checkpoint '" + s.dir.path() + "': " + index +
                           " puts tensor 'model.layers.0.self_attn.q_proj.weight' in 'model-00002-of-00002.safetensors', "
                           "which is missing");
  }
  SUBCASE("a tensor in two shards") {
    ShardedCheckpoint s;
    st::write(s.dir / "model-00002-of-00002.safetensors",
              {{"model.layers.0.self_attn.q_proj.weight", s.q0}, {"model.norm.weight", s.norm},
               {"model.embed_tokens.weight", s.embed}});
    CHECK(s.error() == "checkpoint '" + s.dir.path() + "': tensor 'model.embed_tokens.weight' is in both "
                           "'model-00002-of-00002.safetensors' and 'model-00001-of-00002.safetensors' (" + index +
                           " names 'model-00001-of-00002.safetensors')");
  }
  SUBCASE("the index lists a tensor its shard lacks") {
    ShardedCheckpoint s;
    st::write(s.dir / "model-00002-of-00002.safetensors", {{"model.layers.0.self_attn.q_proj.weight", s.q0}});
    CHECK(s.error() == "checkpoint '" + s.dir.path() + "': " + index +
                           " puts tensor 'model.norm.weight' in 'model-00002-of-00002.safetensors', which does not hold it");
  }
  SUBCASE("a shard holds a tensor the index does not list") {
    ShardedCheckpoint s;
    st::write(s.dir / "model-00002-of-00002.safetensors",
              {{"model.layers.0.self_attn.q_proj.weight", s.q0}, {"model.norm.weight", s.norm}, {"extra", s.norm}});
    CHECK(s.error() == "checkpoint '" + s.dir.path() + "': 'model-00002-of-00002.safetensors' holds tensor 'extra', "
                           "which " + index + " does not list");
  }
  SUBCASE("a truncated shard") {
    ShardedCheckpoint s;
    const std::string bytes = read_bytes(s.dir / "model-00001-of-00002.safetensors");
    write_bytes(s.dir / "model-00001-of-00002.safetensors", bytes.substr(0, bytes.size() - 3));
    CHECK(s.error().rfind("checkpoint '" + s.dir.path() + "': 'model-00001-of-00002.safetensors': tensor '", 0) == 0);
    CHECK(s.error().find("(truncated file?)") != std::string::npos);
  }
  SUBCASE("an index entry that is a path out of the directory") {
    ShardedCheckpoint s;
    s.write_index(R"({"weight_map": {"model.norm.weight": "../model-00002-of-00002.safetensors"}})");
    CHECK(s.error() == "checkpoint '" + s.dir.path() + "': " + index + ": tensor 'model.norm.weight': expected the name "
                           "of a file in the directory, found \"../model-00002-of-00002.safetensors\"");
  }
  SUBCASE("no weights, no config, not a directory") {
    TempDir dir("modkit-hf");
    const std::string where = "checkpoint '" + dir.path() + "': ";
    CHECK(message_of<modkit::ValueError>([&] { Checkpoint::open(dir.path()); }) == where + "expected config.json, found none");
    write_bytes(dir / "config.json", "[1]");
    CHECK(message_of<modkit::ValueError>([&] { Checkpoint::open(dir.path()); }) ==
          where + "config.json: expected a JSON object, found array");
    write_bytes(dir / "config.json", "{}");
    write_bytes(dir / "pytorch_model.bin", "x");
    CHECK(message_of<modkit::ValueError>([&] { Checkpoint::open(dir.path()); }) ==
          where + "expected model.safetensors or " + index + ", found pytorch_model.bin (convert it to safetensors)");
    CHECK(message_of<modkit::ValueError>([&] { Checkpoint::open(dir / "config.json"); }) ==
          "checkpoint '" + (dir / "config.json") + "': expected a directory (config.json and safetensors files), found a file");
  }
}
