// Wanda kernels: column statistics of calibration inputs, and the per-row metric and mask written in place.
#include "wanda.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <array>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

// The inner loops are compiled twice (AVX2 and baseline x86-64, picked at load
// time), as in plugins/common/quant: Debian builds for baseline x86-64 and -O2
// vectorises only the simplest loops.
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MODKIT_WANDA_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef MODKIT_WANDA_CLONES
#define MODKIT_WANDA_CLONES
#endif
// 8-float vectors are passed between inline helpers of this file only, never across an ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace modkit::wanda {
namespace {

#define MODKIT_WANDA_INLINE inline __attribute__((always_inline))

using f8 = float __attribute__((vector_size(32)));
using i8 = int32_t __attribute__((vector_size(32)));

MODKIT_WANDA_INLINE f8 loadf(const float* p) {
  f8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
MODKIT_WANDA_INLINE i8 loadi(const uint32_t* p) {
  i8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
MODKIT_WANDA_INLINE void store(float* p, const f8& v) { __builtin_memcpy(p, &v, sizeof v); }
MODKIT_WANDA_INLINE void store(uint32_t* p, const i8& v) { __builtin_memcpy(p, &v, sizeof v); }
MODKIT_WANDA_INLINE i8 splat(int32_t s) { return i8{s, s, s, s, s, s, s, s}; }

// --------------------------------------------------------------- statistics

constexpr int64_t kBlockTokens = 64;  // float partial sums over this many tokens, then double

// acc[j] += sum over `n` rows of x[r * stride + j]^2 (float within the call),
// row by row: the input streams in order and acc (one row of floats) stays in L1.
MODKIT_WANDA_CLONES void add_squares(const float* x, int64_t n, int64_t stride, int64_t cols, float* acc) {
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * stride;
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      const f8 v0 = loadf(row + j), v1 = loadf(row + j + 8);
      store(acc + j, loadf(acc + j) + v0 * v0);
      store(acc + j + 8, loadf(acc + j + 8) + v1 * v1);
    }
    for (; j < cols; ++j) acc[j] += row[j] * row[j];
  }
}

// ------------------------------------------------------------------- masks
//
// Keys are the bits of the metric |w| * norm with the sign cleared: for
// non-negative floats (then +inf, then NaN) the order of the bits as integers
// is the numeric order, and all keys are below 2^31, so signed vector compares
// order them exactly. |w| * norm == |w * norm| bit for bit (norm >= 0).

constexpr uint32_t kBuckets = 1u << 11;  // histogram resolution of each level
constexpr int32_t kAbs = 0x7fffffff;
constexpr int64_t kSampleStride = 4;  // the first level looks at every 4th key

MODKIT_WANDA_INLINE uint32_t key_of(float w, float norm) {
  const float v = w * norm;
  uint32_t k;
  std::memcpy(&k, &v, sizeof k);
  return k & 0x7fffffffu;
}

// w[j] = 0 where m[j] < bound.
MODKIT_WANDA_CLONES void zero_below(float* w, const uint32_t* m, int64_t cols, uint32_t bound) {
  const i8 b = splat(static_cast<int32_t>(bound));
  int64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    const i8 keep = loadi(m + j) >= b;  // -1 where kept
    store(w + j, reinterpret_cast<f8>(reinterpret_cast<i8>(loadf(w + j)) & keep));
  }
  for (; j < cols; ++j) {
    if (m[j] < bound) w[j] = 0.0f;
  }
}

// A histogram of keys in [base, base + (buckets << shift)), at most kBuckets buckets.
struct Histogram {
  uint32_t base = 0;
  int shift = 0;
  uint32_t buckets = kBuckets;
  std::vector<uint32_t> count = std::vector<uint32_t>(kBuckets);

