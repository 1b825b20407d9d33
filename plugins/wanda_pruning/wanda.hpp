// Wanda's statistics and mask (|W_ij| * ||X_j||, per output row): the kernels of WandaPruningModifier, also used by its tests and benchmark.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace modkit::wanda {

/// The running statistic llmcompressor's Wanda keeps per input column j of a
/// layer (`accumulate_row_scalars`, the paper's `scaler_row`): the mean over
/// calibration samples of the squared norm of column j of the layer input,
///   S_j = (1 / samples) * sum over every token t of x_tj^2,
/// updated incrementally batch by batch exactly as llmcompressor does
/// (S *= n / (n + b); n += b; S += ||x_j||^2 / n, with b the batch's samples:
/// its first dimension, or 1 for a 2-d input). Kept in double; the sums of
/// one batch are taken in float over blocks of 64 tokens, then in double.
///
/// Not thread-safe: one add() at a time (hooks run on the forward's thread).
class RowScalars {
 public:
  explicit RowScalars(int64_t columns);

  /// Adds one batch: `input` has `columns` elements in its last dimension,
  /// any floating dtype and layout. Throws std::invalid_argument (message
  /// naming both widths) when the last dimension differs.
  void add(const at::Tensor& input);

  int64_t columns() const { return static_cast<int64_t>(s_.size()); }
  /// Calibration samples seen (llmcompressor's num_samples), tokens seen.
  int64_t samples() const { return samples_; }
  int64_t tokens() const { return tokens_; }
  /// S_j as defined above.
  const std::vector<double>& values() const { return s_; }
  /// sqrt(S_j) in float: the factor of column j in the metric, which is
  /// ||X_j||_2 up to the constant 1 / sqrt(samples) (masks do not change).
  std::vector<float> column_norms() const;

 private:
  std::vector<double> s_;
  int64_t samples_ = 0;
  int64_t tokens_ = 0;
};

/// How many weights of a row of `columns` an unstructured mask of `sparsity`
/// prunes: floor(columns * sparsity), as llmcompressor's int(), computed so
/// that a product like 100 * 0.29 = 28.999999999999996 counts as 29.
int64_t pruned_per_row(int64_t columns, double sparsity);

/// Prunes `weight` ([rows, columns], any floating dtype, any strides) in
/// place with Wanda's metric |W_ij| * column_norms[j]:
///  - prune_m == 0 (mask_structure "0:0"): in every row, the
///    pruned_per_row(columns, sparsity) weights with the lowest metric;
///  - prune_m > 0 ("N:M", llmcompressor's prune_n:prune_m): in every row and
///    every group of prune_m consecutive columns, the prune_n weights with
///    the lowest metric (`sparsity` is not used; columns % prune_m == 0).
/// Ties go to the lower column index (llmcompressor's stable sort); NaN
/// metrics rank above everything. The metric is float32.
///
/// Per row, in cache, with no temporary of the weight's size: the metric's
/// float bits are the sort keys; N:M (M = 2, 4, 8) is one vector pass that
/// ranks each key within its group; unstructured is a radix select: a
/// bracket of keys that should hold the k-th (the previous row's threshold
/// scaled by the rows' mean metrics, else a sample of every 4th key, else an
/// exact histogram), one pass that counts the keys below it and packs those
/// inside (AVX2 where the CPU has it), one vector pass that zeroes everything
/// below, and an exact selection among the few packed keys. The weight is
/// read from memory once and written once; the next row is prefetched while
/// one is worked on. Rows run in parallel (at::parallel_for; this file must
/// be compiled with OpenMP for that, as LibTorch's is).
/// Returns the number of weights set to zero by the mask (zeros already
/// there and selected count too). Throws std::invalid_argument for a weight
/// that is not 2-d or floating, column_norms of the wrong size, or N:M
/// arguments that do not fit (0 < prune_n < prune_m, columns % prune_m == 0).
int64_t prune_(const at::Tensor& weight, const std::vector<float>& column_norms, double sparsity,
               int64_t prune_n = 0, int64_t prune_m = 0);

}  // namespace modkit::wanda
