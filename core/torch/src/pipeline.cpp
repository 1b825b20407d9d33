// run_pipeline: checks a run, sends CALIBRATION_START and CALIBRATION_END around the pipeline asked for (one file
// each in pipelines/), and reports what ran.
#include "pipelines/pipelines.hpp"

#include <ATen/core/grad_mode.h>

namespace modkit {
namespace {

void require_samples(const PipelineRun& run, PipelineKind kind) {
  if (run.data == nullptr || run.data->empty()) {
    throw ValueError(std::string("the ") + to_string(kind) +
                     " pipeline needs calibration samples, found none (give calibration data, e.g. modkit apply --calib FILE)");
  }
}

}  // namespace

const char* to_string(PipelineKind kind) {
  const char* keyword = pipeline_keyword(static_cast<uint32_t>(kind));
  return keyword != nullptr ? keyword : "unknown";
}

PipelineKind parse_pipeline(const std::string& name) {
  const std::vector<std::string> keywords = pipeline_keywords();
  std::string choices;
  for (uint32_t code = 0; code < keywords.size(); ++code) {
    if (name == keywords[code]) return static_cast<PipelineKind>(code);
    choices += (code ? ", " : "") + keywords[code];
  }
  throw ValueError("unknown pipeline '" + name + "', expected one of " + choices);
}

PipelineReport run_pipeline(PipelineKind kind, const PipelineRun& run) {
  if (run.model == nullptr || run.session == nullptr) throw ValueError("run_pipeline needs a model and a session");
  PipelineReport report;
  report.kind = kind;
  if (kind != PipelineKind::Datafree) require_samples(run, kind);
  if (kind == PipelineKind::Sequential) {
    report.blocks = pipelines::find_blocks(*run.model, run.sequential_targets);
    if (report.blocks.empty()) {
      report.kind = PipelineKind::Basic;
      report.note = "no blocks found (no ModuleList or Sequential with two or more children; set "
                    "sequential_targets): ran the basic pipeline";
    }
  }
  const at::NoGradGuard no_grad;
  Session& session = *run.session;
  session.event(EventType::CalibrationStart);
  switch (report.kind) {
    case PipelineKind::Datafree:
      pipelines::run_datafree(run);
      break;
    case PipelineKind::Basic:
      pipelines::run_basic(run);
      break;
    case PipelineKind::Sequential:
      pipelines::run_sequential(run, report.blocks);
      break;
  }
  report.samples = report.kind == PipelineKind::Datafree ? 0 : run.data->size();
  session.event(EventType::CalibrationEnd);
  return report;
}

}  // namespace modkit
