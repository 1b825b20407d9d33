// Column and row permutations of the weight and the Hessian for GPTQ's actorder, and a mask-free zero count.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace modkit::obs::detail {

/// Columns by descending diag(H), ties in column order (llmcompressor: argsort(diag(H), descending=True)).
at::Tensor activation_order(const at::Tensor& h);

/// in[:, idx] as a fresh contiguous tensor.
at::Tensor permute_columns(const at::Tensor& in, const at::Tensor& idx);

/// t = t[:, idx], in place when t is contiguous float32 or int8 (no second matrix).
void permute_columns_in_place(at::Tensor& t, const at::Tensor& idx);

/// h[perm][:, perm] in one pass (h: contiguous float32).
at::Tensor permute_symmetric(const at::Tensor& h, const at::Tensor& perm);

/// The zeros of a contiguous float32 tensor, counted without a temporary mask.
int64_t count_zeros(const at::Tensor& w);

}  // namespace modkit::obs::detail
