// The report of `modkit-torch apply`: per-module sparsity, bits and error, sizes, notes; as JSON and for a terminal.
#include "apply.hpp"

#include <modkit/core/params.hpp>

#include <ATen/ops/eq.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/norm.h>

#include <algorithm>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

namespace modkit::tool {
namespace {

using nlohmann::json;

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

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
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
    out << line << "\n";
  }
}

}  // namespace

bool has_tensor(const Model& model, const std::string& module, const std::string& name) {
  for (const auto& t : model.tensors(module)) {
    if (t.name == name) return true;
  }
  return false;
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

json build_report(const ApplyRun& run, const Model& model, const cli::ApplyOptions& o) {
  json notes = run.notes;
  std::vector<std::string> targeted;  // model order
  std::map<std::string, const OneshotModifierSummary*> quantized_by;
  {
    std::set<std::string> seen;
    for (const auto& s : run.stages) {
      for (const auto& m : s.modifiers) {
        if (m.skipped) continue;
        for (const auto& name : m.modules) {
          seen.insert(name);
          if (weight_bits(m.params) > 0) quantized_by[name] = &m;
        }
      }
    }
    for (const auto& m : model.modules()) {
      if (seen.count(m.name) && run.weights_before.count(m.name)) targeted.push_back(m.name);
    }
  }
  json modules = json::array();
  for (const auto& name : targeted) {
    const at::Tensor w0 = run.weights_before.at(name).to(at::kFloat);
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
  for (const auto& s : run.stages) {
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
  if (!o.calib.empty() && std::none_of(run.stages.begin(), run.stages.end(), [](const OneshotStageSummary& s) { return s.samples > 0; })) {
    notes.push_back("--calib " + o.calib + " was not used: every stage of the recipe is data-free");
  }
  json report = {{"recipe", o.recipe.empty() ? "<default recipe>" : o.recipe},
                 {"model", run.model_name},
                 {"calibration", run.calibration.empty() ? json(nullptr) : json(run.calibration)},
                 {"output", o.output.empty() ? json(nullptr) : json(o.output)},
                 {"stages", stage_list},
                 {"modules", modules},
                 {"size",
                  {{"tensor_bytes_before", run.tensor_bytes_before},
                   {"tensor_bytes_after", tensor_bytes(model.module())},
                   {"file_bytes_before", run.file_bytes_before},
                   {"file_bytes_after", nullptr}}},
                 {"output_error", run.output_error},
                 {"notes", notes}};

  return report;
}

void print_report(std::ostream& out, const json& report, const ApplyRun& run, const cli::ApplyOptions& o) {
  out << "recipe " << report["recipe"].get<std::string>() << " on " << run.model_name << "\n";
  if (!run.calibration.empty() &&
      std::any_of(run.stages.begin(), run.stages.end(), [](const OneshotStageSummary& s) { return s.samples > 0; })) {
    out << "calibration: " << run.calibration << "\n";
  }
  for (const auto& s : run.stages) {
    out << "  stage '" << s.name << "': ";
    for (size_t i = 0; i < s.modifiers.size(); ++i) {
      const auto& m = s.modifiers[i];
      out << (i ? ", " : "") << m.type;
      if (m.skipped) {
        out << " (skipped)";
      } else if (!m.modules.empty()) {
        out << " (" << m.modules.size() << " modules)";
      }
    }
    out << " in " << fixed(s.seconds, 2) << " s";
    if (s.pipeline == PipelineKind::Sequential) {
      out << ", sequential over " << s.blocks.size() << " blocks x " << s.samples << " samples";
    } else if (s.pipeline == PipelineKind::Basic) {
      out << ", basic over " << s.samples << " samples";
    }
    out << "\n";
  }
  out << "\n";
  std::vector<std::vector<std::string>> rows{{"MODULE", "SHAPE", "SPARSITY", "BITS", "SCHEME", "REL. ERROR"}};
  for (const auto& m : report["modules"]) {
    std::vector<int64_t> shape = m["shape"].get<std::vector<int64_t>>();
    std::string shape_s;
    for (size_t i = 0; i < shape.size(); ++i) shape_s += (i ? "x" : "") + std::to_string(shape[i]);
    std::string scheme = m["scheme"].is_null() ? "-" : m["scheme"].get<std::string>();
    if (!m["granularity"].is_null()) scheme += " (" + m["granularity"].get<std::string>() + ")";
    rows.push_back({m["module"].get<std::string>(), shape_s, fixed(100.0 * m["sparsity"].get<double>(), 1) + "%",
                    std::to_string(m["bits"].get<int>()), scheme, fixed(m["relative_error"].get<double>(), 4)});
  }
  print_table(out, rows);
  const json& size = report["size"];
  out << "\nparameters+buffers: " << bytes_text(size["tensor_bytes_before"].get<int64_t>()) << " -> "
      << bytes_text(size["tensor_bytes_after"].get<int64_t>())
            << "; file: " << bytes_text(size["file_bytes_before"].get<int64_t>()) << " -> "
            << bytes_text(size["file_bytes_after"].get<int64_t>()) << (o.output.empty() ? " (serialized, not saved)" : "")
            << "\n";
  const json& output_error = report["output_error"];
  if (!output_error.is_null()) {
    out << "output error on " << output_error["on"].get<std::string>() << ": "
              << fixed(output_error["relative"].get<double>(), 4) << " (||y'-y||/||y||)";
    if (!output_error["data_free_baseline"].is_null()) {
      out << "; the same compression without data (magnitude 2:4, RTN W4A16): "
                << fixed(output_error["data_free_baseline"].get<double>(), 4);
    }
    out << "\n";
  }
  for (const auto& n : report["notes"]) out << "note: " << n.get<std::string>() << "\n";
  if (!o.output.empty()) out << "wrote " << o.output << " (load it with torch.jit.load)\n";
  if (!o.report.empty()) out << "wrote " << o.report << "\n";
}

}  // namespace modkit::tool
