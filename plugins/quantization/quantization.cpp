// QuantizationModifier: data-free round-to-nearest integer weight quantization with compressed-tensors semantics.
#include <modkit/plugin_quant/quant.hpp>
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using modkit::quant::QuantArgs;
using modkit::quant::Scheme;
using modkit::quant::Strategy;
using modkit::sdk::Error;
using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;
using modkit::sdk::Value;

constexpr const char* kSource = "QuantizationModifier";
constexpr uint32_t kCreateOrReplace = MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE;

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

// Renders a list of names as the recipe writes it: ["Linear", "re:.*fc1"].
std::string quoted(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i > 0 ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i > 0 ? sep : "") + items[i];
  return out;
}

// One config group: its name (the recipe's key, "group_0" for a preset), targets and scheme.
struct Group {
  std::string name;
  Scheme scheme;
};

// Reads one QuantizationArgs table of config_groups (llmcompressor's keys; type "int" only).
QuantArgs parse_args(const Value& v, bool activations) {
  const std::string& where = v.path();  // "config_groups.<group>.weights"
  if (v.type() != MODKIT_TYPE_TABLE) invalid(where + ": expected a table of quantization arguments");
  static const std::vector<std::string> known{"num_bits", "type",     "symmetric", "strategy",
                                              "group_size", "dynamic", "observer", "actorder"};
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string key = v.key(i);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      invalid(where + ": unknown key '" + key + "', expected one of " + join(known));
    }
  }
  QuantArgs a;
  a.num_bits = v["num_bits"].is_null() ? 8 : v["num_bits"].as<int>();
  if (a.num_bits < 2 || a.num_bits > 8) {
    invalid(where + ".num_bits: " + std::to_string(a.num_bits) +
            " is out of range [2, 8] (integer quantization stored in int8)");
  }
  const std::string type = v["type"].is_null() ? "int" : v["type"].as<std::string>();
  if (type != "int") invalid(where + ".type: expected \"int\" (the only type this modifier implements), found \"" + type + "\"");
  a.symmetric = v["symmetric"].is_null() ? true : v["symmetric"].as<bool>();
  a.dynamic = v["dynamic"].is_null() ? false : v["dynamic"].as<bool>();
  std::optional<int64_t> group_size = v["group_size"].as<std::optional<int64_t>>();
  if (v["strategy"].is_null()) {
    // compressed-tensors' inference: a positive group_size means groups, -1 channels, none the tensor
    a.strategy = !group_size ? Strategy::Tensor : (*group_size == -1 ? Strategy::Channel : Strategy::Group);
  } else {
    const std::string s = v["strategy"].as<std::string>();
    const std::vector<std::string> allowed =
        activations ? std::vector<std::string>{"tensor", "token"} : std::vector<std::string>{"tensor", "channel", "group"};
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      invalid(where + ".strategy: expected one of " + join(allowed) + ", found \"" + s + "\"");
    }
    a.strategy = s == "tensor" ? Strategy::Tensor
                 : s == "channel" ? Strategy::Channel
                 : s == "group" ? Strategy::Group
                                : Strategy::Token;
  }
  if (a.strategy == Strategy::Group) {
    if (!group_size || *group_size <= 0) {
      invalid(where + ".group_size: the group strategy needs a positive group_size (e.g. 128), found " +
              (group_size ? std::to_string(*group_size) : std::string("none")));
    }
    a.group_size = *group_size;
  } else if (group_size && *group_size > 0) {
    invalid(where + ".group_size: " + std::to_string(*group_size) + " needs strategy \"group\", found \"" +
            modkit::quant::to_string(a.strategy) + "\"");
  }
  if (!v["observer"].is_null()) {
    const std::string o = v["observer"].as<std::string>();
    if (o != "minmax" && o != "memoryless" && o != "static_minmax") {
      invalid(where + ".observer: expected \"minmax\" (round-to-nearest from min and max), found \"" + o + "\"");
    }
  }
  if (!v["actorder"].is_null() && !(v["actorder"].type() == MODKIT_TYPE_BOOL && !v["actorder"].as<bool>())) {
    invalid(where + ".actorder: activation ordering needs calibration data (GPTQModifier), not QuantizationModifier");
  }
  if (activations) {
    if (!a.dynamic) {
      invalid(where + ": static input activation scales need calibration data; QuantizationModifier supports "
                      "dynamic input activations only (dynamic = true, strategy \"token\" or \"tensor\")");
    }
  } else if (a.dynamic) {
    invalid(where + ".dynamic: weights are quantized statically, expected false");
  }
  return a;
}

