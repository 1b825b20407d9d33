// Quantization schemes of a modifier's parameters (scheme / config_groups) and the modules they resolve to, shared by the quantization plugins.
#pragma once

#include <modkit/plugin_quant/quant.hpp>
#include <modkit/sdk/modifier.hpp>
#include <modkit/sdk/params.hpp>

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <string>
#include <vector>

/// The `scheme` / `config_groups` parameters llmcompressor's QuantizationMixin
/// accepts, read from a modifier's Params, and their resolution to modules.
/// Used alike by QuantizationModifier and GPTQModifier, so both accept and
/// refuse the same recipes with the same messages. Errors throw
/// modkit::sdk::Error (INVALID_ARGUMENT, NOT_FOUND) naming the key path.
namespace modkit::quant {

/// One config group: its name (the recipe's key; "group_0" for a preset) and scheme.
struct Group {
  std::string name;
  Scheme scheme;
};

/// What a modifier accepts beyond RTN's arguments.
struct SchemeRules {
  /// Accepts weights.actorder in config groups ("group", "weight", their
  /// aliases "dynamic" / "static", true, false); otherwise only null / false.
  bool actorder = false;
};

/// Reads `scheme` (a preset name) or `config_groups` (exactly one of them)
/// and `targets` (the preset's targets) from `p`.
std::vector<Group> parse_groups(const sdk::Params& p, const SchemeRules& rules = {});

/// Reads an actorder value as compressed-tensors does: null or false -> None,
/// true -> Group, "group" / "dynamic" -> Group, "weight" / "static" -> Weight
/// (case-insensitive). `where` names the key in messages.
ActOrder parse_actorder(const sdk::Value& v, const std::string& where);

/// A module and the group whose scheme quantizes it.
struct Layer {
  std::string module;
  size_t group = 0;
};

/// The modules the groups' targets match (minus `ignore`) that own a
/// `weight`, in group then model order. Checks, before anything changes:
/// no module in two groups; a 2-D-or-more weight for per-row strategies; a
/// group_size that divides each matched in_features (the message lists the
/// misfits and the group sizes that would fit); and at least one module.
/// Modules without a weight are logged at debug level under `source`.
std::vector<Layer> resolve_layers(const sdk::State& state, const std::vector<Group>& groups,
                                  const std::vector<std::string>& ignore, const std::string& source);

/// "int4 symmetric group 128" (+ " dynamic"; + ", actorder weight" when set).
std::string describe(const QuantArgs& args);

/// The arguments as a buffer a packing exporter reads: int64 [num_bits,
/// symmetric, strategy, group_size, dynamic] with strategy 0 tensor,
/// 1 channel, 2 group, 3 token.
at::Tensor args_buffer(const QuantArgs& args);

/// Writes the buffers of a quantized module as QuantizationModifier does:
/// weight_scale, weight_zero_point, weight_quant_args, and input_quant_args
/// when the scheme quantizes input activations (created or replaced).
/// Returns the info line "<module>: weight int4 symmetric group 128, 128x256, 256 scales[; input activations ...]".
std::string write_quantization_buffers(const sdk::State& state, const std::string& module, const Scheme& scheme,
                                       const QParams& qparams, const at::Tensor& weight);

}  // namespace modkit::quant
