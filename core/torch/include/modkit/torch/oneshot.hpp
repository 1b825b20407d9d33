// Oneshot compression of a model by a recipe: llmcompressor's oneshot() for data-free modifiers.
#pragma once

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/torch/model.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace modkit {

/// How oneshot() runs.
struct OneshotOptions {
  /// When a modifier's targets select no module of the model, skip that
  /// modifier (noted in its summary) instead of failing.
  bool allow_unmatched = false;
  /// Passed to build_stages: host-side registered types may be used.
  bool allow_registered = true;
  /// Passed to build_stages: experimental plugin types may be used.
  bool allow_experimental = true;
  /// Called before each stage runs with (stage position, stage count, stage
  /// name), e.g. to show progress. May be empty.
  std::function<void(size_t, size_t, const std::string&)> on_stage;
};

/// What oneshot() did with one modifier.
struct OneshotModifierSummary {
  std::string type;
  std::string group;
  int64_t index = 0;
  /// The modules its targets (minus ignore) select, in model order; empty
  /// when the modifier has no `targets` parameter.
  std::vector<std::string> modules;
  /// Targets that claimed no module (the others did).
  std::vector<std::string> unmatched_targets;
  /// True when it was skipped because nothing matched (allow_unmatched).
  bool skipped = false;
  /// Why it was skipped, or "".
  std::string note;
  /// Its resolved parameters (defaults filled in for plugin types).
  Params params;
};

/// What oneshot() did with one stage.
struct OneshotStageSummary {
  std::string name;
  std::string group;
  int64_t index = 0;
  std::vector<OneshotModifierSummary> modifiers;
  /// The modules sent with SEQUENTIAL_EPOCH_END: the union of what the
  /// stage's modifiers target, in model order (every module when one of them
  /// has no `targets` parameter).
  std::vector<std::string> modules;
  double seconds = 0;
};

/// Applies `recipe` to `model` in one shot, as llmcompressor's oneshot() does
/// for data-free modifiers (no calibration data is read).
///
/// Every modifier of every stage is created first (build_stages: the recipe
/// is checked against `factory` before the model is touched). Then the stages
/// run one at a time, in order; for each stage:
///  1. the modules each modifier targets are matched (its `targets` and
///     `ignore` with the schema's defaults); a modifier whose targets select
///     nothing is a RecipeError at its `targets` key ("targets [...] match no
///     module"), or is skipped when `options.allow_unmatched`;
///  2. each modifier is initialized with State{Model::host(), model.handle()}
///     (a failure is rethrown as RecipeError at that modifier's entry);
///  3. a fresh Session takes the stage and sends CALIBRATION_START, one
///     SEQUENTIAL_EPOCH_END with the targeted modules, CALIBRATION_END, then
///     finalizes the stage.
/// One Session per stage keeps the session's rules (initialize once, events
/// only between initialize and finalize, finalize once) exactly as they are;
/// the session's initialize() skips modifiers already initialized, which lets
/// step 2 name the modifier that failed.
///
/// Throws RecipeError for recipe problems (including a stage whose run_type
/// is "train") and whatever a modifier throws. On failure the model may be
/// partly changed: callers that save must save only on success.
/// Not thread-safe: one call at a time per model.
std::vector<OneshotStageSummary> oneshot(Model& model, const Recipe& recipe, const ModifierFactory& factory,
                                         const OneshotOptions& options = {});

}  // namespace modkit
