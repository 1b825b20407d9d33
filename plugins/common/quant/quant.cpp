// Round-to-nearest integer quantization kernels: row by row, in cache, vectorised (AVX2 when the CPU has it).
#include <modkit/plugin_quant/quant.hpp>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

// The weight is walked one row at a time: its min/max per group and its
// quantization happen while the row is in L1, so the fused path reads and
// writes each weight byte once. The inner loops use GCC/Clang vector
// extensions (8 floats) and are compiled twice (AVX2 and baseline x86-64,
// picked at load time), since -O2 does not vectorise min/max reductions and
// Debian builds for baseline x86-64.
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MODKIT_QUANT_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef MODKIT_QUANT_CLONES
#define MODKIT_QUANT_CLONES
#endif
#define MODKIT_QUANT_INLINE inline __attribute__((always_inline))

namespace modkit::quant {
namespace {

using f8 = float __attribute__((vector_size(32)));
using i32x8 = int32_t __attribute__((vector_size(32)));

constexpr float kEps = std::numeric_limits<float>::epsilon();  // compressed-tensors' scale floor
// Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to
// the nearest integer, ties to even (torch.round), and vectorises everywhere.
constexpr float kRound = 12582912.0f;

MODKIT_QUANT_INLINE f8 load(const float* p) {
  f8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
MODKIT_QUANT_INLINE void store(float* p, f8 v) { __builtin_memcpy(p, &v, sizeof v); }
MODKIT_QUANT_INLINE f8 splat(float s) { return f8{s, s, s, s, s, s, s, s}; }
MODKIT_QUANT_INLINE float round_even(float v) { return (v + kRound) - kRound; }

// Per group of `gw` columns of one row: the minimum and maximum.
MODKIT_QUANT_CLONES void minmax_groups(const float* x, int64_t cols, int64_t gw, float* mn, float* mx) {
  for (int64_t g0 = 0, g = 0; g0 < cols; g0 += gw, ++g) {
    const float* p = x + g0;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    int64_t i = 0;
    if (gw >= 16) {
      f8 a0 = load(p), a1 = load(p + 8), b0 = a0, b1 = a1;
      for (i = 16; i + 16 <= gw; i += 16) {
        const f8 v0 = load(p + i), v1 = load(p + i + 8);
        a0 = v0 < a0 ? v0 : a0;
        a1 = v1 < a1 ? v1 : a1;
        b0 = v0 > b0 ? v0 : b0;
        b1 = v1 > b1 ? v1 : b1;
      }
      a0 = a1 < a0 ? a1 : a0;
      b0 = b1 > b0 ? b1 : b0;
      for (int l = 0; l < 8; ++l) {
        lo = std::min(lo, a0[l]);
        hi = std::max(hi, b0[l]);
      }
    }
    for (; i < gw; ++i) {
      lo = std::min(lo, p[i]);
      hi = std::max(hi, p[i]);
    }
    mn[g] = lo;
    mx[g] = hi;
  }
}

// One element: clamp(round(x / s + z), lo, hi). Clamping before rounding gives
// the same integer (the bounds are integers) and keeps |v| small for round_even;
// a NaN weight becomes lo.
template <class V>
MODKIT_QUANT_INLINE V quantize_one(V x, V s, V z, V lo, V hi) {
  V v = x / s + z;
  v = v >= lo ? v : lo;
  v = v <= hi ? v : hi;
  return (v + kRound) - kRound;
}

template <bool kOut, bool kQ>
MODKIT_QUANT_INLINE void fq_loop(const float* x, float* out, int64_t cols, int64_t gw, const float* s,
                                 const float* z, float lo, float hi, int8_t* q) {
  const f8 vlo = splat(lo), vhi = splat(hi);
  for (int64_t g0 = 0, g = 0; g0 < cols; g0 += gw, ++g) {
    const f8 vs = splat(s[g]), vz = splat(z[g]);
    int64_t i = g0;
    const int64_t end = g0 + gw;
    for (; i + 8 <= end; i += 8) {
      const f8 r = quantize_one(load(x + i), vs, vz, vlo, vhi);
      if constexpr (kQ) {
        const i32x8 qi = __builtin_convertvector(r, i32x8);
        for (int l = 0; l < 8; ++l) q[i + l] = static_cast<int8_t>(qi[l]);
      }
      if constexpr (kOut) store(out + i, (r - vz) * vs);
    }
    for (; i < end; ++i) {
      const float r = quantize_one(x[i], s[g], z[g], lo, hi);
      if constexpr (kQ) q[i] = static_cast<int8_t>(r);
      if constexpr (kOut) out[i] = (r - z[g]) * s[g];
    }
  }
}

// Quantizes one row group by group: `out` (may alias x) receives (q - z) * s,
// `q` the integers; either may be null.
MODKIT_QUANT_CLONES void fq_groups(const float* x, float* out, int64_t cols, int64_t gw, const float* s,
                                   const float* z, float lo, float hi, int8_t* q) {
  if (out != nullptr && q != nullptr) {
    fq_loop<true, true>(x, out, cols, gw, s, z, lo, hi, q);
  } else if (out != nullptr) {
    fq_loop<true, false>(x, out, cols, gw, s, z, lo, hi, q);
  } else if (q != nullptr) {
    fq_loop<false, true>(x, out, cols, gw, s, z, lo, hi, q);
  }
}

// compressed-tensors' calculate_qparams for one group; `round_scale` rounds a
// scale to the weight dtype so that the zero point and the quantization use
// the scale that is stored.
template <class R>
void qparams_of(float mn, float mx, const QuantArgs& a, R round_scale, float& s, float& z) {
  mn = std::min(mn, 0.0f);
  mx = std::max(mx, 0.0f);
  const float lo = static_cast<float>(qmin(a)), hi = static_cast<float>(qmax(a));
  if (a.symmetric) {
    s = std::max(std::fabs(mn), std::fabs(mx)) / ((hi - lo) / 2.0f);
    s = round_scale(s < kEps ? kEps : s);
    z = 0.0f;
  } else {
    s = (mx - mn) / (hi - lo);
    s = round_scale(s < kEps ? kEps : s);
    float zp = lo - mn / s;
    zp = std::min(std::max(zp, lo), hi);
    z = std::nearbyint(zp);
  }
}

// A weight read as [rows, cols] with element (r, c) at base[r * rs + c * cs].
template <class T>
struct Rows {
  T* base = nullptr;
  int64_t rows = 0, cols = 0, rs = 0, cs = 1;
};

int64_t groups_per_row(const QuantArgs& a, int64_t cols) {
  return a.strategy == Strategy::Group ? cols / a.group_size : 1;
}

// The row-by-row engine behind every entry point. With `in_s` null it
// computes each row's qparams (per-row strategies) into out_s / out_z; else it
// uses in_s / in_z (index r * s_rs + g). Then, if asked, it writes
// (q - z) * s over the weight and/or the integers into q (row-major, cols per row).
template <class T>
void run_rows(const Rows<T>& w, const QuantArgs& a, const float* in_s, const int8_t* in_z, int64_t s_rs,
              T* out_s, int8_t* out_z, bool write_weight, int8_t* q) {
  const int64_t G = groups_per_row(a, w.cols), gw = w.cols / G;
  const float lo = static_cast<float>(qmin(a)), hi = static_cast<float>(qmax(a));
  const bool direct = std::is_same_v<T, float> && (w.cs == 1 || w.cols == 1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(w.cols, 1));
  at::parallel_for(0, w.rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(direct ? 0 : w.cols), s(G), z(G), mn(G), mx(G);
    for (int64_t r = begin; r < end; ++r) {
      T* src = w.base + r * w.rs;
      float* row = nullptr;
      if constexpr (std::is_same_v<T, float>) {
        row = src;
      }
      if (!direct) {
        for (int64_t c = 0; c < w.cols; ++c) buf[c] = static_cast<float>(src[c * w.cs]);
        row = buf.data();
      }
      if (in_s == nullptr) {
        minmax_groups(row, w.cols, gw, mn.data(), mx.data());
        for (int64_t g = 0; g < G; ++g) {
          qparams_of(mn[g], mx[g], a, [](float v) { return static_cast<float>(static_cast<T>(v)); }, s[g], z[g]);
          out_s[r * G + g] = static_cast<T>(s[g]);
          out_z[r * G + g] = static_cast<int8_t>(z[g]);
        }
      } else {
        for (int64_t g = 0; g < G; ++g) {
          s[g] = in_s[r * s_rs + g];
          z[g] = in_z == nullptr ? 0.0f : static_cast<float>(in_z[r * s_rs + g]);
        }
      }
      if (!write_weight && q == nullptr) continue;
      fq_groups(row, write_weight ? row : nullptr, w.cols, gw, s.data(), z.data(), lo, hi,
                q == nullptr ? nullptr : q + r * w.cols);
      if (write_weight && !direct) {
        for (int64_t c = 0; c < w.cols; ++c) src[c * w.cs] = static_cast<T>(buf[c]);
      }
    }
  });
}

// The minimum and maximum of the whole weight (Strategy::Tensor).
template <class T>
std::pair<float, float> global_minmax(const Rows<T>& w) {
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(w.cols, 1));
  return at::parallel_reduce(
      0, w.rows, grain, std::make_pair(inf, -inf),
      [&](int64_t begin, int64_t end, std::pair<float, float> acc) {
        std::vector<float> buf;
        for (int64_t r = begin; r < end; ++r) {
          const T* src = w.base + r * w.rs;
          const float* row = nullptr;
          if constexpr (std::is_same_v<T, float>) {
            if (w.cs == 1 || w.cols == 1) row = src;
          }
          if (row == nullptr) {
            buf.resize(w.cols);
            for (int64_t c = 0; c < w.cols; ++c) buf[c] = static_cast<float>(src[c * w.cs]);
            row = buf.data();
          }
          float mn, mx;
          minmax_groups(row, w.cols, w.cols, &mn, &mx);
          acc.first = std::min(acc.first, mn);
          acc.second = std::max(acc.second, mx);
        }
        return acc;
      },
      [](std::pair<float, float> x, std::pair<float, float> y) {
        return std::make_pair(std::min(x.first, y.first), std::max(x.second, y.second));
      });
}


// The [rows, cols] reading of `t`: dim 2 as is, dim > 2 as [size(0), rest]
// (contiguous only), dim 0 and 1 as one row.
template <class T>
bool rows_of(const at::Tensor& t, Rows<T>& w) {
  w.base = t.data_ptr<T>();
  if (t.dim() == 2) {
    w.rows = t.size(0), w.cols = t.size(1), w.rs = t.stride(0), w.cs = t.stride(1);
    return true;
  }
  if (t.dim() <= 1) {
    w.rows = 1, w.cols = t.numel(), w.rs = 0, w.cs = t.dim() == 0 ? 1 : t.stride(0);
    return true;
  }
  if (!t.is_contiguous()) return false;
  w.rows = t.size(0), w.cols = t.numel() / t.size(0), w.rs = w.cols, w.cs = 1;
  return true;
}

std::vector<int64_t> qparam_shape(const QuantArgs& a, int64_t rows, int64_t cols) {
  if (a.strategy == Strategy::Tensor) return {1};
  return {rows, groups_per_row(a, cols)};
}

int64_t rows_of_shape(const at::Tensor& t) { return t.dim() == 0 ? 1 : (t.dim() == 1 ? 1 : t.size(0)); }
int64_t cols_of_shape(const at::Tensor& t) { return t.numel() / std::max<int64_t>(rows_of_shape(t), 1); }

// Checks qparams against the weight and returns them as contiguous float
// scales and int8 zero points (small copies) plus the row stride into them.
struct FlatQParams {
  at::Tensor scale, zero_point;
  int64_t row_stride = 0;
};
FlatQParams flat_qparams(const QParams& qp, const QuantArgs& a, int64_t rows, int64_t cols) {
  if (!qp.scale.defined() || !qp.zero_point.defined()) {
    throw std::invalid_argument("quantization parameters: expected a scale and a zero point, found an undefined tensor");
  }
  const int64_t G = groups_per_row(a, cols);
  const int64_t expected = a.strategy == Strategy::Tensor ? 1 : rows * G;
  if (qp.scale.numel() != expected || qp.zero_point.numel() != expected) {
    throw std::invalid_argument(std::string("quantization parameters for a ") + to_string(a.strategy) +
                                " strategy over a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                "] weight: expected " + std::to_string(expected) + " scales and zero points, found " +
                                sizes_of(qp.scale) + " and " + sizes_of(qp.zero_point));
  }
  FlatQParams f;
  f.scale = qp.scale.detach().to(at::kFloat).contiguous();
  f.zero_point = qp.zero_point.detach().to(at::kChar).contiguous();
  f.row_stride = a.strategy == Strategy::Tensor ? 0 : G;
  return f;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Runs `f(rows, weight)` on the [rows, cols] reading of `weight`, on a
// contiguous copy written back afterwards when no such reading exists.
template <class T, class F>
void with_rows(at::Tensor& weight, bool write_back, F&& f) {
  Rows<T> w;
  if (rows_of(weight, w)) {
    f(w);
    return;
  }
  at::Tensor copy = weight.contiguous();
  rows_of(copy, w);
  f(w);
  if (write_back) weight.copy_(copy);
}

}  // namespace

