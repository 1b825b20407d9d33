// Tests of the model services of the host table, called through the C function pointers as a plugin calls them.
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>

#include "torch_test_support.hpp"

#include <modkit/sdk/torch.hpp>
#include <torch/csrc/jit/serialization/import.h>

#include <cstring>
#include <utility>

using modkit::Model;
using modkit::testing::call;
using modkit::testing::CallResult;
using modkit::testing::ScratchDir;
namespace models = modkit::demo_models;

namespace {

const modkit_host* host() { return Model::host(); }

// tensor_set with a value made the way the SDK's set_tensor makes it.
CallResult set(Model& model, const char* module, const char* name, const at::Tensor& value, uint32_t flags = 0) {
  DLManagedTensor* dl = at::toDLPack(value.contiguous());
  CallResult r = call([&](modkit_error** e) {
    return host()->tensor_set(host(), model.handle(), module, name, dl, flags, e);
  });
  dl->deleter(dl);
  return r;
}

std::vector<std::pair<std::string, uint32_t>> list(Model& model, const char* module, CallResult* result = nullptr) {
  std::vector<std::pair<std::string, uint32_t>> out;
  CallResult r = call([&](modkit_error** e) {
    return host()->tensor_list(
        host(), model.handle(), module,
        [](void* user, const char* name, uint32_t kind) {
          static_cast<std::vector<std::pair<std::string, uint32_t>>*>(user)->emplace_back(name, kind);
        },
        &out, e);
  });
  if (result != nullptr) *result = r;
  return out;
}

using Tensors = std::vector<std::pair<std::string, uint32_t>>;

}  // namespace

TEST_CASE("the host table carries the core's services and the model services") {
  const modkit_host* h = host();
  CHECK(h->struct_size == sizeof(modkit_host));
  CHECK(h->abi_major == MODKIT_ABI_MAJOR);
  CHECK((h->error_new != nullptr));
  CHECK((h->log != nullptr));
  CHECK((h->model_module_count != nullptr));
  CHECK((h->model_module_info != nullptr));
  CHECK((h->model_match != nullptr));
  CHECK((h->tensor_list != nullptr));
  CHECK((h->tensor_get != nullptr));
  CHECK((h->tensor_set != nullptr));
  Model model(models::make_mlp(2, 2, 2, 1));
  CHECK((Model::from_handle(model.handle()) == &model));
}

TEST_CASE("modules are counted and described through the table") {
  Model model(models::make_tiny_transformer(1, 4, 1));
  size_t count = 0;
  auto r = call([&](modkit_error** e) { return host()->model_module_count(host(), model.handle(), &count, e); });
  REQUIRE(r.status == MODKIT_OK);
  REQUIRE(count == model.modules().size());

  std::vector<modkit_module_info> infos(count);
  for (size_t i = 0; i < count; ++i) {
    infos[i].struct_size = sizeof(modkit_module_info);
    r = call([&](modkit_error** e) { return host()->model_module_info(host(), model.handle(), i, &infos[i], e); });
    REQUIRE(r.status == MODKIT_OK);
  }
  // The strings stay valid across further calls while the structure is unchanged.
  call([&](modkit_error** e) { return host()->model_module_count(host(), model.handle(), &count, e); });
  const auto expected = model.modules();
  for (size_t i = 0; i < count; ++i) {
    CHECK(infos[i].name == expected[i].name);
    CHECK(infos[i].class_name == expected[i].class_name);
  }
  CHECK(std::string(infos[0].name).empty());
  CHECK(std::string(infos[0].class_name) == "TinyTransformer");

  SUBCASE("an index past the end is not found") {
    modkit_module_info info{};
    info.struct_size = sizeof info;
    r = call([&](modkit_error** e) { return host()->model_module_info(host(), model.handle(), count, &info, e); });
    CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
    CHECK(r.message == "module index 16 out of range: the model has 16 modules");
    CHECK((info.name == nullptr));  // out-parameters untouched on failure
  }
  SUBCASE("an output struct without struct_size is refused") {
    modkit_module_info info{};
    r = call([&](modkit_error** e) { return host()->model_module_info(host(), model.handle(), 0, &info, e); });
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK_STARTS_WITH(r.message, "out_info->struct_size is 0, expected sizeof(modkit_module_info) = ");
  }
  SUBCASE("a NULL model handle is an invalid argument") {
    r = call([&](modkit_error** e) { return host()->model_module_count(host(), nullptr, &count, e); });
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(r.message == "the model handle is NULL");
  }
}

