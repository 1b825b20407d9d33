// Builders of the small TorchScript test models: types named as Python's scripting names them.
#include <modkit/torch/model.hpp>
#include <modkit/torch/test_models.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>

#include <cmath>

namespace modkit::test_models {
namespace {

c10::QualifiedName qualified(const std::string& class_name, const std::string& python_module) {
  if (class_name.find('.') != std::string::npos) return c10::QualifiedName(class_name);
  return c10::QualifiedName("__torch__." + python_module + "." + class_name);
}

// Uniform in [-bound, bound], reproducible from `seed`.
at::Tensor uniform(at::IntArrayRef shape, double bound, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::rand(shape, gen).mul_(2.0 * bound).sub_(bound);
}

// A stream of per-module seeds derived from one model seed.
struct Seeds {
  uint64_t next;
  uint64_t operator()() { return next++ * 0x9E3779B97F4A7C15ull + 1; }
};

torch::jit::Module make_layer_norm(int64_t hidden) {
  torch::jit::Module m(qualified("LayerNorm", "torch.nn.modules.normalization"));
  m.register_parameter("weight", at::ones({hidden}), false);
  m.register_parameter("bias", at::zeros({hidden}), false);
  m.define(R"(
def forward(self, x):
    return torch.layer_norm(x, [x.size(-1)], self.weight, self.bias, 1e-05)
)");
  return m;
}

torch::jit::Module make_relu() {
  torch::jit::Module m(qualified("ReLU", "torch.nn.modules.activation"));
  m.define(R"(
def forward(self, x):
    return torch.relu(x)
)");
  return m;
}

torch::jit::Module make_mlp_block(int64_t in, int64_t hidden, int64_t out, Seeds& seeds) {
  torch::jit::Module m(qualified("MLP", "modkit.test_models"));
  m.register_module("fc1", make_linear("Linear", in, hidden, true, seeds()));
  m.register_module("act", make_relu());
  m.register_module("fc2", make_linear("Linear", hidden, out, true, seeds()));
  m.define(R"(
def forward(self, x):
    return self.fc2.forward(self.act.forward(self.fc1.forward(x)))
)");
  return m;
}

torch::jit::Module make_attention(int64_t hidden, Seeds& seeds) {
  torch::jit::Module m(qualified("Attention", "modkit.test_models"));
  for (const char* name : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    m.register_module(name, make_linear("Linear", hidden, hidden, false, seeds()));
  }
  m.define(R"(
def forward(self, x):
    q = self.q_proj.forward(x)
    k = self.k_proj.forward(x)
    v = self.v_proj.forward(x)
    scores = torch.matmul(q, k.transpose(-2, -1)) / (float(q.size(-1)) ** 0.5)
    return self.o_proj.forward(torch.matmul(torch.softmax(scores, -1), v))
)");
  return m;
}

torch::jit::Module make_decoder_layer(int64_t hidden, Seeds& seeds) {
  torch::jit::Module m(qualified("DecoderLayer", "modkit.test_models"));
  m.register_module("input_layernorm", make_layer_norm(hidden));
  m.register_module("self_attn", make_attention(hidden, seeds));
  m.register_module("post_attention_layernorm", make_layer_norm(hidden));
  m.register_module("mlp", make_mlp_block(hidden, 2 * hidden, hidden, seeds));
  m.define(R"(
def forward(self, x):
    x = x + self.self_attn.forward(self.input_layernorm.forward(x))
    return x + self.mlp.forward(self.post_attention_layernorm.forward(x))
)");
  return m;
}

}  // namespace

torch::jit::Module make_linear(const std::string& class_name, int64_t in, int64_t out, bool bias,
                               uint64_t seed) {
  torch::jit::Module m(qualified(class_name, "torch.nn.modules.linear"));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  m.register_parameter("weight", uniform({out, in}, bound, seed), false);
  if (bias) {
    m.register_parameter("bias", uniform({out}, bound, seed ^ 0xB1A5ull), false);
  } else {
    m.register_attribute("bias", c10::NoneType::get(), c10::IValue());
  }
  m.define(R"(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)");
  return m;
}

torch::jit::Module make_mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
  Seeds seeds{seed};
  return make_mlp_block(in, hidden, out, seeds);
}

namespace {

// Gives a deep copy of a decoder layer (same TorchScript types) weights of its
// own, drawn as make_linear draws them.
void reinitialize_linears(torch::jit::Module& layer, Seeds& seeds) {
  for (const auto& m : layer.named_modules()) {
    if (class_name_of(m.value) != "Linear") continue;
    torch::jit::Module linear = m.value;
    const at::Tensor w = linear.attr("weight").toTensor();
    const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
    const uint64_t s = seeds();
    linear.setattr("weight", uniform(w.sizes(), bound, s));
    if (linear.attr("bias").isTensor()) linear.setattr("bias", uniform({w.size(0)}, bound, s ^ 0xB1A5ull));
  }
}

}  // namespace

torch::jit::Module make_tiny_transformer(int64_t layers, int64_t hidden, uint64_t seed) {
  Seeds seeds{seed};
  torch::jit::Module list(qualified("ModuleList", "torch.nn.modules.container"));
  std::string body = "def forward(self, x):\n";
  for (int64_t i = 0; i < layers; ++i) {
    if (i == 0) {
      list.register_module("0", make_decoder_layer(hidden, seeds));
    } else {
      // the layers share their types, as Python's scripting gives (and LibTorch 1.13's alias
      // analysis needs: it takes exponential time on deep graphs whose every layer has new types)
      torch::jit::Module layer = list.attr("0").toModule().deepcopy();
      reinitialize_linears(layer, seeds);
      list.register_module(std::to_string(i), layer);
    }
    body += "    x = getattr(self.layers, \"" + std::to_string(i) + "\").forward(x)\n";
  }
  torch::jit::Module root(qualified("TinyTransformer", "modkit.test_models"));
  root.register_module("layers", list);
  root.register_module("norm", make_layer_norm(hidden));
  root.register_module("lm_head", make_linear("Linear", hidden, hidden, false, seeds()));
  body += "    return self.lm_head.forward(self.norm.forward(x))\n";
  root.define(body);
  return root;
}

}  // namespace modkit::test_models
