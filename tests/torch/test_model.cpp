// Tests of Model: load/save round trip, atomic save, load errors, module enumeration and class names.
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include <ATen/ops/equal.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randn.h>

#include "torch_test_support.hpp"

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/import.h>

#include <sys/stat.h>

#include <fstream>

using modkit::Model;
using modkit::ModuleInfo;
using modkit::testing::ScratchDir;
using modkit::testing::thrown_message;
namespace models = modkit::demo_models;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

at::Tensor run(torch::jit::Module& m, const at::Tensor& x) { return m.forward({x}).toTensor(); }

}  // namespace

TEST_CASE("a saved model loads back with the same modules and the same forward output") {
  ScratchDir dir;
  Model model(models::make_tiny_transformer(2, 8, 7));
  const at::Tensor x = at::randn({2, 5, 8});
  const at::Tensor expected = run(model.module(), x);
  model.save(dir.file("model.pt"));

  Model loaded = Model::load(dir.file("model.pt"));
  CHECK(at::equal(run(loaded.module(), x), expected));
  CHECK(loaded.modules() == model.modules());
  CHECK(dir.entries() == std::vector<std::string>{"model.pt"});
}

TEST_CASE("the test models are deterministic in their seed") {
  Model a(models::make_mlp(4, 6, 3, 11));
  Model b(models::make_mlp(4, 6, 3, 11));
  Model c(models::make_mlp(4, 6, 3, 12));
  CHECK(at::equal(a.get_tensor("fc1", "weight"), b.get_tensor("fc1", "weight")));
  CHECK_FALSE(at::equal(a.get_tensor("fc1", "weight"), c.get_tensor("fc1", "weight")));
  CHECK(a.get_tensor("fc1", "weight").sizes() == at::IntArrayRef{6, 4});  // nn.Linear layout [out, in]
  const at::Tensor x = at::randn({2, 4});
  CHECK(run(a.module(), x).sizes() == at::IntArrayRef{2, 3});
}

TEST_CASE("modules are enumerated root first in registration order with their class names") {
  Model model(models::make_tiny_transformer(1, 4, 1));
  const std::vector<ModuleInfo> expected = {
      {"", "TinyTransformer"},
      {"layers", "ModuleList"},
      {"layers.0", "DecoderLayer"},
      {"layers.0.input_layernorm", "LayerNorm"},
      {"layers.0.self_attn", "Attention"},
      {"layers.0.self_attn.q_proj", "Linear"},
      {"layers.0.self_attn.k_proj", "Linear"},
      {"layers.0.self_attn.v_proj", "Linear"},
      {"layers.0.self_attn.o_proj", "Linear"},
      {"layers.0.post_attention_layernorm", "LayerNorm"},
      {"layers.0.mlp", "MLP"},
      {"layers.0.mlp.fc1", "Linear"},
      {"layers.0.mlp.act", "ReLU"},
      {"layers.0.mlp.fc2", "Linear"},
      {"norm", "LayerNorm"},
      {"lm_head", "Linear"},
  };
  const std::vector<ModuleInfo> found = model.modules();
  REQUIRE(found.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(found[i].name == expected[i].name);
    CHECK(found[i].class_name == expected[i].class_name);
  }
}

TEST_CASE("class names are the last component of the TorchScript type name") {
  CHECK(modkit::class_name_of(torch::jit::Module("Linear")) == "Linear");
  CHECK(modkit::class_name_of(torch::jit::Module("__torch__.torch.nn.modules.linear.Linear")) == "Linear");
  CHECK(modkit::class_name_of(torch::jit::Module("__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear")) ==
        "Linear");
  SUBCASE("also after a save mangles same-named types") {
    // fc1 and fc2 are distinct types both named ...Linear: the archive mangles one.
    ScratchDir dir;
    Model(models::make_mlp(2, 3, 2, 1)).save(dir.file("mlp.pt"));
    Model loaded = Model::load(dir.file("mlp.pt"));
    const auto fc2_type = loaded.find_module("fc2").type()->name()->qualifiedName();
    CHECK(fc2_type.find("mangle") != std::string::npos);
    CHECK(loaded.modules() == std::vector<ModuleInfo>{{"", "MLP"}, {"fc1", "Linear"}, {"act", "ReLU"}, {"fc2", "Linear"}});
  }
}

TEST_CASE("find_module resolves dotted names and names what it cannot find") {
  Model model(models::make_tiny_transformer(1, 4, 1));
  CHECK(modkit::class_name_of(model.find_module("")) == "TinyTransformer");
  CHECK(modkit::class_name_of(model.find_module("layers.0.mlp.fc1")) == "Linear");
  for (const char* bad : {"layers.1", "layers.0.mlp.fc1.weight", "layers..0", "layers.0.", "nope"}) {
    CAPTURE(bad);
    CHECK(thrown_message<modkit::LookupError>([&] { model.find_module(bad); }) ==
          std::string("no module '") + bad + "' in the model");
  }
}

