// The OBS layer solves: inverse Cholesky of the damped Hessian and the blocked column sweep of GPTQ and SparseGPT.
#include <modkit/plugin_obs/blas.hpp>
#include <modkit/plugin_obs/obs.hpp>

#include "permute.hpp"

#include <ATen/Parallel.h>
#include <ATen/ops/argsort.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/tril.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

// Shape of the sweep. Rows of the weight are independent given U and the
// quantization parameters, so the rows are split into one chunk per thread
// and each chunk runs every block on its own: inside a block, tiles of 16
// rows are transposed into a [block][16] buffer that stays in L1, and each
// column step is a vector operation across the tile's rows (the decision,
// the error, then the rank-1 update of the block's later columns); after the
// block one single-threaded sgemm applies the block's errors to the chunk's
// later columns (the lazy batch update). Only SparseGPT's unstructured mask,
// a threshold over all rows of a block, makes the threads meet once per block.
namespace modkit::obs {
namespace {

using detail::activation_order;
using detail::count_zeros;
using detail::permute_columns;
using detail::permute_columns_in_place;
using detail::permute_symmetric;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string sizes_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

constexpr int64_t kTileRows = 16;
using f8 = float __attribute__((vector_size(32)));

// t[j][0..16) -= e[0..16) * u[j] for j < count: the in-block rank-1 update of one tile.
template <int kDummy>
inline __attribute__((always_inline)) void update_tile_impl(float* t, const float* e, const float* u, int64_t count) {
  f8 e0, e1;
  std::memcpy(&e0, e, sizeof e0);
  std::memcpy(&e1, e + 8, sizeof e1);
  for (int64_t j = 0; j < count; ++j) {
    const float s = u[j];
    const f8 vs = f8{s, s, s, s, s, s, s, s};
    f8 a, b;
    std::memcpy(&a, t + j * kTileRows, sizeof a);
    std::memcpy(&b, t + j * kTileRows + 8, sizeof b);
    a -= e0 * vs;
    b -= e1 * vs;
    std::memcpy(t + j * kTileRows, &a, sizeof a);
    std::memcpy(t + j * kTileRows + 8, &b, sizeof b);
  }
}
__attribute__((target("avx2,fma"))) void update_tile_avx2(float* t, const float* e, const float* u, int64_t count) {
  update_tile_impl<1>(t, e, u, count);
}
void update_tile_generic(float* t, const float* e, const float* u, int64_t count) { update_tile_impl<0>(t, e, u, count); }

using UpdateTile = void (*)(float*, const float*, const float*, int64_t);
UpdateTile pick_update_tile() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &update_tile_avx2;
#endif
  return &update_tile_generic;
}
const UpdateTile update_tile = pick_update_tile();

// One tile of up to 16 rows of one block, transposed: t[c * 16 + r] is row
// row0 + r, column col0 + c. `scratch` is 16 x block bytes, zeroed at load.
struct Tile {
  int64_t row0 = 0, rows = 0, col0 = 0, cols = 0;
  float* t = nullptr;
  uint8_t* scratch = nullptr;
};

// The weight and U the sweep works on.
struct Problem {
  float* w = nullptr;  // [rows, cols], row stride ldw
  int64_t rows = 0, cols = 0, ldw = 0;
  const float* u = nullptr;  // [cols, cols] upper triangular, row-major
  int64_t block = 128;
};

Problem problem_of(at::Tensor& w, const at::Tensor& u, int64_t block) {
  Problem p;
  p.w = w.data_ptr<float>();
  p.rows = w.size(0);
  p.cols = w.size(1);
  p.ldw = w.stride(0);
  p.u = u.data_ptr<float>();
  p.block = block;
  return p;
}

// Runs f(0) ... f(chunks - 1), one per thread of the OpenMP pool ATen uses (at::set_num_threads
// sets its size). at::parallel_for is not used here: LibTorch 1.13 runs a range of two with grain 1
// on one thread. An exception in a chunk is rethrown after all chunks ran.
template <class F>
void on_each_chunk(int64_t chunks, const F& f) {
  std::vector<std::exception_ptr> errors(chunks);
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    try {
      f(c);
    } catch (...) {
      errors[c] = std::current_exception();
    }
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// A rule decides each column of a tile: given the current values v[r] (r <
// tile.rows) it writes the final values q[r], and may replace v[r] by the
// value the error is measured from. Rules: GptqRule, SparseRule.
template <class Rule>
void sweep(const Problem& p, Rule& rule, std::vector<double>& row_loss, SweepReport& report) {
  const auto t_start = Clock::now();
  const int64_t tiles = (p.rows + kTileRows - 1) / kTileRows;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles));
  report.threads = static_cast<int>(chunks);
  // chunk boundaries on tile boundaries
  std::vector<int64_t> bounds(chunks + 1);
  for (int64_t c = 0; c <= chunks; ++c) bounds[c] = std::min(p.rows, (tiles * c / chunks) * kTileRows);
  const int64_t B = std::min(p.block, p.cols);
  struct Worker {
    std::vector<float> err, tile;
    std::vector<uint8_t> scratch;
    std::vector<float> loss;
    double block_s = 0, gemm_s = 0;
  };
  std::vector<Worker> workers(chunks);
  for (int64_t c = 0; c < chunks; ++c) {
    workers[c].err.assign((bounds[c + 1] - bounds[c]) * B, 0.0f);
    workers[c].tile.assign(kTileRows * B, 0.0f);
    workers[c].scratch.assign(kTileRows * B, 0);
    workers[c].loss.assign(bounds[c + 1] - bounds[c], 0.0f);
  }
  row_loss.assign(p.rows, 0.0);

