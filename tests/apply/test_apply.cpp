// Tests of modkit check, modkit recipe convert, modkit apply (subprocesses) and modkit::oneshot (in process).
#include "subprocess.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/oneshot.hpp>
#include <modkit/torch/demo_models.hpp>

#include "tensor_operators.hpp"
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <ATen/ops/zeros.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using modkit::test::read_text;
using modkit::test::run;
using modkit::test::RunResult;
using modkit::test::TempDir;
using nlohmann::json;

namespace {

const std::string kCli = MODKIT_CLI_PATH;
const std::string kPlugins = MODKIT_TEST_PLUGIN_DIR;
const std::string kMissingDep = std::string(MODKIT_TEST_FIXTURE_DIR) + "/missing_dependency";

RunResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), {kCli, "--plugin-dir", kPlugins});
  return run(args);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

const char* const kPruneMlp = R"([[stage]]
name = "sparsity"

[[stage.modifiers]]
type = "MagnitudePruningModifier"
targets = ["re:.*mlp\\.fc[12]$"]
init_sparsity = 0.5
final_sparsity = 0.5
start = 0
end = 1
update = 1
)";

std::string prune_recipe(const std::string& targets) {
  return std::string(R"([[stage]]
name = "sparsity"

[[stage.modifiers]]
type = "MagnitudePruningModifier"
targets = )") + targets + R"(
init_sparsity = 0.5
final_sparsity = 0.5
start = 0
end = 1
update = 1
)";
}

// A temporary directory with a saved tiny transformer and a recipe.
struct Workspace {
  TempDir dir;
  std::string model = dir / "in.pt";
  std::string output = dir / "out.pt";
  std::string recipe = dir / "recipe.toml";
  std::string model_bytes;

  explicit Workspace(const std::string& recipe_text = kPruneMlp) {
    modkit::Model(modkit::demo_models::make_tiny_transformer(2, 32, 7)).save(model);
    model_bytes = read_text(model);
    write(recipe, recipe_text);
  }

  // After a failed run: no output, the input as it was, no temporary left.
  void check_untouched() const {
    CHECK_FALSE(fs::exists(output));
    CHECK(read_text(model) == model_bytes);
    for (const auto& e : fs::directory_iterator(dir.path())) {
      CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path().string());
    }
  }
};

double sparsity(const at::Tensor& t) { return (t == 0).sum().item<double>() / static_cast<double>(t.numel()); }

}  // namespace

TEST_CASE("modkit --help lists check, recipe and apply") {
  const RunResult r = run({kCli, "--help"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "check"));
  CHECK(contains(r.out, "recipe"));
  CHECK(contains(r.out, "apply"));
}

