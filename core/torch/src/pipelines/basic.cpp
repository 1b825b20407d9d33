// The basic pipeline: every sample through the whole model, then one SEQUENTIAL_EPOCH_END for every module.
#include "pipelines.hpp"

namespace modkit::pipelines {

void run_basic(const PipelineRun& run) {
  run_all_samples(run);
  run.session->event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, run.modules);
}

}  // namespace modkit::pipelines