TEST_CASE("tensor_list visits the parameters and buffers a module owns") {
  Model model(models::make_tiny_transformer(1, 4, 1));
  CHECK(list(model, "layers.0.mlp.fc1") ==
        Tensors{{"weight", MODKIT_TENSOR_PARAMETER}, {"bias", MODKIT_TENSOR_PARAMETER}});
  CHECK(list(model, "lm_head") == Tensors{{"weight", MODKIT_TENSOR_PARAMETER}});  // bias is None
  CHECK(list(model, "layers.0.mlp.act").empty());
  CHECK(list(model, "layers.0").empty());  // only tensors owned directly

  CallResult r;
  list(model, "layers.7", &r);
  CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
  CHECK(r.message == "no module 'layers.7' in the model");
}

TEST_CASE("tensor_get gives a zero-copy view that writes through to the model") {
  Model model(models::make_mlp(3, 4, 2, 5));
  const at::Tensor weight = model.get_tensor("fc1", "weight");
  DLManagedTensor* dl = nullptr;
  auto r = call([&](modkit_error** e) { return host()->tensor_get(host(), model.handle(), "fc1", "weight", &dl, e); });
  REQUIRE(r.status == MODKIT_OK);
  REQUIRE(dl != nullptr);
  CHECK(dl->dl_tensor.ndim == 2);
  CHECK(dl->dl_tensor.shape[0] == 4);
  CHECK(dl->dl_tensor.shape[1] == 3);
  CHECK(dl->dl_tensor.dtype.code == kDLFloat);
  float* data = reinterpret_cast<float*>(static_cast<char*>(dl->dl_tensor.data) + dl->dl_tensor.byte_offset);
  CHECK((data == weight.data_ptr<float>()));

  SUBCASE("raw writes through the DLPack pointer") {
    data[0] = 42.0f;
    dl->deleter(dl);
    CHECK(model.get_tensor("fc1", "weight")[0][0].item<float>() == 42.0f);
  }
  SUBCASE("in-place ops on the tensor the SDK makes of it") {
    at::Tensor view = modkit::sdk::adopt_tensor(dl);  // owns dl now, as modkit::sdk::get_tensor does
    view.zero_();
    CHECK(model.get_tensor("fc1", "weight").abs().sum().item<float>() == 0.0f);
    // fc1 now ignores its input: the model's output no longer depends on x.
    const at::Tensor a = model.module().forward({at::ones({1, 3})}).toTensor();
    const at::Tensor b = model.module().forward({at::randn({1, 3})}).toTensor();
    CHECK(at::equal(a, b));
  }
}

namespace {
// A DLPack tensor of floats that counts its deleter's runs.
struct CountedDLTensor {
  static inline int deleted = 0;
  std::vector<int64_t> shape;
  DLManagedTensor dl{};
  CountedDLTensor(void* data, std::vector<int64_t> sizes, uint64_t byte_offset = 0) : shape(std::move(sizes)) {
    dl.dl_tensor.data = data;
    dl.dl_tensor.device = {kDLCPU, 0};
    dl.dl_tensor.ndim = static_cast<int32_t>(shape.size());
    dl.dl_tensor.dtype = {kDLFloat, 32, 1};
    dl.dl_tensor.shape = shape.data();
    dl.dl_tensor.byte_offset = byte_offset;
    dl.deleter = [](DLManagedTensor*) { ++deleted; };
  }
};
}  // namespace

TEST_CASE("the SDK's DLPack adoption runs the owner's deleter once, also for tensors with no elements") {
  float values[6] = {0, 1, 2, 3, 4, 5};
  const int before = CountedDLTensor::deleted;
  SUBCASE("no elements, NULL data (LibTorch 1.13's fromDLPack alone never deletes it)") {
    CountedDLTensor t(nullptr, {0, 4});
    {
      const at::Tensor view = modkit::sdk::adopt_tensor(&t.dl);
      CHECK(view.sizes() == at::IntArrayRef({0, 4}));
    }
    CHECK(CountedDLTensor::deleted == before + 1);
  }
  SUBCASE("a byte offset is honoured") {
    CountedDLTensor t(values, {2, 2}, 2 * sizeof(float));
    {
      const at::Tensor view = modkit::sdk::adopt_tensor(&t.dl);
      CHECK(view.flatten()[0].item<float>() == 2.0f);
      const at::Tensor shared = view;  // the deleter waits for the last tensor
      CHECK(CountedDLTensor::deleted == before);
    }
    CHECK(CountedDLTensor::deleted == before + 1);
  }
  SUBCASE("borrowing never deletes the lender's tensor") {
    CountedDLTensor empty(nullptr, {0});
    CountedDLTensor full(values, {6}, sizeof(float));
    CHECK(modkit::sdk::borrow_tensor(&empty.dl).numel() == 0);
    CHECK(modkit::sdk::borrow_tensor(&full.dl)[0].item<float>() == 1.0f);
    CHECK(CountedDLTensor::deleted == before);
  }
}

