// Tests of the modkit executable: list, inspect, errors, new-plugin, exit codes and the no-dlopen guarantee.
#include "subprocess.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using modkit::test::run;
using modkit::test::RunResult;
using modkit::test::TempDir;
using nlohmann::json;

namespace {

const std::string kCli = MODKIT_CLI_PATH;
const std::string kDir = MODKIT_CLI_TEST_DIR;
const std::string kPlugins = kDir + "/plugins";
const std::string kMarkerPlugins = kDir + "/marker_plugins";
const std::string kAbortPlugins = kDir + "/abort_plugins";
const std::string kBrokenPlugins = kDir + "/broken_plugins";

RunResult cli(std::vector<std::string> args, const std::vector<std::pair<std::string, std::string>>& env = {},
              const std::string& cwd = "") {
  args.insert(args.begin(), kCli);
  return run(args, env, cwd);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The line of `text` that contains every part, or "".
std::string line_with(const std::string& text, const std::vector<std::string>& parts) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& p : parts) all = all && contains(line, p);
    if (all) return line;
  }
  return "";
}

json parse_json(const RunResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

// A directory holding a file named like a plugin that is not an ELF object.
struct JunkDir {
  TempDir dir;
  std::string file = dir / "junk.so";
  JunkDir() { std::ofstream(file) << "this is not a shared object\n"; }
};

}  // namespace

TEST_CASE("the modkit executable does not link LibTorch") {
  const RunResult r = run({"/usr/bin/ldd", kCli});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "libmodkit_core"));
  CHECK_FALSE(contains(r.out, "libtorch"));
  CHECK_FALSE(contains(r.out, "libc10"));
}

TEST_CASE("--version and --help exit 0") {
  RunResult r = cli({"--version"});
  CHECK(r.code == 0);
  CHECK(starts_with(r.out, "modkit 0."));
  r = cli({"--help"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "list"));
  CHECK(contains(r.out, "inspect"));
  CHECK(contains(r.out, "new-plugin"));
}

TEST_CASE("usage errors exit 2 with a modkit message") {
  std::vector<std::vector<std::string>> cases = {
      {},                                   // no subcommand
      {"frobnicate"},                       // unknown subcommand
      {"list", "--no-such-option"},         // unknown option
      {"inspect"},                          // missing argument
      {"list", "--plugin-dir"},             // option without its value
      {"inspect", "A", "B"},                // one argument too many
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CAPTURE(joined);
    const RunResult r = cli(args);
    CHECK(r.code == 2);
    CHECK(starts_with(r.err, "modkit: "));
    CHECK(r.out.empty());
  }
}

TEST_CASE("an unknown or missing command is named, with the commands there are") {
  const std::string commands = "(the commands: list, inspect, errors, new-plugin, check, recipe, apply, demo)";
  CHECK(cli({"lst"}).err == "modkit: unknown command 'lst' (did you mean 'list'?) " + commands +
                                "\nrun 'modkit --help' (or 'modkit <command> --help') for usage\n");
  CHECK(cli({"--plugin-dir", "x", "frobnicate"}).err.rfind("modkit: unknown command 'frobnicate' " + commands, 0) == 0);
  CHECK(cli({}).err.rfind("modkit: a command is required: list, inspect, errors, new-plugin, check, recipe, apply, demo\n", 0) == 0);
}

TEST_CASE("under --json every failure is one JSON value on stdout, with the message and the exit code") {
  TempDir dir;
  const std::vector<std::vector<std::string>> cases = {
      {"--json", "lst"},                                           // usage: unknown command
      {"--json", "inspect", "NoSuchModifier"},                     // a problem: unknown type
      {"--json", "new-plugin"},                                    // usage: missing argument
      {"--json", "recipe", "convert", dir / "missing.toml"},       // a problem: unreadable recipe
      {"--json", "apply", "--samples", "0"},                       // usage: bad value
      {"--json", "apply", "--model", dir / "missing.pt"},          // usage: --model without --output
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CAPTURE(joined);
    const RunResult r = cli(args);
    CHECK(r.code != 0);
    const json j = parse_json(r);
    CHECK(j["exit_code"] == r.code);
    CHECK(starts_with(r.err, "modkit: " + j["error"].get<std::string>()));
  }
  const json bad = parse_json(cli({"--json", "apply", "--samples", "0"}));
  CHECK(bad["error"] == "--samples: expected a whole number of at least 1, found '0'");
}

