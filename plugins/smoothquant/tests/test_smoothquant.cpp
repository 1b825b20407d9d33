// Tests of SmoothQuantModifier through a session: scales against a naive reference, unchanged outputs, int8 activation error with outliers, mappings and bad input.
#include "plugin_harness.hpp"

#include <modkit/torch/demo_models.hpp>

#include "tensor_operators.hpp"
#include <ATen/ops/allclose.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/round.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

using Calibration = modkit::test::PluginRun;
using modkit::test::make_modifier;
using modkit::test::message_of;
using modkit::test::Recorder;
using modkit::test::relative_error;
using modkit::HookKind;
using modkit::Params;
namespace models = modkit::demo_models;

namespace {

const char* kTinyMappings = R"([[["re:.*q_proj", "re:.*k_proj", "re:.*v_proj"], "re:.*input_layernorm"],
                                [["re:.*fc1"], "re:.*post_attention_layernorm"]])";

Params smooth_params(double alpha, const std::string& mappings = kTinyMappings) {
  return Params{{"smoothing_strength", alpha}, {"mappings", nlohmann::json::parse(mappings)}};
}

// A TinyTransformer whose norms have random weights and biases (the generated ones are 1 and 0),
// and whose input_layernorm weights carry `outliers` channels `scale` times larger: the
// few large, fixed activation channels LLM.int8 and SmoothQuant describe.
Calibration outlier_transformer(int64_t layers, int64_t hidden, uint64_t seed, const std::vector<int64_t>& outliers,
                                double scale) {
  Calibration run(models::make_tiny_transformer(layers, hidden, seed));
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::NoGradGuard no_grad;
  for (int64_t l = 0; l < layers; ++l) {
    for (const std::string norm : {"input_layernorm", "post_attention_layernorm"}) {
      const std::string name = "layers." + std::to_string(l) + "." + norm;
      at::Tensor w = run.tensor(name, "weight"), b = run.tensor(name, "bias");
      w.copy_(0.5 + at::rand({hidden}, gen));
      b.copy_(0.1 * at::randn({hidden}, gen));
      if (norm == "input_layernorm") {
        for (int64_t c : outliers) w[c].mul_(scale);
      }
    }
  }
  return run;
}

// llmcompressor's smoothing scales written out per channel in double: the channel's range
// max - min over every calibration token of the smooth layer's output, over twice the
// largest |W_ij| of any balance layer in that input column; a zero weight column takes the
// range itself; nothing below 1e-5.
std::vector<double> reference_scales(const at::Tensor& outputs, const std::vector<at::Tensor>& balance, double alpha) {
  const at::Tensor y = outputs.to(at::kDouble).contiguous();
  const auto a = y.accessor<double, 2>();
  std::vector<double> out;
  for (int64_t j = 0; j < y.size(1); ++j) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t t = 0; t < y.size(0); ++t) {
      lo = std::min(lo, a[t][j]);
      hi = std::max(hi, a[t][j]);
    }
    double w = 0.0;
    for (const at::Tensor& bw : balance) {
      const at::Tensor d = bw.to(at::kDouble).contiguous();
      const auto wa = d.accessor<double, 2>();
      for (int64_t i = 0; i < d.size(0); ++i) w = std::max(w, std::fabs(wa[i][j]));
    }
    const double range = hi - lo, weight_scale = 2.0 * w;
    double s = weight_scale > 0 ? std::pow(range, alpha) / std::pow(weight_scale, 1.0 - alpha) : range;
    out.push_back(std::max(s, 1e-5));
  }
  return out;
}

at::Tensor as_tensor(const std::vector<double>& v) { return at::tensor(v, at::kDouble); }