TEST_CASE("modkit check accepts a valid recipe and rejects an invalid one with locations") {
  TempDir dir;
  SUBCASE("valid") {
    write(dir / "ok.toml", kPruneMlp);
    const RunResult r = cli({"check", dir / "ok.toml"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(contains(r.out, "valid (1 stage, 1 modifier)"));
  }
  SUBCASE("invalid: every error with file:line:col") {
    const std::string path = dir / "bad.toml";
    write(path, R"([[stage]]
name = "sparsity"

[[stage.modifiers]]
type = "MagnitudePruningModifer"

[[stage.modifiers]]
type = "MagnitudePruningModifier"
init_sparsity = 1.5
final_sparsity = 0.5
start = 0
end = 1
update = 1
)");
    const RunResult r = cli({"check", path});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(contains(r.out, path + ":5:"));
    CHECK(contains(r.out, "MagnitudePruningModifier"));  // did you mean
    CHECK(contains(r.out, path + ":9:"));
    CHECK(contains(r.out, "init_sparsity"));
    CHECK(contains(r.out, "2 errors"));
  }
  SUBCASE("--json") {
    const std::string path = dir / "bad.toml";
    write(path, "[[stage]]\n[[stage.modifiers]]\ntype = \"NoSuchModifier\"\n");
    const RunResult r = cli({"check", "--json", path});
    CHECK(r.code == 1);
    const json j = json::parse(r.out);
    CHECK(j["valid"] == false);
    REQUIRE(j["errors"].size() == 1);
    CHECK(j["errors"][0]["line"] == 3);
    CHECK(j["errors"][0]["file"] == path);
  }
  SUBCASE("a syntax error") {
    write(dir / "syntax.toml", "[[stage]\n");
    const RunResult r = cli({"check", dir / "syntax.toml"});
    CHECK(r.code == 1);
    CHECK(contains(r.out, dir / "syntax.toml:1:"));
  }
  SUBCASE("a modifier whose plugin failed to load shows the load error") {
    write(dir / "dep.toml", "[[stage]]\n[[stage.modifiers]]\ntype = \"MissingDepModifier\"\n");
    const RunResult r = run({kCli, "--plugin-dir", kPlugins, "--plugin-dir", kMissingDep, "check", dir / "dep.toml"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(contains(r.out, dir / "dep.toml:3:"));
    CHECK(contains(r.out, "libmodkit_fixture_dep.so"));
  }
}

TEST_CASE("modkit recipe convert turns llmcompressor YAML into canonical TOML") {
  TempDir dir;
  write(dir / "r.yaml", R"(sparsity_stage:
  run_type: oneshot
  sparsity_modifiers:
    MagnitudePruningModifier:
      targets: ["re:.*mlp.*"]
      init_sparsity: 0.5
      final_sparsity: 0.5
      start: 0
      end: 1
      update: 1
)");
  const RunResult to_file = cli({"recipe", "convert", dir / "r.yaml", "-o", dir / "r.toml"});
  INFO(to_file.out << to_file.err);
  REQUIRE(to_file.code == 0);
  const modkit::Recipe yaml = modkit::Recipe::load(dir / "r.yaml");
  const modkit::Recipe toml = modkit::Recipe::load(dir / "r.toml");
  CHECK(yaml == toml);
  CHECK(toml.stages.at(0).name == "sparsity");
  // stdout gives the same text, and converting the TOML again changes nothing
  const RunResult to_stdout = cli({"recipe", "convert", dir / "r.yaml"});
  CHECK(to_stdout.code == 0);
  CHECK(to_stdout.out == read_text(dir / "r.toml"));
  CHECK(cli({"recipe", "convert", dir / "r.toml"}).out == to_stdout.out);
  CHECK(cli({"check", dir / "r.toml"}).code == 0);

  SUBCASE("a broken YAML file names its location and writes nothing") {
    write(dir / "bad.yaml", "sparsity_stage:\n  sparsity_modifiers:\n    MagnitudePruningModifier: [1, 2\n");
    const RunResult r = cli({"recipe", "convert", dir / "bad.yaml", "-o", dir / "bad.toml"});
    CHECK(r.code == 1);
    CHECK(contains(r.err, dir / "bad.yaml:"));
    CHECK_FALSE(fs::exists(dir / "bad.toml"));
  }
  SUBCASE("the recipe being converted is not its own output") {
    const std::string before = read_text(dir / "r.yaml");
    const RunResult r = cli({"recipe", "convert", dir / "r.yaml", "-o", dir / "r.yaml"});
    CHECK(r.code == 1);
    CHECK(r.err == "modkit: cannot write '" + (dir / "r.yaml") + "': it is the recipe being converted; give another path\n");
    CHECK(read_text(dir / "r.yaml") == before);
  }
  SUBCASE("a missing output directory") {
    const RunResult r = cli({"recipe", "convert", dir / "r.yaml", "-o", dir / "no/such/dir/r.toml"});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "does not exist"));
  }
}

TEST_CASE("modkit apply refuses outputs that would destroy an input or each other, and writes through links") {
  Workspace ws;
  const std::string calib = ws.dir / "calib.pt";
  write(calib, "not read: the destinations are checked first");
  SUBCASE("--report naming an input or the output") {
    for (const auto& [flag, path] : {std::pair<std::string, std::string>{"--model", ws.model}, {"--recipe", ws.recipe},
                                     {"--calib", calib}, {"--output", ws.output}}) {
      CAPTURE(flag);
      const std::string recipe_before = read_text(ws.recipe);
      const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output, "--calib",
                               calib, "--report", path});
      CHECK(r.code == 1);
      CHECK(r.err == "modkit: --report '" + path + "' is the same file as " + flag + " '" + path +
                         "'; writing it would replace that file: give another path\n");
      CHECK(read_text(ws.recipe) == recipe_before);
      CHECK(read_text(calib) == "not read: the destinations are checked first");
      ws.check_untouched();
    }
  }
  SUBCASE("--output naming the recipe, through a symbolic link") {
    fs::create_symlink(ws.recipe, ws.dir / "link.toml");
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.dir / "link.toml"});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "is the same file as --recipe"));
    CHECK(read_text(ws.recipe) == kPruneMlp);
  }
  SUBCASE("--output through a symbolic link writes its target; /dev/null takes the report") {
    write(ws.dir / "target.pt", "old");
    fs::create_symlink("target.pt", ws.output);
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output, "--report",
                             "/dev/null"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(fs::is_symlink(ws.output));
    CHECK(modkit::Model::load(ws.dir / "target.pt").modules().size() > 1);
  }
}