std::vector<Group> parse_groups(const Params& p) {
  const std::optional<std::string> scheme = p.get<std::optional<std::string>>("scheme");
  const Value groups = p.value("config_groups");
  if (scheme && !groups.is_null()) {
    invalid("scheme and config_groups are both given: set one (scheme = \"" + *scheme +
            "\" for a preset, or config_groups for explicit quantization arguments)");
  }
  if (!scheme && groups.is_null()) {
    invalid("neither scheme nor config_groups is given: set scheme to a preset (" +
            join(modkit::quant::preset_names()) + ") or config_groups");
  }
  std::vector<Group> out;
  if (scheme) {
    Group g{"group_0", {}};
    try {
      g.scheme = modkit::quant::preset(*scheme);
    } catch (const std::invalid_argument& e) {
      invalid(std::string("scheme: ") + e.what());
    }
    g.scheme.targets = p.get<std::vector<std::string>>("targets");
    out.push_back(std::move(g));
    return out;
  }
  if (groups.type() != MODKIT_TYPE_TABLE || groups.size() == 0) {
    invalid("config_groups: expected a table of groups {name = {targets = [...], weights = {...}}}");
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::string name = groups.key(i);
    const Value g = groups[name];  // path "config_groups.<name>" in messages
    const std::string where = "config_groups." + name;
    if (g.type() != MODKIT_TYPE_TABLE) invalid(where + ": expected a table with targets and weights");
    for (size_t k = 0; k < g.size(); ++k) {
      const std::string key = g.key(k);
      if (key == "output_activations") invalid(where + ".output_activations: output activation quantization is not supported");
      if (key != "targets" && key != "weights" && key != "input_activations") {
        invalid(where + ": unknown key '" + key + "', expected targets, weights or input_activations");
      }
    }
    if (g["targets"].is_null()) invalid(where + ".targets: required (e.g. [\"Linear\"])");
    if (g["weights"].is_null()) invalid(where + ".weights: required (this modifier quantizes weights)");
    Group group{name, {}};
    group.scheme.targets = g["targets"].as<std::vector<std::string>>();
    group.scheme.weights = parse_args(g["weights"], false);
    if (!g["input_activations"].is_null()) group.scheme.input_activations = parse_args(g["input_activations"], true);
    out.push_back(std::move(group));
  }
  return out;
}

// "int4 symmetric group 128"
std::string describe(const QuantArgs& a) {
  std::string s = "int" + std::to_string(a.num_bits) + (a.symmetric ? " symmetric " : " asymmetric ") +
                  modkit::quant::to_string(a.strategy);
  if (a.strategy == Strategy::Group) s += " " + std::to_string(a.group_size);
  if (a.dynamic) s += " dynamic";
  return s;
}

// The arguments as a buffer a packing exporter reads: [num_bits, symmetric, strategy, group_size, dynamic]
// with strategy 0 tensor, 1 channel, 2 group, 3 token.
at::Tensor args_buffer(const QuantArgs& a) {
  return at::tensor({static_cast<int64_t>(a.num_bits), static_cast<int64_t>(a.symmetric),
                     static_cast<int64_t>(a.strategy), a.group_size, static_cast<int64_t>(a.dynamic)},
                    at::TensorOptions().dtype(at::kLong));
}

// Group sizes (powers of two, 16 to 256) that divide every value of `columns`.
std::vector<std::string> dividing_group_sizes(const std::vector<int64_t>& columns) {
  std::vector<std::string> out;
  for (int64_t g = 16; g <= 256; g *= 2) {
    if (std::all_of(columns.begin(), columns.end(), [g](int64_t c) { return c % g == 0; })) {
      out.push_back(std::to_string(g));
    }
  }
  return out;
}

class QuantizationModifier final : public modkit::sdk::Modifier {
 public:
  explicit QuantizationModifier(const Params& p)
      : ignore_(p.get<std::vector<std::string>>("ignore")), groups_(parse_groups(p)) {}

