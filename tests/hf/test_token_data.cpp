// Token data for native models: JSON lines, safetensors input_ids, torch.save lists; every id inside the vocabulary.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hf/token_data.hpp>
#include <modkit/torch/safetensors.hpp>

#include "plugin_harness.hpp"
#include "temp_dir.hpp"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <doctest/doctest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>

using modkit::hf::TokenData;
using modkit::test::message_of;

namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::vector<int64_t> ids_of(const at::Tensor& t) { return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()}; }

}  // namespace

TEST_CASE("JSON lines of input_ids, as datasets writes tokenized rows; other keys and blank lines are skipped") {
  modkit::test::TempDir dir("modkit-tokens");
  write_text(dir / "t.jsonl", "{\"input_ids\": [1, 2, 3], \"attention_mask\": [1, 1, 1]}\n\n{\"input_ids\": [4, 5]}\n");
  const TokenData d = TokenData::load(dir / "t.jsonl", 10);
  REQUIRE(d.size() == 2);
  CHECK(ids_of(d.sequences[0]) == std::vector<int64_t>{1, 2, 3});
  CHECK(ids_of(d.sequences[1]) == std::vector<int64_t>{4, 5});
  CHECK(d.tokens() == 5);
  CHECK(d.source == dir / "t.jsonl");
}

TEST_CASE("bad token data is refused naming the file and the line or tensor") {
  modkit::test::TempDir dir("modkit-tokens");
  const std::string f = dir / "t.jsonl";
  const auto error = [&](const std::string& text) {
    write_text(f, text);
    return message_of<modkit::ValueError>([&] { TokenData::load(f, 10); });
  };
  const std::string where = "token data '" + f + "': ";
  CHECK(error("{\"input_ids\": [1]}\n{\"input_ids\": [1, 10, 2]}\n") ==
        where + "line 2: token 10 at position 1 is outside the vocabulary (vocab_size 10)");
  CHECK(error("{\"input_ids\": []}\n") == where + "line 1: the sequence is empty");
  CHECK(error("{\"text\": \"hello\"}\n") == where + "line 1: expected an object with \"input_ids\": [token ids], found {\"text\":\"hello\"}");
  CHECK(error("{\"input_ids\": [1, 2.5]}\n") == where + "line 1: expected integer token ids, found 2.5 at position 1");
  CHECK(error("{\"input_ids\": [1]\n").rfind(where + "line 1: not valid JSON (", 0) == 0);
  CHECK(error("\n\n") == where + "expected at least one sequence, found none");
  CHECK(error("") == where + "expected JSON lines, a safetensors or a torch.save file, found an empty file");
}

TEST_CASE("safetensors input_ids [sequences, length] of any integer type; other shapes and types are refused") {
  modkit::test::TempDir dir("modkit-tokens");
  const std::string f = dir / "t.safetensors";
  modkit::safetensors::write(f, {{"input_ids", at::arange(10, at::kInt).reshape({2, 5})}});
  const TokenData d = TokenData::load(f, 10);
  REQUIRE(d.size() == 2);
  CHECK(ids_of(d.sequences[1]) == std::vector<int64_t>{5, 6, 7, 8, 9});
  const std::string where = "token data '" + f + "': ";
  modkit::safetensors::write(f, {{"input_ids", at::arange(3, at::kLong).reshape({1, 1, 3})}});
  CHECK(message_of<modkit::ValueError>([&] { TokenData::load(f, 10); }) ==
        where + "tensor 'input_ids': expected 2 dimensions [sequences, length], found shape of 3");
  modkit::safetensors::write(f, {{"input_ids", at::zeros({2, 3})}});
  CHECK(message_of<modkit::ValueError>([&] { TokenData::load(f, 10); }) ==
        where + "tensor 'input_ids': expected integer token ids, found a Float tensor");
  modkit::safetensors::write(f, {{"tokens", at::zeros({2, 3}, at::kLong)}});
  CHECK(message_of<modkit::ValueError>([&] { TokenData::load(f, 10); }) ==
        where + "expected a tensor named 'input_ids', found 'tokens'");
}

TEST_CASE("torch.save lists of integer tensors: 1-D is one sequence, 2-D one per row") {
  modkit::test::TempDir dir("modkit-tokens");
  c10::impl::GenericList list(c10::TensorType::get());
  list.push_back(at::arange(4, at::kLong));
  list.push_back(at::arange(6, at::kLong).reshape({2, 3}));
  const std::vector<char> bytes = torch::jit::pickle_save(list);
  write_text(dir / "t.pt", std::string(bytes.begin(), bytes.end()));
  const TokenData d = TokenData::load(dir / "t.pt", 10);
  REQUIRE(d.size() == 3);
  CHECK(ids_of(d.sequences[0]) == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(ids_of(d.sequences[2]) == std::vector<int64_t>{3, 4, 5});
}

TEST_CASE("windows() cuts sequences into fixed windows, keeping a last one of at least 2 tokens") {
  TokenData d;
  d.sequences = {at::arange(7, at::kLong), at::arange(9, at::kLong)};
  const TokenData w = d.windows(4);
  REQUIRE(w.size() == 4);  // 7 -> 4 + 3; 9 -> 4 + 4 + (1, dropped)
  CHECK(w.sequences[1].numel() == 3);
  CHECK(w.tokens() == 15);
  CHECK(message_of<modkit::ValueError>([&] { d.windows(1); }) == "a window of 1 tokens: expected at least 2");
}
