// scheme / config_groups parsing and module resolution with llmcompressor's keys, shared by QuantizationModifier and GPTQModifier.
#include <modkit/plugin_quant/scheme.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/tensor.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

namespace modkit::quant {
namespace {

using sdk::Error;
using sdk::Value;

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i > 0 ? sep : "") + items[i];
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads one QuantizationArgs table of config_groups (llmcompressor's keys; type "int" only).
QuantArgs parse_args(const Value& v, bool activations, const SchemeRules& rules) {
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
            to_string(a.strategy) + "\"");
  }
  if (!v["observer"].is_null()) {
    const std::string o = v["observer"].as<std::string>();
    if (o != "minmax" && o != "memoryless" && o != "static_minmax" && o != "memoryless_minmax") {
      invalid(where + ".observer: expected \"minmax\" (round-to-nearest from min and max), found \"" + o + "\"");
    }
  }
  const Value actorder = v["actorder"];
  if (!actorder.is_null() && !(actorder.type() == MODKIT_TYPE_BOOL && !actorder.as<bool>())) {
    if (!rules.actorder || activations) {
      invalid(where + ".actorder: activation ordering needs calibration data (GPTQModifier), not QuantizationModifier");
    }
    a.actorder = parse_actorder(actorder, where + ".actorder");
    if (a.strategy != Strategy::Group) {
      invalid(where + ".actorder: activation ordering needs strategy \"group\", found \"" +
              std::string(to_string(a.strategy)) + "\"");
    }
  }
  if (activations) {
    if (!a.dynamic) {
      invalid(where + ": static input activation scales need calibration data; this modifier supports "
                      "dynamic input activations only (dynamic = true, strategy \"token\" or \"tensor\")");
    }
  } else if (a.dynamic) {
    invalid(where + ".dynamic: weights are quantized statically, expected false");
  }
  return a;
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

}  // namespace

ActOrder parse_actorder(const Value& v, const std::string& where) {
  if (v.is_null()) return ActOrder::None;
  if (v.type() == MODKIT_TYPE_BOOL) return v.as<bool>() ? ActOrder::Group : ActOrder::None;
  if (v.type() != MODKIT_TYPE_STRING) {
    invalid(where + ": expected \"static\", \"weight\", \"group\", \"dynamic\", true, false or null");
  }
  const std::string s = lower(v.as<std::string>());
  if (s == "group" || s == "dynamic") return ActOrder::Group;
  if (s == "weight" || s == "static") return ActOrder::Weight;
  invalid(where + ": expected \"static\", \"weight\", \"group\" or \"dynamic\", found \"" + v.as<std::string>() + "\"");
}