TEST_CASE("loading names the file and says what was expected and found") {
  ScratchDir dir;
  SUBCASE("a missing file") {
    const std::string path = dir.file("missing.pt");
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(path); }) ==
          "cannot load model '" + path + "': no such file");
  }
  SUBCASE("a directory") {
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(dir.path()); }) ==
          "cannot load model '" + dir.path() + "': expected a TorchScript file, found a directory");
  }
  SUBCASE("a text file") {
    const std::string path = dir.file("notes.txt");
    write_file(path, "hello, not a model\n");
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(path); }) ==
          "cannot load model '" + path +
              "': expected a TorchScript archive (a zip file written by torch.jit.save), found a file that is not "
              "a zip archive");
  }
  SUBCASE("an empty file") {
    const std::string path = dir.file("empty.pt");
    write_file(path, "");
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(path); }) ==
          "cannot load model '" + path +
              "': expected a TorchScript archive (a zip file written by torch.jit.save), found an empty file");
  }
  SUBCASE("a torch.save checkpoint") {
    const std::string path = dir.file("state.pt");
    const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(at::ones({2, 2})));
    write_file(path, std::string(bytes.begin(), bytes.end()));
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(path); }) ==
          "cannot load model '" + path +
              "': expected a TorchScript archive (torch.jit.save), found a zip archive without TorchScript code "
              "(a torch.save checkpoint?)");
  }
  SUBCASE("a tensor whose shape reaches past its storage") {
    // saved with fc1.weight's storage cut to 2 of its 12 floats: the archive declares a storage of
    // 2 elements and a [3, 2] tensor on it, as a hand-edited or corrupt file can
    Model model(models::make_mlp(2, 3, 2, 1));
    model.get_tensor("fc1", "weight").storage().set_nbytes(2 * sizeof(float));
    const std::string path = dir.file("short.pt");
    model.save(path);
    CHECK(thrown_message<modkit::ValueError>([&] { Model::load(path); }) ==
          "cannot load model '" + path +
              "': tensor 'fc1.weight' of shape [3, 2] needs 24 bytes of its storage, which holds 8: the archive is "
              "corrupt");
  }
  SUBCASE("a truncated archive") {
    const std::string good = dir.file("good.pt");
    Model(models::make_mlp(2, 3, 2, 1)).save(good);
    const std::string bytes = read_file(good);
    const std::string path = dir.file("truncated.pt");
    write_file(path, bytes.substr(0, bytes.size() / 2));
    CHECK_STARTS_WITH(thrown_message<modkit::ValueError>([&] { Model::load(path); }),
                      "cannot load model '" + path + "': expected a TorchScript archive, found a corrupt or truncated "
                                                     "zip archive (");
  }
}

TEST_CASE("saving is atomic and names the destination when it fails") {
  ScratchDir dir;
  Model model(models::make_mlp(2, 3, 2, 1));

  SUBCASE("a missing directory") {
    const std::string path = dir.file("nodir/model.pt");
    CHECK(thrown_message<modkit::ValueError>([&] { model.save(path); }) ==
          "cannot save model '" + path + "': directory '" + dir.file("nodir") + "' does not exist");
    CHECK(dir.entries().empty());
  }
  SUBCASE("a parent that is a regular file") {
    write_file(dir.file("plain"), "x");
    const std::string path = dir.file("plain/model.pt");
    CHECK(thrown_message<modkit::ValueError>([&] { model.save(path); }) ==
          "cannot save model '" + path + "': '" + dir.file("plain") + "' is not a directory");
    CHECK(dir.entries() == std::vector<std::string>{"plain"});
    CHECK(read_file(dir.file("plain")) == "x");
  }
  SUBCASE("a destination that is a directory") {
    std::filesystem::create_directory(dir.file("out.pt"));
    CHECK(thrown_message<modkit::ValueError>([&] { model.save(dir.file("out.pt")); }) ==
          "cannot save model '" + dir.file("out.pt") + "': expected a file path, found a directory");
    CHECK(dir.entries() == std::vector<std::string>{"out.pt"});
  }
  SUBCASE("a full disk is an error naming it, not an abort") {
    // LibTorch's zip writer threw on the short write and again from its destructor: terminate()
    CHECK(thrown_message<modkit::RuntimeError>([&] { model.save("/dev/full"); }) ==
          "cannot save model '/dev/full': cannot write: No space left on device");
  }
  SUBCASE("overwriting an existing file replaces it whole and keeps its permissions") {
    const std::string path = dir.file("model.pt");
    write_file(path, "old contents");
    ::chmod(path.c_str(), 0640);
    model.save(path);
    CHECK(dir.entries() == std::vector<std::string>{"model.pt"});
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    Model loaded = Model::load(path);
    CHECK(loaded.modules() == model.modules());
  }
  SUBCASE("a new file gets the usual permissions, not the temporary file's 0600") {
    const mode_t mask = ::umask(022);
    ::umask(mask);
    const std::string path = dir.file("fresh.pt");
    model.save(path);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == (0666 & ~mask));
  }
}
