// SmoothQuantModifier: moves activation outliers into the following weights (Xiao et al. 2022) with per-channel scales folded into the model.
#include <modkit/sdk.hpp>
#include <modkit/sdk/torch.hpp>

#include <ATen/ops/aminmax.h>
#include <ATen/ops/clamp_min.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/where.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using modkit::sdk::Error;
using modkit::sdk::Event;
using modkit::sdk::EventType;
using modkit::sdk::HookKind;
using modkit::sdk::HookView;
using modkit::sdk::ModuleRef;
using modkit::sdk::Params;
using modkit::sdk::ParamSpec;
using modkit::sdk::State;
using modkit::sdk::Type;
using modkit::sdk::Value;
using modkit::sdk::quoted_names;

constexpr const char* kSource = "SmoothQuantModifier";
// llmcompressor's MINIMUM_SMOOTHING_SCALE: no scale goes below it.
constexpr double kMinimumScale = 1e-5;

[[noreturn]] void invalid(const std::string& message) { throw Error(MODKIT_ERROR_INVALID_ARGUMENT, message); }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// One entry of `mappings`: the layers fed by the smooth layer's output, and the smooth layer.
struct MappingSpec {
  std::vector<std::string> balance;
  std::string smooth;
  std::string where;  // "mappings[1]" or "default mapping 2"
  bool is_default = false;
  std::string text() const { return "[" + quoted_names(balance) + ", " + quoted(smooth) + "]"; }
};

// llmcompressor's DEFAULT_SMOOTHQUANT_MAPPINGS and MAPPINGS_REGISTRY (by the model's class name).
std::vector<MappingSpec> default_mappings(const std::string& architecture) {
  std::vector<std::pair<std::vector<std::string>, std::string>> m;
  if (architecture == "MixtralForCausalLM") {
    m = {{{"re:.*q_proj", "re:.*k_proj", "re:.*v_proj"}, "re:.*input_layernorm"},
         {{"re:.*gate"}, "re:.*post_attention_layernorm"}};
  } else if (architecture == "BloomForCausalLM" || architecture == "ChatGLMForConditionalGeneration") {
    m = {{{"re:.*query_key_value"}, "re:.*input_layernorm"},
         {{"re:.*dense_h_to_4h"}, "re:.*post_attention_layernorm"}};
  } else {  // LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and every other architecture
    m = {{{"re:.*q_proj", "re:.*k_proj", "re:.*v_proj"}, "re:.*input_layernorm"},
         {{"re:.*gate_proj", "re:.*up_proj"}, "re:.*post_attention_layernorm"}};
  }
  std::vector<MappingSpec> out;
  for (size_t i = 0; i < m.size(); ++i) {
    out.push_back(MappingSpec{m[i].first, m[i].second, "default mapping " + std::to_string(i), true});
  }
  return out;
}

// Names of a balance entry: one name, or a (nested) list of names, as llmcompressor's tree_leaves.
void leaves(const Value& v, std::vector<std::string>& out) {
  if (v.type() == MODKIT_TYPE_STRING) {
    out.push_back(v.as<std::string>());
  } else if (v.type() == MODKIT_TYPE_LIST) {
    for (size_t i = 0; i < v.size(); ++i) leaves(v.item(i), out);
  } else {
    invalid("parameter '" + v.path() + "': expected a module name or a list of names, found " +
            modkit::sdk::detail::type_name(v.type()));
  }
}

std::vector<MappingSpec> parse_mappings(const Value& v) {
  const std::string shape = "expected [balance_layers, smooth_layer] (a list of names and a name)";
  if (v.type() != MODKIT_TYPE_LIST) {
    invalid("parameter 'mappings': expected a list of [balance_layers, smooth_layer] pairs, found " +
            std::string(modkit::sdk::detail::type_name(v.type())));
  }
  std::vector<MappingSpec> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const Value item = v.item(i);
    if (item.type() != MODKIT_TYPE_LIST) {
      invalid("parameter '" + item.path() + "': " + shape + ", found " + modkit::sdk::detail::type_name(item.type()));
    }
    if (item.size() != 2) {
      invalid("parameter '" + item.path() + "': " + shape + ", found a list of " + std::to_string(item.size()) +
              (item.size() == 1 ? " item" : " items"));
    }
    MappingSpec spec;
    spec.where = "mappings[" + std::to_string(i) + "]";
    leaves(item.item(0), spec.balance);
    if (spec.balance.empty()) invalid("parameter '" + item.path() + "[0]': expected at least one balance layer, found none");
    if (item.item(1).type() != MODKIT_TYPE_STRING) {
      invalid("parameter '" + item.path() + "[1]': expected the smooth layer's name (a string), found " +
              modkit::sdk::detail::type_name(item.item(1).type()));
    }
    spec.smooth = item.item(1).as<std::string>();
    out.push_back(std::move(spec));
  }
  if (out.empty()) invalid("parameter 'mappings': expected at least one [balance_layers, smooth_layer] pair, found an empty list");
  return out;
}