  auto run_block = [&](int64_t chunk, int64_t i1, int64_t i2) {
    Worker& wk = workers[chunk];
    const int64_t r0 = bounds[chunk], r1 = bounds[chunk + 1], bw = i2 - i1;
    if (r0 >= r1) return;
    const auto t0 = Clock::now();
    float e[kTileRows], q[kTileRows], lossv[kTileRows];
    for (int64_t t0r = r0; t0r < r1; t0r += kTileRows) {
      Tile tile;
      tile.row0 = t0r;
      tile.rows = std::min(kTileRows, r1 - t0r);
      tile.col0 = i1;
      tile.cols = bw;
      tile.t = wk.tile.data();
      tile.scratch = wk.scratch.data();
      std::fill(wk.scratch.begin(), wk.scratch.end(), uint8_t{0});
      for (int64_t r = 0; r < kTileRows; ++r) {
        if (r < tile.rows) {
          const float* src = p.w + (t0r + r) * p.ldw + i1;
          for (int64_t c = 0; c < bw; ++c) tile.t[c * kTileRows + r] = src[c];
        } else {
          for (int64_t c = 0; c < bw; ++c) tile.t[c * kTileRows + r] = 0.0f;
        }
      }
      rule.load_tile(tile);
      std::fill(lossv, lossv + kTileRows, 0.0f);
      for (int64_t c = 0; c < bw; ++c) {
        float* v = tile.t + c * kTileRows;
        const float* urow = p.u + (i1 + c) * p.cols + i1 + c;  // U[i1 + c, i1 + c ...]
        const float d = urow[0];
        std::memcpy(q, v, sizeof q);
        rule.decide(tile, c, v, q);
        for (int64_t r = 0; r < kTileRows; ++r) {
          const float diff = v[r] - q[r];
          e[r] = diff / d;
          lossv[r] += diff * diff / (d * d);
          v[r] = q[r];
        }
        float* erow = wk.err.data() + (t0r - r0) * bw + c;
        for (int64_t r = 0; r < tile.rows; ++r) erow[r * bw] = e[r];
        update_tile(tile.t + (c + 1) * kTileRows, e, urow + 1, bw - c - 1);
      }
      for (int64_t r = 0; r < tile.rows; ++r) {
        float* dst = p.w + (t0r + r) * p.ldw + i1;
        for (int64_t c = 0; c < bw; ++c) dst[c] = tile.t[c * kTileRows + r];
        wk.loss[t0r - r0 + r] += lossv[r] / 2.0f;
      }
    }
    const auto t1 = Clock::now();
    wk.block_s += std::chrono::duration<double>(t1 - t0).count();
    if (i2 < p.cols) {
      // W[r0:r1, i2:] -= E[r0:r1, :bw] U[i1:i2, i2:]
      blas::gemm(r1 - r0, p.cols - i2, bw, -1.0f, wk.err.data(), bw, p.u + i1 * p.cols + i2, p.cols, 1.0f,
                 p.w + r0 * p.ldw + i2, p.ldw);
      wk.gemm_s += seconds_since(t1);
    }
  };

