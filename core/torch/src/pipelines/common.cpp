// The pipelines' shared steps: forwards that name the sample (and block) the model rejects, progress lines.
#include "pipelines.hpp"

#include <sstream>

namespace modkit::pipelines {
namespace {

// The cause of a TorchScript error: the interpreter puts a traceback first and
// the original error last ("RuntimeError: Expected weight to be ...").
std::string cause_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) return text;
  if (lines.front().find("failed in the TorchScript interpreter") == std::string::npos) return lines.front();
  std::string last = lines.back();
  for (const char* prefix : {"RuntimeError: ", "ValueError: ", "TypeError: ", "IndexError: "}) {
    if (last.rfind(prefix, 0) == 0) return last.substr(std::string(prefix).size());
  }
  return last;
}

}  // namespace

// True when `module` is `block` or inside it ("" is the root: everything is inside it).
bool within(const std::string& module, const std::string& block) {
  return module == block || block.empty() ||
         (module.size() > block.size() && module.compare(0, block.size(), block) == 0 && module[block.size()] == '.');
}

void progress(const PipelineRun& run, const std::string& line) {
  if (run.on_progress) run.on_progress(line);
}

// Runs one forward of `module` (the whole model, or the sequential pipeline's `block`) on
// `sample`; a sample the model rejects is named, with the block.
c10::IValue forward(const torch::jit::Module& module, const CalibrationSample& sample, size_t index,
                    const CalibrationData& data, const std::string& block) {
  const auto refuse = [&](const std::string& cause) {
    return ValueError("calibration sample " + std::to_string(index) + " of '" + data.source + "' does not fit " +
                      (block.empty() ? std::string("the model") : "block '" + block + "' of the model") + ": " + cause);
  };
  try {
    return call_forward(module, sample.args, sample.kwargs);
  } catch (const Error&) {
    throw;  // a hook's own error
  } catch (const c10::Error& e) {
    throw refuse(cause_of(e.what_without_backtrace()));
  } catch (const std::runtime_error& e) {
    throw refuse(cause_of(e.what()));
  }
}

void run_all_samples(const PipelineRun& run) {
  for (size_t i = 0; i < run.data->size(); ++i) {
    progress(run, "sample " + std::to_string(i + 1) + "/" + std::to_string(run.data->size()));
    forward(run.model->module(), run.data->samples[i], i, *run.data);
  }
}

}  // namespace modkit::pipelines
