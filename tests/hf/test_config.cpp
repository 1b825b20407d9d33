// config.json of the supported decoders: transformers' defaults, the tensors a checkpoint must hold, refusals by name.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hf/checkpoint.hpp>
#include <modkit/torch/hf/config.hpp>
#include <modkit/torch/safetensors.hpp>

#include "plugin_harness.hpp"
#include "temp_dir.hpp"

#include <ATen/ops/zeros.h>
#include <doctest/doctest.h>

#include <fstream>
#include <map>

using modkit::hf::DecoderConfig;
using modkit::test::message_of;
using nlohmann::json;

namespace {

const json kTinyLlama = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 32}, {"hidden_size", 8},
                         {"intermediate_size", 16}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                         {"num_key_value_heads", 1}, {"hidden_act", "silu"}, {"rms_norm_eps", 1e-5},
                         {"torch_dtype", "bfloat16"}};

std::string refusal(const json& config) {
  return message_of<modkit::ValueError>([&] { DecoderConfig::from_json(config); });
}

json with(json config, const std::string& key, const json& value) {
  config[key] = value;
  return config;
}

std::map<std::string, std::vector<int64_t>> shapes(const DecoderConfig& d) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& [name, shape] : d.expected_tensors()) out[name] = shape;
  return out;
}

}  // namespace

TEST_CASE("a Llama config: transformers' defaults for what it leaves out, and the tensors it implies") {
  const DecoderConfig d = DecoderConfig::from_json(kTinyLlama);
  CHECK(d.model_type == "llama");
  CHECK(d.head_dim == 4);  // hidden_size / num_attention_heads
  CHECK(d.rope_theta == 10000.0);
  CHECK(d.rope_scaling.type == "default");
  CHECK(d.max_position_embeddings == 2048);
  CHECK_FALSE(d.tie_word_embeddings);
  CHECK_FALSE(d.sliding_window);
  CHECK(d.torch_dtype == "bfloat16");
  const auto s = shapes(d);
  CHECK(s.size() == 1 + 2 * 9 + 1 + 1);
  CHECK(s.at("model.embed_tokens.weight") == std::vector<int64_t>{32, 8});
  CHECK(s.at("model.layers.1.self_attn.q_proj.weight") == std::vector<int64_t>{8, 8});
  CHECK(s.at("model.layers.1.self_attn.k_proj.weight") == std::vector<int64_t>{4, 8});  // one kv head of 4
  CHECK(s.at("model.layers.0.mlp.down_proj.weight") == std::vector<int64_t>{8, 16});
  CHECK(s.at("lm_head.weight") == std::vector<int64_t>{32, 8});
  CHECK(shapes(DecoderConfig::from_json(with(kTinyLlama, "tie_word_embeddings", true))).count("lm_head.weight") == 0);
  CHECK(DecoderConfig::from_json(with(kTinyLlama, "num_key_value_heads", nullptr)).num_key_value_heads == 2);
}

TEST_CASE("Mistral, Qwen2 and Qwen3: their own defaults, biases, q/k norms and sliding windows") {
  const DecoderConfig mistral = DecoderConfig::from_json(with(with(kTinyLlama, "architectures", {"MistralForCausalLM"}),
                                                              "sliding_window", 16));
  CHECK(mistral.sliding_window == 16);
  mistral.check_sequence_length(16);
  CHECK(message_of<modkit::ValueError>([&] { mistral.check_sequence_length(17); })
            .rfind("a sequence of 17 tokens is longer than config.json's sliding_window (16)", 0) == 0);
  CHECK(DecoderConfig::from_json({{"architectures", {"MistralForCausalLM"}}}).num_key_value_heads == 8);

  json qwen2 = with(kTinyLlama, "architectures", {"Qwen2ForCausalLM"});
  qwen2["sliding_window"] = 16;  // not in use without use_sliding_window
  const DecoderConfig q2 = DecoderConfig::from_json(qwen2);
  CHECK_FALSE(q2.sliding_window);
  CHECK(q2.qkv_bias());
  CHECK(shapes(q2).at("model.layers.0.self_attn.k_proj.bias") == std::vector<int64_t>{4});
  CHECK(shapes(q2).count("model.layers.0.self_attn.o_proj.bias") == 0);
  CHECK(DecoderConfig::from_json(with(qwen2, "use_sliding_window", true)).sliding_window == 16);

  const DecoderConfig q3 = DecoderConfig::from_json(with(kTinyLlama, "architectures", {"Qwen3ForCausalLM"}));
  CHECK(q3.head_dim == 128);  // Qwen3Config's default, not hidden_size / heads
  CHECK(shapes(q3).at("model.layers.0.self_attn.q_norm.weight") == std::vector<int64_t>{128});
  CHECK(shapes(q3).at("model.layers.0.self_attn.q_proj.weight") == std::vector<int64_t>{256, 8});
  CHECK_FALSE(q3.qkv_bias());
}

