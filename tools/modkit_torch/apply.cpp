// `modkit-torch apply`: loads a TorchScript model, applies a recipe in one shot, saves atomically and reports what changed.
#include "apply.hpp"
#include "torch_tool.hpp"

#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/logging.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/signals.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/demo_models.hpp>

#include <ATen/Parallel.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/sum.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

namespace modkit::tool {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The built-in recipes of `modkit apply` without --recipe. With the calibration plugins
// installed: SparseGPT 2:4 then GPTQ W4A16, calibrated (sequential pipeline). Otherwise, and as
// that one's baseline: the same compression without data, magnitude 2:4 then RTN W4A16.
const char* const kDefaultCalibrated = R"([[stage]]
name = "sparsity"

[[stage.modifiers]]
type = "SparseGPTModifier"
targets = ["Linear"]
ignore = ["lm_head"]
sparsity = 0.5
mask_structure = "2:4"

[[stage]]
name = "quantization"

[[stage.modifiers]]
type = "GPTQModifier"
targets = ["Linear"]
ignore = ["lm_head"]
scheme = "W4A16"
)";

// MagnitudePruningModifier prunes at initialize when start <= 0, with init_sparsity; init =
// final and end = start + 1 make that the whole schedule (no BATCH_START ever comes in oneshot).
const char* const kDefaultPruning = R"([[stage]]
name = "sparsity"
run_type = "oneshot"

[[stage.modifiers]]
type = "MagnitudePruningModifier"
targets = ["Linear"]
ignore = ["lm_head"]
mask_structure = "2:4"
init_sparsity = 0.5
final_sparsity = 0.5
start = 0
end = 1
update = 1
)";

// Added when a QuantizationModifier is installed (plugins/quantization).
const char* const kDefaultQuantization = R"(
[[stage]]
name = "quantization"
run_type = "oneshot"

[[stage.modifiers]]
type = "QuantizationModifier"
targets = ["Linear"]
ignore = ["lm_head"]
scheme = "W4A16"
)";

// The generated model of `modkit apply` without --model: hidden 128 makes every in_features
// (128, 256) a multiple of W4A16's group size; its synthetic calibration set.
constexpr int64_t kDefaultHidden = 128;
constexpr int64_t kDefaultSamples = 16;

// A single status line on a terminal; nothing in a pipe (DESIGN.md: quiet in a pipe).
class Progress {
 public:
  Progress() : on_(::isatty(STDERR_FILENO) == 1) {}
  ~Progress() { clear(); }
  void show(const std::string& text) {
    if (!on_) return;
    std::cerr << "\r\033[K" << text << std::flush;
    shown_ = true;
    modkit::set_signal_preamble("\n");  // a signal ending the run ends the line first
  }
  void clear() {
    if (on_ && shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
    modkit::set_signal_preamble("");
  }

 private:
  bool on_;
  bool shown_ = false;
};

// The checks Model::save makes, done before the (possibly long) work so a bad destination fails fast.
void check_destination(const std::string& path, const std::string& what) {
  modkit::check_output_path(path, "cannot save " + what + " '" + path + "': ");
}

// An output must not be another output or an input of the run: the report written over the model,
// the recipe or the calibration file destroyed it. Character devices (/dev/null) are exempt.
// --output may be --model: the model is read whole before it is replaced, atomically.
void check_distinct(const std::string& output_flag, const std::string& output, const std::string& other_flag,
                    const std::string& other) {
  if (output.empty() || other.empty() || !modkit::same_file(output, other)) return;
  struct stat st {};
  if (::stat(output.c_str(), &st) == 0 && S_ISCHR(st.st_mode)) return;
  throw ValueError(output_flag + " '" + output + "' is the same file as " + other_flag + " '" + other +
                   "'; writing it would replace that file: give another path");
}

// The model's tensor outputs on `data` (empty when the model returns something else).
std::vector<at::Tensor> model_outputs(const Model& model, const CalibrationData& data) {
  std::vector<at::Tensor> out;
  const at::NoGradGuard no_grad;
  for (const CalibrationSample& s : data.samples) {
    const c10::IValue y = model.forward(s.args, s.kwargs);
    if (!y.isTensor()) return {};
    out.push_back(y.toTensor());
  }
  return out;
}

// sqrt(sum ||b - a||^2 / sum ||a||^2) over the outputs.
double relative_error(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += b[i].sub(a[i]).pow(2).sum().item<double>();
    den += a[i].pow(2).sum().item<double>();
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

// Writes the report as indented JSON, atomically.
void write_report(const std::string& path, const json& report) {
  modkit::write_atomically(path, report.dump(2) + "\n", "cannot save report '" + path + "': ");
}

}  // namespace

int run_apply(const cli::GlobalOptions& global, const cli::ApplyOptions& o) {
  cli::check_apply_options(o);
  // LibTorch's default is half the cores; compression work is worth all of them
  const unsigned cores = std::thread::hardware_concurrency();
  at::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(cores > 0 ? cores : 1));
  cli::set_up_logging(global);
  // what plugins log is their progress and findings: shown at INFO, as the core's diagnostics are not
  modkit::set_plugin_log_level(global.verbose >= 2 ? LogLevel::Debug : LogLevel::Info);
  Progress progress;
  ApplyRun run;
  json& notes = run.notes;

