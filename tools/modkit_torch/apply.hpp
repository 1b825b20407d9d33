// `modkit-torch apply` in two parts: the run (apply.cpp) and its report (apply_report.cpp).
#pragma once

#include "options.hpp"

#include <modkit/torch/model.hpp>
#include <modkit/torch/oneshot.hpp>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace modkit::tool {

/// What one run did: everything its report says besides the compressed model itself.
struct ApplyRun {
  std::string model_name;                            ///< the --model path, or what was generated
  std::string calibration;                           ///< the samples' source, "" without any
  std::vector<OneshotStageSummary> stages;
  std::map<std::string, at::Tensor> weights_before;  ///< copies of every weight, keyed by module
  int64_t tensor_bytes_before = 0;
  int64_t file_bytes_before = 0;
  nlohmann::json output_error;                       ///< {on, relative, data_free_baseline}, null when not measured
  nlohmann::json notes = nlohmann::json::array();    ///< what the user should know about the run
};

/// The report of `run` over the compressed `model` (file_bytes_after is left null: the caller
/// knows it once the model is saved). Adds the notes the stages call for.
nlohmann::json build_report(const ApplyRun& run, const Model& model, const cli::ApplyOptions& o);

/// The report as a terminal shows it.
void print_report(std::ostream& out, const nlohmann::json& report, const ApplyRun& run, const cli::ApplyOptions& o);

/// Whether `module` of `model` has a parameter or buffer `name`.
bool has_tensor(const Model& model, const std::string& module, const std::string& name);
/// Bytes of every parameter and buffer.
int64_t tensor_bytes(const torch::jit::Module& m);
/// Bytes of the module as torch.jit.save writes it.
int64_t serialized_bytes(const torch::jit::Module& m);

}  // namespace modkit::tool
