// Fuzz target: the safetensors calibration-data reader (the torch.save path is LibTorch's own unpickler).
#include "fuzz_target.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/torch/calibration.hpp>

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  modkit::CalibrationData calib;
  try {
    calib = modkit::CalibrationData::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const modkit::ValueError&) {
    return 0;
  }
  // every sample is one tensor whose bytes lie inside the file
  size_t total = 0;
  for (const auto& s : calib.samples) {
    modkit::fuzz::require(s.args.size() == 1 && s.args[0].isTensor(), "a sample is not one tensor");
    const at::Tensor& t = s.args[0].toTensor();
    total += static_cast<size_t>(t.numel()) * t.element_size();
  }
  modkit::fuzz::require(calib.size() > 0, "an accepted file has no samples");
  modkit::fuzz::require(total <= size, "the samples hold more bytes than the file");
  return 0;
}
