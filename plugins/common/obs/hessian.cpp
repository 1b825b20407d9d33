// Hessian accumulation H = 2/n Σ XᵀX as one symmetric rank-k BLAS update per batch (llmcompressor's accumulate_hessian).
#include <modkit/plugin_obs/blas.hpp>
#include <modkit/plugin_obs/obs.hpp>

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace modkit::obs {
namespace {

std::string sizes_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// Inputs that are not float32 rows are converted this many bytes at a time,
// below glibc's mmap threshold, so a hook never maps a batch-sized copy.
constexpr int64_t kConvertBytes = int64_t{8} << 20;

}  // namespace

Hessian::Hessian(int64_t columns) : columns_(columns) {
  if (columns <= 0) throw std::invalid_argument("hessian: expected a positive number of columns, found " + std::to_string(columns));
  h_ = at::zeros({columns, columns}, at::TensorOptions().dtype(at::kFloat));
}

void Hessian::add(const at::Tensor& input) {
  if (!h_.defined()) throw std::invalid_argument("hessian: add after take_symmetric: the Hessian was given away");
  if (!input.defined() || input.dim() == 0 || input.size(-1) != columns_) {
    throw std::invalid_argument("hessian input: expected a tensor of shape [..., " + std::to_string(columns_) +
                                "], found " + (input.defined() ? sizes_of(input) : std::string("an undefined tensor")));
  }
  if (!at::isFloatingType(input.scalar_type())) {
    throw std::invalid_argument(std::string("hessian input: expected a floating-point tensor, found ") +
                                c10::toString(input.scalar_type()));
  }
  if (!input.device().is_cpu()) throw std::invalid_argument("hessian input: expected a CPU tensor, found " + input.device().str());
  // llmcompressor: a 2-D input is one sample; otherwise the leading dimension counts the samples
  const int64_t added = input.dim() <= 2 ? 1 : input.size(0);
  const at::Tensor x = input.detach().reshape({-1, columns_});
  const int64_t rows = x.size(0);
  const double n = static_cast<double>(samples_), total = n + static_cast<double>(added);
  if (total <= 0) return;
  // H <- n / (n + m) H + 2 / (n + m) XᵀX, in one rank-k update of the upper triangle
  const float beta = static_cast<float>(n / total), alpha = static_cast<float>(2.0 / total);
  float* h = h_.data_ptr<float>();
  const bool direct = x.scalar_type() == at::kFloat && (rows <= 1 || x.stride(1) == 1) &&
                      (rows <= 1 || x.stride(0) >= columns_);
  if (rows == 0) {
    h_.mul_(beta);
  } else if (direct) {
    const int64_t ld = rows <= 1 ? columns_ : x.stride(0);
    blas::syrk_upper_tn(columns_, rows, alpha, x.data_ptr<float>(), ld, beta, h, columns_);
  } else {
    const int64_t chunk = std::max<int64_t>(1, kConvertBytes / (columns_ * static_cast<int64_t>(sizeof(float))));
    at::Tensor buf = at::empty({std::min(chunk, rows), columns_}, at::TensorOptions().dtype(at::kFloat));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      at::Tensor part = buf.narrow(0, 0, r1 - r0);
      part.copy_(x.narrow(0, r0, r1 - r0));
      blas::syrk_upper_tn(columns_, r1 - r0, alpha, part.data_ptr<float>(), columns_, r0 == 0 ? beta : 1.0f, h,
                          columns_);
    }
  }
  samples_ += added;
  tokens_ += rows;
}

at::Tensor Hessian::take_symmetric() {
  at::Tensor out = std::move(h_);
  h_ = at::Tensor();
  if (out.defined()) symmetrize_upper_(out);
  return out;
}

void symmetrize_upper_(at::Tensor& m) {
  if (m.dim() != 2 || m.size(0) != m.size(1) || m.scalar_type() != at::kFloat || !m.is_contiguous()) {
    throw std::invalid_argument("symmetrize: expected a square contiguous float32 matrix, found " + sizes_of(m));
  }
  const int64_t n = m.size(0);
  float* a = m.data_ptr<float>();
  // tile by tile, so that the transposed reads stay in cache
  constexpr int64_t kTile = 64;
  const int64_t tiles = (n + kTile - 1) / kTile;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t ti = t0; ti < t1; ++ti) {
      const int64_t i0 = ti * kTile, i1 = std::min(n, i0 + kTile);
      for (int64_t j0 = 0; j0 <= i0; j0 += kTile) {
        const int64_t j1 = std::min(n, j0 + kTile);
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t jend = std::min(j1, i);
          for (int64_t j = j0; j < jend; ++j) a[i * n + j] = a[j * n + i];
        }
      }
    }
  });
}

}  // namespace modkit::obs