  // Covers [lo, hi] with `n` buckets (a power of two up to kBuckets) at the finest
  // resolution that fits, and clears the counts.
  void reset(uint32_t lo, uint32_t hi, uint32_t n = kBuckets) {
    base = lo;
    buckets = n;
    shift = 0;
    while ((static_cast<uint64_t>(hi - lo) >> shift) >= n) ++shift;
    std::fill(count.begin(), count.begin() + n, 0u);
  }
  uint32_t bucket(uint32_t key) const { return (key - base) >> shift; }
  void add(uint32_t key) { ++count[bucket(key)]; }
  uint32_t first_key(uint32_t b) const { return base + (b << shift); }
  uint32_t last_key(uint32_t b) const {
    return static_cast<uint32_t>(std::min<uint64_t>(base + ((static_cast<uint64_t>(b) + 1) << shift) - 1, 0x7fffffffu));
  }
  // The buckets where the running count reaches each target (1 <= t1 <= t2 <= total),
  // and the count below the first.
  void find(int64_t t1, int64_t t2, uint32_t& b1, uint32_t& b2, int64_t& below1) const {
    int64_t below = 0;
    uint32_t b = 0;
    for (; b + 16 <= buckets; b += 16) {  // 16 buckets at a time, then one by one
      int64_t sum = 0;
      for (uint32_t i = 0; i < 16; ++i) sum += count[b + i];
      if (below + sum >= t1) break;
      below += sum;
    }
    for (; below + count[b] < t1; ++b) below += count[b];
    b1 = b;
    below1 = below;
    for (; below + count[b] < t2; ++b) below += count[b];
    b2 = b;
  }
};

// m[j] = key of w[j] * norm[j]; returns the mean metric (a row c times larger
// has a c times larger mean, exactly), or 0 when it is not finite.
MODKIT_WANDA_CLONES double metric_keys(const float* w, const float* norm, int64_t cols, uint32_t* m) {
  f8 sum0 = {0, 0, 0, 0, 0, 0, 0, 0}, sum1 = sum0;
  int64_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    const i8 k0 = reinterpret_cast<i8>(loadf(w + j) * loadf(norm + j)) & splat(kAbs);
    const i8 k1 = reinterpret_cast<i8>(loadf(w + j + 8) * loadf(norm + j + 8)) & splat(kAbs);
    store(m + j, k0);
    store(m + j + 8, k1);
    sum0 += reinterpret_cast<f8>(k0);
    sum1 += reinterpret_cast<f8>(k1);
  }
  double total = 0;
  for (int l = 0; l < 8; ++l) total += static_cast<double>(sum0[l]) + static_cast<double>(sum1[l]);
  for (; j < cols; ++j) {
    m[j] = key_of(w[j], norm[j]);
    float v;
    std::memcpy(&v, &m[j], sizeof v);
    total += v;
  }
  const double mean = total / static_cast<double>(std::max<int64_t>(cols, 1));
  return std::isfinite(mean) ? mean : 0.0;
}

// The indices and keys of the keys in [lo, hi] packed into out_idx / out_key
// (capacity cols + 8); `below` receives the count of keys < lo. Returns how
// many were collected.
int64_t collect_portable(const uint32_t* m, int64_t cols, uint32_t lo, uint32_t hi, uint32_t* out_idx,
                         uint32_t* out_key, int64_t& below) {
  int64_t nc = 0, under = 0;
  for (int64_t j = 0; j < cols; ++j) {  // branch free
    const uint32_t k = m[j];
    out_idx[nc] = static_cast<uint32_t>(j);
    out_key[nc] = k;
    under += k < lo ? 1 : 0;
    nc += (k >= lo) & (k <= hi) ? 1 : 0;
  }
  below = under;
  return nc;
}

#if defined(__x86_64__) && defined(__GNUC__)
// Byte i of entry `mask` is the position of the i-th set bit of mask: a vpermd
// pattern that packs the selected lanes to the front.
constexpr std::array<uint64_t, 256> make_pack_table() {
  std::array<uint64_t, 256> t{};
  for (int mask = 0; mask < 256; ++mask) {
    uint64_t v = 0;
    int n = 0;
    for (int b = 0; b < 8; ++b) {
      if ((mask >> b) & 1) v |= static_cast<uint64_t>(b) << (8 * n++);
    }
    t[static_cast<size_t>(mask)] = v;
  }
  return t;
}
constexpr std::array<uint64_t, 256> kPack = make_pack_table();