std::string sizes_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

int qmin(const QuantArgs& args) { return -(1 << (args.num_bits - 1)); }
int qmax(const QuantArgs& args) { return (1 << (args.num_bits - 1)) - 1; }

const char* to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::Tensor: return "tensor";
    case Strategy::Channel: return "channel";
    case Strategy::Group: return "group";
    case Strategy::Token: return "token";
  }
  return "unknown";
}

const char* to_string(ActOrder actorder) {
  switch (actorder) {
    case ActOrder::None: return "none";
    case ActOrder::Group: return "group";
    case ActOrder::Weight: return "weight";
  }
  return "unknown";
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names{"W8A16", "W4A16", "W4A16_ASYM", "W8A8", "INT8", "W4A8"};
  return names;
}

Scheme preset(const std::string& name) {
  const std::string n = upper(name);
  const QuantArgs int8_channel{8, true, Strategy::Channel, 0, false, ActOrder::None};
  const QuantArgs int4_group{4, true, Strategy::Group, 128, false, ActOrder::None};
  const QuantArgs int8_token_dynamic{8, true, Strategy::Token, 0, true, ActOrder::None};
  Scheme s;
  s.targets = {"Linear"};
  if (n == "W8A16") {
    s.weights = int8_channel;
  } else if (n == "W4A16") {
    s.weights = int4_group;
  } else if (n == "W4A16_ASYM") {
    s.weights = int4_group;
    s.weights.symmetric = false;
  } else if (n == "W8A8" || n == "INT8") {
    s.weights = int8_channel;
    s.input_activations = int8_token_dynamic;
  } else if (n == "W4A8") {
    s.weights = int4_group;
    s.input_activations = int8_token_dynamic;
  } else {
    std::string known;
    for (const auto& p : preset_names()) known += (known.empty() ? "" : ", ") + p;
    throw std::invalid_argument("unknown quantization preset '" + name + "': expected one of " + known);
  }
  return s;
}

