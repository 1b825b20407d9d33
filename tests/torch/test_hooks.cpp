// Tests of forward hooks on TorchScript models: graph instrumentation, shared types, removal, scopes, the ABI entry points.
#include <modkit/torch/hooks.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include "torch_test_support.hpp"

#include <ATen/core/Tensor.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/randn.h>
#include <modkit/sdk/torch_dlpack.hpp>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>

#include <set>
#include <string>
#include <vector>

using modkit::HookCall;
using modkit::HookKind;
using modkit::Model;
using modkit::testing::call;
using modkit::testing::ScratchDir;
namespace models = modkit::demo_models;

namespace {

// A root whose two children share one TorchScript type, as Python's scripting gives.
Model shared_type_model() {
  torch::jit::Module a = models::make_linear("Linear", 4, 4, true, 1);
  torch::jit::Module b = a.deepcopy();
  b.attr("weight").toTensor().mul_(2.0);
  torch::jit::Module root(c10::QualifiedName("__torch__.Pair"));
  root.register_module("a", a);
  root.register_module("b", b);
  root.define("def forward(self, x):\n    return self.b.forward(self.a.forward(x))\n");
  return Model(root);
}

// How many modkit hook nodes the graphs of the model's types hold.
int instrumentation_nodes(const Model& model) {
  int n = 0;
  std::set<const c10::ClassType*> seen;
  for (const torch::jit::Module& m : model.module().modules()) {
    if (!seen.insert(m.type().get()).second) continue;
    for (torch::jit::Function* fn : m.type()->methods()) {
      for (const torch::jit::Node* node : torch::jit::toGraphFunction(*fn).graph()->nodes()) {
        n += node->kind().toQualString() == std::string("modkit::_hook") ? 1 : 0;
      }
    }
  }
  return n;
}

struct Seen {
  std::vector<std::string> calls;
  std::vector<at::Tensor> tensors;
};

modkit::HookFn recorder(Seen& seen, const std::string& tag) {
  return [&seen, tag](const HookCall& c) {
    seen.calls.push_back(tag + ":" + c.module);
    if (c.output != nullptr) {
      seen.tensors.push_back(c.output->toTensor().clone());
    } else {
      seen.tensors.push_back(c.inputs.at(0).toTensor().clone());
    }
  };
}

}  // namespace

TEST_CASE("hooks see the inputs and outputs of their own module, even when modules share a type") {
  Model model = shared_type_model();
  REQUIRE(model.module().attr("a").toObject()->type() == model.module().attr("b").toObject()->type());
  const at::Tensor x = at::randn({3, 4});
  const at::Tensor expected_mid = model.find_module("a").forward({x}).toTensor();
  const at::Tensor expected_out = model.forward({x}).toTensor();  // compiled before any hook exists

  Seen seen;
  model.add_hook("b", HookKind::ForwardPre, recorder(seen, "pre"));
  model.add_hook("b", HookKind::Forward, recorder(seen, "post"));
  const at::Tensor out = model.forward({x}).toTensor();

  CHECK(seen.calls == std::vector<std::string>{"pre:b", "post:b"});
  REQUIRE(seen.tensors.size() == 2);
  CHECK(at::equal(seen.tensors[0], expected_mid));  // b's input is a's output
  CHECK(at::equal(seen.tensors[1], expected_out));
  CHECK(at::equal(out, expected_out));  // hooks observe, they do not change the result
  CHECK(model.hook_count() == 2);
}

TEST_CASE("a forward hook sees the module's inputs too") {
  Model model(models::make_mlp(4, 8, 2, 3));
  std::vector<int64_t> input_widths;
  model.add_hook("fc2", HookKind::Forward, [&](const HookCall& c) {
    input_widths.push_back(c.inputs.at(0).toTensor().size(-1));
    input_widths.push_back(c.output->toTensor().size(-1));
  });
  model.forward({at::randn({5, 4})});
  CHECK(input_widths == std::vector<int64_t>{8, 2});
}

TEST_CASE("removing the last hook of a graph removes the instrumentation") {
  Model model = shared_type_model();
  CHECK(instrumentation_nodes(model) == 0);
  Seen seen;
  const auto h1 = model.add_hook("a", HookKind::ForwardPre, recorder(seen, "a"));
  const auto h2 = model.add_hook("b", HookKind::ForwardPre, recorder(seen, "b"));
  CHECK(h1 != h2);
  CHECK(instrumentation_nodes(model) == 2);  // one shared graph: a pre and a post node
  Model::remove_hook(h1);
  CHECK(instrumentation_nodes(model) == 2);  // b still uses it
  model.forward({at::randn({1, 4})});
  CHECK(seen.calls == std::vector<std::string>{"b:b"});
  Model::remove_hook(h2);
  Model::remove_hook(h2);  // unknown ids are ignored
  CHECK(instrumentation_nodes(model) == 0);
  model.forward({at::randn({1, 4})});
  CHECK(seen.calls.size() == 1);
  CHECK(model.hook_count() == 0);
}