TEST_CASE("modkit apply says when calibration data goes unused or runs short") {
  Workspace ws;  // the recipe prunes by magnitude: data-free
  const std::string calib = ws.dir / "calib.pt";
  c10::impl::GenericList samples(c10::TensorType::get());
  samples.push_back(at::zeros({1, 4, 32}));
  samples.push_back(at::zeros({1, 4, 32}));
  const std::vector<char> bytes = torch::jit::pickle_save(samples);
  write(calib, std::string(bytes.begin(), bytes.end()));
  const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output, "--calib", calib,
                           "--samples", "100"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "note: --samples 100: " + calib + " has 2 samples, and all of them were used\n"));
  CHECK(contains(r.out, "note: --calib " + calib + " was not used: every stage of the recipe is data-free\n"));
}

TEST_CASE("modkit apply hands its arguments to modkit-torch as given: global options reach the model work") {
  // --no-cache, before or after the command: neither executable may write the registry cache
  Workspace ws;
  const std::string cache = ws.dir / "cache";
  const std::vector<std::pair<std::string, std::string>> env{{"MODKIT_NO_CACHE", "0"}, {"MODKIT_CACHE_DIR", cache}};
  for (const bool before : {true, false}) {
    CAPTURE(before);
    fs::remove_all(cache);
    std::vector<std::string> args{kCli, "--plugin-dir", kPlugins};
    if (before) args.push_back("--no-cache");
    args.insert(args.end(), {"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output, "--json"});
    if (!before) args.push_back("--no-cache");
    const RunResult r = run(args, env);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(json::parse(r.out)["output"] == ws.output);  // --json reached modkit-torch too
    CHECK_FALSE(fs::exists(cache));
  }
  // the control: without --no-cache the same run keeps what it scanned
  const RunResult r = run({kCli, "--plugin-dir", kPlugins, "apply", "--recipe", ws.recipe, "--model", ws.model,
                           "--output", ws.output},
                          env);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(cache));
}

TEST_CASE("modkit apply prunes a saved model, writes it atomically and reports") {
  Workspace ws;
  const std::string report = ws.dir / "report.json";
  const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output, "--report", report});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());  // no progress line in a pipe
  CHECK(contains(r.out, "layers.0.mlp.fc1"));
  CHECK(contains(r.out, "50.0%"));
  CHECK(read_text(ws.model) == ws.model_bytes);

  const modkit::Model out = modkit::Model::load(ws.output);
  for (const auto& m : out.modules()) {
    if (m.class_name != "Linear") continue;
    const double s = sparsity(out.get_tensor(m.name, "weight"));
    if (contains(m.name, "mlp.fc")) {
      CHECK(s == doctest::Approx(0.5));
    } else {
      CHECK(s == 0.0);
    }
  }

  const json j = json::parse(read_text(report));
  CHECK(j["model"] == ws.model);
  CHECK(j["output"] == ws.output);
  REQUIRE(j["modules"].size() == 4);  // fc1 and fc2 of two layers
  const json& fc1 = j["modules"][0];
  CHECK(fc1["module"] == "layers.0.mlp.fc1");
  CHECK(fc1["shape"] == json::array({64, 32}));
  CHECK(fc1["sparsity"].get<double>() == doctest::Approx(0.5));
  CHECK(fc1["sparsity_before"].get<double>() == 0.0);
  CHECK(fc1["bits"] == 32);
  CHECK(fc1["relative_error"].get<double>() > 0.1);
  CHECK(fc1["relative_error"].get<double>() < 0.9);
  CHECK(j["size"]["tensor_bytes_before"].get<int64_t>() > 0);
  CHECK(j["size"]["tensor_bytes_after"] == j["size"]["tensor_bytes_before"]);
  CHECK(j["size"]["file_bytes_before"] == static_cast<int64_t>(ws.model_bytes.size()));
  CHECK(j["size"]["file_bytes_after"] == static_cast<int64_t>(fs::file_size(ws.output)));
  REQUIRE(j["stages"].size() == 1);
  CHECK(j["stages"][0]["modifiers"][0]["type"] == "MagnitudePruningModifier");
  CHECK(j["stages"][0]["modules"] == 4);

  SUBCASE("--json prints the same report") {
    const RunResult rj = cli({"apply", "--json", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
    REQUIRE(rj.code == 0);
    CHECK(json::parse(rj.out)["modules"].size() == 4);
  }
  SUBCASE("the output may replace the input, atomically") {
    const RunResult same = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.model});
    INFO(same.out << same.err);
    CHECK(same.code == 0);
    const modkit::Model m = modkit::Model::load(ws.model);
    CHECK(sparsity(m.get_tensor("layers.1.mlp.fc2", "weight")) == doctest::Approx(0.5));
  }
}