// Checks that the model holds the originals folded with `s`: the smooth layer's weight and
// bias divided by s, every balance weight's columns multiplied by s.
void check_folded(const Calibration& run, const std::string& smooth, const std::vector<std::string>& balance,
                  const std::map<std::string, at::Tensor>& before, const std::vector<double>& s) {
  const at::Tensor scales = as_tensor(s);
  CAPTURE(smooth);
  CHECK(at::allclose(run.tensor(smooth, "weight").to(at::kDouble), before.at(smooth + ".weight").to(at::kDouble) / scales,
                     1e-5, 0));
  CHECK(at::allclose(run.tensor(smooth, "bias").to(at::kDouble), before.at(smooth + ".bias").to(at::kDouble) / scales,
                     1e-5, 0));
  for (const std::string& b : balance) {
    CAPTURE(b);
    CHECK(at::allclose(run.tensor(b).to(at::kDouble), before.at(b + ".weight").to(at::kDouble) * scales.view({1, -1}),
                       1e-5, 0));
  }
}

std::map<std::string, at::Tensor> snapshot(const Calibration& run) {
  std::map<std::string, at::Tensor> out;
  for (const modkit::ModuleInfo& m : run.model->modules()) {
    for (const modkit::TensorInfo& t : run.model->tensors(m.name)) {
      out[m.name + "." + t.name] = run.model->get_tensor(m.name, t.name).clone();
    }
  }
  return out;
}

std::vector<std::string> qkv(const std::string& layer) {
  return {layer + ".self_attn.q_proj", layer + ".self_attn.k_proj", layer + ".self_attn.v_proj"};
}

// Per-token (per-row) symmetric int8 fake quantization as compressed-tensors does it:
// scale = max|x| / 127.5, q = clamp(round(x / scale), -128, 127).
at::Tensor int8_per_row(const at::Tensor& x) {
  const at::Tensor scale = x.abs().amax(-1, true).clamp_min(std::numeric_limits<float>::epsilon()) / 127.5;
  return at::clamp(at::round(x / scale), -128, 127) * scale;
}

}  // namespace

TEST_CASE("smoothing scales are llmcompressor's (max - min)^a / (2 max|W|)^(1-a), folded into norm and balance weights") {
  for (const double alpha : {0.5, 0.8, 0.0, 1.0}) {
    CAPTURE(alpha);
    at::manual_seed(71);
    Calibration run = outlier_transformer(2, 32, 73, {3, 17}, 25.0);
    std::map<std::string, std::unique_ptr<Recorder>> outputs;
    for (const std::string l : {"layers.0", "layers.1"}) {
      for (const std::string n : {".input_layernorm", ".post_attention_layernorm"}) {
        outputs[l + n] = std::make_unique<Recorder>(*run.model, l + n, HookKind::Forward);
      }
    }
    const auto before = snapshot(run);
    run.start(make_modifier("SmoothQuantModifier", smooth_params(alpha)));
    for (int b = 0; b < 3; ++b) run.forward(at::randn({2, 6, 32}));
    run.epoch_end(run.all());
    run.end();
    for (const std::string l : {"layers.0", "layers.1"}) {
      const std::vector<std::string> attn = qkv(l);
      std::vector<at::Tensor> attn_w;
      for (const std::string& b : attn) attn_w.push_back(before.at(b + ".weight"));
      check_folded(run, l + ".input_layernorm", attn, before,
                   reference_scales(outputs[l + ".input_layernorm"]->tokens(), attn_w, alpha));
      check_folded(run, l + ".post_attention_layernorm", {l + ".mlp.fc1"}, before,
                   reference_scales(outputs[l + ".post_attention_layernorm"]->tokens(),
                                    {before.at(l + ".mlp.fc1.weight")}, alpha));
    }
    CHECK(at::equal(run.tensor("layers.0.self_attn.o_proj"), before.at("layers.0.self_attn.o_proj.weight")));
    CHECK(at::equal(run.tensor("norm"), before.at("norm.weight")));
  }
}