  // 1. fast checks: destinations, plugins, recipe
  if (!o.output.empty()) check_destination(o.output, "model");
  if (!o.report.empty()) check_destination(o.report, "report");
  for (const auto& [flag, input] : {std::pair<const char*, const std::string&>{"--model", o.model},
                                    {"--recipe", o.recipe}, {"--calib", o.calib}, {"--output", o.output}}) {
    check_distinct("--report", o.report, flag, input);
  }
  check_distinct("--output", o.output, "--recipe", o.recipe);
  check_distinct("--output", o.output, "--calib", o.calib);
  progress.show("loading plugins...");
  ModifierFactory factory(cli::factory_options(global));
  factory.refresh();

  Recipe recipe;
  std::optional<Recipe> baseline_recipe;  // the default's data-free counterpart, for comparison
  if (o.recipe.empty()) {
    std::string data_free = kDefaultPruning;
    if (factory.find("QuantizationModifier")) {
      data_free += kDefaultQuantization;
    } else {
      notes.push_back("QuantizationModifier is not installed: the default recipe prunes only");
    }
    if (factory.find("SparseGPTModifier") && factory.find("GPTQModifier")) {
      recipe = Recipe::parse_toml(kDefaultCalibrated, "<default recipe>");
      baseline_recipe = Recipe::parse_toml(data_free, "<data-free baseline>");
    } else {
      notes.push_back("SparseGPTModifier or GPTQModifier is not installed: the default recipe is data-free");
      recipe = Recipe::parse_toml(data_free, "<default recipe>");
    }
  } else {
    recipe = Recipe::load(o.recipe);
  }
  check_recipe(recipe, factory);

