// config.json of the supported decoders, read as transformers' LlamaConfig, MistralConfig, Qwen2Config and
// Qwen3Config read it (their defaults), refusing by name every field whose value this host would compute wrongly.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hf/checkpoint.hpp>
#include <modkit/torch/hf/config.hpp>

#include <cmath>
#include <map>

namespace modkit::hf {
namespace {

[[noreturn]] void refuse(const std::string& field, const std::string& why) {
  throw ValueError("config.json: " + field + ": " + why);
}

// transformers' defaults for what a config may leave out
struct Defaults {
  const char* architecture;
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  int64_t num_key_value_heads;  // 0: num_attention_heads
  int64_t head_dim;             // 0: hidden_size / num_attention_heads
  int64_t max_position_embeddings;
};

const std::map<std::string, Defaults>& families() {
  static const std::map<std::string, Defaults> m = {
      {"llama", {"LlamaForCausalLM", 32000, 4096, 11008, 32, 32, 0, 0, 2048}},
      {"mistral", {"MistralForCausalLM", 32000, 4096, 14336, 32, 32, 8, 0, 4096 * 32}},
      {"qwen2", {"Qwen2ForCausalLM", 151936, 4096, 22016, 32, 32, 32, 0, 32768}},
      {"qwen3", {"Qwen3ForCausalLM", 151936, 4096, 22016, 32, 32, 32, 128, 32768}},
  };
  return m;
}

std::string supported_architectures() {
  std::string out;
  for (const auto& [type, d] : families()) out += (out.empty() ? "" : ", ") + std::string(d.architecture);
  return out;
}

// A positive integer field, or `fallback` when absent or null.
int64_t positive(const nlohmann::json& c, const char* field, int64_t fallback) {
  const auto it = c.find(field);
  if (it == c.end() || it->is_null()) {
    if (fallback > 0) return fallback;
    refuse(field, "expected a positive integer, found none");
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0) refuse(field, "expected a positive integer, found " + it->dump());
  return it->get<int64_t>();
}

double number(const nlohmann::json& c, const char* field, double fallback, bool positive_only = true) {
  const auto it = c.find(field);
  if (it == c.end() || it->is_null()) return fallback;
  if (!it->is_number() || (positive_only && !(it->get<double>() > 0)) || !std::isfinite(it->get<double>())) {
    refuse(field, std::string("expected a ") + (positive_only ? "positive " : "") + "number, found " + it->dump());
  }
  return it->get<double>();
}

bool flag(const nlohmann::json& c, const char* field, bool fallback) {
  const auto it = c.find(field);
  if (it == c.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) refuse(field, "expected true or false, found " + it->dump());
  return it->get<bool>();
}

RopeScaling read_rope_scaling(const nlohmann::json& s, const std::string& field, int64_t max_positions) {
  RopeScaling r;
  if (s.is_null()) return r;
  if (!s.is_object()) refuse(field, "expected an object or null, found " + s.dump());
  const auto type = s.contains("rope_type") ? s["rope_type"] : s.value("type", nlohmann::json("default"));
  if (!type.is_string()) refuse(field, "expected rope_type to be a string, found " + type.dump());
  r.type = type.get<std::string>();
  static const char* const kSupported[] = {"default", "linear", "dynamic", "yarn", "llama3"};
  bool known = false;
  for (const char* t : kSupported) known = known || r.type == t;
  if (!known) {
    refuse(field, "rope_type \"" + r.type + "\" is not supported (supported: default, linear, dynamic, yarn, llama3)");
  }
  if (r.type == "default") return r;
  r.factor = number(s, "factor", 0.0);
  if (!(r.factor >= 1.0)) refuse(field + ".factor", "expected a number of at least 1, found " + s.value("factor", nlohmann::json()).dump());
  r.original_max_position_embeddings = positive(s, "original_max_position_embeddings", max_positions);
  if (r.type == "llama3") {
    for (const char* f : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!s.contains(f)) refuse(field + "." + f, "expected a number (rope_type llama3 needs it), found none");
    }
    r.low_freq_factor = number(s, "low_freq_factor", 0.0);
    r.high_freq_factor = number(s, "high_freq_factor", 0.0);
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      refuse(field, "expected high_freq_factor above low_freq_factor, found " + std::to_string(r.high_freq_factor) +
                        " and " + std::to_string(r.low_freq_factor));
    }
  } else if (r.type == "yarn") {
    r.beta_fast = number(s, "beta_fast", 32.0);
    r.beta_slow = number(s, "beta_slow", 1.0);
    if (s.contains("attention_factor") && !s["attention_factor"].is_null()) r.attention_factor = number(s, "attention_factor", 1.0);
    if (s.contains("mscale") || s.contains("mscale_all_dim") || s.contains("truncate")) {
      refuse(field, "yarn's mscale, mscale_all_dim and truncate are not supported");
    }
  }
  return r;
}