// collect_portable with AVX2: per 8 keys two compares, a movemask and a
// table-driven vpermd that packs the selected lanes.
__attribute__((target("avx2"))) int64_t collect_avx2(const uint32_t* m, int64_t cols, uint32_t lo, uint32_t hi,
                                                     uint32_t* out_idx, uint32_t* out_key, int64_t& below) {
  const __m256i vlo = _mm256_set1_epi32(static_cast<int32_t>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int32_t>(hi));
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i under = _mm256_setzero_si256();
  int64_t nc = 0, j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + j));
    const __m256i lt = _mm256_cmpgt_epi32(vlo, k);  // k < lo (keys and bounds are below 2^31)
    const __m256i outside = _mm256_or_si256(lt, _mm256_cmpgt_epi32(k, vhi));
    under = _mm256_sub_epi32(under, lt);
    const int mask = ~_mm256_movemask_ps(_mm256_castsi256_ps(outside)) & 0xff;
    const __m256i perm =
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kPack[static_cast<size_t>(mask)])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_idx + nc), _mm256_permutevar8x32_epi32(idx, perm));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_key + nc), _mm256_permutevar8x32_epi32(k, perm));
    nc += __builtin_popcount(static_cast<unsigned>(mask));
    idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), under);
  int64_t total = 0;
  for (int32_t v : lanes) total += v;
  int64_t tail_below = 0;
  const int64_t tail = collect_portable(m + j, cols - j, lo, hi, out_idx + nc, out_key + nc, tail_below);
  for (int64_t i = 0; i < tail; ++i) out_idx[nc + i] += static_cast<uint32_t>(j);
  below = total + tail_below;
  return nc + tail;
}
#endif

int64_t collect(const uint32_t* m, int64_t cols, uint32_t lo, uint32_t hi, uint32_t* out_idx, uint32_t* out_key,
                int64_t& below) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return collect_avx2(m, cols, lo, hi, out_idx, out_key, below);
#endif
  return collect_portable(m, cols, lo, hi, out_idx, out_key, below);
}

// Per-thread scratch for one row at a time (O(columns), allocated once per
// task), and what the previous row taught about where the k-th key lies.
struct Scratch {
  std::vector<uint32_t> keys;
  std::vector<uint32_t> idx, ckey;  // collected indices and keys (+8: vector stores run past the count)
  std::vector<uint64_t> cand;       // (key, index) pairs
  Histogram hist;
  std::vector<float> row;  // the row as float when the weight is not contiguous float
  bool have_previous = false;
  uint32_t previous_kth = 0;    // the previous row's k-th key
  double previous_mean = 0;     // and its mean metric
  uint32_t width = 1u << 20;    // half-width of the bracket around the prediction, in key units (1/8 binade)
  explicit Scratch(int64_t cols, bool convert)
      : keys(static_cast<size_t>(cols)),
        idx(static_cast<size_t>(cols) + 8),
        ckey(static_cast<size_t>(cols) + 8),
        cand(static_cast<size_t>(cols)),
        row(convert ? static_cast<size_t>(cols) : 0) {}
};

// A bracket [lo, hi] around the k-th of a row's keys m from every 4th key: a
// histogram over their range, and the k-th key's estimated rank +- 3 standard
// deviations, widened to whole buckets.
void sampled_bracket(const uint32_t* m, int64_t cols, int64_t k, Scratch& s, uint32_t& lo, uint32_t& hi) {
  uint32_t smin = 0x7fffffffu, smax = 0;
  int64_t n = 0;
  for (int64_t j = 0; j < cols; j += kSampleStride, ++n) {
    smin = std::min(smin, m[j]);
    smax = std::max(smax, m[j]);
  }
  Histogram& h = s.hist;
  h.reset(smin, smax);
  for (int64_t j = 0; j < cols; j += kSampleStride) h.add(m[j]);
  const double p = static_cast<double>(k) / static_cast<double>(cols), expected = p * static_cast<double>(n);
  const double margin = 3.0 * std::sqrt(static_cast<double>(n) * p * (1.0 - p)) + 2.0;
  uint32_t b_lo = 0, b_hi = 0;
  int64_t unused = 0;
  h.find(std::clamp<int64_t>(static_cast<int64_t>(std::floor(expected - margin)), 1, n),
         std::clamp<int64_t>(static_cast<int64_t>(std::ceil(expected + margin)), 1, n), b_lo, b_hi, unused);
  lo = b_lo == 0 ? 0 : h.first_key(b_lo);
  hi = h.last_key(b_hi) >= smax ? 0x7fffffffu : h.last_key(b_hi);
}

