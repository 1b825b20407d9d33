// Oneshot compression of a model by a recipe: llmcompressor's oneshot() for data-free modifiers.
#pragma once

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/pipeline.hpp>

#include <cstdint>
#include <functional>
#include <optional>
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
  /// Called with each step of a calibration pipeline ("block 2/8 'layers.1':
  /// sample 3/16"). May be empty.
  std::function<void(const std::string&)> on_progress;
  /// The samples calibrating modifiers run (borrowed; may be null when every
  /// stage is data-free).
  const CalibrationData* calibration = nullptr;
  /// Every stage runs this pipeline instead of the one its modifiers ask for.
  std::optional<PipelineKind> pipeline;
  /// The blocks of the sequential pipeline (see PipelineRun); empty: a
  /// modifier's `sequential_targets` parameter, else the model's first
  /// ModuleList or Sequential.
  std::vector<std::string> sequential_targets;
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
  /// The pipeline that ran, its blocks (sequential) and samples, and why it
  /// differs from the one asked for ("" when it does not).
  PipelineKind pipeline = PipelineKind::Datafree;
  std::vector<std::string> blocks;
  size_t samples = 0;
  std::string pipeline_note;
  double seconds = 0;
};

/// Applies `recipe` to `model` in one shot, as llmcompressor's oneshot().
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
///  3. a fresh Session takes the stage and runs its pipeline (run_pipeline:
///     the most demanding one its modifiers declare — datafree < basic <
///     sequential — or options.pipeline) over options.calibration, then
///     finalizes the stage. A stage that calibrates without samples is a
///     RecipeError at its first calibrating modifier.
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