  {
    const blas::ThreadScope one_blas_thread(1);  // the parallelism is ATen's: one chunk of rows per thread
    if (!rule.barrier()) {
      on_each_chunk(chunks, [&](int64_t chunk) {
        for (int64_t i1 = 0; i1 < p.cols; i1 += B) run_block(chunk, i1, std::min(p.cols, i1 + B));
      });
    } else {
      for (int64_t i1 = 0; i1 < p.cols; i1 += B) {
        const int64_t i2 = std::min(p.cols, i1 + B);
        const auto ts = Clock::now();
        rule.begin_block(i1, i2);
        report.seconds_select += seconds_since(ts);
        on_each_chunk(chunks, [&](int64_t chunk) { run_block(chunk, i1, i2); });
      }
    }
  }
  for (int64_t c = 0; c < chunks; ++c) {
    report.seconds_block += workers[c].block_s / static_cast<double>(chunks);
    report.seconds_gemm += workers[c].gemm_s / static_cast<double>(chunks);
    for (int64_t r = bounds[c]; r < bounds[c + 1]; ++r) row_loss[r] = workers[c].loss[r - bounds[c]];
  }
  report.seconds = seconds_since(t_start);
}

// ---------------------------------------------------------------------------------------------
// GPTQ: each column is fake-quantized with its row's scale and zero point of the column's group.

// Adding and subtracting 1.5 * 2^23 rounds a float below 2^22 to the nearest integer, ties to
// even, exactly as modkit::quant's kernels (and torch.round) do.
constexpr float kRound = 12582912.0f;

struct GptqRule {
  const float* scale = nullptr;  // [rows, groups] (row stride `qstride`, 0 for one tensor-wide scale)
  const float* zero = nullptr;
  int64_t qstride = 0;
  const int32_t* group = nullptr;  // group of each (processing-order) column
  float lo = 0, hi = 0;
  const uint8_t* nonzero = nullptr;  // [rows, cols]: 0 where the weight was zero and must stay so
  int8_t* integers = nullptr;        // [rows, cols] or null
  int64_t cols = 0;