// Zeroes the `k` weights of a float row (0 < k < cols) with the lowest keys,
// ties to the lower index, by a radix select in cache:
//  1. one vector pass computes the keys and their mean;
//  2. a bracket [lo, hi] that should hold the k-th key: the previous row's
//     k-th value scaled by the ratio of the rows' mean metrics, +- a width
//     that adapts (rows of one weight have alike shapes, whatever their
//     scales); for the first row of a task, from a sample (sampled_bracket);
//  3. one pass counts the keys below lo and packs the (index, key) pairs in
//     the bracket (AVX2: vpermd). A bracket that misses the k-th key (the
//     count below is k or more, or the count up to hi less than k) is
//     replaced by the sampled one, then by the exact bucket from a histogram
//     of every key, and the pass is repeated;
//  4. every key below lo is pruned in one vector pass;
//  5. a histogram of the packed keys (a few percent of the row) finds the
//     k-th key's bucket: the pairs below it are pruned, and the lowest
//     (key, index) pairs of that bucket (a handful) are selected exactly.
void prune_lowest(float* w, const float* norm, int64_t cols, int64_t k, Scratch& s, const float* next) {
  uint32_t* m = s.keys.data();
  uint32_t *idx = s.idx.data(), *ckey = s.ckey.data();
  Histogram& h = s.hist;
  auto hit = [k](int64_t below, int64_t nc) { return below < k && k <= below + nc; };
  const double mean = metric_keys(w, norm, cols, m);
  // The rest works on this row in cache: meanwhile, bring the next row in, a third before
  // each of the next three steps (the hardware prefetcher runs only a few lines ahead).
  const int64_t third = (cols + 2) / 3;
  auto prefetch = [&](int part) {
    if (next == nullptr) return;
    for (int64_t j = part * third; j < std::min(cols, (part + 1) * third); j += 16) __builtin_prefetch(next + j, 0, 3);
  };
  prefetch(0);

  uint32_t lo = 0, hi = 0;
  int64_t below = 0, nc = 0;
  bool found = false;
  if (s.have_previous && s.previous_mean > 0 && mean > 0) {
    float previous;
    std::memcpy(&previous, &s.previous_kth, sizeof previous);
    const float scaled = static_cast<float>(previous * (mean / s.previous_mean));
    uint32_t guess_bits;
    std::memcpy(&guess_bits, &scaled, sizeof guess_bits);
    const int64_t guess = std::isfinite(scaled) ? static_cast<int64_t>(guess_bits & 0x7fffffffu) : int64_t{s.previous_kth};
    lo = static_cast<uint32_t>(std::clamp<int64_t>(guess - s.width, 0, 0x7fffffff));
    hi = static_cast<uint32_t>(std::clamp<int64_t>(guess + s.width, 0, 0x7fffffff));
    nc = collect(m, cols, lo, hi, idx, ckey, below);
    found = hit(below, nc);
    prefetch(1);
    if (!found) {  // widen after a miss, narrow while the bracket holds over 6 % of the row
      s.width = std::min<uint32_t>(s.width * 2, 1u << 26);
    } else if (nc * 16 > cols) {
      s.width = std::max<uint32_t>(s.width - s.width / 4, 1u << 10);
    }
  }
  if (!found) {
    sampled_bracket(m, cols, k, s, lo, hi);
    nc = collect(m, cols, lo, hi, idx, ckey, below);
    found = hit(below, nc);
  }
  if (!found) {  // the exact bucket from every key
    const auto [mn, mx] = std::minmax_element(m, m + cols);
    h.reset(*mn, *mx);
    for (int64_t j = 0; j < cols; ++j) h.add(m[j]);
    uint32_t b = 0, unused_b = 0;
    int64_t unused = 0;
    h.find(k, k, b, unused_b, unused);
    lo = h.first_key(b);
    hi = h.last_key(b);
    nc = collect(m, cols, lo, hi, idx, ckey, below);
  }
  if (!s.have_previous) prefetch(1);
  zero_below(w, m, cols, lo);
  prefetch(2);

  int64_t rest = k - below;  // 1 .. nc
  uint64_t* cand = s.cand.data();
  int64_t n2 = 0;
  if (rest < nc && nc > 32) {
    uint32_t n = 64;  // about one pair per bucket
    while (n < kBuckets && n < static_cast<uint64_t>(nc)) n *= 2;
    h.reset(lo, hi, n);
    for (int64_t i = 0; i < nc; ++i) h.add(ckey[i]);
    uint32_t b2 = 0, unused_b = 0;
    int64_t below2 = 0;
    h.find(rest, rest, b2, unused_b, below2);
    for (int64_t i = 0; i < nc; ++i) {  // branch free
      const uint32_t j = idx[i], sub = h.bucket(ckey[i]);
      w[j] = sub < b2 ? 0.0f : w[j];
      cand[n2] = (static_cast<uint64_t>(ckey[i]) << 32) | j;
      n2 += sub == b2 ? 1 : 0;
    }
    rest -= below2;
  } else {
    for (int64_t i = 0; i < nc; ++i) cand[i] = (static_cast<uint64_t>(ckey[i]) << 32) | idx[i];
    n2 = nc;
  }
  if (rest < n2) std::nth_element(cand, cand + (rest - 1), cand + n2);
  uint64_t kth = 0;
  for (int64_t i = 0; i < rest; ++i) {
    w[cand[i] & 0xffffffffu] = 0.0f;
    kth = std::max(kth, cand[i]);
  }
  s.previous_kth = static_cast<uint32_t>(kth >> 32);
  s.previous_mean = mean;
  s.have_previous = true;
}