TEST_CASE("rope_scaling: the supported types are read, llama3 needs its fields, others are refused by name") {
  json llama3 = kTinyLlama;
  llama3["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  const DecoderConfig d = DecoderConfig::from_json(llama3);
  CHECK(d.rope_scaling.type == "llama3");
  CHECK(d.rope_scaling.factor == 8.0);
  CHECK(d.rope_scaling.original_max_position_embeddings == 8192);
  CHECK(DecoderConfig::from_json(with(kTinyLlama, "rope_scaling", {{"type", "linear"}, {"factor", 2.0}})).rope_scaling.type ==
        "linear");
  // transformers 5 nests them
  CHECK(DecoderConfig::from_json(with(kTinyLlama, "rope_parameters", {{"rope_type", "default"}, {"rope_theta", 500000.0}}))
            .rope_theta == 500000.0);

  llama3["rope_scaling"].erase("low_freq_factor");
  CHECK(refusal(llama3) == "config.json: rope_scaling.low_freq_factor: expected a number (rope_type llama3 needs it), found none");
  CHECK(refusal(with(kTinyLlama, "rope_scaling", {{"rope_type", "longrope"}, {"factor", 2.0}})) ==
        "config.json: rope_scaling: rope_type \"longrope\" is not supported (supported: default, linear, dynamic, yarn, llama3)");
  CHECK(refusal(with(kTinyLlama, "rope_scaling", {{"rope_type", "linear"}, {"factor", 0.5}})) ==
        "config.json: rope_scaling.factor: expected a number of at least 1, found 0.5");
}

TEST_CASE("fields that would change the math are refused, naming the field and its value") {
  CHECK(refusal(with(kTinyLlama, "architectures", {"GPT2LMHeadModel"})) ==
        "config.json: architectures: expected one of LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
        "Qwen3ForCausalLM, found [\"GPT2LMHeadModel\"]");
  CHECK(refusal(with(kTinyLlama, "hidden_act", "gelu")) ==
        "config.json: hidden_act: expected \"silu\" (the SwiGLU MLP these architectures use), found \"gelu\"");
  CHECK(refusal(with(kTinyLlama, "num_key_value_heads", 3)) ==
        "config.json: num_key_value_heads: expected a divisor of num_attention_heads (2), found 3");
  CHECK(refusal(with(kTinyLlama, "hidden_size", 0)) == "config.json: hidden_size: expected a positive integer, found 0");
  CHECK(refusal(with(kTinyLlama, "quantization_config", {{"quant_method", "compressed-tensors"}})) ==
        "config.json: quantization_config: this checkpoint is already quantized (compressed-tensors); reading compressed "
        "checkpoints is not supported yet");
  CHECK(refusal(with(kTinyLlama, "layer_types", {"full_attention", "chunked_attention"})) ==
        "config.json: layer_types: expected \"full_attention\" or \"sliding_attention\" entries, found \"chunked_attention\"");
}

TEST_CASE("check() holds a checkpoint to its config: a shape that disagrees names the tensor, file and fields") {
  modkit::test::TempDir dir("modkit-hf");
  std::ofstream(dir / "config.json") << kTinyLlama.dump();
  const DecoderConfig d = DecoderConfig::from_json(kTinyLlama);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, shape] : d.expected_tensors()) tensors.push_back({name, at::zeros(shape, at::kBFloat16)});
  modkit::safetensors::write(dir / "model.safetensors", tensors);
  d.check(modkit::hf::Checkpoint::open(dir.path()));

  for (auto& [name, t] : tensors) {
    if (name == "model.layers.1.self_attn.k_proj.weight") t = at::zeros({8, 8}, at::kBFloat16);  // as if kv heads were 2
  }
  modkit::safetensors::write(dir / "model.safetensors", tensors);
  CHECK(message_of<modkit::ValueError>([&] { d.check(modkit::hf::Checkpoint::open(dir.path())); }) ==
        "checkpoint '" + dir.path() + "': tensor 'model.layers.1.self_attn.k_proj.weight' in 'model.safetensors' has "
        "shape [8, 8], expected [4, 8] (config.json: hidden_size 8, num_attention_heads 2, num_key_value_heads 1, "
        "head_dim 4)");
}