TEST_CASE("a model saved while hooks are registered carries no instrumentation and loads back") {
  ScratchDir dir;
  Model model(models::make_tiny_transformer(1, 8, 5));
  Seen seen;
  model.add_hook("layers.0.mlp.fc1", HookKind::ForwardPre, recorder(seen, "fc1"));
  model.save(dir.file("m.pt"));
  CHECK(instrumentation_nodes(model) == 2);  // still there for this process
  Model back = Model::load(dir.file("m.pt"));
  CHECK(instrumentation_nodes(back) == 0);
  const at::Tensor x = at::randn({1, 3, 8});
  CHECK(at::allclose(back.forward({x}).toTensor(), model.forward({x}).toTensor()));
  CHECK(seen.calls == std::vector<std::string>{"fc1:layers.0.mlp.fc1"});
}

TEST_CASE("disabled scopes nest and keep the hooks they name") {
  Model model(models::make_mlp(4, 8, 2, 3));
  Seen seen;
  const auto h1 = model.add_hook("fc1", HookKind::ForwardPre, recorder(seen, "1"));
  const auto h2 = model.add_hook("fc2", HookKind::ForwardPre, recorder(seen, "2"));
  const at::Tensor x = at::randn({1, 4});
  auto run = [&] {
    seen.calls.clear();
    model.forward({x});
    return seen.calls;
  };
  using Calls = std::vector<std::string>;
  CHECK(run() == Calls{"1:fc1", "2:fc2"});
  {
    auto outer = model.disable_hooks({h2});
    CHECK(run() == Calls{"2:fc2"});
    {
      auto inner = model.disable_hooks();
      CHECK(run() == Calls{"2:fc2"});  // kept by the outer scope
      {
        auto keep_both = model.disable_hooks({h1, h2});
        CHECK(run() == Calls{"1:fc1", "2:fc2"});
      }
      CHECK(run() == Calls{"2:fc2"});  // h2 is still kept by outer after keep_both left
    }
    CHECK(run() == Calls{"2:fc2"});  // leaving the inner scope keeps the outer one in force
  }
  CHECK(run() == Calls{"1:fc1", "2:fc2"});

  SUBCASE("scopes may be left out of order") {
    auto first = model.disable_hooks();
    auto second = model.disable_hooks();
    first.restore();
    CHECK(run() == Calls{});
    second.restore();
    CHECK(run() == Calls{"1:fc1", "2:fc2"});
  }
}

TEST_CASE("a failing hook fails the forward with the hook's own exception") {
  Model model(models::make_mlp(4, 8, 2, 3));
  model.add_hook("fc2", HookKind::Forward,
                 [](const HookCall&) { throw modkit::ValueError("statistics of 'fc2' overflowed"); });
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { model.forward({at::randn({1, 4})}); }) ==
        std::string("statistics of 'fc2' overflowed"));
}

TEST_CASE("hooks cannot be added from inside a hook") {
  Model model(models::make_mlp(4, 8, 2, 3));
  std::string message;
  model.add_hook("fc1", HookKind::ForwardPre, [&](const HookCall&) {
    message = modkit::testing::thrown_message<modkit::RuntimeError>(
        [&] { model.add_hook("fc2", HookKind::ForwardPre, [](const HookCall&) {}); });
  });
  model.forward({at::randn({1, 4})});
  CHECK(message == "cannot add a hook to module 'fc2' from inside a hook: the model is running");
}

TEST_CASE("adding a hook names what is wrong") {
  Model model(models::make_mlp(4, 8, 2, 3));
  CHECK(modkit::testing::thrown_message<modkit::LookupError>(
            [&] { model.add_hook("fc9", HookKind::Forward, [](const HookCall&) {}); }) ==
        std::string("no module 'fc9' in the model"));
  CHECK(modkit::testing::thrown_message<modkit::ValueError>(
            [&] { model.add_hook("fc1", HookKind::Forward, modkit::HookFn()); }) ==
        std::string("cannot add a hook to module 'fc1': the hook is empty"));
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] {
          model.add_hook("fc1", static_cast<HookKind>(7), [](const HookCall&) {});
        }) == std::string("unknown hook kind 7, expected forward-pre (1) or forward (2)"));
}