// N:M for M = 2, 4 or 8 on whole vectors of 8: each lane compares its key with
// the other M - 1 keys of its group (rotations within the group) and counts
// the lower ones, ties to the lower index; lanes of rank < N are pruned.
constexpr int32_t rot_lane(int m, int r, int l) { return (l / m) * m + (l % m + r) % m; }
constexpr int32_t earlier(int m, int r, int l) { return (l % m + r) % m < l % m ? -1 : 0; }
template <int M, int R>
MODKIT_WANDA_INLINE i8 lower_after_rotation(const i8& k) {
  constexpr i8 rot{rot_lane(M, R, 0), rot_lane(M, R, 1), rot_lane(M, R, 2), rot_lane(M, R, 3),
                   rot_lane(M, R, 4), rot_lane(M, R, 5), rot_lane(M, R, 6), rot_lane(M, R, 7)};
  constexpr i8 before{earlier(M, R, 0), earlier(M, R, 1), earlier(M, R, 2), earlier(M, R, 3),
                      earlier(M, R, 4), earlier(M, R, 5), earlier(M, R, 6), earlier(M, R, 7)};
  const i8 kr = __builtin_shuffle(k, rot);
  return (kr < k) | ((kr == k) & before);  // -1 where the rotated key ranks lower
}
template <int M, int... R>
MODKIT_WANDA_INLINE i8 rank_in_group(const i8& k, std::integer_sequence<int, R...>) {
  i8 rank = splat(0);
  ((rank -= lower_after_rotation<M, R + 1>(k)), ...);
  return rank;
}
template <int M>
MODKIT_WANDA_INLINE void prune_groups_vec(float* w, const float* norm, int64_t cols, int32_t n) {
  const i8 vn = splat(n);
  for (int64_t j = 0; j + 8 <= cols; j += 8) {
    const f8 v = loadf(w + j);
    const i8 k = reinterpret_cast<i8>(v * loadf(norm + j)) & splat(kAbs);
    const i8 keep = rank_in_group<M>(k, std::make_integer_sequence<int, M - 1>{}) >= vn;
    store(w + j, reinterpret_cast<f8>(reinterpret_cast<i8>(v) & keep));
  }
}
MODKIT_WANDA_CLONES void prune_groups_2(float* w, const float* norm, int64_t cols, int32_t n) {
  prune_groups_vec<2>(w, norm, cols, n);
}
MODKIT_WANDA_CLONES void prune_groups_4(float* w, const float* norm, int64_t cols, int32_t n) {
  prune_groups_vec<4>(w, norm, cols, n);
}
MODKIT_WANDA_CLONES void prune_groups_8(float* w, const float* norm, int64_t cols, int32_t n) {
  prune_groups_vec<8>(w, norm, cols, n);
}