// Every module of the model in order (the root first), as named_modules().
std::vector<ModuleRef> all_modules(const State& state) {
  const modkit_host& host = state.host();
  size_t count = 0;
  modkit_error* err = nullptr;
  modkit::sdk::check(host,
                     modkit::sdk::require_service(host.model_module_count, "model_module_count")(
                         &host, state.model(), &count, &err),
                     err);
  std::vector<ModuleRef> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    modkit_module_info info{};
    info.struct_size = sizeof info;
    modkit::sdk::check(host,
                       modkit::sdk::require_service(host.model_module_info, "model_module_info")(
                           &host, state.model(), i, &info, &err),
                       err);
    out.push_back({info.name, info.class_name});
  }
  return out;
}

// compressed-tensors' get_lowest_common_ancestor_name for two names ("" when either is absent).
std::string common_ancestor(const std::string& a, const std::optional<std::string>& b) {
  if (!b) return a;
  const std::string s1 = "." + std::min(a, *b) + ".", s2 = "." + std::max(a, *b) + ".";
  size_t n = 0;
  while (n < s1.size() && n < s2.size() && s1[n] == s2[n]) ++n;
  const std::string prefix = s1.substr(0, n);
  const size_t dot = prefix.rfind('.');
  return dot == 0 || dot == std::string::npos ? std::string() : prefix.substr(1, dot - 1);
}

// One group found for a mapping: every module each target matched in one parent scope.
struct Group {
  std::vector<std::vector<std::string>> per_target;
  std::string scope;
};

// compressed-tensors' match_modules_set (as llmcompressor resolves SmoothQuant mappings): walks
// the modules in order and cuts a new group each time a match needs a wider parent scope once
// every target has a match. `complete` is false when the last group misses a target.
struct Matching {
  std::vector<Group> groups;
  std::vector<size_t> unmatched_at_end;  // targets the last, incomplete group has no module for
  std::vector<size_t> never_matched;     // targets that match no module of the model
  std::string last_scope;
};

Matching match_sets(const State& state, const std::vector<ModuleRef>& modules, const std::vector<std::string>& targets,
                    const std::vector<std::string>& ignore, const std::string& where) {
  std::vector<std::set<std::string>> matched(targets.size());
  for (size_t t = 0; t < targets.size(); ++t) {
    for (const ModuleRef& m : state.match({targets[t]}, ignore)) matched[t].insert(m.name);
  }
  Matching out;
  for (size_t t = 0; t < targets.size(); ++t) {
    if (matched[t].empty()) out.never_matched.push_back(t);
  }
  std::vector<std::vector<std::string>> current(targets.size());
  std::set<size_t> unmatched;
  for (size_t t = 0; t < targets.size(); ++t) unmatched.insert(t);
  std::optional<std::string> scope;
  bool any = false;
  for (const ModuleRef& m : modules) {
    std::vector<size_t> hits;
    for (size_t t = 0; t < targets.size(); ++t) {
      if (!matched[t].count(m.name)) continue;
      hits.push_back(t);
      std::string next = common_ancestor(m.name, scope);
      if (unmatched.empty() && next != *scope) {
        out.groups.push_back(Group{current, *scope});
        current.assign(targets.size(), {});
        next = m.name;
        for (size_t u = 0; u < targets.size(); ++u) unmatched.insert(u);
      }
      current[t].push_back(m.name);
      scope = next;
      unmatched.erase(t);
      any = true;
    }
    if (hits.size() > 1) {
      std::vector<std::string> names;
      for (size_t t : hits) names.push_back(targets[t]);
      invalid(where + ": module '" + m.name + "' is matched by several of its names " + quoted_names(names) +
              "; each module may take one role");
    }
  }
  if (!any) return out;
  if (unmatched.empty()) {
    out.groups.push_back(Group{current, *scope});
  } else {
    out.unmatched_at_end.assign(unmatched.begin(), unmatched.end());
    out.last_scope = *scope;
  }
  return out;
}