TEST_CASE("the smoothed model computes the same outputs up to float error") {
  at::manual_seed(79);
  Calibration run = outlier_transformer(2, 64, 83, {1, 30, 45, 60}, 40.0);
  const at::Tensor held_out = at::randn({4, 16, 64});
  const at::Tensor expected = run.forward(held_out);
  // the float32 model's own rounding error: the same model evaluated in double
  torch::jit::Module exact = run.model->module().deepcopy();
  exact.to(at::kDouble);
  const double rounding = relative_error(expected, exact.forward({held_out.to(at::kDouble)}).toTensor());
  run.start(make_modifier("SmoothQuantModifier", smooth_params(0.5)));
  for (int b = 0; b < 4; ++b) run.forward(at::randn({2, 16, 64}));
  run.epoch_end(run.all());
  run.end();
  const double change = relative_error(run.forward(held_out), expected);
  MESSAGE("relative output change after smoothing: " << change << " (the float32 model's own error vs double: "
                                                     << rounding << ")");
  CHECK(change < 1e-5);
  CHECK(change < rounding);
  CHECK_FALSE(at::equal(run.tensor("layers.0.input_layernorm"), at::ones({64})));  // it did smooth
}

TEST_CASE("a zero weight column takes the activation range, and no scale falls below 1e-5") {
  at::manual_seed(89);
  Calibration run = outlier_transformer(1, 16, 97, {2}, 20.0);
  const at::NoGradGuard no_grad;
  for (const std::string& b : qkv("layers.0")) run.tensor(b).select(1, 5).zero_();  // column 5: weight scale 0
  run.tensor("layers.0.input_layernorm", "weight")[9] = 0.0;  // channel 9: constant output, range 0
  Recorder out(*run.model, "layers.0.input_layernorm", HookKind::Forward);
  const auto before = snapshot(run);
  run.start(make_modifier("SmoothQuantModifier",
                 smooth_params(0.5, R"([[["re:.*q_proj", "re:.*k_proj", "re:.*v_proj"], "re:.*input_layernorm"]])")));
  for (int b = 0; b < 2; ++b) run.forward(at::randn({3, 4, 16}));
  run.epoch_end(run.all());
  run.end();
  const at::Tensor y = out.tokens();
  const double range5 = (y.select(1, 5).max() - y.select(1, 5).min()).item<double>();
  // s_5 = range_5: the bias of channel 5 is divided by exactly the activation range
  CHECK(before.at("layers.0.input_layernorm.bias")[5].item<double>() /
            run.tensor("layers.0.input_layernorm", "bias")[5].item<double>() ==
        doctest::Approx(range5).epsilon(1e-6));
  // s_9 = max(0, 1e-5): the constant channel's bias grows 1e5 times, its weight stays 0
  CHECK(run.tensor("layers.0.input_layernorm", "bias")[9].item<double>() ==
        doctest::Approx(before.at("layers.0.input_layernorm.bias")[9].item<double>() / 1e-5).epsilon(1e-6));
  CHECK(run.tensor("layers.0.input_layernorm", "weight")[9].item<double>() == 0.0);
  CHECK(run.tensor("layers.0.self_attn.q_proj").select(1, 9).abs().max().item<double>() ==
        doctest::Approx(before.at("layers.0.self_attn.q_proj.weight").select(1, 9).abs().max().item<double>() * 1e-5));
}

TEST_CASE("each block is smoothed at its own SEQUENTIAL_EPOCH_END, and its hooks are removed") {
  at::manual_seed(101);
  Calibration run = outlier_transformer(2, 32, 103, {4}, 30.0);
  const auto before = snapshot(run);
  run.start(make_modifier("SmoothQuantModifier", smooth_params(0.5)));
  CHECK(run.model->hook_count() == 4);  // one forward hook per smooth layer
  for (int b = 0; b < 2; ++b) run.forward(at::randn({2, 5, 32}));
  run.epoch_end(run.block("layers.0"));
  CHECK_FALSE(at::equal(run.tensor("layers.0.input_layernorm"), before.at("layers.0.input_layernorm.weight")));
  CHECK_FALSE(at::equal(run.tensor("layers.0.mlp.fc1"), before.at("layers.0.mlp.fc1.weight")));
  CHECK(at::equal(run.tensor("layers.1.input_layernorm"), before.at("layers.1.input_layernorm.weight")));
  CHECK(at::equal(run.tensor("layers.1.self_attn.q_proj"), before.at("layers.1.self_attn.q_proj.weight")));
  CHECK(run.model->hook_count() == 2);
  run.epoch_end(run.block("layers.1"));
  CHECK_FALSE(at::equal(run.tensor("layers.1.input_layernorm"), before.at("layers.1.input_layernorm.weight")));
  CHECK(run.model->hook_count() == 0);
  run.end();
}