TEST_CASE("list shows main, experimental and shadowed modifiers in aligned columns") {
  const RunResult r = cli({"list", "--plugin-dir", kPlugins});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(starts_with(r.out, "NAME"));
  const std::string alpha = line_with(r.out, {"AlphaPruningModifier", "1.2.3"});
  REQUIRE_FALSE(alpha.empty());
  CHECK(contains(alpha, " main "));
  CHECK(contains(alpha, kPlugins + "/cli_alpha.so"));
  CHECK(contains(alpha, "alpha: prunes the smallest weights"));
  const std::string copy = line_with(r.out, {"AlphaPruningModifier", "9.9.9"});
  CHECK(contains(copy, "main (shadowed)"));
  CHECK(r.out.find(alpha) < r.out.find(copy));  // the winner comes first
  CHECK(contains(line_with(r.out, {"GammaModifier"}), "experimental"));
  CHECK_FALSE(line_with(r.out, {"BetaQuantModifier", "0.9.0", "main"}).empty());
  CHECK_FALSE(line_with(r.out, {"BetaSmoothModifier", "0.9.0", "main"}).empty());
  // columns line up: every row's VERSION column starts where the header's does
  const size_t version_col = r.out.find("VERSION");
  CHECK(alpha.find("1.2.3") == version_col);
  CHECK(line_with(r.out, {"GammaModifier"}).find("0.1.0") == version_col);
  CHECK_FALSE(contains(r.out, "problems"));
}

TEST_CASE("list --json has a stable schema") {
  const RunResult r = cli({"--json", "list", "--plugin-dir", kPlugins});
  REQUIRE(r.code == 0);
  const json j = parse_json(r);
  REQUIRE(j.at("search_dirs").is_array());
  CHECK(j["search_dirs"][0] == kPlugins);
  REQUIRE(j.at("problems").is_array());
  CHECK(j["problems"].empty());
  const json& mods = j.at("modifiers");
  REQUIRE(mods.size() == 5);
  for (const auto& m : mods) {
    for (const char* key : {"name", "version", "registry", "file", "summary", "abi", "torch", "cxx11_abi",
                            "pipeline", "params", "shadowed", "shadowed_by"}) {
      CAPTURE(key);
      CHECK(m.contains(key));
    }
  }
  // main by name (the shadowed copy after its winner), then experimental
  CHECK(mods[0]["name"] == "AlphaPruningModifier");
  CHECK(mods[0]["shadowed"] == false);
  CHECK(mods[0]["shadowed_by"].is_null());
  CHECK(mods[0]["abi"] == json::array({1, 0}));
  CHECK(mods[0]["torch"] == "");
  CHECK(mods[1]["name"] == "AlphaPruningModifier");
  CHECK(mods[1]["version"] == "9.9.9");
  CHECK(mods[1]["shadowed"] == true);
  CHECK(mods[1]["shadowed_by"] == kPlugins + "/cli_alpha.so");
  CHECK(mods[2]["name"] == "BetaQuantModifier");
  CHECK(mods[2]["pipeline"] == "sequential");
  CHECK(mods[3]["name"] == "BetaSmoothModifier");
  CHECK(mods[4]["name"] == "GammaModifier");
  CHECK(mods[4]["registry"] == "experimental");
  CHECK(mods[4]["file"] == kPlugins + "/experimental/cli_gamma.so");
}

TEST_CASE("plugin directories: --plugin-dir first, then MODKIT_PLUGIN_PATH, first wins") {
  const RunResult r = cli({"list", "--json", "--plugin-dir", kMarkerPlugins},
                          {{"MODKIT_PLUGIN_PATH", kPlugins + ":" + kMarkerPlugins}});
  REQUIRE(r.code == 0);
  const json j = parse_json(r);
  REQUIRE(j["search_dirs"].size() >= 3);
  CHECK(j["search_dirs"][0] == kMarkerPlugins);
  CHECK(j["search_dirs"][1] == kPlugins);
  CHECK(j["search_dirs"][2] == kMarkerPlugins);
  size_t markers = 0;
  for (const auto& m : j["modifiers"]) {
    if (m["name"] != "MarkerModifier") continue;
    ++markers;
    // the same file searched twice: the second sighting is shadowed by the first
    CHECK(m["shadowed"] == (markers == 2));
  }
  CHECK(markers == 2);
}