TEST_CASE("tensor_get reports unknown modules and tensors and non-tensor attributes") {
  Model model(models::make_tiny_transformer(1, 4, 1));
  DLManagedTensor* dl = nullptr;
  auto get = [&](const char* module, const char* name) {
    return call([&](modkit_error** e) { return host()->tensor_get(host(), model.handle(), module, name, &dl, e); });
  };
  auto r = get("layers.0.mlp.fc3", "weight");
  CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
  CHECK(r.message == "no module 'layers.0.mlp.fc3' in the model");
  r = get("layers.0.mlp.fc1", "scale");
  CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
  CHECK(r.message == "module 'layers.0.mlp.fc1' has no tensor 'scale'");
  r = get("lm_head", "bias");
  CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
  CHECK(r.message == "'bias' of module 'lm_head' is not a parameter or buffer (found NoneType)");
  r = get("layers.0", "mlp");
  CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
  CHECK(r.message == "'mlp' of module 'layers.0' is not a parameter or buffer (found a submodule)");
  r = get(nullptr, "weight");
  CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
  CHECK(r.message == "module is NULL");
  CHECK((dl == nullptr));
}

TEST_CASE("tensor_set copies, replaces and creates tensors") {
  Model model(models::make_mlp(3, 4, 2, 5));
  const at::Tensor weight = model.get_tensor("fc1", "weight");
  void* const storage = weight.data_ptr();

  SUBCASE("a copy into the existing tensor of the same shape") {
    at::Tensor value = at::full({4, 3}, 0.5);
    auto r = set(model, "fc1", "weight", value);
    REQUIRE(r.status == MODKIT_OK);
    CHECK(r.message.empty());
    const at::Tensor now = model.get_tensor("fc1", "weight");
    CHECK((now.data_ptr() == storage));  // same tensor, new values
    CHECK(at::equal(now, value));
    CHECK(now.requires_grad() == weight.requires_grad());
    value.fill_(9);  // the host copied: the model does not alias the caller's data
    CHECK(model.get_tensor("fc1", "weight")[0][0].item<float>() == 0.5f);
  }
  SUBCASE("a copy converts to the tensor's dtype") {
    REQUIRE(set(model, "fc1", "weight", at::full({4, 3}, 2, at::kInt)).status == MODKIT_OK);
    CHECK((model.get_tensor("fc1", "weight").scalar_type() == at::kFloat));
    CHECK(model.get_tensor("fc1", "weight")[3][2].item<float>() == 2.0f);
  }
  SUBCASE("a shape mismatch names the tensor and both shapes") {
    auto r = set(model, "fc1", "weight", at::zeros({3, 4}));
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(r.message == "cannot set tensor 'weight' of module 'fc1': expected shape [4, 3], found [3, 4]");
    CHECK((model.get_tensor("fc1", "weight").data_ptr() == storage));
  }
  SUBCASE("replace may change shape and dtype and keeps a parameter a parameter") {
    auto r = set(model, "fc1", "weight", at::ones({2, 2}, at::kHalf), MODKIT_TENSOR_SET_REPLACE);
    REQUIRE(r.status == MODKIT_OK);
    const at::Tensor now = model.get_tensor("fc1", "weight");
    CHECK(now.sizes() == at::IntArrayRef{2, 2});
    CHECK((now.scalar_type() == at::kHalf));
    CHECK(list(model, "fc1") == Tensors{{"weight", MODKIT_TENSOR_PARAMETER}, {"bias", MODKIT_TENSOR_PARAMETER}});
  }
  SUBCASE("create adds a buffer that is saved and loaded back") {
    const at::Tensor scale = at::arange(4, at::kFloat);
    auto r = set(model, "fc1", "weight_scale", scale, MODKIT_TENSOR_SET_CREATE);
    REQUIRE(r.status == MODKIT_OK);
    CHECK(list(model, "fc1") == Tensors{{"weight", MODKIT_TENSOR_PARAMETER},
                                        {"bias", MODKIT_TENSOR_PARAMETER},
                                        {"weight_scale", MODKIT_TENSOR_BUFFER}});
    CHECK(at::equal(model.get_tensor("fc1", "weight_scale"), scale));
    CHECK(list(model, "fc2").size() == 2);  // fc2 has its own type

    ScratchDir dir;
    model.save(dir.file("q.pt"));
    Model loaded = Model::load(dir.file("q.pt"));
    CHECK(at::equal(loaded.get_tensor("fc1", "weight_scale"), scale));
    CHECK(list(loaded, "fc1").back() == std::make_pair(std::string("weight_scale"), uint32_t{MODKIT_TENSOR_BUFFER}));
  }
  SUBCASE("create on an existing tensor copies into it") {
    REQUIRE(set(model, "fc1", "bias", at::full({4}, 3.0), MODKIT_TENSOR_SET_CREATE).status == MODKIT_OK);
    CHECK(model.get_tensor("fc1", "bias")[1].item<float>() == 3.0f);
    CHECK(set(model, "fc1", "bias", at::zeros({5}), MODKIT_TENSOR_SET_CREATE).status ==
          MODKIT_ERROR_INVALID_ARGUMENT);
  }
  SUBCASE("an absent tensor without create is not found") {
    for (uint32_t flags : {0u, uint32_t{MODKIT_TENSOR_SET_REPLACE}}) {
      auto r = set(model, "fc1", "weight_scale", at::ones({4}), flags);
      CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
      CHECK(r.message == "module 'fc1' has no tensor 'weight_scale'");
    }
  }
  SUBCASE("an unknown module is not found") {
    auto r = set(model, "fc9", "weight", at::ones({4}), MODKIT_TENSOR_SET_CREATE);
    CHECK(r.status == MODKIT_ERROR_NOT_FOUND);
    CHECK(r.message == "no module 'fc9' in the model");
  }
  SUBCASE("a submodule name cannot be overwritten by a tensor") {
    auto r = set(model, "", "fc1", at::ones({4}), MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE);
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(r.message == "'fc1' of module '' is not a parameter or buffer (found a submodule)");
  }
  SUBCASE("unknown flags are refused") {
    auto r = set(model, "fc1", "weight", at::ones({4, 3}), 1u << 7);
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(r.message == "unknown tensor_set flags 0x80");
  }
  SUBCASE("a strided value with a byte offset is read correctly") {
    const at::Tensor big = at::arange(24, at::kFloat).reshape({4, 6});
    const at::Tensor slice = big.slice(1, 1, 4);  // [4, 3], not contiguous, offset 1
    DLManagedTensor* dl = at::toDLPack(slice);
    // Express the offset as byte_offset, as some DLPack producers do.
    const auto offset = static_cast<uint64_t>(slice.storage_offset()) * sizeof(float);
    dl->dl_tensor.data = static_cast<char*>(dl->dl_tensor.data) - offset;
    dl->dl_tensor.byte_offset = offset;
    auto r = call([&](modkit_error** e) { return host()->tensor_set(host(), model.handle(), "fc1", "weight", dl, 0, e); });
    dl->deleter(dl);
    REQUIRE(r.status == MODKIT_OK);
    CHECK(at::equal(model.get_tensor("fc1", "weight"), slice));
  }
}