// N:M on any group size, one group at a time: the N lowest (key, index) pairs of each group.
void prune_groups_scalar(float* w, const float* norm, int64_t begin, int64_t cols, int64_t n, int64_t gm,
                         Scratch& s) {
  uint64_t* cand = s.cand.data();
  for (int64_t g = begin; g < cols; g += gm) {
    for (int64_t i = 0; i < gm; ++i) {
      cand[i] = (static_cast<uint64_t>(key_of(w[g + i], norm[g + i])) << 32) | static_cast<uint64_t>(g + i);
    }
    std::nth_element(cand, cand + (n - 1), cand + gm);
    for (int64_t i = 0; i < n; ++i) w[cand[i] & 0xffffffffu] = 0.0f;
  }
}

void prune_groups(float* w, const float* norm, int64_t cols, int64_t n, int64_t gm, Scratch& s) {
  int64_t done = 0;
  if (gm == 2 || gm == 4 || gm == 8) {
    done = cols / 8 * 8;  // whole vectors; the tail is whole groups too (gm divides cols)
    if (gm == 2) prune_groups_2(w, norm, cols, static_cast<int32_t>(n));
    if (gm == 4) prune_groups_4(w, norm, cols, static_cast<int32_t>(n));
    if (gm == 8) prune_groups_8(w, norm, cols, static_cast<int32_t>(n));
  }
  prune_groups_scalar(w, norm, done, cols, n, gm, s);
}

// A weight read as [rows, cols] with element (r, c) at base[r * rs + c * cs].
template <class T>
struct Rows {
  T* base;
  int64_t rows, cols, rs, cs;
};

template <class T>
void prune_rows(const Rows<T>& w, const float* norm, int64_t k, int64_t prune_n, int64_t prune_m) {
  const bool direct = std::is_same_v<T, float> && w.cs == 1;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(w.cols, 1));
  at::parallel_for(0, w.rows, grain, [&](int64_t begin, int64_t end) {
    Scratch s(w.cols, !direct);
    for (int64_t r = begin; r < end; ++r) {
      T* src = w.base + r * w.rs;
      float* row = s.row.data();
      if constexpr (std::is_same_v<T, float>) {
        if (direct) row = src;
      }
      if (!direct) {
        for (int64_t c = 0; c < w.cols; ++c) row[c] = static_cast<float>(src[c * w.cs]);
      }
      if (prune_m > 0) {
        prune_groups(row, norm, w.cols, prune_n, prune_m, s);
      } else {
        const float* next = nullptr;  // the row to prefetch meanwhile
        if constexpr (std::is_same_v<T, float>) {
          if (direct && r + 1 < end) next = src + w.rs;
        }
        prune_lowest(row, norm, w.cols, k, s, next);
      }
      if (!direct) {
        // the pruned weights are the zeros of the float row (a weight whose float is 0
        // has metric 0 and ranks first: only a double below float's smallest subnormal could be
        // written back as 0 without being selected)
        for (int64_t c = 0; c < w.cols; ++c) {
          if (row[c] == 0.0f) src[c * w.cs] = T(0);
        }
      }
    }
  });
}

template <class T>
void zero_rows(const Rows<T>& w) {
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t c = 0; c < w.cols; ++c) w.base[r * w.rs + c * w.cs] = T(0);
  }
}

}  // namespace

RowScalars::RowScalars(int64_t columns) : s_(static_cast<size_t>(std::max<int64_t>(columns, 0)), 0.0) {}