std::string shape_why(const std::vector<std::pair<const char*, int64_t>>& fields) {
  std::string out;
  for (const auto& [f, v] : fields) out += (out.empty() ? "" : ", ") + std::string(f) + " " + std::to_string(v);
  return out;
}

}  // namespace

DecoderConfig DecoderConfig::from_json(const nlohmann::json& c) {
  if (!c.is_object()) throw ValueError("config.json: expected a JSON object, found " + std::string(c.type_name()));
  DecoderConfig d;
  // the architecture: architectures[0], else model_type
  std::string type;
  if (const auto a = c.find("architectures"); a != c.end() && !a->is_null()) {
    if (!a->is_array() || a->size() != 1 || !(*a)[0].is_string()) {
      refuse("architectures", "expected one of " + supported_architectures() + ", found " + a->dump());
    }
    d.architecture = (*a)[0].get<std::string>();
    for (const auto& [t, defaults] : families()) {
      if (d.architecture == defaults.architecture) type = t;
    }
    if (type.empty()) refuse("architectures", "expected one of " + supported_architectures() + ", found " + a->dump());
  } else if (const auto t = c.find("model_type"); t != c.end() && t->is_string() && families().count(t->get<std::string>())) {
    type = t->get<std::string>();
    d.architecture = families().at(type).architecture;
  } else {
    refuse("architectures", "expected one of " + supported_architectures() + " (or a model_type of llama, mistral, qwen2 "
                            "or qwen3), found " + (t == c.end() ? std::string("none") : t->dump()));
  }
  d.model_type = type;
  const Defaults& defaults = families().at(type);

  if (const auto act = c.find("hidden_act"); act != c.end() && !(act->is_string() && (*act == "silu" || *act == "swish"))) {
    refuse("hidden_act", "expected \"silu\" (the SwiGLU MLP these architectures use), found " + act->dump());
  }
  d.vocab_size = positive(c, "vocab_size", defaults.vocab_size);
  d.hidden_size = positive(c, "hidden_size", defaults.hidden_size);
  d.intermediate_size = positive(c, "intermediate_size", defaults.intermediate_size);
  d.num_hidden_layers = positive(c, "num_hidden_layers", defaults.num_hidden_layers);
  d.num_attention_heads = positive(c, "num_attention_heads", defaults.num_attention_heads);
  d.num_key_value_heads =
      positive(c, "num_key_value_heads", defaults.num_key_value_heads > 0 ? defaults.num_key_value_heads : d.num_attention_heads);
  if (d.num_attention_heads % d.num_key_value_heads != 0) {
    refuse("num_key_value_heads", "expected a divisor of num_attention_heads (" + std::to_string(d.num_attention_heads) +
                                      "), found " + std::to_string(d.num_key_value_heads));
  }
  const int64_t derived_head_dim = d.hidden_size / d.num_attention_heads;
  d.head_dim = positive(c, "head_dim", defaults.head_dim > 0 ? defaults.head_dim : derived_head_dim);
  if (defaults.head_dim == 0 && !c.contains("head_dim") && d.hidden_size % d.num_attention_heads != 0) {
    refuse("num_attention_heads", "expected a divisor of hidden_size (" + std::to_string(d.hidden_size) + "), found " +
                                      std::to_string(d.num_attention_heads));
  }
  if (d.head_dim % 2 != 0) refuse("head_dim", "expected an even number (rotary embeddings pair the dimensions), found " + std::to_string(d.head_dim));
  d.max_position_embeddings = positive(c, "max_position_embeddings", defaults.max_position_embeddings);
  d.rms_norm_eps = number(c, "rms_norm_eps", 1e-6);
  d.tie_word_embeddings = flag(c, "tie_word_embeddings", false);
  d.attention_bias = (type == "llama" || type == "qwen3") && flag(c, "attention_bias", false);
  d.mlp_bias = type == "llama" && flag(c, "mlp_bias", false);
  d.qk_norm = type == "qwen3";

  // rope: transformers 4.x keeps rope_theta and rope_scaling at the top; 5.x nests them in rope_parameters
  if (const auto p = c.find("rope_parameters"); p != c.end() && !p->is_null()) {
    if (!p->is_object()) refuse("rope_parameters", "expected an object, found " + p->dump());
    d.rope_theta = number(*p, "rope_theta", 10000.0);
    d.rope_scaling = read_rope_scaling(*p, "rope_parameters", d.max_position_embeddings);
  } else {
    d.rope_theta = number(c, "rope_theta", 10000.0);
    d.rope_scaling = read_rope_scaling(c.value("rope_scaling", nlohmann::json()), "rope_scaling", d.max_position_embeddings);
  }

  // sliding-window attention: Mistral whenever sliding_window is set; Qwen2/3 when use_sliding_window says so
  const bool sliding = type == "mistral" || flag(c, "use_sliding_window", false);
  if (const auto w = c.find("sliding_window"); sliding && w != c.end() && !w->is_null()) {
    d.sliding_window = positive(c, "sliding_window", 0);
  }
  if (const auto layers = c.find("layer_types"); layers != c.end() && layers->is_array()) {
    for (const auto& l : *layers) {
      if (l != "full_attention" && l != "sliding_attention") {
        refuse("layer_types", "expected \"full_attention\" or \"sliding_attention\" entries, found " + l.dump());
      }
      if (l == "sliding_attention" && !d.sliding_window) d.sliding_window = positive(c, "sliding_window", 4096);
    }
  }
  if (const auto q = c.find("quantization_config"); q != c.end() && !q->is_null()) {
    const std::string method = q->is_object() ? q->value("quant_method", std::string("unknown method")) : q->dump();
    refuse("quantization_config",
           "this checkpoint is already quantized (" + method + "); reading compressed checkpoints is not supported yet");
  }
  if (const auto dt = c.find("torch_dtype"); dt != c.end() && dt->is_string()) d.torch_dtype = dt->get<std::string>();
  if (const auto dt = c.find("dtype"); d.torch_dtype.empty() && dt != c.end() && dt->is_string()) d.torch_dtype = dt->get<std::string>();
  return d;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> DecoderConfig::expected_tensors() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t h = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  out.push_back({"model.embed_tokens.weight", {vocab_size, h}});
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    out.push_back({l + "input_layernorm.weight", {h}});
    out.push_back({l + "self_attn.q_proj.weight", {q, h}});
    out.push_back({l + "self_attn.k_proj.weight", {kv, h}});
    out.push_back({l + "self_attn.v_proj.weight", {kv, h}});
    out.push_back({l + "self_attn.o_proj.weight", {h, q}});
    if (qkv_bias()) {
      out.push_back({l + "self_attn.q_proj.bias", {q}});
      out.push_back({l + "self_attn.k_proj.bias", {kv}});
      out.push_back({l + "self_attn.v_proj.bias", {kv}});
    }
    if (attention_bias) out.push_back({l + "self_attn.o_proj.bias", {h}});
    if (qk_norm) {
      out.push_back({l + "self_attn.q_norm.weight", {head_dim}});
      out.push_back({l + "self_attn.k_norm.weight", {head_dim}});
    }
    out.push_back({l + "post_attention_layernorm.weight", {h}});
    out.push_back({l + "mlp.gate_proj.weight", {intermediate_size, h}});
    out.push_back({l + "mlp.up_proj.weight", {intermediate_size, h}});
    out.push_back({l + "mlp.down_proj.weight", {h, intermediate_size}});
    if (mlp_bias) {
      out.push_back({l + "mlp.gate_proj.bias", {intermediate_size}});
      out.push_back({l + "mlp.up_proj.bias", {intermediate_size}});
      out.push_back({l + "mlp.down_proj.bias", {h}});
    }
  }
  out.push_back({"model.norm.weight", {h}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {vocab_size, h}});
  return out;
}