  bool on_initialize(State& state) override {
    layers_.clear();
    std::map<std::string, std::string> owner;  // module -> group
    std::vector<std::string> all_targets;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const Group& group = groups_[gi];
      all_targets.insert(all_targets.end(), group.scheme.targets.begin(), group.scheme.targets.end());
      std::vector<int64_t> columns;
      std::vector<std::string> misfits;
      for (const auto& module : state.match(group.scheme.targets, ignore_)) {
        if (!modkit::sdk::has_tensor(state, module.name, "weight")) {
          state.log(MODKIT_LOG_DEBUG, kSource, "skipping '" + module.name + "' (" + module.class_name + "): no 'weight'");
          continue;
        }
        const auto [it, fresh] = owner.emplace(module.name, group.name);
        if (!fresh) {
          invalid("module '" + module.name + "' is matched by config groups '" + it->second + "' and '" + group.name +
                  "': narrow their targets or add it to ignore");
        }
        const at::Tensor w = modkit::sdk::get_tensor(state, module.name, "weight");
        const QuantArgs& a = group.scheme.weights;
        if (a.strategy != Strategy::Tensor && w.dim() < 2) {
          invalid("weight of '" + module.name + "' has " + std::to_string(w.dim()) + " dimension(s); the " +
                  modkit::quant::to_string(a.strategy) + " strategy needs [out_features, in_features]");
        }
        const int64_t in = w.dim() < 2 ? w.numel() : w.numel() / w.size(0);
        columns.push_back(in);
        if (a.strategy == Strategy::Group && in % a.group_size != 0) {
          misfits.push_back("'" + module.name + "' (in_features " + std::to_string(in) + ")");
        }
        layers_.push_back(Layer{module.name, gi});
      }
      if (!misfits.empty()) {
        const std::vector<std::string> sizes = dividing_group_sizes(columns);
        invalid("group_size " + std::to_string(group.scheme.weights.group_size) + " of " +
                (groups_.size() == 1 && group.name == "group_0" ? std::string("the scheme") : "config group '" + group.name + "'") +
                " does not divide the in_features of " + join(misfits) + ": add " +
                (misfits.size() == 1 ? "it" : "them") + " to ignore, or choose a group_size that divides every " +
                "targeted in_features" +
                (sizes.empty() ? std::string(" (none of 16, 32, ..., 256 does; strategy \"channel\" always fits)")
                               : " (" + join(sizes) + ")"));
      }
    }
    if (layers_.empty()) {
      invalid("targets " + quoted(all_targets) + " match no module with a weight" +
              (ignore_.empty() ? std::string() : " once ignore " + quoted(ignore_) + " is applied"));
    }
    applied_ = dirty_ = false;
    return true;
  }

  // Training recipe with a start: quantize when the schedule starts.
  void on_start(State& state, const Event&) override { quantize(state); }

  // A training loop moved the weights since they were quantized: put them back on a grid at end.
  void on_end(State& state, const Event&) override {
    if (dirty_) quantize(state);
  }

  void on_event(State& state, const Event& event) override {
    if (event.type() == EventType::CalibrationStart && !applied_) quantize(state);
    if (event.type() == EventType::OptimPostStep && applied_) dirty_ = true;
  }

  // Oneshot without calibration events, or weights moved after the last quantization.
  bool on_finalize(State& state) override {
    if (!applied_ || dirty_) quantize(state);
    layers_.clear();
    return true;
  }

 private:
  struct Layer {
    std::string module;
    size_t group;
  };

  void quantize(State& state) {
    const at::NoGradGuard no_grad;
    for (const Layer& layer : layers_) {
      const Scheme& scheme = groups_[layer.group].scheme;
      at::Tensor w = modkit::sdk::get_tensor(state, layer.module, "weight");  // zero-copy: written in place
      modkit::quant::QParams qp;
      try {
        qp = modkit::quant::quantize_rtn_(w, scheme.weights);
      } catch (const std::exception& e) {
        invalid("cannot quantize the weight of '" + layer.module + "': " + e.what());
      }
      modkit::sdk::set_tensor(state, layer.module, "weight_scale", qp.scale, kCreateOrReplace);
      modkit::sdk::set_tensor(state, layer.module, "weight_zero_point", qp.zero_point, kCreateOrReplace);
      modkit::sdk::set_tensor(state, layer.module, "weight_quant_args", args_buffer(scheme.weights), kCreateOrReplace);
      std::string line = layer.module + ": weight " + describe(scheme.weights) + ", " + std::to_string(w.size(0)) +
                         "x" + std::to_string(w.numel() / std::max<int64_t>(w.size(0), 1)) + ", " +
                         std::to_string(qp.scale.numel()) + " scales";
      if (scheme.input_activations) {
        modkit::sdk::set_tensor(state, layer.module, "input_quant_args", args_buffer(*scheme.input_activations),
                                kCreateOrReplace);
        line += "; input activations " + describe(*scheme.input_activations);
      }
      state.log(MODKIT_LOG_INFO, kSource, line);
    }
    applied_ = true;
    dirty_ = false;
  }

  std::vector<std::string> ignore_;
  std::vector<Group> groups_;
  std::vector<Layer> layers_;
  bool applied_ = false;
  bool dirty_ = false;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    QuantizationModifier, "1.0.0",
    "round-to-nearest integer weight quantization (compressed-tensors presets or config groups)",
    (ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"]),
               "modules the scheme preset quantizes: class names, module names or re:<regex>"}),
    (ParamSpec{"ignore", Type::StringList, MODKIT_JSON([]), "modules left alone even when a target matches them"}),
    (ParamSpec{"scheme", Type::String, MODKIT_JSON(null),
               "a compressed-tensors preset: W8A16, W4A16, W4A16_ASYM, W8A8 (INT8), W4A8; or give config_groups"}),
    (ParamSpec{"config_groups", Type::Table, MODKIT_JSON(null),
               "{name = {targets = [...], weights = {num_bits, type, symmetric, strategy, group_size}, "
               "input_activations = {...}}}, as llmcompressor; or give scheme"}))
