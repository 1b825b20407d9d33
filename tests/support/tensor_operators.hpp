// Arithmetic and comparison operators on at::Tensor for test code, forwarding to Tensor's methods.
//
// <ATen/TensorOperators.h> declares the same operators but includes every ATen operator
// (<ATen/Functions.h>): about 9 s more per translation unit at -O2 -g with Debian's LibTorch
// (tools/ci/compile_times.sh). Tests include this and the <ATen/ops/*.h> they call instead;
// never both in one translation unit.
#pragma once

#include <ATen/core/Tensor.h>

namespace at {

#define MODKIT_TENSOR_OPERATOR(op, method, scalar_first)                                       \
  inline Tensor operator op(const Tensor& a, const Tensor& b) { return a.method(b); }          \
  inline Tensor operator op(const Tensor& a, const Scalar& b) { return a.method(b); }          \
  inline Tensor operator op(const Scalar& a, const Tensor& b) { return scalar_first; }

// Scalar-first forms as ATen computes them: the scalar broadcast to b's shape and dtype, then the operation.
MODKIT_TENSOR_OPERATOR(+, add, b.add(a))
MODKIT_TENSOR_OPERATOR(-, sub, b.new_full(b.sizes(), a).sub_(b))
MODKIT_TENSOR_OPERATOR(*, mul, b.mul(a))
MODKIT_TENSOR_OPERATOR(/, div, b.new_full(b.sizes(), a).div_(b))
MODKIT_TENSOR_OPERATOR(==, eq, b.eq(a))
MODKIT_TENSOR_OPERATOR(!=, ne, b.ne(a))
MODKIT_TENSOR_OPERATOR(<, lt, b.gt(a))
MODKIT_TENSOR_OPERATOR(<=, le, b.ge(a))
MODKIT_TENSOR_OPERATOR(>, gt, b.lt(a))
MODKIT_TENSOR_OPERATOR(>=, ge, b.le(a))
MODKIT_TENSOR_OPERATOR(&, bitwise_and, b.bitwise_and(a))
MODKIT_TENSOR_OPERATOR(|, bitwise_or, b.bitwise_or(a))

#undef MODKIT_TENSOR_OPERATOR

}  // namespace at
