// The parameters whose names and meaning llmcompressor fixes (targets, ignore, sequential_targets,
// mask_structure), declared once for every plugin, and the one parser of mask_structure.
#pragma once

#include <modkit/sdk/error.hpp>
#include <modkit/sdk/params.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

namespace modkit::sdk {

/// Parameter specs to list in MODKIT_EXPORT_MODIFIER. The host reads three of them by name, so
/// a modifier that has them declares them with these specs:
///  - `targets` (string list): the modules the modifier works on — class names ("Linear"),
///    module names, or "re:<regex>" over module names, as llmcompressor matches them. oneshot
///    reports the modules `targets` minus `ignore` match and refuses a modifier whose targets
///    match none (unless --allow-unmatched).
///  - `ignore` (string list): modules left alone even when a target matches them.
///  - `sequential_targets` (string list or null): the blocks the sequential pipeline calibrates
///    one at a time (llmcompressor's sequential_targets); null: the model's decoder layers.
///  - `mask_structure` (string): see MaskStructure.
namespace well_known {

constexpr ParamSpec targets(const char* doc = "modules the modifier works on: class names, module names or re:<regex>",
                            const char* default_json = MODKIT_JSON(["Linear"])) {
  return ParamSpec{"targets", Type::StringList, default_json, doc};
}

constexpr ParamSpec ignore() {
  return ParamSpec{"ignore", Type::StringList, MODKIT_JSON([]), "modules left alone even when a target matches them"};
}

constexpr ParamSpec sequential_targets() {
  return ParamSpec{"sequential_targets", Type::StringList, MODKIT_JSON(null),
                   "blocks the sequential pipeline calibrates one at a time (default: the model's decoder layers)"};
}

/// `default_json` is "0:0" for SparseGPT and Wanda (llmcompressor's default), "unstructured" for
/// magnitude pruning (likewise).
constexpr ParamSpec mask_structure(const char* default_json = MODKIT_JSON("0:0")) {
  return ParamSpec{"mask_structure", Type::String, default_json,
                   "'0:0' unstructured, or 'N:M': prune the N lowest-scored of every M consecutive input weights of "
                   "a row (e.g. '2:4')"};
}

}  // namespace well_known

/// llmcompressor's mask_structure. "N:M" with 0 < N < M prunes N of every M consecutive
/// weights of a row — N counts the *pruned* weights, as SparseGPT's and Wanda's topk(prune_n,
/// largest=False) does ("2:4": half, the pattern sparse kernels run). "0:0" is unstructured.
/// The word "unstructured" is llmcompressor's spelling for magnitude pruning only (its
/// SparseGPT and Wanda split the text at ':'), so parse() accepts it only when asked to.
struct MaskStructure {
  int64_t n = 0;  ///< weights pruned in each group (0: unstructured)
  int64_t m = 0;  ///< group size (0: unstructured)

  bool unstructured() const { return m == 0; }
  /// "N:M", or "0:0" when unstructured.
  std::string text() const { return std::to_string(n) + ":" + std::to_string(m); }

  /// Parses `text`; throws Error(INVALID_ARGUMENT) naming the parameter, what is expected and
  /// what was found.
  static MaskStructure parse(const std::string& text, bool accept_unstructured_word = false) {
    if (accept_unstructured_word && text == "unstructured") return {};
    const std::string expected = "mask_structure '" + text + "': expected " +
                                 (accept_unstructured_word ? "'unstructured', '0:0'" : "'0:0' (unstructured)") +
                                 " or 'N:M' with 0 < N < M (prune N of every M consecutive weights, e.g. '2:4'), found ";
    const size_t colon = text.find(':');
    if (colon == std::string::npos) throw Error(MODKIT_ERROR_INVALID_ARGUMENT, expected + "no ':'");
    const std::string n_text = text.substr(0, colon), m_text = text.substr(colon + 1);
    auto digits = [](const std::string& s) {
      return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(n_text) || !digits(m_text)) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT, expected + "N='" + n_text + "' and M='" + m_text + "'");
    }
    const MaskStructure s{std::stoll(n_text), std::stoll(m_text)};
    if (s.n == 0 && s.m == 0) return {};
    if (s.n <= 0 || s.n >= s.m) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT, expected + "N=" + std::to_string(s.n) + " and M=" + std::to_string(s.m));
    }
    return s;
  }
};

}  // namespace modkit::sdk
