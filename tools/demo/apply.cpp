// `modkit-torch apply`: loads a TorchScript model, applies a recipe in one shot, saves atomically and reports what changed.
#include "torch_tool.hpp"
#include "cli_support.hpp"

#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/logging.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/signals.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/oneshot.hpp>
#include <modkit/torch/test_models.hpp>

#include <nlohmann/json.hpp>
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/api/module.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace modkit::tool {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ApplyOptions {
  std::vector<std::string> plugin_dirs;
  std::string recipe;
  std::string model;
  std::string output;
  std::string report;
  std::string calib;
  std::string pipeline;
  std::vector<std::string> sequential_targets;
  int64_t samples = 0;
  int threads = 0;
  bool allow_unmatched = false;
  bool json = false;
  int verbose = 0;
};

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

int64_t tensor_bytes(const torch::jit::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters(true)) n += static_cast<int64_t>(p.value.nbytes());
  for (const auto& b : m.named_buffers(true)) n += static_cast<int64_t>(b.value.nbytes());
  return n;
}

int64_t serialized_bytes(const torch::jit::Module& m) {
  std::ostringstream out;
  m.save(out);
  return static_cast<int64_t>(out.str().size());
}

bool has_tensor(const Model& model, const std::string& module, const std::string& name) {
  for (const auto& t : model.tensors(module)) {
    if (t.name == name) return true;
  }
  return false;
}

double sparsity_of(const at::Tensor& t) {
  return t.numel() ? t.eq(0).sum().item<double>() / static_cast<double>(t.numel()) : 0.0;
}

// Weight bits a quantization modifier asks for: num_bits, or N in a "WNA..." scheme; 0 when unknown.
int weight_bits(const Params& params) {
  if (params.contains("num_bits") && params["num_bits"].is_number_integer()) return params["num_bits"].get<int>();
  if (params.contains("scheme") && params["scheme"].is_string()) {
    std::smatch m;
    const std::string scheme = params["scheme"].get<std::string>();
    if (std::regex_search(scheme, m, std::regex("^W(\\d+)", std::regex::icase))) return std::stoi(m[1]);
    if (scheme.find("FP8") != std::string::npos) return 8;
  }
  if (params.contains("config_groups") && params["config_groups"].is_object()) {
    // one answer only when every group quantizes weights with the same bits
    int bits = 0;
    for (const auto& group : params["config_groups"]) {
      const json weights = group.value("weights", json());
      if (!weights.is_object()) continue;
      const int b = weights.value("num_bits", 8);
      if (bits != 0 && b != bits) return 0;
      bits = b;
    }
    return bits;
  }
  return 0;
}