bool calibration_plugins_built() {
  return fs::exists(kPlugins + "/sparsegpt.so") && fs::exists(kPlugins + "/gptq.so");
}

TEST_CASE("modkit apply without arguments runs the built-in default") {
  const RunResult r = cli({"apply"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "<default recipe>"));
  CHECK(contains(r.out, calibration_plugins_built() ? "SparseGPTModifier" : "MagnitudePruningModifier"));
  CHECK(contains(r.out, "layers.1.self_attn.q_proj"));
  CHECK_FALSE(contains(r.out, "lm_head"));
  CHECK(contains(r.out, "output error on 4 held-out synthetic samples: "));
}

TEST_CASE("the default recipe calibrates, and beats the same compression without data") {
  if (!calibration_plugins_built()) {
    MESSAGE("sparsegpt.so or gptq.so not built: the default recipe is data-free");
    return;
  }
  const RunResult r = cli({"apply", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const json j = json::parse(r.out);
  REQUIRE(j["stages"].size() == 2);
  for (const auto& stage : j["stages"]) {
    CHECK(stage["pipeline"] == "sequential");
    CHECK(stage["blocks"] == json::array({"layers.0", "layers.1"}));
    CHECK(stage["samples"] == 16);
  }
  CHECK(j["calibration"] == "<synthetic: 16 x [1, 64, 128]>");
  const double calibrated = j["output_error"]["relative"].get<double>();
  const double data_free = j["output_error"]["data_free_baseline"].get<double>();
  CHECK(calibrated > 0);
  CHECK(calibrated < 0.8 * data_free);
  for (const auto& m : j["modules"]) CHECK(m["sparsity"].get<double>() >= 0.5);  // 2:4
}

TEST_CASE("modkit apply without arguments also quantizes when QuantizationModifier is installed") {
  if (!fs::exists(kPlugins + "/quantization.so")) {
    MESSAGE("quantization.so not built: the default recipe prunes only");
    return;
  }
  const RunResult r = cli({"apply", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const json j = json::parse(r.out);
  REQUIRE(j["stages"].size() == 2);
  CHECK(j["stages"][1]["modifiers"][0]["type"] == (calibration_plugins_built() ? "GPTQModifier" : "QuantizationModifier"));
  REQUIRE(j["modules"].size() == 12);
  for (const auto& m : j["modules"]) {
    CHECK(m["bits"] == 4);
    CHECK(m["scheme"] == "W4A16");
    // one group of 128 per row of a 128-input layer is the same as one scale per channel
    const bool narrow = m["shape"][1] == 128;
    CHECK(m["granularity"] == (narrow ? "channel" : "group 128"));
    CHECK(m["sparsity"].get<double>() >= 0.5);
  }
  CHECK(j["size"]["tensor_bytes_after"].get<int64_t>() > j["size"]["tensor_bytes_before"].get<int64_t>());
}

TEST_CASE("modkit apply refuses bad input with a clear message and leaves nothing behind") {
  SUBCASE("a corrupt model file") {
    Workspace ws;
    write(ws.model, std::string("PK\x03\x04", 4) + std::string(200, 'x'));
    ws.model_bytes = read_text(ws.model);
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "cannot load model '" + ws.model + "'"));
    ws.check_untouched();
  }
  SUBCASE("a file that is not TorchScript") {
    Workspace ws;
    write(ws.model, "just some text\n");
    ws.model_bytes = read_text(ws.model);
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "cannot load model '" + ws.model + "': expected a TorchScript archive"));
    ws.check_untouched();
  }
  SUBCASE("a missing model file") {
    Workspace ws;
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.dir / "nope.pt", "--output", ws.output});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "no such file"));
    ws.check_untouched();
  }
  SUBCASE("targets that match nothing: an error, or skipped with --allow-unmatched") {
    // a single string stands for a list of one, for the host's checks as for the plugin
    for (const std::string targets : {R"(["Conv2d"])", R"("Conv2d")"}) {
      CAPTURE(targets);
      Workspace ws(prune_recipe(targets));
      const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
      INFO(r.out << r.err);
      CHECK(r.code == 1);
      CHECK(contains(r.err, ws.recipe + ":6:"));
      CHECK(contains(r.err, "targets [\"Conv2d\"] match no module"));
      ws.check_untouched();

      const RunResult ok =
          cli({"apply", "--allow-unmatched", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
      INFO(ok.out << ok.err);
      CHECK(ok.code == 0);
      CHECK(fs::exists(ws.output));
      CHECK(contains(ok.out, "skipped"));
    }
  }
  SUBCASE("targets without a weight") {
    Workspace ws(prune_recipe(R"(["ReLU"])"));
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(contains(r.err, "none has a 'weight' tensor"));
    CHECK(contains(r.err, ws.recipe + ":4:"));
    ws.check_untouched();
  }
  SUBCASE("an invalid recipe is refused before LibTorch starts") {
    Workspace ws(prune_recipe(R"(["Linear"])") + "bogus = 1\n");
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", ws.output});
    CHECK(r.code == 1);
    CHECK(contains(r.err, ws.recipe + ":12:"));
    CHECK(contains(r.err, "nothing was applied"));
    ws.check_untouched();
  }
  SUBCASE("an output in a missing directory") {
    Workspace ws;
    const std::string out = ws.dir / "missing/out.pt";
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", out});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "cannot save model '" + out + "': directory '" + ws.dir / "missing' does not exist"));
    CHECK_FALSE(fs::exists(out));
    ws.check_untouched();
  }
  SUBCASE("an output whose parent is a regular file") {
    Workspace ws;
    const std::string out = ws.recipe + "/out.pt";
    const RunResult r = cli({"apply", "--recipe", ws.recipe, "--model", ws.model, "--output", out});
    CHECK(r.code == 1);
    CHECK(contains(r.err, "is not a directory"));
    ws.check_untouched();
  }
  SUBCASE("a modifier from a plugin that failed to load") {
    Workspace ws("[[stage]]\n[[stage.modifiers]]\ntype = \"MissingDepModifier\"\n");
    const RunResult r = run({kCli, "--plugin-dir", kPlugins, "--plugin-dir", kMissingDep, "apply", "--recipe",
                             ws.recipe, "--model", ws.model, "--output", ws.output});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(contains(r.err, "MissingDepModifier"));
    CHECK(contains(r.err, "libmodkit_fixture_dep.so"));
    ws.check_untouched();
  }
  SUBCASE("--model without --output is a usage error") {
    Workspace ws;
    CHECK(cli({"apply", "--recipe", ws.recipe, "--model", ws.model}).code == 2);
  }
}

TEST_CASE("oneshot runs stages in order and reports what each modifier targeted") {
  modkit::FactoryOptions options;
  options.plugin_dirs = {kPlugins};
  options.use_environment = false;
  modkit::ModifierFactory factory(options);
  factory.refresh();
  modkit::Model model(modkit::demo_models::make_tiny_transformer(1, 16, 3));
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(R"([[stage]]
name = "prune"
[[stage.modifiers]]
type = "MagnitudePruningModifier"
targets = ["re:.*fc1$"]
init_sparsity = 0.25
final_sparsity = 0.25
start = 0
end = 1
update = 1

[[stage]]
name = "global"
[[stage.modifiers]]
type = "GlobalMagnitudePruningModifier"
targets = ["re:.*fc2$", "NoSuchThing"]
sparsity = 0.75
)");
  const auto stages = modkit::oneshot(model, recipe, factory);
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].name == "prune");
  CHECK(stages[0].modules == std::vector<std::string>{"layers.0.mlp.fc1"});
  CHECK(stages[1].modifiers.at(0).unmatched_targets == std::vector<std::string>{"NoSuchThing"});
  CHECK(sparsity(model.get_tensor("layers.0.mlp.fc1", "weight")) == doctest::Approx(0.25));
  CHECK(sparsity(model.get_tensor("layers.0.mlp.fc2", "weight")) == doctest::Approx(0.75));

  SUBCASE("a train stage is refused") {
    modkit::Recipe train = recipe;
    train.stages[1].run_type = "train";
    CHECK_THROWS_WITH_AS(modkit::oneshot(model, train, factory),
                         doctest::Contains("has run_type 'train'"), modkit::RecipeError);
  }
}
