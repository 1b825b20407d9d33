// Tests of target matching: class names, exact names, "re:" patterns with re.match semantics, ignore lists.
#include <modkit/torch/targets.hpp>
#include <modkit/torch/demo_models.hpp>

#include "torch_test_support.hpp"

using modkit::Model;
using modkit::ModuleInfo;
using modkit::testing::call;
using modkit::testing::thrown_message;

namespace {

std::vector<std::string> names(const std::vector<ModuleInfo>& modules) {
  std::vector<std::string> out;
  for (const ModuleInfo& m : modules) out.push_back(m.name);
  return out;
}

std::vector<std::string> match(const Model& model, const std::vector<std::string>& targets,
                               const std::vector<std::string>& ignore = {}) {
  return names(modkit::match_modules(model, targets, ignore));
}

const std::vector<std::string> kAttn0 = {"layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj",
                                         "layers.0.self_attn.v_proj", "layers.0.self_attn.o_proj"};
const std::vector<std::string> kAttn1 = {"layers.1.self_attn.q_proj", "layers.1.self_attn.k_proj",
                                         "layers.1.self_attn.v_proj", "layers.1.self_attn.o_proj"};

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("targets select modules by class name, exact name or regex, in model order") {
  Model model(modkit::demo_models::make_tiny_transformer(2, 4, 3));

  SUBCASE("a class name") {
    CHECK(match(model, {"Linear"}) == concat({kAttn0, {"layers.0.mlp.fc1", "layers.0.mlp.fc2"}, kAttn1,
                                               {"layers.1.mlp.fc1", "layers.1.mlp.fc2", "lm_head"}}));
    CHECK(match(model, {"DecoderLayer"}) == std::vector<std::string>{"layers.0", "layers.1"});
  }
  SUBCASE("an exact module name") {
    CHECK(match(model, {"layers.1.mlp.fc2"}) == std::vector<std::string>{"layers.1.mlp.fc2"});
    CHECK(match(model, {"layers.1.mlp.fc"}).empty());
  }
  SUBCASE("a regex, anchored at the start like Python's re.match") {
    CHECK(match(model, {"re:.*self_attn\\.[qk]_proj"}) ==
          std::vector<std::string>{"layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj",
                                   "layers.1.self_attn.q_proj", "layers.1.self_attn.k_proj"});
    CHECK(match(model, {"re:layers\\.0\\.mlp"}) ==
          std::vector<std::string>{"layers.0.mlp", "layers.0.mlp.fc1", "layers.0.mlp.act", "layers.0.mlp.fc2"});
    CHECK(match(model, {"re:layers\\.0\\.mlp$"}) == std::vector<std::string>{"layers.0.mlp"});
    CHECK(match(model, {"re:fc1"}).empty());  // re.match does not search inside the name
    CHECK(match(model, {"re:.*fc1$"}) == std::vector<std::string>{"layers.0.mlp.fc1", "layers.1.mlp.fc1"});
  }
  SUBCASE("several targets: each module once, in model order") {
    CHECK(match(model, {"lm_head", "Linear", "re:.*lm_head"}).size() == 13);
    CHECK(match(model, {"norm", "layers.0"}) == std::vector<std::string>{"layers.0", "norm"});
  }
  SUBCASE("no targets select nothing") { CHECK(match(model, {}).empty()); }
}

TEST_CASE("ignore entries remove matches in the same three forms") {
  Model model(modkit::demo_models::make_tiny_transformer(2, 4, 3));
  CHECK(match(model, {"Linear"}, {"lm_head"}).size() == 12);
  CHECK(match(model, {"Linear"}, {"re:.*mlp"}) == concat({kAttn0, kAttn1, {"lm_head"}}));
  CHECK(match(model, {"re:layers\\.0\\.mlp"}, {"Linear"}) ==
        std::vector<std::string>{"layers.0.mlp", "layers.0.mlp.act"});
  CHECK(match(model, {"Linear"}, {"Linear"}).empty());
}

TEST_CASE("an invalid regex is a value error naming the pattern") {
  Model model(modkit::demo_models::make_mlp(2, 2, 2, 1));
  CHECK_STARTS_WITH(thrown_message<modkit::ValueError>([&] { match(model, {"re:fc[1"}); }),
                    "invalid regular expression in target 're:fc[1': ");
  CHECK_STARTS_WITH(thrown_message<modkit::ValueError>([&] { match(model, {"Linear"}, {"re:(a"}); }),
                    "invalid regular expression in target 're:(a': ");
}

TEST_CASE("a matcher reports the targets that claimed no module") {
  Model model(modkit::demo_models::make_mlp(2, 2, 2, 1));
  modkit::TargetMatcher matcher({"Linear", "fc1", "Embedding", "re:.*act"}, {"fc2"});
  std::vector<std::string> selected;
  for (const ModuleInfo& m : model.modules()) {
    if (matcher.matches(m)) selected.push_back(m.name);
  }
  CHECK(selected == std::vector<std::string>{"fc1", "act"});
  // fc1 was claimed by "Linear" first, as llmcompressor's match_named_modules does.
  CHECK(matcher.unmatched_targets() == std::vector<std::string>{"fc1", "Embedding"});
}

TEST_CASE("model_match visits the matches through the C function table") {
  Model model(modkit::demo_models::make_tiny_transformer(1, 4, 3));
  const modkit_host* host = Model::host();
  REQUIRE((host->model_match != nullptr));
  const char* targets[] = {"Linear", "re:.*layernorm"};
  const char* ignore[] = {"re:.*mlp\\..*", "lm_head"};
  std::vector<ModuleInfo> seen;
  auto visit = [](void* user, const modkit_module_info* m) {
    static_cast<std::vector<ModuleInfo>*>(user)->push_back({m->name, m->class_name});
  };

  SUBCASE("the same modules as match_modules") {
    const auto r = call([&](modkit_error** e) {
      return host->model_match(host, model.handle(), targets, 2, ignore, 2, visit, &seen, e);
    });
    CHECK(r.status == MODKIT_OK);
    CHECK(r.message.empty());
    CHECK(seen == modkit::match_modules(model, {"Linear", "re:.*layernorm"}, {"re:.*mlp\\..*", "lm_head"}));
    CHECK(seen.size() == 6);
    CHECK(seen.front() == ModuleInfo{"layers.0.input_layernorm", "LayerNorm"});
  }
  SUBCASE("no ignore list") {
    const auto r = call([&](modkit_error** e) {
      return host->model_match(host, model.handle(), targets, 1, nullptr, 0, visit, &seen, e);
    });
    CHECK(r.status == MODKIT_OK);
    CHECK(seen.size() == 7);
  }
  SUBCASE("an invalid regex is an invalid argument and nothing is visited") {
    const char* bad[] = {"Linear", "re:*"};
    const auto r = call([&](modkit_error** e) {
      return host->model_match(host, model.handle(), bad, 2, nullptr, 0, visit, &seen, e);
    });
    CHECK(r.status == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK_STARTS_WITH(r.message, "invalid regular expression in target 're:*': ");
    CHECK(seen.empty());
  }
  SUBCASE("a visitor that throws becomes an internal error") {
    const auto r = call([&](modkit_error** e) {
      return host->model_match(
          host, model.handle(), targets, 1, nullptr, 0,
          [](void*, const modkit_module_info*) { throw std::runtime_error("boom"); }, nullptr, e);
    });
    CHECK(r.status == MODKIT_ERROR_INTERNAL);
    CHECK(r.message == "the model_match visitor threw an exception");
  }
}