// Granularity of a weight_scale next to `weight`: one scale, one per output channel, or per group.
std::string granularity(const at::Tensor& scale, const at::Tensor& weight) {
  if (scale.numel() <= 1) return "tensor";
  if (weight.dim() == 2 && scale.dim() >= 1 && scale.size(0) == weight.size(0)) {
    const int64_t per_row = scale.numel() / weight.size(0);
    if (per_row == 1) return "channel";
    if (per_row > 0 && weight.size(1) % per_row == 0) return "group " + std::to_string(weight.size(1) / per_row);
  }
  return "shape " + c10::str(scale.sizes());
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string bytes_text(int64_t n) {
  if (n < 0) return "-";
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? std::to_string(n) + " B" : fixed(v, 1) + " " + units[u];
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = "  ";
    for (size_t i = 0; i < row.size(); ++i) {
      // numbers right-aligned, names left-aligned
      const bool left = i == 0;
      const std::string pad(widths[i] - row[i].size(), ' ');
      line += (left ? row[i] + pad : pad + row[i]) + (i + 1 < row.size() ? "  " : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
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

int run_apply(const ApplyOptions& o) {
  if (!o.model.empty() && o.output.empty()) {
    std::cerr << "modkit: --model needs --output (where to write the compressed model)\n";
    return 2;
  }
  // LibTorch's default is half the cores; compression work is worth all of them
  const unsigned cores = std::thread::hardware_concurrency();
  at::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(cores > 0 ? cores : 1));
  modkit::log_to_stderr();
  modkit::set_log_level(o.verbose >= 2 ? LogLevel::Debug : o.verbose == 1 ? LogLevel::Warn : LogLevel::Off);
  // what plugins log is their progress and findings: shown at INFO, as the core's diagnostics are not
  modkit::set_plugin_log_level(o.verbose >= 2 ? LogLevel::Debug : LogLevel::Info);
  Progress progress;
  json notes = json::array();

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
  FactoryOptions factory_options;
  factory_options.plugin_dirs = o.plugin_dirs;
  ModifierFactory factory(factory_options);
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
  const std::string model_name =
      o.model.empty() ? "<generated TinyTransformer: 2 layers, hidden " + std::to_string(kDefaultHidden) + ">" : o.model;
  Model model = o.model.empty() ? Model(test_models::make_tiny_transformer(2, kDefaultHidden, 1)) : Model::load(o.model);
  const int64_t bytes_before = tensor_bytes(model.module());
  const int64_t file_before = o.model.empty() ? serialized_bytes(model.module())
                                              : static_cast<int64_t>(fs::file_size(o.model));
  std::map<std::string, at::Tensor> before;  // copies of every weight, keyed by module
  for (const auto& m : model.modules()) {
    if (has_tensor(model, m.name, "weight")) {
      before[m.name] = model.get_tensor(m.name, "weight").detach().clone();
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
  const std::vector<OneshotStageSummary> stages = oneshot(model, recipe, factory, options);
  json output_error = nullptr;
  if (!reference.empty()) {
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
  std::vector<std::string> targeted;  // model order
  std::map<std::string, const OneshotModifierSummary*> quantized_by;
  {
    std::set<std::string> seen;
    for (const auto& s : stages) {
      for (const auto& m : s.modifiers) {
        if (m.skipped) continue;
        for (const auto& name : m.modules) {
          seen.insert(name);
          if (weight_bits(m.params) > 0) quantized_by[name] = &m;
        }
      }
    }
    for (const auto& m : model.modules()) {
      if (seen.count(m.name) && before.count(m.name)) targeted.push_back(m.name);
    }
  }
  json modules = json::array();
  for (const auto& name : targeted) {
    const at::Tensor w0 = before.at(name).to(at::kFloat);
    const at::Tensor w1_raw = model.get_tensor(name, "weight").detach();
    const at::Tensor w1 = w1_raw.to(at::kFloat);
    const double norm = w0.norm().item<double>();
    const double error = norm > 0 ? w1.sub(w0).norm().item<double>() / norm : 0.0;
    json row = {{"module", name},
                {"shape", w1_raw.sizes().vec()},
                {"sparsity_before", sparsity_of(w0)},
                {"sparsity", sparsity_of(w1)},
                {"relative_error", error},
                {"dtype", std::string(c10::toString(w1_raw.scalar_type()))}};
    const auto q = quantized_by.find(name);
    if (q != quantized_by.end() && has_tensor(model, name, "weight_scale")) {
      const at::Tensor scale = model.get_tensor(name, "weight_scale");
      row["bits"] = weight_bits(q->second->params);
      row["scheme"] = q->second->params.value("scheme", std::string("custom"));
      row["granularity"] = granularity(scale, w1_raw);
    } else {
      row["bits"] = static_cast<int>(w1_raw.element_size() * 8);
      row["scheme"] = nullptr;
      row["granularity"] = nullptr;
    }
    modules.push_back(row);
  }
  json stage_list = json::array();
  for (const auto& s : stages) {
    json mods = json::array();
    for (const auto& m : s.modifiers) {
      mods.push_back({{"type", m.type},
                      {"group", m.group},
                      {"index", m.index},
                      {"modules", m.modules},
                      {"unmatched_targets", m.unmatched_targets},
                      {"skipped", m.skipped},
                      {"note", m.note}});
      if (m.skipped) notes.push_back(m.note);
      if (!m.skipped && !m.unmatched_targets.empty()) {
        std::string t;
        for (const auto& u : m.unmatched_targets) t += (t.empty() ? "\"" : ", \"") + u + "\"";
        notes.push_back(m.type + ": targets [" + t + "] matched no module (the others did)");
      }
    }
    if (!s.pipeline_note.empty()) notes.push_back("stage '" + s.name + "': " + s.pipeline_note);
    stage_list.push_back({{"name", s.name},
                          {"group", s.group},
                          {"index", s.index},
                          {"seconds", s.seconds},
                          {"pipeline", to_string(s.pipeline)},
                          {"blocks", s.blocks},
                          {"samples", s.samples},
                          {"modules", s.modules.size()},
                          {"modifiers", mods}});
  }
  if (!o.calib.empty() && std::none_of(stages.begin(), stages.end(), [](const OneshotStageSummary& s) { return s.samples > 0; })) {
    notes.push_back("--calib " + o.calib + " was not used: every stage of the recipe is data-free");
  }
  const int64_t bytes_after = tensor_bytes(model.module());
  json report = {{"recipe", o.recipe.empty() ? "<default recipe>" : o.recipe},
                 {"model", model_name},
                 {"calibration", calibration ? json(calibration->source) : json(nullptr)},
                 {"output", o.output.empty() ? json(nullptr) : json(o.output)},
                 {"stages", stage_list},
                 {"modules", modules},
                 {"size",
                  {{"tensor_bytes_before", bytes_before},
                   {"tensor_bytes_after", bytes_after},
                   {"file_bytes_before", file_before},
                   {"file_bytes_after", nullptr}}},
                 {"output_error", output_error},
                 {"notes", notes}};

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
  if (o.json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::cout << "recipe " << report["recipe"].get<std::string>() << " on " << model_name << "\n";
  if (calibration && std::any_of(stages.begin(), stages.end(), [](const OneshotStageSummary& s) { return s.samples > 0; })) {
    std::cout << "calibration: " << calibration->source << "\n";
  }
  for (const auto& s : stages) {
    std::cout << "  stage '" << s.name << "': ";
    for (size_t i = 0; i < s.modifiers.size(); ++i) {
      const auto& m = s.modifiers[i];
      std::cout << (i ? ", " : "") << m.type;
      if (m.skipped) {
        std::cout << " (skipped)";
      } else if (!m.modules.empty()) {
        std::cout << " (" << m.modules.size() << " modules)";
      }
    }
    std::cout << " in " << fixed(s.seconds, 2) << " s";
    if (s.pipeline == PipelineKind::Sequential) {
      std::cout << ", sequential over " << s.blocks.size() << " blocks x " << s.samples << " samples";
    } else if (s.pipeline == PipelineKind::Basic) {
      std::cout << ", basic over " << s.samples << " samples";
    }
    std::cout << "\n";
  }
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows{{"MODULE", "SHAPE", "SPARSITY", "BITS", "SCHEME", "REL. ERROR"}};
  for (const auto& m : modules) {
    std::vector<int64_t> shape = m["shape"].get<std::vector<int64_t>>();
    std::string shape_s;
    for (size_t i = 0; i < shape.size(); ++i) shape_s += (i ? "x" : "") + std::to_string(shape[i]);
    std::string scheme = m["scheme"].is_null() ? "-" : m["scheme"].get<std::string>();
    if (!m["granularity"].is_null()) scheme += " (" + m["granularity"].get<std::string>() + ")";
    rows.push_back({m["module"].get<std::string>(), shape_s, fixed(100.0 * m["sparsity"].get<double>(), 1) + "%",
                    std::to_string(m["bits"].get<int>()), scheme, fixed(m["relative_error"].get<double>(), 4)});
  }
  print_table(rows);
  const json& size = report["size"];
  std::cout << "\nparameters+buffers: " << bytes_text(bytes_before) << " -> " << bytes_text(bytes_after)
            << "; file: " << bytes_text(size["file_bytes_before"].get<int64_t>()) << " -> "
            << bytes_text(size["file_bytes_after"].get<int64_t>()) << (o.output.empty() ? " (serialized, not saved)" : "")
            << "\n";
  if (!output_error.is_null()) {
    std::cout << "output error on " << output_error["on"].get<std::string>() << ": "
              << fixed(output_error["relative"].get<double>(), 4) << " (||y'-y||/||y||)";
    if (!output_error["data_free_baseline"].is_null()) {
      std::cout << "; the same compression without data (magnitude 2:4, RTN W4A16): "
                << fixed(output_error["data_free_baseline"].get<double>(), 4);
    }
    std::cout << "\n";
  }
  for (const auto& n : notes) std::cout << "note: " << n.get<std::string>() << "\n";
  if (!o.output.empty()) std::cout << "wrote " << o.output << " (load it with torch.jit.load)\n";
  if (!o.report.empty()) std::cout << "wrote " << o.report << "\n";
  return 0;
}

}  // namespace

void add_apply_command(CLI::App& parent, std::function<int()>& run_selected) {
  CLI::App* app = parent.add_subcommand("apply", "apply a recipe to a TorchScript model in one shot and report");
  auto o = std::make_shared<ApplyOptions>();
  app->add_option("--plugin-dir", o->plugin_dirs, "plugin directory, searched first (repeatable)");
  app->add_option("--recipe", o->recipe, "the recipe (.toml or .yaml); default: the built-in one");
  app->add_option("--model", o->model, "the TorchScript model; default: a generated small transformer");
  app->add_option("--output", o->output, "where to write the compressed model (atomically)");
  app->add_option("--report", o->report, "also write the report as JSON to this file");
  app->add_option("--calib", o->calib, "calibration samples (torch.save list or safetensors)");
  app->add_option("--samples", o->samples, "use only the first N calibration samples")->check(cli::positive_count());
  app->add_option("--pipeline", o->pipeline, "run every stage with this pipeline")
      ->check(CLI::IsMember(pipeline_keywords()));
  app->add_option("--sequential-targets", o->sequential_targets, "the blocks of the sequential pipeline");
  app->add_option("--threads", o->threads, "intra-op threads (default: every core)")->check(cli::positive_count());
  app->add_flag("--allow-unmatched", o->allow_unmatched, "skip modifiers whose targets match no module");
  app->add_flag("--json", o->json, "print the report as JSON");
  app->add_flag("-v,--verbose", o->verbose, "log the core's warnings (-vv: debug) to stderr");
  app->callback([&run_selected, o] { run_selected = [o] { return run_apply(*o); }; });
}

}  // namespace modkit::tool
