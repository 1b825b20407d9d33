// The safetensors format: a checked reader of its header (shared by calibration data and checkpoints) and a writer.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace modkit::safetensors {

/// One tensor as a safetensors header describes it.
struct Entry {
  std::string name;
  std::string dtype;           ///< the format's name: "F32", "BF16", ...
  at::ScalarType scalar_type;  ///< LibTorch's
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  ///< byte range within the data section
};

/// A header whose entries were all checked against the file: known dtypes, shapes that match
/// their byte ranges, ranges inside the data that tile it without overlaps or holes (as the
/// safetensors library checks).
struct Header {
  uint64_t data_offset = 0;     ///< where the data section starts in the file (8 + header length)
  std::vector<Entry> tensors;   ///< in natural name order ("2" before "10")
  nlohmann::json metadata;      ///< "__metadata__" (string to string), null when absent
};

/// Parses the header of a safetensors file whose `size` bytes start at `bytes`. Throws
/// ValueError `prefix` + why: too short, a header length past the end, not JSON, an entry
/// without {dtype, shape, data_offsets}, an unknown dtype, a shape that disagrees with its
/// bytes, data offsets outside the file (truncated), overlapping tensors, bytes no tensor owns.
Header parse_header(const char* bytes, size_t size, const std::string& prefix);

/// Writes `tensors` (name, tensor; any device layout: they are made contiguous CPU) as a
/// safetensors file at `path`, atomically (a temporary file renamed into place), in the order
/// given, with `metadata` as "__metadata__" when not empty. The header is padded with spaces to
/// a multiple of 8 bytes, as the Python library writes it. Throws ValueError naming the file
/// for a duplicate name or a dtype the format lacks, RuntimeError when the file cannot be written.
void write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
           const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// The format's name of a LibTorch dtype ("BF16"), "" when it has none.
std::string dtype_name(at::ScalarType type);

/// "10" after "2": digit runs compare as numbers (the order of a checkpoint's layers).
bool natural_less(const std::string& a, const std::string& b);

}  // namespace modkit::safetensors