TEST_CASE("list reads metadata only: no plugin code runs, errors does load") {
  TempDir tmp;
  const std::string marker = tmp / "marker.txt";
  SUBCASE("a plugin whose static constructor writes a file") {
    RunResult r = cli({"list", "--plugin-dir", kMarkerPlugins}, {{"MODKIT_TEST_MARKER", marker}});
    CHECK(r.code == 0);
    CHECK(contains(r.out, "MarkerModifier"));
    r = cli({"inspect", "MarkerModifier", "--plugin-dir", kMarkerPlugins}, {{"MODKIT_TEST_MARKER", marker}});
    CHECK(r.code == 0);
    r = cli({"inspect", kMarkerPlugins + "/cli_marker.so"}, {{"MODKIT_TEST_MARKER", marker}});
    CHECK(r.code == 0);
    CHECK_FALSE(fs::exists(marker));

    r = cli({"errors", "--plugin-dir", kMarkerPlugins}, {{"MODKIT_TEST_MARKER", marker}});
    CHECK(r.code == 0);
    CHECK(fs::exists(marker));  // errors really loads plugins
  }
  SUBCASE("a plugin whose static constructor aborts") {
    const RunResult r = cli({"list", "--plugin-dir", kAbortPlugins});
    CHECK(r.code == 0);
    CHECK(contains(r.out, "AbortOnLoadModifier"));
    CHECK(cli({"inspect", "AbortOnLoadModifier", "--plugin-dir", kAbortPlugins}).code == 0);
  }
}

TEST_CASE("list refuses what the factory refuses: unsafe plugin files, relative MODKIT_PLUGIN_PATH entries") {
  TempDir dir;
  const std::string copy = dir / "cli_beta.so";
  fs::copy_file(kPlugins + "/cli_beta.so", copy);
  ::chmod(copy.c_str(), 0777);
  const RunResult r = cli({"list", "--json", "--no-cache", "--plugin-dir", dir.path()}, {{"MODKIT_PLUGIN_PATH", "relative/plugins"}});
  INFO(r.out << r.err);
  const json j = parse_json(r);
  CHECK(j["modifiers"].empty());  // the world-writable copy is not listed as a modifier
  std::string reasons;
  for (const auto& p : j["problems"]) reasons += p["name"].get<std::string>() + ": " + p["reason"].get<std::string>() + "\n";
  CHECK(reasons == ": relative entry in MODKIT_PLUGIN_PATH, expected an absolute directory\n"
                   "BetaQuantModifier: '" + copy + "' is world-writable (mode 0777)\n"
                   "BetaSmoothModifier: '" + copy + "' is world-writable (mode 0777)\n");
}

TEST_CASE("list shows unreadable files and names without metadata as problems") {
  JunkDir junk;
  RunResult r = cli({"list", "--plugin-dir", kBrokenPlugins, "--plugin-dir", junk.dir.path(), "--plugin-dir",
                     kPlugins});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "AlphaPruningModifier"));  // one bad plugin never hides the good ones
  CHECK(contains(r.out, "problems (2; run 'modkit errors' for details)"));
  CHECK(contains(line_with(r.out, {"NoMetadataModifier"}), "no entry in the metadata section"));
  CHECK_FALSE(line_with(r.out, {junk.file}).empty());

  r = cli({"list", "--json", "--plugin-dir", kBrokenPlugins, "--plugin-dir", junk.dir.path()});
  CHECK(r.code == 0);
  const json j = parse_json(r);
  CHECK(j["modifiers"].empty());
  REQUIRE(j["problems"].size() == 2);
  CHECK(j["problems"][0]["name"] == "NoMetadataModifier");
  CHECK(j["problems"][0]["stage"] == "scan");
  CHECK(j["problems"][1]["name"] == "");
  CHECK(j["problems"][1]["file"] == junk.file);

  r = cli({"list", "--plugin-dir", junk.dir / "missing"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "plugin directory does not exist"));
}

