// Token sequences for a causal LM's calibration and evaluation, read from JSON lines, safetensors or torch.save files.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace modkit::hf {

/// Sequences of token ids (int64 [length] each), in file order, and where they came from.
struct TokenData {
  std::vector<at::Tensor> sequences;
  std::string source;

  size_t size() const { return sequences.size(); }
  /// Tokens over every sequence.
  int64_t tokens() const;

  /// Reads `path` by its contents:
  ///  - JSON lines, one `{"input_ids": [...]}` object per line (what `datasets` writes with
  ///    `to_json` for tokenized rows; other keys are ignored, blank lines skipped);
  ///  - a safetensors file with a 2-D integer tensor `input_ids` [sequences, length];
  ///  - a torch.save list of integer tensors, 1-D (one sequence) or 2-D (one per row).
  /// Every id must lie in [0, vocab_size). Throws ValueError "token data '<path>': ..." naming
  /// the line or tensor: not JSON, no input_ids, an empty sequence, an id outside the
  /// vocabulary (its position), a tensor that is not 2-D or not integer, no sequences at all.
  static TokenData load(const std::string& path, int64_t vocab_size);

  /// Cuts every sequence into consecutive windows of `length` tokens (the last, shorter one
  /// kept when it holds at least 2 tokens), as perplexity over fixed windows counts them.
  TokenData windows(int64_t length) const;
};

}  // namespace modkit::hf