  bool barrier() const { return false; }
  void begin_block(int64_t, int64_t) {}
  void load_tile(Tile&) {}
  void decide(const Tile& tile, int64_t c, float* v, float* q) const {
    const int64_t j = tile.col0 + c, g = group[j];
    for (int64_t r = 0; r < tile.rows; ++r) {
      const int64_t row = tile.row0 + r;
      float x = v[r];
      if (nonzero != nullptr && nonzero[row * cols + j] == 0) x = v[r] = 0.0f;  // llmcompressor's W_nz_mask
      const float s = scale[row * qstride + g], z = zero[row * qstride + g];
      float y = x / s + z;
      y = y >= lo ? y : lo;  // a NaN becomes lo, as in modkit::quant
      y = y <= hi ? y : hi;
      y = (y + kRound) - kRound;
      q[r] = (y - z) * s;
      if (integers != nullptr) integers[row * cols + j] = static_cast<int8_t>(y);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// SparseGPT: a column's pruned weights become zero.

// The value of rank k (0-based, ascending) of n non-negative floats (NaN last), by a histogram of
// the top 16 bits of their IEEE patterns (monotonic for non-negative floats), then nth_element on
// the values of the bin that holds rank k.
float kth_smallest(const float* v, int64_t n, int64_t k, std::vector<uint32_t>& hist, std::vector<float>& cand) {
  auto bits = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b & 0x7fffffffu;  // -0.0 is 0.0
  };
  hist.assign(65536, 0);
  for (int64_t i = 0; i < n; ++i) ++hist[bits(v[i]) >> 16];
  int64_t below = 0;
  uint32_t bin = 0;
  for (; bin < 65536; ++bin) {
    if (below + static_cast<int64_t>(hist[bin]) > k) break;
    below += static_cast<int64_t>(hist[bin]);
  }
  cand.clear();
  for (int64_t i = 0; i < n; ++i) {
    if ((bits(v[i]) >> 16) == bin) cand.push_back(v[i]);
  }
  const int64_t kk = k - below;
  std::nth_element(cand.begin(), cand.begin() + kk, cand.end(), [&](float a, float b) { return bits(a) < bits(b); });
  return cand[kk];
}

struct SparseRule {
  const float* u = nullptr;  // U [cols, cols]: d_j = U_jj
  float* w = nullptr;        // the weight, for the block scores
  int64_t rows = 0, cols = 0, ldw = 0;
  double sparsity = 0.5;
  int64_t prune_n = 0, prune_m = 0;
  const uint8_t* preserved = nullptr;  // [rows, cols]: 1 where the weight was zero at the start
  // unstructured: the block's mask [rows, block] and the selection's buffers
  std::vector<uint8_t> block_mask;
  std::vector<float> scores, cand;
  std::vector<uint32_t> hist;
  int64_t block_cols = 0;

  bool barrier() const { return prune_m == 0; }
  float d2(int64_t j) const {
    const float d = u[j * cols + j];
    return d * d;
  }

  // llmcompressor: tmp = W1**2 / diag(Hinv1)**2 (times ~mask with a preserved mask);
  // thresh = sort(tmp)[int(numel * sparsity)]; mask1 = tmp <= thresh.
  void begin_block(int64_t i1, int64_t i2) {
    block_cols = i2 - i1;
    const int64_t numel = rows * block_cols;
    block_mask.assign(numel, 0);
    int64_t preset = 0;
    if (preserved != nullptr) {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < block_cols; ++c) {
          block_mask[r * block_cols + c] = preserved[r * cols + i1 + c];
          preset += preserved[r * cols + i1 + c];
        }
      }
    }
    if (sparsity <= 0.0) return;  // nothing to prune (llmcompressor would prune each block's minimum)
    int64_t k = static_cast<int64_t>(static_cast<double>(numel) * sparsity);
    if (preserved != nullptr && !(k > preset)) return;  // already sparse enough: keep the mask as it is
    k = std::min(k, numel - 1);
    scores.resize(numel);
    at::parallel_for(0, rows, 64, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* src = w + r * ldw + i1;
        for (int64_t c = 0; c < block_cols; ++c) {
          const bool keep_zero = preserved != nullptr && preserved[r * cols + i1 + c] != 0;
          scores[r * block_cols + c] = keep_zero ? 0.0f : (src[c] * src[c]) / d2(i1 + c);
        }
      }
    });
    const float thresh = kth_smallest(scores.data(), numel, k, hist, cand);
    for (int64_t i = 0; i < numel; ++i) block_mask[i] = scores[i] <= thresh ? 1 : 0;
  }

  // Pruned weights of a preserved mask get no updates from earlier blocks (llmcompressor masks
  // the trailing update with ~mask); inside the block they do, as there.
  void load_tile(Tile& tile) const {
    if (preserved == nullptr) return;
    for (int64_t r = 0; r < tile.rows; ++r) {
      const uint8_t* m = preserved + (tile.row0 + r) * cols + tile.col0;
      for (int64_t c = 0; c < tile.cols; ++c) {
        if (m[c] != 0) tile.t[c * kTileRows + r] = 0.0f;
      }
    }
  }

  void decide(Tile& tile, int64_t c, float* v, float* q) const {
    if (prune_m == 0) {
      for (int64_t r = 0; r < tile.rows; ++r) {
        if (block_mask[(tile.row0 + r) * block_cols + c] != 0) q[r] = 0.0f;
      }
      return;
    }
    if (c % prune_m == 0) {
      // llmcompressor: per row, the prune_n smallest of W1[:, i:i+M]**2 / diag**2 (times ~mask)
      const int64_t width = std::min(prune_m, tile.cols - c);
      const int64_t n = std::min(prune_n, width);
      float sc[64], dd[64];
      int64_t idx[64];
      for (int64_t k = 0; k < width; ++k) dd[k] = d2(tile.col0 + c + k);  // the same for every row
      auto before = [&](int64_t a, int64_t b) { return sc[a] < sc[b] || (sc[a] == sc[b] && a < b); };  // ties: the first column
      for (int64_t r = 0; r < tile.rows; ++r) {
        const int64_t row = tile.row0 + r;
        for (int64_t k = 0; k < width; ++k) {
          const float x = tile.t[(c + k) * kTileRows + r];
          const bool pre = preserved != nullptr && preserved[row * cols + tile.col0 + c + k] != 0;
          sc[k] = pre ? 0.0f : (x * x) / dd[k];
          idx[k] = k;
          if (pre) tile.scratch[r * tile.cols + c + k] = 1;
        }
        if (n * width <= 64) {
          // small groups (2:4): n passes of a minimum search beat partial_sort's heap; the same set
          for (int64_t k = 0; k < n; ++k) {
            int64_t best = k;
            for (int64_t i = k + 1; i < width; ++i) best = before(idx[i], idx[best]) ? i : best;
            std::swap(idx[k], idx[best]);
          }
        } else {
          std::partial_sort(idx, idx + n, idx + width, before);
        }
        for (int64_t k = 0; k < n; ++k) tile.scratch[r * tile.cols + c + idx[k]] = 1;
      }
    }
    for (int64_t r = 0; r < tile.rows; ++r) {
      if (tile.scratch[r * tile.cols + c] != 0) q[r] = 0.0f;
    }
    (void)v;
  }
};