TEST_CASE("inspect a type shows its fingerprint and every parameter") {
  const RunResult r = cli({"inspect", "AlphaPruningModifier", "--plugin-dir", kPlugins});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(starts_with(r.out, "AlphaPruningModifier\n"));
  CHECK(contains(line_with(r.out, {"File"}), kPlugins + "/cli_alpha.so"));
  CHECK(contains(line_with(r.out, {"Registry"}), "main"));
  CHECK(contains(line_with(r.out, {"Version"}), "1.2.3"));
  CHECK(contains(line_with(r.out, {"Summary"}), "alpha: prunes the smallest weights"));
  CHECK(contains(line_with(r.out, {"ABI"}), "1.0 (host 1."));
  CHECK(contains(line_with(r.out, {"LibTorch"}), "none (cxx11 abi "));
  CHECK(contains(line_with(r.out, {"Pipeline"}), "datafree"));
  CHECK(contains(line_with(r.out, {"Also in"}), kPlugins + "/cli_zz_alpha_copy.so (shadowed)"));
  CHECK(contains(r.out, "Parameters (4):"));
  CHECK(contains(line_with(r.out, {"sparsity"}), "float, default 0.5, range [0.0, 1.0]"));
  CHECK(contains(r.out, "fraction of weights to zero"));
  CHECK(contains(line_with(r.out, {"mask_structure"}), "string, default \"unstructured\", choices \"unstructured\", \"2:4\""));
  CHECK(contains(line_with(r.out, {"targets"}), "string_list, required"));
  CHECK(contains(line_with(r.out, {"steps"}), "int, default 4, range [1, 100]"));
}

TEST_CASE("inspect --json gives the schema as data") {
  const RunResult r = cli({"inspect", "--json", "AlphaPruningModifier", "--plugin-dir", kPlugins});
  REQUIRE(r.code == 0);
  const json j = parse_json(r);
  REQUIRE(j["modifiers"].size() == 1);
  const json& m = j["modifiers"][0];
  CHECK(m["name"] == "AlphaPruningModifier");
  CHECK(m["version"] == "1.2.3");
  CHECK(m["file"] == kPlugins + "/cli_alpha.so");
  REQUIRE(m["params"].size() == 4);
  CHECK(m["params"][0] == json{{"name", "sparsity"}, {"type", "float"}, {"required", false}, {"default", 0.5},
                               {"min", 0.0}, {"max", 1.0}, {"choices", nullptr}, {"doc", "fraction of weights to zero"}});
  CHECK(m["params"][1]["choices"] == json::array({"unstructured", "2:4"}));
  CHECK(m["params"][2]["required"] == true);
  CHECK(j["problems"].empty());
}

TEST_CASE("inspect a file shows every modifier in it") {
  const RunResult r = cli({"inspect", kPlugins + "/cli_beta.so", "--plugin-dir", kPlugins});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(starts_with(r.out, "BetaQuantModifier\n"));
  CHECK(contains(r.out, "\nBetaSmoothModifier\n"));
  CHECK(contains(line_with(r.out, {"Pipeline", "sequential"}), "sequential"));
  CHECK(contains(line_with(r.out, {"bits"}), "int, default 8, choices 4, 8"));
  CHECK(contains(r.out, "Parameters (0):"));

  const RunResult experimental = cli({"inspect", "--json", kPlugins + "/experimental/cli_gamma.so", "--plugin-dir", kPlugins});
  REQUIRE(experimental.code == 0);
  CHECK(parse_json(experimental)["modifiers"][0]["registry"] == "experimental");

  const RunResult outside = cli({"inspect", kPlugins + "/cli_beta.so"});  // not in any plugin directory
  REQUIRE(outside.code == 0);
  CHECK(contains(line_with(outside.out, {"Registry"}), "none (not in a plugin directory)"));
}