// One smooth layer and the layers it balances, with its output's running range: SmoothQuant's calibration unit.
struct Resolved {
  std::string smooth;
  std::vector<std::string> balance;
  std::string where;
  int64_t channels = 0;
  at::Tensor min, max;  // float32 [channels]
  int64_t steps = 0;    // forwards observed
};

class SmoothQuantModifier final : public modkit::sdk::CalibratingModifier<Resolved> {
 public:
  static constexpr uint16_t abi_min_minor = 1;  // forward hooks
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;

  explicit SmoothQuantModifier(const Params& p)
      : alpha_(p.get<double>("smoothing_strength")),
        ignore_(p.get<std::vector<std::string>>("ignore")),
        steps_(p.get<std::optional<int64_t>>("num_calibration_steps")) {
    if (!p.value("mappings").is_null()) mappings_ = parse_mappings(p.value("mappings"));
    for (const char* key : {"start", "end"}) {
      const std::optional<double> v = p.get<std::optional<double>>(key);
      if (v && *v != -1.0 && *v != 0.0) {  // llmcompressor lets a falsy 0 through too
        invalid(std::string("SmoothQuantModifier can only be applied in one shot: expected ") + key +
                " to be unset, 0 or -1, found " + number(*v));
      }
    }
  }

  bool on_initialize(State& state) override {
    reset_calibration();
    std::vector<Resolved> resolved;
    std::vector<MappingSpec> specs = mappings_;
    const std::vector<ModuleRef> modules = all_modules(state);
    if (specs.empty()) {
      const std::string architecture = modules.empty() ? std::string() : modules.front().class_name;
      specs = default_mappings(architecture);
      state.log(MODKIT_LOG_INFO, kSource, "no mappings given: using llmcompressor's default mappings for '" + architecture + "'");
    }
    std::vector<std::string> skipped;
    for (const MappingSpec& spec : specs) {
      if (!resolve(state, modules, spec, resolved)) skipped.push_back(spec.text());
    }
    if (resolved.empty()) {
      std::string list;
      for (size_t i = 0; i < skipped.size(); ++i) list += (i ? ", " : "") + skipped[i];
      throw Error(MODKIT_ERROR_NOT_FOUND, "no default mapping matches the model (" + list +
                                              "): give mappings [[balance_layers], smooth_layer] for its module names");
    }
    for (Resolved& r : resolved) {
      const std::string smooth = r.smooth;
      calibrate(state, smooth, smooth, HookKind::Forward, std::move(r));
    }
    return true;
  }

 private:
  const char* source() const override { return kSource; }

  void observe(const std::string&, Resolved& r, const modkit_hook_call& call) override {
    observe(r, HookView(call).output(0));
  }

  bool has_data(const Resolved& r) const override { return r.steps > 0; }

  void compress(State& state, const std::string&, Resolved r) override { smooth(state, r); }

  std::string idle_warning(const std::string& smooth) const override {
    return "smooth layer '" + smooth + "' saw no calibration data: not smoothed";
  }

  std::string no_data_error(const std::vector<std::string>& idle) const override {
    return "no calibration data reached any of the " + std::to_string(idle.size()) + " smooth layers " +
           quoted_names(idle) + ": SmoothQuantModifier needs calibration samples run through the model";
  }

  std::string once_ignored() const { return ignore_.empty() ? std::string() : " once ignore " + quoted_names(ignore_) + " is applied"; }

