// Calibration pipelines of oneshot runs (llmcompressor's datafree, basic and sequential pipelines).
#pragma once

#include <modkit/core/modifier_info.hpp>
#include <modkit/core/session.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/model.hpp>

#include <functional>
#include <string>
#include <vector>

namespace modkit {

/// How a stage's modifiers see calibration data.
/// The pipelines of modkit.h's MODKIT_PIPELINES, with their ABI codes as values.
enum class PipelineKind : uint32_t {
  /// No data: CALIBRATION_START, one SEQUENTIAL_EPOCH_END with the stage's
  /// modules, CALIBRATION_END.
  Datafree = MODKIT_PIPELINE_DATAFREE,
  /// Every sample through the whole model (hooks gather statistics), then one
  /// SEQUENTIAL_EPOCH_END with the stage's modules, CALIBRATION_END.
  Basic = MODKIT_PIPELINE_BASIC,
  /// Block by block, for models built as a sequence of blocks (the decoder
  /// layers of a transformer): the inputs of the first block are captured;
  /// then each block runs every sample (its hooks gather statistics), gets a
  /// SEQUENTIAL_EPOCH_END with its modules (modifiers compress them), and runs
  /// again with hooks disabled so that its compressed output feeds the next
  /// block. Memory holds one block's statistics and activations at a time.
  /// Targeted modules outside every block (a head) are calibrated after the
  /// last block by a pass through the whole model.
  Sequential = MODKIT_PIPELINE_SEQUENTIAL,
};

/// "datafree", "basic", "sequential".
const char* to_string(PipelineKind kind);
/// Parses a pipeline name; throws ValueError naming the choices.
PipelineKind parse_pipeline(const std::string& name);

/// What one stage's pipeline runs on.
struct PipelineRun {
  Model* model = nullptr;
  /// An initialized session holding the stage; receives the calibration events.
  Session* session = nullptr;
  /// The samples (Basic, Sequential); may be null for Datafree.
  const CalibrationData* data = nullptr;
  /// The modules the stage targets, in model order: the modules of the
  /// SEQUENTIAL_EPOCH_END events.
  std::vector<std::string> modules;
  /// Sequential: the blocks, as recipe targets (class name, module name or
  /// re:<regex>; outermost matches are the blocks). Empty: the children of
  /// the model's first ModuleList or Sequential with two or more children.
  std::vector<std::string> sequential_targets;
  /// Called with a short line at each step ("block 3/8 'layers.2'"), or empty.
  std::function<void(const std::string&)> on_progress;
};

/// What a pipeline did.
struct PipelineReport {
  PipelineKind kind = PipelineKind::Datafree;
  /// Sequential: the blocks, in order.
  std::vector<std::string> blocks;
  /// Samples run (0 for Datafree).
  size_t samples = 0;
  /// Why the kind differs from the one asked for, or "".
  std::string note;
};

/// Runs the calibration events of `run.session` with `kind`. Forwards run
/// without autograd. Throws ValueError when Basic or Sequential has no
/// samples, "calibration sample N of '<source>' does not fit the model: ..."
/// when the model rejects a sample, and (Sequential) when the blocks do not
/// follow each other; a failing hook's own exception otherwise. A Sequential
/// run on a model without blocks runs Basic instead (see the report's note).
PipelineReport run_pipeline(PipelineKind kind, const PipelineRun& run);

}  // namespace modkit