TEST_CASE("inspect an unknown type exits 1 with a suggestion") {
  RunResult r = cli({"inspect", "AlphaPruneModifier", "--plugin-dir", kPlugins});
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(starts_with(r.err, "modkit: no modifier named 'AlphaPruneModifier' (did you mean 'AlphaPruningModifier'?)"));

  r = cli({"inspect", "QuiteUnrelatedThing", "--plugin-dir", kPlugins});
  CHECK(r.code == 1);
  CHECK(r.err == "modkit: no modifier named 'QuiteUnrelatedThing'\n");

  // a name that is listed but has no metadata: its problem, not "no modifier"
  r = cli({"inspect", "NoMetadataModifier", "--plugin-dir", kBrokenPlugins});
  CHECK(r.code == 1);
  CHECK(starts_with(r.err, "modkit: cannot load 'NoMetadataModifier' from '" + kBrokenPlugins));
}

TEST_CASE("inspect an unreadable file exits 1 with the reader's message") {
  JunkDir junk;
  RunResult r = cli({"inspect", junk.file});
  CHECK(r.code == 1);
  CHECK(starts_with(r.err, "modkit: '" + junk.file + "' "));
  r = cli({"inspect", junk.dir / "missing.so"});
  CHECK(r.code == 1);
  CHECK(starts_with(r.err, "modkit: "));
  CHECK(contains(r.err, "missing.so"));
}

TEST_CASE("errors exits 0 when every plugin loads and shows shadowed ones") {
  RunResult r = cli({"errors", "--plugin-dir", kPlugins});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(starts_with(r.out, "no load errors (4 modifiers loaded)"));
  CHECK(contains(line_with(r.out, {"AlphaPruningModifier"}), kPlugins + "/cli_zz_alpha_copy.so"));
  CHECK(contains(line_with(r.out, {"AlphaPruningModifier"}), "shadowed by '" + kPlugins + "/cli_alpha.so'"));

  r = cli({"errors", "--json", "--plugin-dir", kPlugins});
  CHECK(r.code == 0);
  const json j = parse_json(r);
  CHECK(j["loaded"] == 4);
  CHECK(j["failed"].empty());
  REQUIRE(j["shadowed"].size() == 1);
  CHECK(j["shadowed"][0]["stage"] == "shadowed");
  CHECK(j["search_dirs"][0] == kPlugins);
}

TEST_CASE("errors exits 1 and names the file, stage and reason of each failure") {
  JunkDir junk;
  RunResult r = cli({"errors", "--plugin-dir", kBrokenPlugins, "--plugin-dir", junk.dir.path(), "--plugin-dir",
                     kPlugins});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(starts_with(r.out, "2 load errors (4 modifiers loaded):"));
  const std::string no_meta = line_with(r.out, {"NoMetadataModifier"});
  CHECK(contains(no_meta, kBrokenPlugins + "/cli_no_metadata.so"));
  CHECK(contains(no_meta, "validate"));
  CHECK(contains(no_meta, "returned no descriptor"));
  CHECK(contains(line_with(r.out, {junk.file}), "scan"));
  CHECK(r.err.empty());  // the core's log stays quiet unless -v

  r = cli({"errors", "--json", "--plugin-dir", kBrokenPlugins});
  CHECK(r.code == 1);
  const json j = parse_json(r);
  REQUIRE(j["failed"].size() == 1);
  CHECK(j["failed"][0] == json{{"name", "NoMetadataModifier"},
                               {"file", kBrokenPlugins + "/cli_no_metadata.so"},
                               {"stage", "validate"},
                               {"reason", j["failed"][0]["reason"]},
                               {"experimental", false},
                               {"source", "scan"}});

  r = cli({"-v", "errors", "--plugin-dir", kBrokenPlugins});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "NoMetadataModifier"));  // -v: the core's warnings, on stderr
}