  // 2. the calibration samples (synthetic hidden states for the generated model), then the model
  std::optional<CalibrationData> calibration;
  if (!o.calib.empty()) {
    progress.show("reading " + o.calib + "...");
    calibration = CalibrationData::load(o.calib);
  } else if (o.model.empty()) {
    calibration = CalibrationData::synthetic(kDefaultSamples, {1, 64, kDefaultHidden}, 7);
  }
  if (calibration && o.samples > 0) {
    if (static_cast<size_t>(o.samples) > calibration->size()) {
      notes.push_back("--samples " + std::to_string(o.samples) + ": " + calibration->source + " has " +
                      std::to_string(calibration->size()) + " samples, and all of them were used");
    }
    calibration->truncate(static_cast<size_t>(o.samples));
  }
  progress.show(o.model.empty() ? "generating the model..." : "loading " + o.model + "...");
  run.model_name =
      o.model.empty() ? "<generated TinyTransformer: 2 layers, hidden " + std::to_string(kDefaultHidden) + ">" : o.model;
  if (calibration) run.calibration = calibration->source;
  Model model = o.model.empty() ? Model(demo_models::make_tiny_transformer(2, kDefaultHidden, 1)) : Model::load(o.model);
  run.tensor_bytes_before = tensor_bytes(model.module());
  run.file_bytes_before = o.model.empty() ? serialized_bytes(model.module())
                                              : static_cast<int64_t>(fs::file_size(o.model));
  for (const auto& m : model.modules()) {
    if (has_tensor(model, m.name, "weight")) {
      run.weights_before[m.name] = model.get_tensor(m.name, "weight").detach().clone();
    }
  }

  // the outputs to compare with afterwards: held-out samples for the generated model, else the
  // first calibration samples
  CalibrationData evaluation;
  if (o.model.empty()) {
    evaluation = CalibrationData::synthetic(4, {1, 64, kDefaultHidden}, 8);
    evaluation.source = "4 held-out synthetic samples";
  } else if (calibration) {
    evaluation = *calibration;
    evaluation.truncate(4);
    evaluation.source = std::to_string(evaluation.size()) + " calibration samples";
  }
  std::optional<Model> baseline;
  if (baseline_recipe) baseline.emplace(model.module().clone());  // own types: buffers added to one stay there
  const std::vector<at::Tensor> reference = model_outputs(model, evaluation);

  // 3. oneshot
  OneshotOptions options;
  options.allow_unmatched = o.allow_unmatched;
  std::string stage_line;
  options.on_stage = [&](size_t i, size_t n, const std::string& name) {
    stage_line = "stage " + std::to_string(i + 1) + "/" + std::to_string(n) + " '" + name + "'";
    progress.show(stage_line + "...");
  };
  options.on_progress = [&](const std::string& step) { progress.show(stage_line + ": " + step); };
  if (calibration) options.calibration = &*calibration;
  if (!o.pipeline.empty()) options.pipeline = parse_pipeline(o.pipeline);
  options.sequential_targets = o.sequential_targets;
  run.stages = oneshot(model, recipe, factory, options);
  if (!reference.empty()) {
    json& output_error = run.output_error;
    output_error = {{"on", evaluation.source}, {"relative", relative_error(reference, model_outputs(model, evaluation))},
                    {"data_free_baseline", nullptr}};
    if (baseline) {
      progress.show("the data-free baseline...");
      OneshotOptions quiet;
      oneshot(*baseline, *baseline_recipe, factory, quiet);
      output_error["data_free_baseline"] = relative_error(reference, model_outputs(*baseline, evaluation));
    }
  }

  // 4. the report (built before saving, so nothing can fail between save and exit)
  json report = build_report(run, model, o);

  // 5. save the model atomically, then the report (also atomically); a report that cannot be
  // written takes a new output file with it, so a failed run leaves no output behind
  if (!o.output.empty()) {
    progress.show("saving " + o.output + "...");
    const bool existed = fs::exists(o.output);
    model.save(o.output);
    report["size"]["file_bytes_after"] = fs::is_regular_file(o.output) ? static_cast<int64_t>(fs::file_size(o.output))
                                                                       : serialized_bytes(model.module());
    if (!o.report.empty()) {
      try {
        write_report(o.report, report);
      } catch (...) {
        if (!existed) ::unlink(o.output.c_str());
        throw;
      }
    }
  } else {
    report["size"]["file_bytes_after"] = serialized_bytes(model.module());
    if (!o.report.empty()) write_report(o.report, report);
  }
  progress.clear();

  // 6. show it
  if (global.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    print_report(std::cout, report, run, o);
  }
  return 0;
}

}  // namespace modkit::tool
