// A Hugging Face checkpoint directory (config.json + safetensors, one file or shards with an index), memory-mapped:
// a tensor costs memory only while its pages are in use.
#pragma once

#include <modkit/torch/safetensors.hpp>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace modkit::hf {

/// Where one tensor of a checkpoint lives.
struct TensorLocation {
  std::string file;        ///< the safetensors file's name within the directory
  safetensors::Entry entry;
};

/// A checkpoint directory as transformers writes it: `config.json` and either
/// `model.safetensors` or shards named by `model.safetensors.index.json`
/// (`weight_map`: tensor name -> shard file). open() reads config.json and
/// every safetensors header and checks them against each other; tensor data is
/// not read until a tensor is used. The files are mapped privately: writing
/// to a view changes this process's copy only, never the checkpoint.
///
/// Every inconsistency is a ValueError naming the directory, the file and the
/// tensor: no config.json or no weights, a shard the index names that is
/// missing, a tensor in two shards, a shard holding a tensor the index does
/// not list or lacking one it lists, a truncated file or an unknown dtype
/// (safetensors::parse_header), a shape that disagrees with the config
/// (expect_shape).
///
/// Copies share the mappings; views keep their file mapped after the
/// checkpoint is gone. Thread safety: const members may be called from
/// several threads.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& directory);

  const std::string& directory() const { return directory_; }
  /// config.json.
  const nlohmann::json& config() const { return config_; }
  /// The safetensors files, in name order.
  std::vector<std::string> files() const;

  /// Every tensor name, in natural order ("layers.2" before "layers.10").
  std::vector<std::string> tensor_names() const;
  bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
  /// Throws LookupError naming the checkpoint when there is no such tensor.
  const TensorLocation& locate(const std::string& name) const;

  /// The tensor in its stored dtype, a view of the mapped file (zero-copy when its bytes are
  /// aligned for the dtype, else a copy). Pages are read as they are touched.
  at::Tensor tensor(const std::string& name) const;
  /// Drops the tensor's pages from this process (they are read again if it is used; a
  /// view's writes are discarded): for the weights of finished layers.
  void release(const std::string& name) const;

  /// Checks that a tensor exists with `shape`; ValueError "checkpoint '<dir>': tensor '<name>'
  /// in '<file>' has shape [..], expected [..] (<why>)" otherwise, e.g. why = "hidden_size 4096".
  void expect_shape(const std::string& name, const std::vector<int64_t>& shape, const std::string& why) const;

 private:
  struct Mapping;
  std::string directory_;
  nlohmann::json config_;
  std::map<std::string, std::shared_ptr<const Mapping>> mappings_;  // file name -> mapping
  std::map<std::string, TensorLocation> tensors_;
};

}  // namespace modkit::hf