void RowScalars::add(const at::Tensor& input) {
  const int64_t cols = columns();
  if (input.dim() == 0 || input.size(-1) != cols) {
    throw std::invalid_argument("expected an input with " + std::to_string(cols) +
                                " features in its last dimension, found shape " + [&] {
                                  std::string s = "[";
                                  for (int64_t i = 0; i < input.dim(); ++i) s += (i ? ", " : "") + std::to_string(input.size(i));
                                  return s + "]";
                                }());
  }
  const int64_t added = input.dim() <= 2 ? 1 : input.size(0);  // samples, as llmcompressor counts them
  at::Tensor x = input.reshape({-1, cols});
  if (x.scalar_type() != at::kFloat) x = x.to(at::kFloat);
  if (x.stride(1) != 1 || x.stride(0) != cols) x = x.contiguous();
  const int64_t tokens = x.size(0);
  std::vector<double> sums(static_cast<size_t>(cols), 0.0);
  std::mutex merge;
  const float* base = x.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(kBlockTokens, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
  at::parallel_for(0, tokens, grain, [&](int64_t begin, int64_t end) {
    std::vector<double> local(static_cast<size_t>(cols), 0.0);
    std::vector<float> block(static_cast<size_t>(cols));
    for (int64_t t = begin; t < end; t += kBlockTokens) {
      std::fill(block.begin(), block.end(), 0.0f);
      add_squares(base + t * cols, std::min(kBlockTokens, end - t), cols, cols, block.data());
      for (int64_t j = 0; j < cols; ++j) local[j] += block[j];
    }
    const std::lock_guard<std::mutex> lock(merge);
    for (int64_t j = 0; j < cols; ++j) sums[j] += local[j];
  });
  // llmcompressor's running mean over samples
  const double n = static_cast<double>(samples_), b = static_cast<double>(added);
  for (int64_t j = 0; j < cols; ++j) {
    s_[j] *= n / (n + b);
    s_[j] += sums[j] / (n + b);
  }
  samples_ += added;
  tokens_ += tokens;
}

std::vector<float> RowScalars::column_norms() const {
  std::vector<float> out(s_.size());
  for (size_t j = 0; j < s_.size(); ++j) out[j] = static_cast<float>(std::sqrt(s_[j]));
  return out;
}

int64_t pruned_per_row(int64_t columns, double sparsity) {
  const double exact = static_cast<double>(columns) * sparsity;
  // floor, but a product a few ulps below an integer is that integer
  int64_t k = static_cast<int64_t>(std::floor(exact + 1e-9 * std::max(1.0, exact)));
  return std::clamp<int64_t>(k, 0, columns);
}

int64_t prune_(const at::Tensor& weight, const std::vector<float>& column_norms, double sparsity, int64_t prune_n,
               int64_t prune_m) {
  if (weight.dim() != 2) {
    throw std::invalid_argument("expected a 2-d weight [out, in], found " + std::to_string(weight.dim()) + " dimensions");
  }
  if (!at::isFloatingType(weight.scalar_type())) {
    throw std::invalid_argument(std::string("expected a floating-point weight, found ") + c10::toString(weight.scalar_type()));
  }
  const int64_t rows = weight.size(0), cols = weight.size(1);
  if (static_cast<int64_t>(column_norms.size()) != cols) {
    throw std::invalid_argument("expected " + std::to_string(cols) + " column norms (one per input column), found " +
                                std::to_string(column_norms.size()));
  }
  if (prune_m > 0) {
    if (prune_n <= 0 || prune_n >= prune_m) {
      throw std::invalid_argument("N:M " + std::to_string(prune_n) + ":" + std::to_string(prune_m) +
                                  ": expected 0 < N < M");
    }
    if (cols % prune_m != 0) {
      throw std::invalid_argument("N:M " + std::to_string(prune_n) + ":" + std::to_string(prune_m) + " needs a number of columns that is a multiple of " +
                                  std::to_string(prune_m) + ", found " + std::to_string(cols));
    }
  }
  if (rows == 0 || cols == 0) return 0;
  const int64_t k = prune_m > 0 ? 0 : pruned_per_row(cols, sparsity);
  if (prune_m == 0 && k == 0) return 0;
  int64_t pruned = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, weight.scalar_type(), "wanda_prune", [&] {
    const Rows<scalar_t> w{weight.data_ptr<scalar_t>(), rows, cols, weight.stride(0), weight.stride(1)};
    if (prune_m == 0 && k == cols) {
      zero_rows(w);
      pruned = rows * cols;
    } else {  // other dtypes than float go through a float copy of each row: the metric is float32
      prune_rows(w, column_norms.data(), k, prune_n, prune_m);
      pruned = prune_m > 0 ? rows * (cols / prune_m) * prune_n : rows * k;
    }
  });
  return pruned;
}

}  // namespace modkit::wanda