TEST_CASE("new-plugin scaffolds a project that builds and lists") {
  TempDir tmp;
  const std::string project = tmp / "my_pruning";
  RunResult r = cli({"new-plugin", "MyPruningModifier", "--dir", project});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "created plugin project '" + project + "'"));
  const std::string cmake = modkit::test::read_text(project + "/CMakeLists.txt");
  CHECK(contains(cmake, "find_package(modkit REQUIRED)"));
  CHECK(contains(cmake, "modkit_add_plugin(my_pruning SOURCES my_pruning.cpp)"));
  const std::string source = modkit::test::read_text(project + "/my_pruning.cpp");
  CHECK(contains(source, "class MyPruningModifier final : public modkit::sdk::Modifier"));
  CHECK(contains(source, "MODKIT_EXPORT_MODIFIER(MyPruningModifier"));
  CHECK(contains(modkit::test::read_text(project + "/README.md"), "modkit inspect MyPruningModifier"));
  // nothing but the project: the temporary directory was renamed into place
  CHECK(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 1);

  SUBCASE("the generated source compiles into a plugin modkit lists and loads") {
    const std::string plugins = tmp / "plugins";
    fs::create_directory(plugins);
    const RunResult cc = run({MODKIT_CLI_CXX, "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden",
                              "-Wl,--no-undefined", "-I", MODKIT_CLI_SDK_INCLUDE, "-I", MODKIT_CLI_DLPACK_INCLUDE,
                              project + "/my_pruning.cpp", "-o", plugins + "/my_pruning.so"});
    INFO(cc.out << cc.err);
    REQUIRE(cc.code == 0);
    r = cli({"inspect", "MyPruningModifier", "--plugin-dir", plugins});
    CHECK(r.code == 0);
    CHECK(contains(line_with(r.out, {"targets"}), "string_list, default [\"Linear\"]"));
    CHECK(contains(line_with(r.out, {"ignore"}), "string_list, default []"));
    CHECK(line_with(r.out, {"sparsity"}).empty());  // no made-up parameter
    CHECK(cli({"errors", "--plugin-dir", plugins}).code == 0);
  }
  SUBCASE("--torch: a LibTorch plugin that compiles, records the LibTorch version and loads") {
    const std::string torch_project = tmp / "weight_probe";
    REQUIRE(cli({"new-plugin", "WeightProbeModifier", "--torch", "--dir", torch_project}).code == 0);
    CHECK(contains(modkit::test::read_text(torch_project + "/CMakeLists.txt"),
                   "modkit_add_plugin(weight_probe SOURCES weight_probe.cpp TORCH)"));
    const std::string plugins = tmp / "torch_plugins";
    fs::create_directory(plugins);
    const RunResult cc = run({MODKIT_CLI_CXX, "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-g0",
                              "-Wl,--no-undefined", "-I", MODKIT_CLI_SDK_INCLUDE, "-I", MODKIT_CLI_DLPACK_INCLUDE, "-I",
                              MODKIT_CLI_TORCH_INCLUDE, torch_project + "/weight_probe.cpp", "-o", plugins + "/weight_probe.so", "-ltorch_cpu",
                              "-lc10"});
    INFO(cc.out << cc.err);
    REQUIRE(cc.code == 0);
    r = cli({"--json", "inspect", "WeightProbeModifier", "--plugin-dir", plugins});
    CHECK(r.code == 0);
    CHECK_FALSE(parse_json(r)["modifiers"][0]["torch"].get<std::string>().empty());
    CHECK(cli({"errors", "--plugin-dir", plugins}).code == 0);
  }
  SUBCASE("an existing directory is never overwritten") {
    r = cli({"new-plugin", "OtherModifier", "--dir", project});
    CHECK(r.code == 1);
    CHECK(starts_with(r.err, "modkit: cannot create '" + project + "': it already exists"));
    CHECK(contains(modkit::test::read_text(project + "/CMakeLists.txt"), "my_pruning"));
  }
  SUBCASE("the default directory is the snake_case name in the current directory") {
    r = cli({"new-plugin", "GPTQLikeModifier"}, {}, tmp.path());
    CHECK(r.code == 0);
    CHECK(fs::exists(tmp / "gptq_like/gptq_like.cpp"));
  }
}

TEST_CASE("new-plugin rejects names that are not identifiers ending in Modifier") {
  TempDir tmp;
  for (const std::string name : {"MyPruning", "1stModifier", "My-Modifier", "Modifier", ""}) {
    CAPTURE(name);
    const RunResult r = cli({"new-plugin", name, "--dir", tmp / "x"});
    CHECK(r.code == 2);
    CHECK(starts_with(r.err, "modkit: invalid plugin name '" + name + "': expected "));
    CHECK_FALSE(fs::exists(tmp / "x"));
  }
}