// ---------------------------------------------------------------------------------------------

void check_hessian(const at::Tensor& h, int64_t cols) {
  if (!h.defined() || h.dim() != 2 || h.size(0) != cols || h.size(1) != cols || h.scalar_type() != at::kFloat ||
      !h.is_contiguous() || !h.device().is_cpu()) {
    throw std::invalid_argument("hessian: expected a contiguous float32 CPU matrix [" + std::to_string(cols) + ", " +
                                std::to_string(cols) + "], found " +
                                (h.defined() ? std::string(c10::toString(h.scalar_type())) + " " + sizes_of(h)
                                             : std::string("an undefined tensor")));
  }
}

void check_weight_2d(const at::Tensor& weight) {
  if (!weight.defined() || weight.dim() != 2) {
    throw std::invalid_argument("weight: expected a 2-D [out_features, in_features] matrix, found " +
                                (weight.defined() ? sizes_of(weight) : std::string("an undefined tensor")));
  }
  if (!at::isFloatingType(weight.scalar_type()) || !weight.device().is_cpu() || weight.numel() == 0) {
    throw std::invalid_argument(std::string("weight: expected a non-empty floating-point CPU tensor, found ") +
                                c10::toString(weight.scalar_type()) + " " + sizes_of(weight) + " on " +
                                weight.device().str());
  }
}

// A float32 contiguous copy of `w` (never a view of it).
at::Tensor float_copy(const at::Tensor& w) {
  at::Tensor out = at::empty(w.sizes(), w.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous));
  out.copy_(w);
  return out;
}

void zero_columns(at::Tensor& w, const std::vector<int64_t>& columns) {
  if (columns.empty()) return;
  const at::Tensor idx = at::tensor(columns, at::TensorOptions().dtype(at::kLong));
  w.index_fill_(1, idx, 0.0);
}

}  // namespace

