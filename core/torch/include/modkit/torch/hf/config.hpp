// The decoder configuration of a Hugging Face checkpoint (Llama, Mistral, Qwen2, Qwen3), read from config.json with
// transformers' defaults; a field that would change the math and is not supported is refused by name.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace modkit::hf {

class Checkpoint;

/// How rotary position embeddings scale (config.json "rope_scaling", transformers'
/// ROPE_INIT_FUNCTIONS): none, "linear" (positions / factor), "dynamic" (NTK: the base grows
/// once a sequence exceeds max_position_embeddings), "yarn", "llama3".
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;   ///< llama3
  double high_freq_factor = 4.0;  ///< llama3
  int64_t original_max_position_embeddings = 0;  ///< llama3, yarn (0: max_position_embeddings)
  double beta_fast = 32.0;        ///< yarn
  double beta_slow = 1.0;         ///< yarn
  std::optional<double> attention_factor;  ///< yarn (default 0.1 ln(factor) + 1)
};

/// One of the supported decoder-only causal LMs, as transformers' config classes read it.
struct DecoderConfig {
  std::string architecture;  ///< "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"
  std::string model_type;    ///< "llama", "mistral", "qwen2", "qwen3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  ///< default num_attention_heads
  int64_t head_dim = 0;             ///< default hidden_size / num_attention_heads (Qwen3: 128)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  ///< bias on q/k/v/o (Llama, Qwen3); Qwen2: q/k/v always
  bool mlp_bias = false;        ///< Llama
  bool qk_norm = false;         ///< Qwen3: RMSNorm over each head of q and k
  std::optional<int64_t> sliding_window;  ///< in use (Mistral, Qwen2/3 with use_sliding_window): sequences are limited to it
  std::string torch_dtype;      ///< "bfloat16", "float16", "float32" ("" when not given)

  /// Reads `config` (a config.json object). Throws ValueError "config.json: <field>: ..."
  /// naming the field, what is supported and what was found: an unlisted architecture, a
  /// hidden_act other than silu, an unsupported rope_scaling type, heads that do not divide,
  /// a missing or non-positive size.
  static DecoderConfig from_json(const nlohmann::json& config);

  /// Whether q, k and v projections carry a bias.
  bool qkv_bias() const { return model_type == "qwen2" || attention_bias; }

  /// Every tensor the checkpoint must hold with its shape (transformers' parameter names):
  /// embeddings, per layer the norms, q/k/v/o (biases, q/k norms), gate/up/down, the final norm
  /// and lm_head unless tied.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors() const;

  /// Checks a checkpoint against expected_tensors(): a missing tensor or a shape that disagrees
  /// with this config is a ValueError naming the tensor, its file and the config field.
  void check(const Checkpoint& checkpoint) const;

  /// Refuses a sequence longer than sliding_window (the attention this host computes is
  /// full causal attention, which equals sliding-window attention only within the window).
  void check_sequence_length(int64_t length) const;
};

}  // namespace modkit::hf