void validate(const QuantArgs& args) {
  if (args.num_bits < 2 || args.num_bits > 8) {
    throw std::invalid_argument("num_bits: expected 2 to 8 (integer quantization stored in int8), found " +
                                std::to_string(args.num_bits));
  }
  if (args.strategy == Strategy::Group && args.group_size <= 0) {
    throw std::invalid_argument("group_size: expected a positive number of columns for the group strategy, found " +
                                std::to_string(args.group_size));
  }
}

void check_weight(const at::Tensor& weight, const QuantArgs& args) {
  validate(args);
  if (!weight.defined() || weight.numel() == 0) throw std::invalid_argument("cannot quantize an empty weight");
  if (!at::isFloatingType(weight.scalar_type())) {
    throw std::invalid_argument(std::string("cannot quantize a weight of dtype ") +
                                c10::toString(weight.scalar_type()) + ": expected a floating-point dtype");
  }
  if (!weight.device().is_cpu()) {
    throw std::invalid_argument("cannot quantize a weight on " + weight.device().str() + ": expected the CPU");
  }
  if (args.strategy != Strategy::Tensor && weight.dim() < 2) {
    throw std::invalid_argument(std::string("the ") + to_string(args.strategy) +
                                " strategy needs a weight with rows, found shape " + sizes_of(weight));
  }
  if (args.strategy == Strategy::Group && cols_of_shape(weight) % args.group_size != 0) {
    throw std::invalid_argument("group_size " + std::to_string(args.group_size) + " does not divide the " +
                                std::to_string(cols_of_shape(weight)) + " columns of a weight of shape " +
                                sizes_of(weight));
  }
}

