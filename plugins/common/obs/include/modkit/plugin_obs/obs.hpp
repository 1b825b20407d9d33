// Optimal-brain-surgeon layer solvers shared by GPTQ and SparseGPT: Hessian accumulation, inverse Cholesky, blocked column sweep.
#pragma once

#include <modkit/plugin_quant/quant.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

/// The layer-wise OBS machinery of GPTQ (Frantar et al. 2022) and SparseGPT
/// (Frantar & Alistarh 2023) with llmcompressor's semantics
/// (gptq_quantize.py, sgpt_sparsify.py): H = 2/n Σ XᵀX over calibration
/// inputs, dead columns, dampening, U = chol((H + damp I)⁻¹, upper), then the
/// column sweep with lazy batch updates of `block_size` columns.
///
/// Everything is float32 (GPTQ_PRECISION). Weights are [rows, columns]
/// (a Linear weight is [out_features, in_features]); H is [columns, columns].
/// Functions parallelise with ATen's thread pool (at::set_num_threads) and
/// call the BLAS from the calling thread or, inside the sweep, with one BLAS
/// thread per ATen thread. Errors throw std::invalid_argument.
namespace modkit::obs {

/// Receives the warnings of a solve (e.g. a Hessian that needed more dampening).
using Warn = std::function<void(const std::string&)>;

/// A layer's Hessian of the reconstruction loss, H = 2/n Σ XᵀX, accumulated
/// batch by batch exactly as llmcompressor's accumulate_hessian: an input of
/// shape [samples, ..., columns] counts as `samples` samples (a 2-D input as
/// one), H is rescaled by n / (n + m) and 2 / (n + m) XᵀX is added, as one
/// symmetric rank-k update (BLAS ssyrk, half the flops of XᵀX).
///
/// Only the upper triangle is accumulated; symmetric() fills the lower one.
/// Not thread-safe; movable.
class Hessian {
 public:
  /// An empty Hessian for inputs with `columns` features (the weight's columns).
  explicit Hessian(int64_t columns);

  /// Adds one batch: `input` [..., columns], any floating dtype, any layout
  /// (float32 with contiguous rows is read in place; anything else is
  /// converted a few MiB at a time). Throws when the last dimension is not
  /// `columns`, naming both.
  void add(const at::Tensor& input);

  int64_t columns() const { return columns_; }
  /// Calibration samples so far (llmcompressor's num_samples).
  int64_t samples() const { return samples_; }
  /// Rows (tokens) seen so far.
  int64_t tokens() const { return tokens_; }

  /// H [columns, columns] float32 with its upper triangle valid.
  const at::Tensor& upper() const { return h_; }

  /// Mirrors the upper triangle into the lower one and gives H away (this
  /// Hessian is then empty, its memory owned by the returned tensor).
  at::Tensor take_symmetric();

