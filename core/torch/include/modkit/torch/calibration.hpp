// Calibration data: the forward inputs oneshot pipelines run through a model, read from torch.save or safetensors files.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace modkit {

/// The arguments of one `model.forward(...)` call.
struct CalibrationSample {
  std::vector<c10::IValue> args;
  std::unordered_map<std::string, c10::IValue> kwargs;
};

/// An ordered list of calibration samples and where they came from.
/// A plain value; tensors are shared, not copied, when it is copied.
struct CalibrationData {
  std::vector<CalibrationSample> samples;
  /// The file path, or a description such as "<synthetic: 8 x [4, 64, 128]>".
  std::string source;

  size_t size() const { return samples.size(); }
  bool empty() const { return samples.empty(); }

  /// Reads a calibration file by its contents:
  ///  - a torch.save file (zip archive) of a list or tuple of samples, each a
  ///    tensor (one positional argument), a tuple or list (positional
  ///    arguments) or a dict with string keys (keyword arguments): what
  ///    `torch.save(list_of_tensors, "calib.pt")` writes;
  ///  - a safetensors file: each tensor is one sample (one positional
  ///    argument), in natural name order ("2" before "10").
  /// Throws ValueError "cannot read calibration data '<path>': <expected, found>"
  /// for a missing, empty, truncated or corrupt file, a file of another
  /// format, a single tensor instead of a list, an empty list or a sample of
  /// another type.
  static CalibrationData load(const std::string& path);

  /// The samples of a value unpickled from a torch.save file (see load());
  /// `source` names it in messages.
  static CalibrationData from_ivalue(const c10::IValue& value, const std::string& source);

  /// Parses a safetensors file's bytes; `source` names it in messages.
  static CalibrationData parse_safetensors(const std::string& bytes, const std::string& source);

  /// `count` float32 samples of `shape` with the structure of LLM hidden
  /// states: correlated channels and a few channels with large outliers
  /// (as LLM.int8 describes), reproducible from `seed`.
  static CalibrationData synthetic(int64_t count, const std::vector<int64_t>& shape, uint64_t seed);

  /// Keeps the first `n` samples (all when n >= size()).
  void truncate(size_t n);
};

}  // namespace modkit