QParams compute_qparams(const at::Tensor& weight, const QuantArgs& args) {
  check_weight(weight, args);
  at::Tensor w = weight.detach();
  const int64_t rows = rows_of_shape(w), cols = cols_of_shape(w);
  QParams qp;
  qp.scale = at::empty(qparam_shape(args, rows, cols), w.options());
  qp.zero_point = at::zeros(qparam_shape(args, rows, cols), w.options().dtype(at::kChar));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "compute_qparams", [&] {
    with_rows<scalar_t>(w, false, [&](const Rows<scalar_t>& rw) {
      if (args.strategy == Strategy::Tensor) {
        const auto mm = global_minmax(rw);
        float s, z;
        qparams_of(mm.first, mm.second, args,
                   [](float v) { return static_cast<float>(static_cast<scalar_t>(v)); }, s, z);
        qp.scale.fill_(s);
        qp.zero_point.fill_(static_cast<int64_t>(z));
      } else {
        run_rows(rw, args, nullptr, nullptr, 0, qp.scale.data_ptr<scalar_t>(), qp.zero_point.data_ptr<int8_t>(),
                 false, nullptr);
      }
    });
  });
  return qp;
}

namespace {
at::Tensor* prepare_q_out(const at::Tensor& weight, at::Tensor* q_out) {
  if (q_out == nullptr) return nullptr;
  if (!q_out->defined()) {
    *q_out = at::empty(weight.sizes(), weight.options().dtype(at::kChar));
  } else if (q_out->scalar_type() != at::kChar || !q_out->sizes().equals(weight.sizes()) || !q_out->is_contiguous()) {
    throw std::invalid_argument("q_out: expected a contiguous int8 tensor of shape " + sizes_of(weight) +
                                ", found " + c10::toString(q_out->scalar_type()) + " " + sizes_of(*q_out));
  }
  return q_out;
}

void apply(at::Tensor& weight, const QParams& qp, const QuantArgs& args, bool write_weight, at::Tensor* q_out) {
  check_weight(weight, args);
  const int64_t rows = rows_of_shape(weight), cols = cols_of_shape(weight);
  const FlatQParams f = flat_qparams(qp, args, rows, cols);
  int8_t* q = q_out == nullptr ? nullptr : q_out->data_ptr<int8_t>();
  at::Tensor w = weight.detach();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "fake_quantize_", [&] {
    with_rows<scalar_t>(w, write_weight, [&](const Rows<scalar_t>& rw) {
      run_rows(rw, args, f.scale.data_ptr<float>(), args.symmetric ? nullptr : f.zero_point.data_ptr<int8_t>(),
               f.row_stride, static_cast<scalar_t*>(nullptr), nullptr, write_weight, q);
    });
  });
}
}  // namespace