 private:
  int64_t columns_;
  int64_t samples_ = 0;
  int64_t tokens_ = 0;
  at::Tensor h_;
};

/// Fills the strict lower triangle of the square float32 `m` from its upper triangle.
void symmetrize_upper_(at::Tensor& m);

/// What inverse_cholesky_ did.
struct InverseReport {
  std::vector<int64_t> dead;     ///< columns whose diagonal was 0 (set to 1; their weights zeroed by the caller)
  double dampening_frac = 0;     ///< the fraction that succeeded (the requested one unless retried)
  int attempts = 0;              ///< factorizations tried
  bool identity = false;         ///< every attempt failed: U is the identity (round-to-nearest / magnitude order)
  double seconds_cholesky = 0;   ///< time in the Cholesky factorization(s)
  double seconds_invert = 0;     ///< time in the triangular inverse
  double seconds_other = 0;      ///< dead columns, dampening, reorderings
};

/// Overwrites the symmetric H [n, n] (both triangles valid) with U, upper
/// triangular, Uᵀ U = (H + damp I)⁻¹ with damp = dampening_frac · mean(diag H)
/// after dead columns (diag 0) got H_ii = 1: the factor llmcompressor gets
/// from cholesky -> cholesky_inverse -> cholesky(upper), at half its flops
/// (U = J chol(J H J)⁻¹ J with J the reversal: one Cholesky and one triangular
/// inverse). When H + damp I is not positive definite the factorization is
/// retried with 10x the dampening fraction, up to 3 times, each retry reported
/// through `warn`; after that U is the identity (also reported).
/// Throws when H is not square float32 contiguous or its diagonal is not finite.
void inverse_cholesky_(at::Tensor& h, double dampening_frac, InverseReport& report, const Warn& warn);

/// Time spent in the column sweep (summed over threads, divided by their number).
struct SweepReport {
  double seconds = 0;        ///< wall time of the sweep
  double seconds_block = 0;  ///< inside blocks: decisions and in-block updates
  double seconds_gemm = 0;   ///< trailing updates W[:, i2:] -= E U[i1:i2, i2:] (sgemm)
  double seconds_select = 0; ///< SparseGPT's per-block mask selection (unstructured)
  int threads = 1;
};

/// GPTQ options: the weight quantization (a group strategy may use activation ordering), block size and dampening.
struct GptqOptions {
  quant::QuantArgs args;
  int64_t block_size = 128;
  double dampening_frac = 0.01;
};

struct GptqResult {
  at::Tensor weight;         ///< the weight's shape and dtype, every value (q - zero_point) * scale
  quant::QParams qparams;    ///< as modkit::quant::compute_qparams (scale: the weight dtype; zero point: int8)
  at::Tensor g_idx;          ///< int32 [columns], the group of each column; defined for actorder "group" only
  at::Tensor q;              ///< int8 integers [rows, columns] when requested
  double loss = 0;           ///< llmcompressor's loss: Σ (w - q)² / d² / 2
  bool preserved_zeros = false;  ///< the weight was >= 5 % zeros: they stayed zero
  InverseReport inverse;
  SweepReport sweep;
  double seconds_prepare = 0;  ///< copies, qparams, permutations
};

/// GPTQ on one weight [rows, columns] with its Hessian (symmetric, both
/// triangles; consumed: overwritten and released): llmcompressor's
/// quantize_weight. Quantization parameters come from the weight before any
/// update (min-max, as compressed-tensors' observer); actorder Weight permutes
/// the columns by descending diag(H) after computing them, actorder Group
/// before (groups then follow the permuted order and g_idx maps each original
/// column to its group). A weight that is at least 5 % zeros keeps them
/// (SPARSITY_THRESHOLD). Dead columns become 0. `with_integers` also returns q.
GptqResult gptq_quantize(const at::Tensor& weight, at::Tensor hessian, const GptqOptions& options, const Warn& warn,
                         bool with_integers = false);

/// SparseGPT options, as llmcompressor's sparsify_weight.
struct SparseGptOptions {
  double sparsity = 0.5;
  int64_t prune_n = 0;  ///< N:M: prune N of every M consecutive columns per row (0:0 unstructured)
  int64_t prune_m = 0;
  int64_t block_size = 128;
  double dampening_frac = 0.01;
  bool preserve_sparsity_mask = false;  ///< weights already zero stay zero and count toward the target
};

struct SparseGptResult {
  at::Tensor weight;  ///< the weight's shape and dtype
  double loss = 0;
  InverseReport inverse;
  SweepReport sweep;
  double seconds_prepare = 0;
};

/// SparseGPT on one weight [rows, columns] with its Hessian (symmetric, both
/// triangles; consumed). Unstructured: at the start of each block of columns
/// the weights with score w² / U_jj² at or below the value of rank
/// int(sparsity · rows · block) (0-based, ascending) of the block's scores are
/// pruned; N:M: at every M-th column of a block, per row the N smallest scores
/// of the next M columns. Pruned weights become 0 and their error is
/// propagated to the later columns. Throws when the weight's own sparsity
/// exceeds the target with preserve_sparsity_mask, or when N:M does not fit.
SparseGptResult sparsegpt_prune(const at::Tensor& weight, at::Tensor hessian, const SparseGptOptions& options,
                                const Warn& warn);

}  // namespace modkit::obs