void inverse_cholesky_(at::Tensor& h, double dampening_frac, InverseReport& report, const Warn& warn) {
  const auto t_start = Clock::now();
  if (!h.defined() || h.dim() != 2 || h.size(0) != h.size(1)) {
    throw std::invalid_argument("hessian: expected a square matrix, found " + (h.defined() ? sizes_of(h) : std::string("an undefined tensor")));
  }
  check_hessian(h, h.size(0));
  if (!(dampening_frac >= 0) || !std::isfinite(dampening_frac)) {
    throw std::invalid_argument("dampening_frac: expected a finite value >= 0, found " + number(dampening_frac));
  }
  const int64_t n = h.size(0);
  float* a = h.data_ptr<float>();
  report = InverseReport{};
  // dead columns (an input feature that was always zero): H_ii = 1, the caller zeroes W[:, i]
  double trace = 0;
  for (int64_t i = 0; i < n; ++i) {
    float& d = a[i * n + i];
    if (!std::isfinite(d)) {
      throw std::invalid_argument("hessian: diagonal entry " + std::to_string(i) + " is " + number(d) +
                                  ": the calibration inputs contain inf or nan");
    }
    if (d == 0.0f) {
      d = 1.0f;
      report.dead.push_back(i);
    }
    trace += d;
  }
  const double mean = trace / static_cast<double>(n);
  std::vector<float> diag(n);
  for (int64_t i = 0; i < n; ++i) diag[i] = a[i * n + i];
  // A = J H J (J reverses the order): reversing the whole row-major buffer does it
  auto reverse_all = [&] {
    at::parallel_for(0, (n * n) / 2, int64_t{1} << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) std::swap(a[i], a[n * n - 1 - i]);
    });
  };
  reverse_all();
  report.seconds_other += seconds_since(t_start);

  double frac = dampening_frac;
  bool ok = false;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const float damp = static_cast<float>(frac * mean);
    for (int64_t i = 0; i < n; ++i) a[i * n + i] = diag[n - 1 - i] + damp;
    const auto t0 = Clock::now();
    const int info = blas::cholesky_lower(n, a, n);  // A = L Lᵀ in the lower triangle
    report.seconds_cholesky += seconds_since(t0);
    report.attempts = attempt + 1;
    if (info == 0) {
      ok = true;
      break;
    }
    // the strict upper triangle still holds A: restore the lower one from it and damp more
    const auto t1 = Clock::now();
    at::Tensor lower = at::tril(h.t(), -1);
    h.triu_(0).add_(lower);
    report.seconds_other += seconds_since(t1);
    const double next = frac > 0 ? frac * 10.0 : 0.01;
    if (warn) {
      warn("hessian with dampening_frac " + number(frac) + " is not positive definite (the factorization broke "
           "down at column " + std::to_string(n - info) + " of " + std::to_string(n) + ")" +
           (attempt < 3 ? "; retrying with dampening_frac " + number(next) : std::string()));
    }
    frac = next;
  }
  const auto t2 = Clock::now();
  if (!ok) {
    report.identity = true;
    report.dampening_frac = frac;
    h.zero_();
    for (int64_t i = 0; i < n; ++i) a[i * n + i] = 1.0f;
    if (warn) {
      warn("the hessian stays not positive definite after 4 attempts (up to dampening_frac " + number(frac / 10.0) +
           "): falling back to the identity, columns are then solved independently (no error propagation); add "
           "calibration samples or raise dampening_frac");
    }
    report.seconds_other += seconds_since(t2);
    return;
  }
  report.dampening_frac = frac;
  const int info = blas::invert_lower(n, a, n);  // L⁻¹, lower
  report.seconds_invert += seconds_since(t2);
  if (info != 0) throw std::invalid_argument("hessian: triangular inverse failed at " + std::to_string(info));
  const auto t3 = Clock::now();
  reverse_all();  // U = J L⁻¹ J: upper, Uᵀ U = (H + damp I)⁻¹
  at::parallel_for(1, n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::fill(a + i * n, a + i * n + i, 0.0f);
  });
  report.seconds_other += seconds_since(t3);
}