TEST_CASE("num_calibration_steps limits the forwards each smooth layer observes") {
  at::manual_seed(107);
  Calibration run = outlier_transformer(1, 16, 109, {0}, 10.0);
  const auto before = snapshot(run);
  Params p = smooth_params(0.5, R"([[["re:.*fc1"], "re:.*post_attention_layernorm"]])");
  p["num_calibration_steps"] = 2;
  run.start(make_modifier("SmoothQuantModifier", p));
  std::vector<at::Tensor> first;
  {
    Recorder out(*run.model, "layers.0.post_attention_layernorm", HookKind::Forward);
    for (int b = 0; b < 2; ++b) run.forward(at::randn({2, 4, 16}));
    first.push_back(out.tokens());
  }
  run.forward(10.0 * at::randn({2, 4, 16}));  // a third, much wider batch: not observed
  run.end();
  check_folded(run, "layers.0.post_attention_layernorm", {"layers.0.mlp.fc1"}, before,
               reference_scales(first[0], {before.at("layers.0.mlp.fc1.weight")}, 0.5));
}

TEST_CASE("with outlier channels, per-token int8 quantization of the balance layers' input loses far less after smoothing") {
  at::manual_seed(113);
  const int64_t hidden = 128;
  const std::vector<int64_t> outliers{5, 40, 77, 120};  // 3 % of the channels, 30x
  Calibration run = outlier_transformer(1, hidden, 127, outliers, 30.0);
  const at::Tensor held_out = at::randn({8, 32, hidden});
  const std::vector<std::string> balance = qkv("layers.0");
  auto capture = [&] {
    Recorder x(*run.model, "layers.0.input_layernorm", HookKind::Forward);
    run.forward(held_out);
    return x.tokens();
  };
  const at::Tensor x0 = capture();
  std::vector<at::Tensor> w0;
  for (const std::string& b : balance) w0.push_back(run.tensor(b).to(at::kDouble).clone());

  run.start(make_modifier("SmoothQuantModifier",
                 smooth_params(0.5, R"([[["re:.*q_proj", "re:.*k_proj", "re:.*v_proj"], "re:.*input_layernorm"]])")));
  for (int b = 0; b < 8; ++b) run.forward(at::randn({4, 32, hidden}));
  run.epoch_end(run.all());
  run.end();
  const at::Tensor x1 = capture();

  std::vector<at::Tensor> w1;
  for (const std::string& b : balance) w1.push_back(run.tensor(b).to(at::kDouble));

  // error of the q, k, v outputs against the unquantized original: activations only (A8), and W8A8
  auto error = [&](const at::Tensor& x, const std::vector<at::Tensor>& ws, bool quantize_weights) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
      const at::Tensor ref = at::matmul(x0, w0[i].t());
      const at::Tensor got = at::matmul(int8_per_row(x), (quantize_weights ? int8_per_row(ws[i]) : ws[i]).t());
      num += (got - ref).pow(2).sum().item<double>();
      den += ref.pow(2).sum().item<double>();
    }
    return std::sqrt(num / den);
  };
  const double a8_before = error(x0, w0, false), a8_after = error(x1, w1, false);
  const double w8a8_before = error(x0, w0, true), w8a8_after = error(x1, w1, true);
  // the inputs' own quantization error, relative per token, without the outlier channels
  at::Tensor normal = at::ones({hidden}, at::kBool);
  for (int64_t c : outliers) normal[c] = false;
  const at::Tensor kept = normal.nonzero().squeeze(1);
  const double in_before = relative_error(int8_per_row(x0).index_select(1, kept), x0.index_select(1, kept));
  const double in_after = relative_error(int8_per_row(x1).index_select(1, kept), x1.index_select(1, kept));
  MESSAGE("q/k/v output error, int8 per-token activations: " << a8_before << " -> " << a8_after << " ("
                                                             << a8_after / a8_before << "x); W8A8: " << w8a8_before
                                                             << " -> " << w8a8_after << " (" << w8a8_after / w8a8_before
                                                             << "x); input error on the other channels: " << in_before
                                                             << " -> " << in_after);
  CHECK(a8_after <= 0.5 * a8_before);
  CHECK(w8a8_after <= 0.5 * w8a8_before);
  CHECK(in_after <= 0.25 * in_before);
}