at::Tensor quantize(const at::Tensor& weight, const QParams& qparams, const QuantArgs& args) {
  at::Tensor q;
  at::Tensor w = weight.detach();  // not written: write_weight is false
  apply(w, qparams, args, false, prepare_q_out(w, &q));
  return q;
}

at::Tensor dequantize(const at::Tensor& q, const QParams& qparams, const QuantArgs& args) {
  validate(args);
  const int64_t rows = rows_of_shape(q), cols = cols_of_shape(q);
  if (args.strategy == Strategy::Group && cols % args.group_size != 0) {
    throw std::invalid_argument("group_size " + std::to_string(args.group_size) + " does not divide the " +
                                std::to_string(cols) + " columns of " + sizes_of(q));
  }
  const FlatQParams f = flat_qparams(qparams, args, rows, cols);
  const bool per_row = args.strategy != Strategy::Tensor;
  const int64_t G = groups_per_row(args, cols);
  const at::Tensor s = f.scale.reshape({per_row ? rows : 1, per_row ? G : 1, 1});
  const at::Tensor z = f.zero_point.to(at::kFloat).reshape({per_row ? rows : 1, per_row ? G : 1, 1});
  const at::Tensor grouped = q.detach().reshape({rows, G, cols / G}).to(at::kFloat);
  return grouped.sub(z).mul(s).to(qparams.scale.scalar_type()).reshape(q.sizes());
}

void fake_quantize_(at::Tensor& weight, const QParams& qparams, const QuantArgs& args, at::Tensor* q_out) {
  apply(weight, qparams, args, true, prepare_q_out(weight, q_out));
}

QParams quantize_rtn_(at::Tensor& weight, const QuantArgs& args, at::Tensor* q_out) {
  if (args.strategy == Strategy::Tensor) {
    QParams qp = compute_qparams(weight, args);
    fake_quantize_(weight, qp, args, q_out);
    return qp;
  }
  check_weight(weight, args);
  at::Tensor* q = prepare_q_out(weight, q_out);
  at::Tensor w = weight.detach();
  const int64_t rows = rows_of_shape(w), cols = cols_of_shape(w);
  QParams qp;
  qp.scale = at::empty(qparam_shape(args, rows, cols), w.options());
  qp.zero_point = at::empty(qparam_shape(args, rows, cols), w.options().dtype(at::kChar));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "quantize_rtn_", [&] {
    with_rows<scalar_t>(w, true, [&](const Rows<scalar_t>& rw) {
      run_rows(rw, args, nullptr, nullptr, 0, qp.scale.data_ptr<scalar_t>(), qp.zero_point.data_ptr<int8_t>(), true,
               q == nullptr ? nullptr : q->data_ptr<int8_t>());
    });
  });
  return qp;
}

}  // namespace modkit::quant
