// Row-major wrappers over the Fortran BLAS/LAPACK symbols, and the BLAS thread control found at run time.
#include <modkit/plugin_obs/blas.hpp>

#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <stdexcept>

extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha, const float* a,
            const int* lda, const float* beta, float* c, const int* ldc);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void strtri_(const char* uplo, const char* diag, const int* n, float* a, const int* lda, int* info);
}

namespace modkit::obs::blas {
namespace {

// The Fortran interface takes 32-bit integers (LP64 BLAS).
int fortran_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument(std::string("blas: ") + what + " " + std::to_string(v) +
                                " does not fit the 32-bit BLAS interface");
  }
  return static_cast<int>(v);
}

// OpenBLAS's controls are not part of the BLAS interface: found at run time, so any BLAS links.
template <class F>
F find(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
using GetThreads = int (*)();
using SetThreads = void (*)(int);
using GetString = char* (*)();

}  // namespace

// A row-major matrix is the transpose of the same memory read column-major:
// C = A B  <=>  Cᵀ = Bᵀ Aᵀ, and a row-major lower triangle is a column-major upper one.
void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int M = fortran_int(m, "rows"), N = fortran_int(n, "columns"), K = fortran_int(k, "inner size");
  const int LDA = fortran_int(lda, "leading dimension"), LDB = fortran_int(ldb, "leading dimension"),
            LDC = fortran_int(ldc, "leading dimension");
  sgemm_("N", "N", &N, &M, &K, &alpha, b, &LDB, a, &LDA, &beta, c, &LDC);
}

void syrk_upper_tn(int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
                   int64_t ldc) {
  if (n == 0) return;
  const int N = fortran_int(n, "columns"), K = fortran_int(k, "samples");
  const int LDA = fortran_int(lda, "leading dimension"), LDC = fortran_int(ldc, "leading dimension");
  // row-major A[k, n] is column-major Aᵀ[n, k]: C = (Aᵀ)(Aᵀ)ᵀ, "N"; row-major upper = column-major lower
  ssyrk_("L", "N", &N, &K, &alpha, a, &LDA, &beta, c, &LDC);
}

int cholesky_lower(int64_t n, float* a, int64_t lda) {
  if (n == 0) return 0;
  const int N = fortran_int(n, "order"), LDA = fortran_int(lda, "leading dimension");
  int info = 0;
  spotrf_("U", &N, a, &LDA, &info);
  return info;
}

int invert_lower(int64_t n, float* a, int64_t lda) {
  if (n == 0) return 0;
  const int N = fortran_int(n, "order"), LDA = fortran_int(lda, "leading dimension");
  int info = 0;
  strtri_("U", "N", &N, a, &LDA, &info);
  return info;
}

int threads() {
  static const auto get = find<GetThreads>("openblas_get_num_threads");
  return get != nullptr ? get() : 0;
}

bool set_threads(int n) {
  static const auto set = find<SetThreads>("openblas_set_num_threads");
  if (set == nullptr || n < 1) return false;
  set(n);
  return true;
}

std::string describe() {
  std::string out;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&sgemm_), &info) != 0 && info.dli_fname != nullptr) {
    out = info.dli_fname;
  } else {
    out = "unknown library";
  }
  const auto config = find<GetString>("openblas_get_config");
  const auto core = find<GetString>("openblas_get_corename");
  if (config != nullptr) {
    out += std::string(" (") + config() + (core != nullptr ? std::string("; core ") + core() : std::string()) + ")";
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  out += std::string(", OPENBLAS_CORETYPE ") + (coretype != nullptr ? coretype : "unset");
  const int n = threads();
  out += n > 0 ? ", " + std::to_string(n) + " BLAS threads" : std::string(", BLAS threads not controllable");
  return out;
}

}  // namespace modkit::obs::blas
