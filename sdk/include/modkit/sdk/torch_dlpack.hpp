// LibTorch's DLPack conversions (at::toDLPack, at::fromDLPack, at::toScalarType) without the cost of
// <ATen/DLConvertor.h>, which includes all of <ATen/ATen.h> (every operator: about 15 s more per
// translation unit at -O2 -g with Debian's LibTorch). Declared exactly as that header declares them,
// so including both is harmless.
#pragma once

#include <ATen/core/Tensor.h>
#include <dlpack/dlpack.h>

namespace at {
TORCH_API DLManagedTensor* toDLPack(const Tensor& src);
TORCH_API Tensor fromDLPack(const DLManagedTensor* src);
TORCH_API ScalarType toScalarType(const DLDataType& dtype);
}  // namespace at