GptqResult gptq_quantize(const at::Tensor& weight, at::Tensor hessian, const GptqOptions& options, const Warn& warn,
                         bool with_integers) {
  const auto t_start = Clock::now();
  const quant::QuantArgs& args = options.args;
  check_weight_2d(weight);
  const int64_t rows = weight.size(0), cols = weight.size(1);
  check_hessian(hessian, cols);
  quant::check_weight(weight, args);
  if (args.dynamic || args.strategy == quant::Strategy::Token) {
    throw std::invalid_argument(std::string("gptq: weights need a static tensor, channel or group strategy, found ") +
                                quant::to_string(args.strategy) + (args.dynamic ? " dynamic" : ""));
  }
  if (args.actorder != quant::ActOrder::None && args.strategy != quant::Strategy::Group) {
    throw std::invalid_argument(std::string("actorder '") + quant::to_string(args.actorder) +
                                "' needs the group strategy, found " + quant::to_string(args.strategy));
  }
  if (options.block_size <= 0) {
    throw std::invalid_argument("block_size: expected a positive number of columns, found " +
                                std::to_string(options.block_size));
  }
  GptqResult out;
  const bool grouped = args.strategy == quant::Strategy::Group;
  std::vector<int32_t> group(cols, 0);
  if (grouped) {
    for (int64_t j = 0; j < cols; ++j) group[j] = static_cast<int32_t>(j / args.group_size);
  }
  at::Tensor source = weight.detach();
  at::Tensor perm;
  if (args.actorder == quant::ActOrder::Group) {
    // permute first, then the groups are formed over the permuted columns (identity group map there)
    perm = activation_order(hessian);
    source = permute_columns(source, perm);
    hessian = permute_symmetric(hessian, perm);
    out.qparams = quant::compute_qparams(source, args);
  } else if (args.actorder == quant::ActOrder::Weight) {
    // the groups of the original columns, then the processing order
    out.qparams = quant::compute_qparams(source, args);
    perm = activation_order(hessian);
    source = permute_columns(source, perm);
    hessian = permute_symmetric(hessian, perm);
    const auto* p = perm.data_ptr<int64_t>();
    std::vector<int32_t> permuted(cols);
    for (int64_t j = 0; j < cols; ++j) permuted[j] = group[p[j]];
    group.swap(permuted);
  } else {
    out.qparams = quant::compute_qparams(source, args);
  }
  // a permuted source is a fresh tensor already: no second copy
  at::Tensor w = perm.defined() && source.scalar_type() == at::kFloat && source.is_contiguous() ? source
                                                                                                 : float_copy(source);
  source = at::Tensor();
  // llmcompressor: a weight at least SPARSITY_THRESHOLD (5 %) zeros keeps them (W_nz_mask, isclose(W, 0))
  at::Tensor nonzero;
  const double zeros = static_cast<double>(count_zeros(w));
  if (zeros / static_cast<double>(w.numel()) >= 0.05) {
    nonzero = w.abs().gt(1e-8).to(at::kByte).contiguous();
    out.preserved_zeros = true;
  }
  const at::Tensor scale = out.qparams.scale.to(at::kFloat).contiguous();
  const at::Tensor zero = out.qparams.zero_point.to(at::kFloat).contiguous();
  out.seconds_prepare += seconds_since(t_start);

  inverse_cholesky_(hessian, options.dampening_frac, out.inverse, warn);
  const auto t1 = Clock::now();
  zero_columns(w, out.inverse.dead);
  if (perm.defined()) {  // report dead columns as the weight numbers them
    const auto* pp = perm.data_ptr<int64_t>();
    for (int64_t& d : out.inverse.dead) d = pp[d];
    std::sort(out.inverse.dead.begin(), out.inverse.dead.end());
  }
  if (with_integers) out.q = at::empty({rows, cols}, at::TensorOptions().dtype(at::kChar));

  GptqRule rule;
  rule.scale = scale.data_ptr<float>();
  rule.zero = zero.data_ptr<float>();
  rule.qstride = args.strategy == quant::Strategy::Tensor ? 0 : scale.size(1);
  rule.group = group.data();
  rule.lo = static_cast<float>(quant::qmin(args));
  rule.hi = static_cast<float>(quant::qmax(args));
  rule.nonzero = nonzero.defined() ? nonzero.data_ptr<uint8_t>() : nullptr;
  rule.integers = with_integers ? out.q.data_ptr<int8_t>() : nullptr;
  rule.cols = cols;
  const Problem p = problem_of(w, hessian, options.block_size);
  out.seconds_prepare += seconds_since(t1);
  std::vector<double> row_loss;
  sweep(p, rule, row_loss, out.sweep);
  out.loss = std::accumulate(row_loss.begin(), row_loss.end(), 0.0);

  const auto t2 = Clock::now();
  hessian = at::Tensor();  // U is no longer needed
  if (perm.defined()) {
    const at::Tensor inverse = at::argsort(perm);
    permute_columns_in_place(w, inverse);
    if (with_integers) permute_columns_in_place(out.q, inverse);
    if (args.actorder == quant::ActOrder::Group) {
      at::Tensor g = at::empty({cols}, at::TensorOptions().dtype(at::kInt));
      const auto* pp = perm.data_ptr<int64_t>();
      auto* gp = g.data_ptr<int32_t>();
      for (int64_t j = 0; j < cols; ++j) gp[pp[j]] = group[j];  // original column pp[j] sits at position j
      out.g_idx = g;
    }
  }
  out.weight = w.scalar_type() == weight.scalar_type() ? w : w.to(weight.scalar_type());
  out.seconds_prepare += seconds_since(t2);
  return out;
}

