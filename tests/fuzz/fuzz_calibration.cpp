// Fuzz target: the calibration-data readers of modkit's own: safetensors files, and the rewriting of a
// torch.save pickle's APPENDs (inputs starting with the pickle PROTO byte 0x80); the unpickler that
// then reads the pickle is LibTorch's.
#include "fuzz_target.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/torch/calibration.hpp>

#include "pickle_appends.hpp"

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  modkit::fuzz::quiet();
  return 0;
}

namespace {

// A rewrite only inserts MARKs and turns APPENDs into APPENDS: one byte more per APPEND, and a
// rewritten pickle has nothing left to rewrite.
void check_rewrite(const std::string& pickle) {
  const std::string out = modkit::rewrite_appends(pickle);
  if (out == pickle) return;
  size_t marks = 0, appends = 0;
  for (char c : pickle) appends += c == 'a';
  for (char c : out) marks += c == '(';
  modkit::fuzz::require(out.size() > pickle.size() && out.size() - pickle.size() <= appends,
                        "a rewrite added more bytes than there are APPENDs");
  modkit::fuzz::require(marks >= out.size() - pickle.size(), "a rewrite added bytes other than MARKs");
  modkit::fuzz::require(modkit::rewrite_appends(out) == out, "a rewritten pickle was rewritten again");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[0] == 0x80) {
    check_rewrite(bytes);
    return 0;
  }
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
