// Target matching as llmcompressor does it: class names, exact module names and "re:" patterns, minus an ignore list.
#pragma once

#include <modkit/torch/model.hpp>

#include <memory>
#include <string>
#include <vector>

namespace modkit {

/// A compiled set of targets and ignores.
///
/// Each entry is one of:
///  - a class name ("Linear"): matches modules whose class name is equal (the
///    TorchScript type keeps no base classes, so unlike Python's isinstance
///    check a subclass of Linear does not match "Linear");
///  - an exact module name ("layers.0.mlp.fc1");
///  - "re:<regex>": ECMAScript regex matched against the module name the way
///    llmcompressor's Python `re.match` does: anchored at the start of the
///    name, not at its end. So "re:layers\.0" also matches "layers.0.mlp.fc1";
///    write "re:.*fc1$" to anchor at the end. This keeps recipes written for
///    llmcompressor meaning the same thing here.
/// A module is selected when a target matches it and no ignore entry does.
///
/// Thread safety: immutable after construction, safe to share.
class TargetMatcher {
 public:
  /// Compiles the patterns. Throws ValueError
  /// "invalid regular expression in target 're:[': ..." naming the pattern.
  TargetMatcher(const std::vector<std::string>& targets, const std::vector<std::string>& ignore);
  ~TargetMatcher();
  TargetMatcher(TargetMatcher&&) noexcept;
  TargetMatcher& operator=(TargetMatcher&&) noexcept;

  /// True when a target matches `module` and no ignore entry does.
  bool matches(const ModuleInfo& module) const;

  /// Targets that claimed no module in the calls of matches() so far, in the
  /// order given (a module is claimed by the first target that matches it,
  /// before ignores apply, as in llmcompressor, which warns about these).
  std::vector<std::string> unmatched_targets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The modules of `model` selected by `targets` minus `ignore`, in model order
/// (see TargetMatcher for the forms). Throws ValueError for an invalid regex.
std::vector<ModuleInfo> match_modules(const Model& model, const std::vector<std::string>& targets,
                                      const std::vector<std::string>& ignore = {});

}  // namespace modkit