std::vector<Group> parse_groups(const sdk::Params& p, const SchemeRules& rules) {
  const std::optional<std::string> scheme = p.get<std::optional<std::string>>("scheme");
  const Value groups = p.value("config_groups");
  if (scheme && !groups.is_null()) {
    invalid("scheme and config_groups are both given: set one (scheme = \"" + *scheme +
            "\" for a preset, or config_groups for explicit quantization arguments)");
  }
  if (!scheme && groups.is_null()) {
    invalid("neither scheme nor config_groups is given: set scheme to a preset (" + join(preset_names()) +
            ") or config_groups");
  }
  std::vector<Group> out;
  if (scheme) {
    Group g{"group_0", {}};
    try {
      g.scheme = preset(*scheme);
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
    group.scheme.weights = parse_args(g["weights"], false, rules);
    if (!g["input_activations"].is_null()) {
      group.scheme.input_activations = parse_args(g["input_activations"], true, rules);
    }
    out.push_back(std::move(group));
  }
  return out;
}

std::vector<Layer> resolve_layers(const sdk::State& state, const std::vector<Group>& groups,
                                  const std::vector<std::string>& ignore, const std::string& source) {
  std::vector<Layer> layers;
  std::map<std::string, std::string> owner;  // module -> group
  std::vector<std::string> all_targets;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& group = groups[gi];
    all_targets.insert(all_targets.end(), group.scheme.targets.begin(), group.scheme.targets.end());
    std::vector<int64_t> columns;
    std::vector<std::string> misfits;
    for (const auto& module : state.match(group.scheme.targets, ignore)) {
      if (!sdk::has_tensor(state, module.name, "weight")) {
        state.log(MODKIT_LOG_DEBUG, source, "skipping '" + module.name + "' (" + module.class_name + "): no 'weight'");
        continue;
      }
      const auto [it, fresh] = owner.emplace(module.name, group.name);
      if (!fresh) {
        invalid("module '" + module.name + "' is matched by config groups '" + it->second + "' and '" + group.name +
                "': narrow their targets or add it to ignore");
      }
      const at::Tensor w = sdk::get_tensor(state, module.name, "weight");
      const QuantArgs& a = group.scheme.weights;
      if (a.strategy != Strategy::Tensor && w.dim() < 2) {
        invalid("weight of '" + module.name + "' has " + std::to_string(w.dim()) + " dimension(s); the " +
                to_string(a.strategy) + " strategy needs [out_features, in_features]");
      }
      if (w.numel() == 0) {
        invalid("weight of '" + module.name + "' is empty (shape " + sizes_of(w) +
                "): there is nothing to quantize; add it to ignore");
      }
      const int64_t in = w.dim() < 2 ? w.numel() : w.numel() / w.size(0);
      columns.push_back(in);
      if (a.strategy == Strategy::Group && in % a.group_size != 0) {
        misfits.push_back("'" + module.name + "' (in_features " + std::to_string(in) + ")");
      }
      layers.push_back(Layer{module.name, gi});
    }
    if (!misfits.empty()) {
      const std::vector<std::string> sizes = dividing_group_sizes(columns);
      invalid("group_size " + std::to_string(group.scheme.weights.group_size) + " of " +
              (groups.size() == 1 && group.name == "group_0" ? std::string("the scheme")
                                                              : "config group '" + group.name + "'") +
              " does not divide the in_features of " + join(misfits) + ": add " +
              (misfits.size() == 1 ? "it" : "them") + " to ignore, or choose a group_size that divides every " +
              "targeted in_features" +
              (sizes.empty() ? std::string(" (none of 16, 32, ..., 256 does; strategy \"channel\" always fits)")
                             : " (" + join(sizes) + ")"));
    }
  }
  if (layers.empty()) {
    throw Error(MODKIT_ERROR_NOT_FOUND, "targets " + sdk::quoted_names(all_targets) + " match no module with a weight" +
                                            (ignore.empty() ? std::string()
                                                            : " once ignore " + sdk::quoted_names(ignore) + " is applied"));
  }
  return layers;
}

std::string describe(const QuantArgs& a) {
  std::string s = "int" + std::to_string(a.num_bits) + (a.symmetric ? " symmetric " : " asymmetric ") +
                  to_string(a.strategy);
  if (a.strategy == Strategy::Group) s += " " + std::to_string(a.group_size);
  if (a.dynamic) s += " dynamic";
  if (a.actorder != ActOrder::None) s += std::string(", actorder ") + to_string(a.actorder);
  return s;
}

at::Tensor args_buffer(const QuantArgs& a) {
  return at::tensor({static_cast<int64_t>(a.num_bits), static_cast<int64_t>(a.symmetric),
                     static_cast<int64_t>(a.strategy), a.group_size, static_cast<int64_t>(a.dynamic)},
                    at::TensorOptions().dtype(at::kLong));
}

std::string write_quantization_buffers(const sdk::State& state, const std::string& module, const Scheme& scheme,
                                       const QParams& qparams, const at::Tensor& weight) {
  constexpr uint32_t kCreateOrReplace = MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE;
  sdk::set_tensor(state, module, "weight_scale", qparams.scale, kCreateOrReplace);
  sdk::set_tensor(state, module, "weight_zero_point", qparams.zero_point, kCreateOrReplace);
  sdk::set_tensor(state, module, "weight_quant_args", args_buffer(scheme.weights), kCreateOrReplace);
  std::string line = module + ": weight " + describe(scheme.weights) + ", " + std::to_string(weight.size(0)) + "x" +
                     std::to_string(weight.numel() / std::max<int64_t>(weight.size(0), 1)) + ", " +
                     std::to_string(qparams.scale.numel()) + " scales";
  if (scheme.input_activations) {
    sdk::set_tensor(state, module, "input_quant_args", args_buffer(*scheme.input_activations), kCreateOrReplace);
    line += "; input activations " + describe(*scheme.input_activations);
  }
  return line;
}

}  // namespace modkit::quant