  // Resolves one mapping into smooth layers with their balance layers and checks their
  // tensors. Returns false for a default mapping that does not fit the model (skipped).
  bool resolve(const State& state, const std::vector<ModuleRef>& modules, const MappingSpec& spec,
               std::vector<Resolved>& resolved) {
    std::vector<std::string> targets = spec.balance;
    targets.push_back(spec.smooth);
    const size_t smooth_index = targets.size() - 1;
    const Matching match = match_sets(state, modules, targets, ignore_, spec.where + " " + spec.text());
    const std::string head = spec.where + " " + spec.text();
    if (!match.never_matched.empty()) {
      std::string what;
      if (match.never_matched.size() == targets.size()) {
        what = "matches no module";
      } else {
        std::vector<std::string> names;
        bool smooth_missing = false;
        for (size_t t : match.never_matched) {
          if (t == smooth_index) smooth_missing = true;
          else names.push_back(targets[t]);
        }
        if (smooth_missing) what = "smooth layer " + quoted(spec.smooth) + " matches no module";
        if (!names.empty()) {
          what += (what.empty() ? "" : " and ") + std::string("balance layers ") + quoted_names(names) + " match no module";
        }
      }
      if (spec.is_default) {
        state.log(MODKIT_LOG_WARN, kSource, head + ": " + what + once_ignored() + "; skipped");
        return false;
      }
      invalid(head + ": " + what + once_ignored());
    }
    if (!match.unmatched_at_end.empty()) {
      std::vector<std::string> missing;
      for (size_t t : match.unmatched_at_end) missing.push_back(targets[t]);
      invalid(head + ": " + quoted_names(missing) + " match nothing in the scope of '" + match.last_scope +
              "' (a smooth layer and its balance layers must share a parent module)");
    }
    for (const Group& g : match.groups) {
      const std::vector<std::string>& smooth = g.per_target[smooth_index];
      if (smooth.size() != 1) {
        invalid(head + ": expected one smooth layer per block, found " + std::to_string(smooth.size()) + " under '" +
                g.scope + "': " + quoted_names(smooth));
      }
      Resolved r;
      r.smooth = smooth.front();
      r.where = spec.where;
      for (size_t t = 0; t < smooth_index; ++t) {
        for (const std::string& b : g.per_target[t]) r.balance.push_back(b);
      }
      check_tensors(state, r, modules);
      resolved.push_back(std::move(r));
    }
    return true;
  }

  static std::string class_of(const std::vector<ModuleRef>& modules, const std::string& name) {
    for (const ModuleRef& m : modules) {
      if (m.name == name) return m.class_name;
    }
    return "";
  }

  void check_tensors(const State& state, Resolved& r, const std::vector<ModuleRef>& modules) const {
    if (!modkit::sdk::has_tensor(state, r.smooth, "weight")) {
      invalid("smooth layer '" + r.smooth + "' (" + class_of(modules, r.smooth) + ") of " + r.where +
              " has no 'weight' tensor to fold the scales into");
    }
    const at::Tensor w = modkit::sdk::get_tensor(state, r.smooth, "weight");
    if (w.dim() != 1 && w.dim() != 2) {
      invalid("smooth layer '" + r.smooth + "' of " + r.where +
              ": expected a 1-d weight (a norm) or a 2-d weight [out, in] (a linear layer), found shape " + shape_of(w));
    }
    r.channels = w.size(0);
    if (modkit::sdk::has_tensor(state, r.smooth, "bias")) {
      const at::Tensor b = modkit::sdk::get_tensor(state, r.smooth, "bias");
      if (b.numel() != r.channels) {
        invalid("smooth layer '" + r.smooth + "' of " + r.where + ": expected a bias of " + std::to_string(r.channels) +
                " elements, found shape " + shape_of(b));
      }
    }
    for (const std::string& name : r.balance) {
      if (!modkit::sdk::has_tensor(state, name, "weight")) {
        invalid("balance layer '" + name + "' (" + class_of(modules, name) + ") of " + r.where +
                " has no 'weight' tensor to take the scales");
      }
      const at::Tensor bw = modkit::sdk::get_tensor(state, name, "weight");
      if (bw.dim() != 2) {
        invalid("balance layer '" + name + "' of " + r.where +
                ": expected a 2-d weight [out_features, in_features], found shape " + shape_of(bw));
      }
      if (bw.size(1) != r.channels) {
        invalid("smooth layer '" + r.smooth + "' has " + std::to_string(r.channels) + " output channels but balance layer '" +
                name + "' has " + std::to_string(bw.size(1)) + " input features (" + r.where + ")");
      }
    }
  }