TEST_CASE("default mappings: llmcompressor's, a mapping the model lacks is skipped, none fitting is an error") {
  at::manual_seed(131);
  Calibration run = outlier_transformer(1, 16, 137, {1}, 10.0);
  const auto before = snapshot(run);
  run.start(make_modifier("SmoothQuantModifier", Params::object()));
  CHECK(run.model->hook_count() == 1);  // q/k/v <- input_layernorm; gate/up_proj <- post_attention_layernorm is skipped
  run.forward(at::randn({2, 4, 16}));
  run.end();
  CHECK_FALSE(at::equal(run.tensor("layers.0.input_layernorm"), before.at("layers.0.input_layernorm.weight")));
  CHECK(at::equal(run.tensor("layers.0.post_attention_layernorm"), before.at("layers.0.post_attention_layernorm.weight")));

  Calibration mlp(models::make_mlp(8, 16, 4, 139));
  CHECK(message_of<modkit::PluginError>([&] { mlp.initialize(make_modifier("SmoothQuantModifier", Params::object())); }) ==
        "SmoothQuantModifier.on_initialize failed: no default mapping matches the model ([[\"re:.*q_proj\", "
        "\"re:.*k_proj\", \"re:.*v_proj\"], \"re:.*input_layernorm\"], [[\"re:.*gate_proj\", \"re:.*up_proj\"], "
        "\"re:.*post_attention_layernorm\"]): give mappings [[balance_layers], smooth_layer] for its module names");
}

TEST_CASE("without calibration data SmoothQuant says so") {
  Calibration run = outlier_transformer(1, 16, 149, {}, 1.0);
  run.start(make_modifier("SmoothQuantModifier", smooth_params(0.5)));
  run.epoch_end(run.all());
  CHECK(message_of<modkit::PluginError>([&] { run.session.event(modkit::EventType::CalibrationEnd); }) ==
        "SmoothQuantModifier.on_event failed: no calibration data reached any of the 2 smooth layers "
        "[\"layers.0.input_layernorm\", \"layers.0.post_attention_layernorm\"]: SmoothQuantModifier needs calibration "
        "samples run through the model");
}