namespace {

// Copies every plugin of `from` (recursively) below `to`, with a settled mtime, so the registry cache may keep them.
void copy_plugins(const std::string& from, const std::string& to) {
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    if (e.path().extension() != ".so") continue;
    const fs::path target = fs::path(to) / fs::relative(e.path(), from);
    fs::create_directories(target.parent_path());
    fs::copy_file(e.path(), target);
    fs::last_write_time(target, fs::file_time_type::clock::now() - std::chrono::hours(24 * 365));
  }
}

json without_source(json listing) {
  for (auto& m : listing["modifiers"]) m.erase("source");
  listing.erase("cache");
  return listing;
}

}  // namespace

TEST_CASE("errors fills the registry cache; list and errors then read it and say so") {
  TempDir tmp;
  const std::string plugins = tmp / "plugins";
  copy_plugins(kPlugins, plugins);
  const std::vector<std::pair<std::string, std::string>> env = {{"MODKIT_NO_CACHE", ""},
                                                                 {"MODKIT_CACHE_DIR", tmp / "cache"}};
  const json cold_list = parse_json(cli({"--json", "list", "--plugin-dir", plugins}, env));
  CHECK(cold_list["cache"].get<std::string>().rfind(tmp / "cache/registry-", 0) == 0);
  for (const auto& m : cold_list["modifiers"]) CHECK(m["source"] == "scan");
  CHECK_FALSE(fs::exists(tmp / "cache"));  // list never writes it

  json j = parse_json(cli({"--json", "errors", "--plugin-dir", plugins}, env));
  CHECK(j["cache"] == cold_list["cache"]);
  CHECK(j["shadowed"][0]["source"] == "scan");
  RunResult r = cli({"errors", "--plugin-dir", plugins}, env);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "\n5 of 5 records from the registry cache '" + cold_list["cache"].get<std::string>() +
                            "' (--rescan scans every plugin again)\n"));

  const json warm_list = parse_json(cli({"--json", "list", "--plugin-dir", plugins}, env));
  for (const auto& m : warm_list["modifiers"]) CHECK(m["source"] == "cache");
  CHECK(without_source(warm_list) == without_source(cold_list));  // the same listing, from the cache
  CHECK(cli({"list", "--plugin-dir", plugins}, env).out == cli({"list", "--plugin-dir", plugins}).out);

  j = parse_json(cli({"--json", "errors", "--rescan", "--plugin-dir", plugins}, env));
  CHECK(j["shadowed"][0]["source"] == "scan");
  j = parse_json(cli({"--json", "--no-cache", "list", "--plugin-dir", plugins}, env));
  CHECK(j["cache"].is_null());
  for (const auto& m : j["modifiers"]) CHECK(m["source"] == "scan");
}

TEST_CASE("with a warm cache, list shows a plugin that crashed while loading as a problem") {
  TempDir tmp;
  const std::string plugins = tmp / "plugins";
  copy_plugins(kAbortPlugins, plugins);
  const std::vector<std::pair<std::string, std::string>> env = {{"MODKIT_NO_CACHE", ""},
                                                                 {"MODKIT_CACHE_DIR", tmp / "cache"}};
  // from its metadata alone it looks fine
  json j = parse_json(cli({"--json", "list", "--plugin-dir", plugins}, env));
  REQUIRE(j["modifiers"].size() == 1);
  CHECK(j["modifiers"][0]["name"] == "AbortOnLoadModifier");
  CHECK(cli({"errors", "--plugin-dir", plugins}, env).code == 1);
  j = parse_json(cli({"--json", "list", "--plugin-dir", plugins}, env));
  CHECK(j["modifiers"].empty());
  REQUIRE(j["problems"].size() == 1);
  CHECK(j["problems"][0]["name"] == "AbortOnLoadModifier");
  CHECK(j["problems"][0]["stage"] == "isolated");
  CHECK(j["problems"][0]["reason"] == "aborted (SIGABRT) while loading");
  CHECK(j["problems"][0]["source"] == "cache");
  const RunResult r = cli({"errors", "--plugin-dir", plugins}, env);
  CHECK(contains(line_with(r.out, {"AbortOnLoadModifier"}), "isolated  cache   aborted (SIGABRT) while loading"));
}
