// The few BLAS/LAPACK calls the OBS solvers make, on row-major float matrices, and control of the BLAS thread count.
#pragma once

#include <cstdint>
#include <string>

/// Thin row-major wrappers over the Fortran BLAS/LAPACK symbols (sgemm_,
/// ssyrk_, spotrf_, strtri_) of the process's BLAS (the system libblas.so.3 /
/// liblapack.so.3, the same library LibTorch uses). Matrices are float32,
/// row-major, with a leading dimension in elements. Reentrant when the BLAS is
/// (OpenBLAS is, from several threads, with one BLAS thread each).
namespace modkit::obs::blas {

/// C[m, n] = alpha * A[m, k] * B[k, n] + beta * C (no transposes).
void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc);

/// The upper triangle (j >= i) of C[n, n] = alpha * Aᵀ A + beta * C for A[k, n]
/// (one row per sample): half of the flops of the full product. The strict
/// lower triangle of C is not touched.
void syrk_upper_tn(int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c, int64_t ldc);

/// Cholesky factor in place of the symmetric positive definite A[n, n] read
/// from its lower triangle (j <= i): A = L Lᵀ, L written over the lower
/// triangle, the strict upper triangle untouched. Returns LAPACK's info: 0 on
/// success, i > 0 when the leading minor of order i is not positive definite.
int cholesky_lower(int64_t n, float* a, int64_t lda);

/// Inverse in place of the lower triangular, non-unit L[n, n] (its strict
/// upper triangle untouched). Returns LAPACK's info (i > 0: L_ii is zero).
int invert_lower(int64_t n, float* a, int64_t lda);

/// The BLAS's own thread count (OpenBLAS: openblas_get_num_threads), or 0 when
/// the library offers no such control.
int threads();

/// Sets the BLAS's thread count when it offers the control (OpenBLAS:
/// openblas_set_num_threads); returns false otherwise. Process-wide.
bool set_threads(int n);

/// Sets the BLAS thread count for a scope and restores it afterwards. Not
/// thread-safe against other code changing the count meanwhile.
class ThreadScope {
 public:
  explicit ThreadScope(int n) : previous_(threads()) {
    if (previous_ > 0 && previous_ != n) changed_ = set_threads(n);
  }
  ~ThreadScope() {
    if (changed_) set_threads(previous_);
  }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
  bool changed_ = false;
};

/// One line about the BLAS in use: the file sgemm_ resolves to, OpenBLAS's
/// configuration and core name when it is OpenBLAS, OPENBLAS_CORETYPE and the
/// thread count, e.g. "/usr/lib/x86_64-linux-gnu/libopenblas.so.0 (OpenBLAS
/// 0.3.21 ... Zen; core Zen), OPENBLAS_CORETYPE unset, 2 threads".
std::string describe();

}  // namespace modkit::obs::blas
