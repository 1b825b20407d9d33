// Integer weight quantization math with compressed-tensors semantics, shared by the quantization plugins.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

/// Round-to-nearest integer quantization as compressed-tensors defines it
/// (`calculate_qparams`, `_quantize`, `_dequantize`): min-max quantization
/// parameters, `q = clamp(round(w / scale + zero_point), qmin, qmax)` with
/// round half to even, `w' = (q - zero_point) * scale`.
///
/// Every function works on a 2-D weight `[rows, columns]` (a Linear weight is
/// `[out_features, in_features]`); a weight with more dimensions is read as
/// `[size(0), numel / size(0)]`. Scales have the weight's dtype, zero points are
/// int8 (num_bits <= 8). The arithmetic is float32 whatever the weight dtype;
/// a scale is rounded to the weight dtype before it is used, so the stored
/// scale is the one the weight was quantized with.
///
/// The functions are reentrant; they parallelise over rows with ATen's intra-op
/// thread pool (at::set_num_threads). Errors throw std::invalid_argument.
namespace modkit::quant {

/// How many scales a weight gets: one, one per output row, one per row and
/// group of `group_size` consecutive columns, or one per token (row) of an
/// activation (dynamic, computed at run time).
enum class Strategy { Tensor, Channel, Group, Token };

/// Activation ordering of GPTQ (compressed-tensors' ActivationOrdering, group
/// strategy only): none; Group ("group", alias "dynamic", or true): columns
/// are permuted by descending Hessian diagonal before the groups are formed,
/// so groups follow the permuted order and a g_idx maps columns to groups;
/// Weight ("weight", alias "static"): the groups stay the original column
/// groups and only the processing order changes.
enum class ActOrder { None, Group, Weight };

/// The integer quantization of one tensor (compressed-tensors' QuantizationArgs, type "int").
struct QuantArgs {
  int num_bits = 8;                      ///< 2..8: qmin = -2^(b-1), qmax = 2^(b-1) - 1
  bool symmetric = true;                 ///< zero point 0 and scale from max(|min|, |max|)
  Strategy strategy = Strategy::Channel;
  int64_t group_size = 0;                ///< columns per group (Strategy::Group only)
  bool dynamic = false;                  ///< scales computed at run time (activations)
  ActOrder actorder = ActOrder::None;    ///< GPTQ's column order (weights, group strategy); RTN ignores it
};

/// What a module gets: its weight quantization and optionally its input
/// activations' (W8A8: int8 per-token dynamic symmetric), and the targets.
struct Scheme {
  QuantArgs weights;
  std::optional<QuantArgs> input_activations;
  std::vector<std::string> targets;
};

/// The compressed-tensors preset `name` (case-insensitive): "W8A16", "W4A16",
/// "W4A16_ASYM", "W8A8" (alias "INT8"), "W4A8". Targets are ["Linear"].
/// Throws std::invalid_argument naming the presets for an unknown name.
Scheme preset(const std::string& name);

/// The preset names preset() accepts, in a stable order.
const std::vector<std::string>& preset_names();

/// The integer range: [-2^(b-1), 2^(b-1) - 1].
int qmin(const QuantArgs& args);
int qmax(const QuantArgs& args);

/// "tensor", "channel", "group", "token".
const char* to_string(Strategy strategy);

/// "none", "group", "weight".
const char* to_string(ActOrder actorder);

/// Throws std::invalid_argument when `args` cannot be used: num_bits outside
/// 2..8, or Strategy::Group without a group_size > 0.
void validate(const QuantArgs& args);

/// Throws std::invalid_argument when `weight` cannot be quantized with `args`
/// (a column count that the group size does not divide, a 1-D weight with a
/// per-row strategy, an empty weight or a non-floating dtype).
void check_weight(const at::Tensor& weight, const QuantArgs& args);

/// A tensor's shape as messages show it: "[4096, 11008]".
std::string sizes_of(const at::Tensor& t);

/// Scale and zero point. Shapes: tensor [1]; channel and token [rows, 1];
/// group [rows, columns / group_size]. Scale: the weight dtype; zero point: int8.
struct QParams {
  at::Tensor scale;
  at::Tensor zero_point;
};

/// Min-max quantization parameters (compressed-tensors' calculate_qparams):
/// min is clamped to <= 0 and max to >= 0 so that 0 is representable;
/// symmetric: scale = max(|min|, |max|) / ((qmax - qmin) / 2) (absmax / 7.5 for
/// int4), zero point 0; asymmetric: scale = (max - min) / (qmax - qmin),
/// zero point = round(clamp(qmin - min / scale, qmin, qmax)). A scale below
/// float32 epsilon (an all-zero group) becomes epsilon.
QParams compute_qparams(const at::Tensor& weight, const QuantArgs& args);

/// The integers: clamp(round(w / scale + zero_point), qmin, qmax), int8, the weight's shape.
at::Tensor quantize(const at::Tensor& weight, const QParams& qparams, const QuantArgs& args);

/// (q - zero_point) * scale in the scale's dtype, q's shape.
at::Tensor dequantize(const at::Tensor& q, const QParams& qparams, const QuantArgs& args);

/// Replaces `weight` in place by dequantize(quantize(weight)) in one pass
/// without weight-sized temporaries. `q_out`, when given, receives the
/// integers (int8, allocated when undefined, else must be int8 of the weight's
/// shape and contiguous). `weight` may be a view, e.g. one column or one group
/// of columns of a larger weight with the matching slice of the qparams (GPTQ).
void fake_quantize_(at::Tensor& weight, const QParams& qparams, const QuantArgs& args,
                    at::Tensor* q_out = nullptr);

/// Round-to-nearest in one pass: compute_qparams + fake_quantize_ fused row
/// by row while each row is in cache (two passes for Strategy::Tensor).
/// Returns the qparams; the weight and q_out end exactly as with the two calls.
QParams quantize_rtn_(at::Tensor& weight, const QuantArgs& args, at::Tensor* q_out = nullptr);

}  // namespace modkit::quant