  // A forward of the smooth layer: its output's per-channel minimum and maximum over every token.
  void observe(Resolved& r, const at::Tensor& out) {
    if (steps_ && r.steps >= *steps_) return;
    if (out.dim() == 0 || out.size(-1) != r.channels) {
      invalid("output of smooth layer '" + r.smooth + "': expected " + std::to_string(r.channels) +
              " channels in the last dimension, found shape " + shape_of(out));
    }
    at::NoGradGuard no_grad;
    const auto [mn, mx] = at::aminmax(out.reshape({-1, r.channels}), 0);
    const at::Tensor lo = mn.to(at::kFloat), hi = mx.to(at::kFloat);
    if (r.steps == 0) {
      r.min = lo.clone();
      r.max = hi.clone();
    } else {
      at::minimum_out(r.min, r.min, lo);
      at::maximum_out(r.max, r.max, hi);
    }
    ++r.steps;
  }

  // llmcompressor's _calculate_smoothing_scales and _apply_smoothing for one smooth layer.
  void smooth(const State& state, Resolved& r) {
    at::NoGradGuard no_grad;
    const at::Tensor activation = r.max.sub(r.min);  // each channel's dynamic range
    at::Tensor weight_scales;
    std::vector<at::Tensor> balance;
    for (const std::string& name : r.balance) {
      at::Tensor w = modkit::sdk::get_tensor(state, name, "weight");
      const auto [mn, mx] = at::aminmax(w, 0);  // max |W_ij| over the rows, without a |W| temporary
      const at::Tensor m = at::maximum(mn.abs(), mx.abs()).to(at::kFloat);
      weight_scales = weight_scales.defined() ? at::maximum(weight_scales, m) : m;
      balance.push_back(std::move(w));
    }
    weight_scales = weight_scales.mul(2.0);  // llmcompressor's factor: a symmetric weight range
    at::Tensor scales = activation.pow(alpha_).div(weight_scales.pow(1.0 - alpha_));
    scales = at::where(weight_scales.gt(0.0), scales, activation);
    scales = at::clamp_min(scales, kMinimumScale);

    for (at::Tensor& w : balance) w.mul_(scales.to(w.scalar_type()).view({1, -1}));
    at::Tensor sw = modkit::sdk::get_tensor(state, r.smooth, "weight");
    const at::Tensor s = scales.to(sw.scalar_type());
    if (sw.dim() == 1) {
      sw.div_(s);
    } else {
      sw.div_(s.view({-1, 1}));
    }
    if (modkit::sdk::has_tensor(state, r.smooth, "bias")) {
      at::Tensor b = modkit::sdk::get_tensor(state, r.smooth, "bias");
      b.div_(scales.to(b.scalar_type()).view(b.sizes()));
    }
    const double lo = scales.min().item<double>(), hi = scales.max().item<double>();
    state.log(MODKIT_LOG_INFO, kSource,
              "smoothed '" + r.smooth + "' into " + quoted_names(r.balance) + ": " + std::to_string(r.channels) +
                  " channels from " + std::to_string(r.steps) + " forwards, scales " + number(lo) + " .. " + number(hi));
  }

  double alpha_;
  std::vector<MappingSpec> mappings_;  // empty: the defaults for the model's architecture
  std::vector<std::string> ignore_;
  std::optional<int64_t> steps_;
};

}  // namespace

MODKIT_EXPORT_MODIFIER(
    SmoothQuantModifier, "1.0.0",
    "SmoothQuant: per-channel scales that move activation outliers into the following weights, folded into the model",
    (ParamSpec{"smoothing_strength", Type::Float, MODKIT_JSON(0.5),
               "alpha: how much of each channel's range moves into the weights (0: none, 1: all)"}
         .range(MODKIT_JSON(0), MODKIT_JSON(1))),
    (ParamSpec{"mappings", Type::List, MODKIT_JSON(null),
               "[[balance_layers...], smooth_layer] pairs (names or re:<regex>); default: llmcompressor's mappings "
               "for the model's architecture"}),
    (modkit::sdk::well_known::ignore()),
    (ParamSpec{"num_calibration_steps", Type::Int, MODKIT_JSON(null),
               "forwards of each smooth layer to observe; default: every calibration batch"}
         .range(MODKIT_JSON(1), nullptr)))