SparseGptResult sparsegpt_prune(const at::Tensor& weight, at::Tensor hessian, const SparseGptOptions& options,
                                const Warn& warn) {
  const auto t_start = Clock::now();
  check_weight_2d(weight);
  const int64_t rows = weight.size(0), cols = weight.size(1);
  check_hessian(hessian, cols);
  if (!(options.sparsity >= 0.0 && options.sparsity <= 1.0)) {
    throw std::invalid_argument("sparsity: expected a value in [0, 1], found " + number(options.sparsity));
  }
  if (options.block_size <= 0) {
    throw std::invalid_argument("block_size: expected a positive number of columns, found " +
                                std::to_string(options.block_size));
  }
  const bool nm = options.prune_m > 0;
  if (nm) {
    if (options.prune_n <= 0 || options.prune_n >= options.prune_m || options.prune_m > 64) {
      throw std::invalid_argument("mask_structure " + std::to_string(options.prune_n) + ":" +
                                  std::to_string(options.prune_m) + ": expected 0 < N < M <= 64");
    }
    if (cols % options.prune_m != 0 || options.block_size % options.prune_m != 0) {
      throw std::invalid_argument("mask_structure " + std::to_string(options.prune_n) + ":" +
                                  std::to_string(options.prune_m) + ": M must divide in_features (" +
                                  std::to_string(cols) + ") and block_size (" + std::to_string(options.block_size) +
                                  ")");
    }
  }
  SparseGptResult out;
  at::Tensor w = float_copy(weight.detach());
  out.seconds_prepare += seconds_since(t_start);
  inverse_cholesky_(hessian, options.dampening_frac, out.inverse, warn);
  const auto t1 = Clock::now();
  zero_columns(w, out.inverse.dead);
  at::Tensor preserved;
  if (options.preserve_sparsity_mask) {
    preserved = w.eq(0).to(at::kByte).contiguous();
    const double current = static_cast<double>(preserved.sum().item<int64_t>()) / static_cast<double>(w.numel());
    if (current > options.sparsity) {
      throw std::invalid_argument("preserve_sparsity_mask: the weight is already " + number(current) +
                                  " sparse, above the target sparsity " + number(options.sparsity) +
                                  ": raise sparsity or set preserve_sparsity_mask = false");
    }
  }
  SparseRule rule;
  rule.u = hessian.data_ptr<float>();
  rule.w = w.data_ptr<float>();
  rule.rows = rows;
  rule.cols = cols;
  rule.ldw = cols;
  rule.sparsity = options.sparsity;
  rule.prune_n = options.prune_n;
  rule.prune_m = options.prune_m;
  rule.preserved = preserved.defined() ? preserved.data_ptr<uint8_t>() : nullptr;
  const Problem p = problem_of(w, hessian, options.block_size);
  out.seconds_prepare += seconds_since(t1);
  std::vector<double> row_loss;
  sweep(p, rule, row_loss, out.sweep);
  out.loss = std::accumulate(row_loss.begin(), row_loss.end(), 0.0);
  out.weight = w.scalar_type() == weight.scalar_type() ? w : w.to(weight.scalar_type());
  return out;
}

}  // namespace modkit::obs
