// What the pipelines share (core/torch/src/pipelines/): forwards that name the sample they fail on, progress,
// and one function per pipeline, which run_pipeline() (pipeline.cpp) dispatches to.
#pragma once

#include <modkit/torch/pipeline.hpp>

#include <string>
#include <vector>

namespace modkit::pipelines {

/// True when `module` is `block` or inside it ("" is the root: everything is inside it).
bool within(const std::string& module, const std::string& block);

/// Reports one step of the run to run.on_progress, when set.
void progress(const PipelineRun& run, const std::string& line);

/// Runs one forward of `module` (the whole model, or the sequential pipeline's `block`) on
/// `sample`; a sample the model rejects is named, with the block.
c10::IValue forward(const torch::jit::Module& module, const CalibrationSample& sample, size_t index,
                    const CalibrationData& data, const std::string& block = "");

/// Every sample through the whole model.
void run_all_samples(const PipelineRun& run);

/// The sequential pipeline's blocks: the outermost modules `targets` match, or (no targets) the
/// children of the first ModuleList/Sequential with at least two children; empty when there is
/// none. Throws when targets are given and match nothing.
std::vector<std::string> find_blocks(const Model& model, const std::vector<std::string>& targets);

/// One function per pipeline: the forwards and the SEQUENTIAL_EPOCH_END events between the
/// session's CALIBRATION_START and CALIBRATION_END (which run_pipeline sends).
void run_datafree(const PipelineRun& run);
void run_basic(const PipelineRun& run);
void run_sequential(const PipelineRun& run, const std::vector<std::string>& blocks);

}  // namespace modkit::pipelines