TEST_CASE("destroying a model removes its hooks") {
  const size_t before = [] {
    Model probe(models::make_mlp(2, 2, 2, 1));
    return probe.hook_count();
  }();
  CHECK(before == 0);
  modkit::HookId id = 0;
  {
    Model model(models::make_mlp(4, 8, 2, 3));
    id = model.add_hook("fc1", HookKind::Forward, [](const HookCall&) {});
    CHECK(model.hook_count() == 1);
  }
  Model::remove_hook(id);  // already gone: ignored
}

namespace {

struct AbiSeen {
  std::vector<std::string> modules;
  std::vector<size_t> counts;
  std::vector<int64_t> dims;
  bool fail = false;
};

modkit_status abi_hook(void* user, const modkit_hook_call* c, modkit_error** error) {
  auto* seen = static_cast<AbiSeen*>(user);
  if (seen->fail) {
    *error = Model::host()->error_new(Model::host(), MODKIT_ERROR_INVALID_ARGUMENT, "hessian of 'fc1' is not finite");
    return MODKIT_ERROR_INVALID_ARGUMENT;
  }
  seen->modules.push_back(c->module);
  seen->counts.push_back(c->input_count);
  seen->counts.push_back(c->output_count);
  seen->dims.push_back(c->inputs[0]->dl_tensor.shape[c->inputs[0]->dl_tensor.ndim - 1]);
  if (c->output_count > 0) seen->dims.push_back(c->outputs[0]->dl_tensor.shape[c->outputs[0]->dl_tensor.ndim - 1]);
  return MODKIT_OK;
}

}  // namespace

TEST_CASE("the host table's hook services call C hooks with DLPack views") {
  const modkit_host* host = Model::host();
  REQUIRE(host->abi_minor >= 1);
  REQUIRE(MODKIT_HAS_FIELD(host, modkit_host, hooks_restore));
  Model model(models::make_mlp(4, 8, 2, 3));
  AbiSeen seen;
  uint64_t pre = 0, post = 0;
  auto r = call([&](modkit_error** e) {
    return host->hook_add(host, model.handle(), "fc1", MODKIT_HOOK_FORWARD_PRE, &abi_hook, &seen, &pre, e);
  });
  REQUIRE(r.status == MODKIT_OK);
  r = call([&](modkit_error** e) {
    return host->hook_add(host, model.handle(), "fc2", MODKIT_HOOK_FORWARD, &abi_hook, &seen, &post, e);
  });
  REQUIRE(r.status == MODKIT_OK);
  CHECK(pre != 0);
  model.forward({at::randn({2, 4})});
  CHECK(seen.modules == std::vector<std::string>{"fc1", "fc2"});
  CHECK(seen.counts == std::vector<size_t>{1, 0, 1, 1});
  CHECK(seen.dims == std::vector<int64_t>{4, 8, 2});

  SUBCASE("a scope keeps what it is told to") {
    uint64_t scope = 0;
    r = call([&](modkit_error** e) { return host->hooks_disable(host, model.handle(), &post, 1, &scope, e); });
    REQUIRE(r.status == MODKIT_OK);
    seen.modules.clear();
    model.forward({at::randn({2, 4})});
    CHECK(seen.modules == std::vector<std::string>{"fc2"});
    host->hooks_restore(host, scope);
    seen.modules.clear();
    model.forward({at::randn({2, 4})});
    CHECK(seen.modules == std::vector<std::string>{"fc1", "fc2"});
  }
  SUBCASE("a hook's error status fails the forward with its message") {
    seen.fail = true;
    try {
      model.forward({at::randn({2, 4})});
      FAIL("no exception");
    } catch (const modkit::PluginError& e) {
      CHECK(e.status() == MODKIT_ERROR_INVALID_ARGUMENT);
      CHECK(std::string(e.what()) == "a plugin's forward-pre hook on 'fc1' failed: hessian of 'fc1' is not finite");
    }
  }
  SUBCASE("bad arguments are statuses, not crashes") {
    uint64_t id = 0;
    r = call([&](modkit_error** e) {
      return host->hook_add(host, model.handle(), "nope", MODKIT_HOOK_FORWARD, &abi_hook, &seen, &id, e);
    });
    CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
    CHECK(r.message == "no module 'nope' in the model");
    r = call([&](modkit_error** e) {
      return host->hook_add(host, model.handle(), "fc1", MODKIT_HOOK_FORWARD, nullptr, &seen, &id, e);
    });
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(r.message == "fn is NULL");
    CHECK(id == 0);
  }
  host->hook_remove(host, pre);
  host->hook_remove(host, post);
  CHECK(model.hook_count() == 0);
}