void DecoderConfig::check(const Checkpoint& checkpoint) const {
  for (const auto& [name, shape] : expected_tensors()) {
    // the config fields the shape comes from, to say which one disagrees
    std::vector<std::pair<const char*, int64_t>> fields{{"hidden_size", hidden_size}};
    if (name.find("embed_tokens") != std::string::npos || name == "lm_head.weight") fields.push_back({"vocab_size", vocab_size});
    if (name.find("_proj") != std::string::npos && name.find("mlp.") != std::string::npos) {
      fields.push_back({"intermediate_size", intermediate_size});
    }
    if (name.find("self_attn.") != std::string::npos) {
      fields = {{"hidden_size", hidden_size}, {"num_attention_heads", num_attention_heads},
                {"num_key_value_heads", num_key_value_heads}, {"head_dim", head_dim}};
    }
    checkpoint.expect_shape(name, shape, "config.json: " + shape_why(fields));
  }
}

void DecoderConfig::check_sequence_length(int64_t length) const {
  if (sliding_window && length > *sliding_window) {
    throw ValueError("a sequence of " + std::to_string(length) + " tokens is longer than config.json's sliding_window (" +
                     std::to_string(*sliding_window) + "): sliding-window attention is not supported, so sequences are "
                     "limited to the window (give --seq-len " + std::to_string(*sliding_window) + " or less)");
  }
}

}  // namespace modkit::hf