TEST_CASE("creating a buffer on a shared TorchScript type keeps every object of that type consistent") {
  // Two modules of one type, as Python scripting gives the nn.Linear layers of a model.
  torch::jit::Module a = models::make_linear("Linear", 3, 2, true, 1);
  torch::jit::Module b(a.type()->compilation_unit(), a.type());
  b.register_parameter("weight", at::ones({2, 3}), false);
  b.register_parameter("bias", at::zeros({2}), false);
  torch::jit::Module root("__torch__.Pair");
  root.register_module("a", a);
  root.register_module("b", b);
  root.define("def forward(self, x):\n    return self.a.forward(x) + self.b.forward(x)\n");
  Model model(root);

  REQUIRE(set(model, "a", "scale", at::full({2}, 5.0), MODKIT_TENSOR_SET_CREATE).status == MODKIT_OK);
  CHECK(list(model, "b").back() == std::make_pair(std::string("scale"), uint32_t{MODKIT_TENSOR_BUFFER}));
  CHECK(model.get_tensor("b", "scale").numel() == 0);  // the placeholder

  ScratchDir dir;
  model.save(dir.file("pair.pt"));  // would read past b's slots without the placeholder
  CHECK(Model::load(dir.file("pair.pt")).get_tensor("a", "scale").sizes() == at::IntArrayRef{2});

  // A later create on b replaces its placeholder instead of failing on the shape.
  REQUIRE(set(model, "b", "scale", at::full({2}, 7.0), MODKIT_TENSOR_SET_CREATE).status == MODKIT_OK);
  CHECK(model.get_tensor("b", "scale")[1].item<float>() == 7.0f);
  CHECK(model.get_tensor("a", "scale")[1].item<float>() == 5.0f);
  // Then it is a real buffer: a create copies into it again.
  CHECK(set(model, "b", "scale", at::zeros({3}), MODKIT_TENSOR_SET_CREATE).status == MODKIT_ERROR_INVALID_ARGUMENT);
  const at::Tensor x = at::ones({1, 3});
  CHECK(model.module().forward({x}).toTensor().sizes() == at::IntArrayRef{1, 2});
}
