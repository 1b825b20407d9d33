// The datafree pipeline: no forward runs; one SEQUENTIAL_EPOCH_END lists every module of the stage.
#include "pipelines.hpp"

namespace modkit::pipelines {

void run_datafree(const PipelineRun& run) {
  run.session->event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, run.modules);
}

}  // namespace modkit::pipelines
