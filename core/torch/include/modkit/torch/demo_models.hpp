// Small deterministic TorchScript models built in C++ (no Python, no downloads): the model `modkit apply` and
// `modkit demo` generate when given none, the training-loop example's, and the tests'.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>

namespace modkit::demo_models {

/// A linear layer like a scripted nn.Linear: parameters "weight" [out, in]
/// and "bias" [out] (a None attribute when `bias` is false, as scripting
/// gives), forward(x) = torch.linear(x, weight, bias). Weights are uniform in
/// [-1/sqrt(in), 1/sqrt(in)] from `seed` (same seed, same weights).
/// `class_name` is the TorchScript type name: a dotted name is used as is,
/// a plain one ("Linear") becomes "__torch__.torch.nn.modules.linear.<name>",
/// where Python puts nn.Linear; either way class_name_of() gives its last part.
torch::jit::Module make_linear(const std::string& class_name, int64_t in, int64_t out, bool bias,
                               uint64_t seed);

/// A two-layer perceptron of class "MLP": modules "fc1" (Linear in->hidden),
/// "act" (ReLU, no tensors) and "fc2" (Linear hidden->out);
/// forward(x) = fc2(relu(fc1(x))), x of shape [..., in].
torch::jit::Module make_mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed);

/// A decoder-only transformer of class "TinyTransformer" with the module
/// names llmcompressor sees in a causal LM:
///   layers                     ModuleList
///   layers.N                   DecoderLayer
///   layers.N.input_layernorm   LayerNorm (weight, bias)
///   layers.N.self_attn         Attention
///   layers.N.self_attn.{q,k,v,o}_proj  Linear hidden->hidden, no bias
///   layers.N.post_attention_layernorm  LayerNorm
///   layers.N.mlp               MLP
///   layers.N.mlp.fc1           Linear hidden->2*hidden (bias)
///   layers.N.mlp.act           ReLU
///   layers.N.mlp.fc2           Linear 2*hidden->hidden (bias)
///   norm                       LayerNorm
///   lm_head                    Linear hidden->hidden, no bias
/// forward(x) maps [batch, seq, hidden] to [batch, seq, hidden] (single-head
/// causal-free attention and pre-norm residual blocks). The decoder layers
/// share their TorchScript types, as Python's scripting of a ModuleList of one
/// class gives (within a layer, and outside the layers, every module has its
/// own type); each layer has its own weights.
torch::jit::Module make_tiny_transformer(int64_t layers, int64_t hidden, uint64_t seed);

}  // namespace modkit::demo_models