TEST_CASE("bad mappings and parameters are refused with messages naming them") {
  auto init_message = [](const std::string& mappings, Params extra = Params::object()) {
    Calibration run(models::make_tiny_transformer(2, 32, 151));
    Params p = smooth_params(0.5, mappings);
    for (auto it = extra.begin(); it != extra.end(); ++it) p[it.key()] = it.value();
    return message_of<modkit::PluginError>([&] { run.initialize(make_modifier("SmoothQuantModifier", p)); });
  };
  const std::string init = "SmoothQuantModifier.on_initialize failed: ";
  CHECK(init_message(R"([[["re:.*q_proj"], "re:.*rms_norm"]])") ==
        init + "mappings[0] [[\"re:.*q_proj\"], \"re:.*rms_norm\"]: smooth layer \"re:.*rms_norm\" matches no module");
  CHECK(init_message(R"([[["re:.*fc1"], "re:.*post_attention_layernorm"], [["re:.*gate_proj"], "re:.*input_layernorm"]])") ==
        init + "mappings[1] [[\"re:.*gate_proj\"], \"re:.*input_layernorm\"]: balance layers [\"re:.*gate_proj\"] "
               "match no module");
  CHECK(init_message(R"([[["re:.*q_proj"], "re:.*input_layernorm"]])", Params{{"ignore", {"re:.*q_proj"}}}) ==
        init + "mappings[0] [[\"re:.*q_proj\"], \"re:.*input_layernorm\"]: balance layers [\"re:.*q_proj\"] match no "
               "module once ignore [\"re:.*q_proj\"] is applied");
  CHECK(init_message(R"([[["re:.*mlp\\.act"], "re:.*post_attention_layernorm"]])") ==
        init + "balance layer 'layers.0.mlp.act' (ReLU) of mappings[0] has no 'weight' tensor to take the scales");
  CHECK(init_message(R"([[["re:.*fc2"], "re:.*mlp\\.act"]])") ==
        init + "smooth layer 'layers.0.mlp.act' (ReLU) of mappings[0] has no 'weight' tensor to fold the scales into");
  CHECK(init_message(R"([[["re:.*fc2"], "re:.*post_attention_layernorm"]])") ==
        init + "smooth layer 'layers.0.post_attention_layernorm' has 32 output channels but balance layer "
               "'layers.0.mlp.fc2' has 64 input features (mappings[0])");
  CHECK(init_message(R"([[["re:.*q_proj"], "re:.*layernorm"]])") ==
        init + "mappings[0] [[\"re:.*q_proj\"], \"re:.*layernorm\"]: expected one smooth layer per block, found 2 "
               "under 'layers.0': [\"layers.0.input_layernorm\", \"layers.0.post_attention_layernorm\"]");
  CHECK(init_message(R"([[["re:.*q_proj"], "re:.*input_layernorm"]])", Params{{"ignore", {"layers.1.self_attn.q_proj"}}}) ==
        init + "mappings[0] [[\"re:.*q_proj\"], \"re:.*input_layernorm\"]: [\"re:.*q_proj\"] match nothing in the "
               "scope of 'layers.1.input_layernorm' (a smooth layer and its balance layers must share a parent module)");
  CHECK(init_message(R"([[["re:.*proj"], "re:.*q_proj"]])") ==
        init + "mappings[0] [[\"re:.*proj\"], \"re:.*q_proj\"]: module 'layers.0.self_attn.q_proj' is matched by "
               "several of its names [\"re:.*proj\", \"re:.*q_proj\"]; each module may take one role");

  const std::string create = "SmoothQuantModifier.create failed: ";
  auto create_message = [](const Params& p) {
    return message_of<modkit::PluginError>([&] { make_modifier("SmoothQuantModifier", p); });
  };
  CHECK(create_message(smooth_params(0.5, R"([[["re:.*fc1"]]])")) ==
        create + "parameter 'mappings[0]': expected [balance_layers, smooth_layer] (a list of names and a name), found "
                 "a list of 1 item");
  CHECK(create_message(smooth_params(0.5, R"([[["re:.*fc1"], 3]])")) ==
        create + "parameter 'mappings[0][1]': expected the smooth layer's name (a string), found int");
  CHECK(create_message(smooth_params(0.5, R"(["re:.*fc1"])")) ==
        create + "parameter 'mappings[0]': expected [balance_layers, smooth_layer] (a list of names and a name), found "
                 "string");
  CHECK(create_message(smooth_params(0.5, R"([])")) ==
        create + "parameter 'mappings': expected at least one [balance_layers, smooth_layer] pair, found an empty list");
  Params end = smooth_params(0.5);
  end["end"] = 5;
  CHECK(create_message(end) == create + "SmoothQuantModifier can only be applied in one shot: expected end to be unset, "
                                        "0 or -1, found 5");
  CHECK(message_of<modkit::ValueError>([] { make_modifier("SmoothQuantModifier", Params{{"smoothing_strength", 1.5}}); })
            .rfind("SmoothQuantModifier parameter 'smoothing_strength': 1.5 is out of range [0, 1]", 0) == 0);
}
