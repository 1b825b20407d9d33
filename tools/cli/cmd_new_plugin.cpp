// `modkit new-plugin <Name>`: scaffolds an out-of-tree plugin project (CMakeLists.txt, source, README).
#include "cli.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <system_error>

#include <fcntl.h>
#include <stdio.h>

namespace fs = std::filesystem;

namespace modkit::cli {
namespace {

const std::string kSuffix = "Modifier";

// Empty when `name` is a valid modifier class name, else why not.
std::string name_problem(const std::string& name) {
  auto ident_start = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  auto ident_char = [&](char c) { return ident_start(c) || (c >= '0' && c <= '9'); };
  bool identifier = !name.empty() && ident_start(name[0]);
  for (char c : name) identifier = identifier && ident_char(c);
  if (!identifier) {
    return "invalid plugin name '" + name + "': expected a C++ identifier (letters, digits, '_'; not starting with "
           "a digit) such as 'MyPruningModifier'";
  }
  if (name.size() < kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return "invalid plugin name '" + name + "': expected a name ending in 'Modifier' (plugin symbols ending in "
           "'Modifier' are the modifiers), such as '" + name + kSuffix + "'";
  }
  if (name.size() == kSuffix.size()) {
    return "invalid plugin name '" + name + "': expected a name before 'Modifier', such as 'MyPruningModifier'";
  }
  return "";
}

// MagnitudePruningModifier -> magnitude_pruning, GPTQModifier -> gptq, W8A8Modifier -> w8a8.
std::string snake_case_stem(const std::string& name) {
  const std::string stem = name.substr(0, name.size() - kSuffix.size());
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  std::string out;
  for (size_t i = 0; i < stem.size(); ++i) {
    const char c = stem[i];
    if (upper(c) && i > 0 && stem[i - 1] != '_' &&
        (lower(stem[i - 1]) || (upper(stem[i - 1]) && i + 1 < stem.size() && lower(stem[i + 1])))) {
      out += '_';
    }
    out += upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// Replaces every @KEY@ of `text`.
std::string fill(std::string text, const std::string& name, const std::string& snake) {
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"@NAME@", name}, {"@SNAKE@", snake}}) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

const char* const kCMakeLists = R"tmpl(# @SNAKE@: an out-of-tree modkit plugin providing @NAME@.
cmake_minimum_required(VERSION 3.18)
project(@SNAKE@ VERSION 0.1.0 LANGUAGES CXX)

# The installed modkit package: the SDK headers and modkit_add_plugin(); a
# plugin never links the modkit core.
find_package(modkit REQUIRED)

# Builds @SNAKE@.so into ${CMAKE_BINARY_DIR}/plugins and installs it to
# <libdir>/modkit/plugins. Add EXPERIMENTAL to put it in the experimental
# registry, or TORCH (after find_package(Torch)) to compute with LibTorch
# (modkit new-plugin --torch writes that project).
modkit_add_plugin(@SNAKE@ SOURCES @SNAKE@.cpp)
)tmpl";

const char* const kTorchCMakeLists = R"tmpl(# @SNAKE@: an out-of-tree modkit plugin providing @NAME@, computing with LibTorch.
cmake_minimum_required(VERSION 3.18)
project(@SNAKE@ VERSION 0.1.0 LANGUAGES CXX)

# The installed modkit package: the SDK headers and modkit_add_plugin(); a
# plugin never links the modkit core. LibTorch: Debian's libtorch-dev.
find_package(modkit REQUIRED)
find_package(Torch REQUIRED)

# Builds @SNAKE@.so into ${CMAKE_BINARY_DIR}/plugins and installs it to
# <libdir>/modkit/plugins; TORCH links LibTorch and records its version, which
# hosts check at load. Add EXPERIMENTAL for the experimental registry.
modkit_add_plugin(@SNAKE@ SOURCES @SNAKE@.cpp TORCH)
)tmpl";

// The parts of the source both kinds share: the class around `@BODY@`, and the schema.
const char* const kSource = R"tmpl(// @NAME@: a modkit modifier plugin (describe what it does here).
#include <modkit/sdk.hpp>
@INCLUDES@
#include <string>
#include <vector>

// Parameters arrive checked against the schema below, defaults filled in;
// lifecycle keys (start, end, update, index, group) are handled by the host,
// and `targets` / `ignore` are the conventions the host's report reads too.
// Any callback may throw modkit::sdk::Error: the export macro turns it into a
// status for the host, nothing crosses the ABI as an exception. state.log()
// lines show on stderr in `modkit apply` (INFO and above).
class @NAME@ final : public modkit::sdk::Modifier {
 public:
  explicit @NAME@(const modkit::sdk::Params& params)
      : targets_(params.get<std::vector<std::string>>("targets")),
        ignore_(params.get<std::vector<std::string>>("ignore")) {}

  bool on_initialize(modkit::sdk::State& state) override {
    if (!state.has_model()) return true;
@BODY@    return true;
  }

  void on_update(modkit::sdk::State& state, const modkit::sdk::Event& event) override {
    (void)state;
    (void)event;  // event.current_index() is the step (or fractional epoch)
  }

  bool on_finalize(modkit::sdk::State& state) override {
    (void)state;
    return true;
  }

 private:
  std::vector<std::string> targets_;
  std::vector<std::string> ignore_;
};

MODKIT_EXPORT_MODIFIER(@NAME@, "0.1.0", "describe @NAME@ in one line",
                       (modkit::sdk::ParamSpec{"targets", modkit::sdk::Type::StringList, MODKIT_JSON(["Linear"]),
                                               "modules to modify: class names, module names or re:<regex>"}),
                       (modkit::sdk::ParamSpec{"ignore", modkit::sdk::Type::StringList, MODKIT_JSON([]),
                                               "modules to leave alone, in the same forms"}))
)tmpl";

const char* const kPlainBody = R"tmpl(    for (const auto& module : state.match(targets_, ignore_)) {
      state.log(MODKIT_LOG_INFO, "@NAME@", "will modify " + module.name + " (" + module.class_name + ")");
    }
)tmpl";

const char* const kTorchBody = R"tmpl(    // each target's weight as an at::Tensor: a zero-copy view, in-place writes change the model
    for (const auto& module : modkit::sdk::match_with_tensor(state, targets_, ignore_, "@NAME@")) {
      const at::Tensor weight = modkit::sdk::get_tensor(state, module.name, "weight");
      state.log(MODKIT_LOG_INFO, "@NAME@",
                module.name + ": " + std::to_string(weight.numel()) + " weights, largest magnitude " +
                    std::to_string(weight.abs().max().item<double>()));
    }
)tmpl";

const char* const kTorchIncludes = R"tmpl(#include <modkit/sdk/torch.hpp>  // at::Tensor and its methods; add <ATen/ops/NAME.h> for functions
)tmpl";

std::string source_of(bool torch) {
  std::string text = kSource;
  text.replace(text.find("@BODY@"), 6, torch ? kTorchBody : kPlainBody);
  text.replace(text.find("@INCLUDES@\n"), 11, torch ? kTorchIncludes : "");
  return text;
}

const char* const kReadme = R"tmpl(# @SNAKE@

A [modkit](https://github.com/) plugin providing the modifier `@NAME@`.

## Build

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=/path/to/modkit/prefix
cmake --build build
```

The plugin lands in `build/plugins/@SNAKE@.so`. Check what modkit sees, without
loading it, then load it for real:

```sh
modkit list --plugin-dir build/plugins
modkit inspect @NAME@ --plugin-dir build/plugins
modkit errors --plugin-dir build/plugins
```

## Install

```sh
cmake --install build --prefix /path/to/modkit/prefix
```

installs it to `<prefix>/lib/modkit/plugins`, where modkit looks by default;
`MODKIT_PLUGIN_PATH` (colon separated) adds other directories.

## Parameters

| name | type | default | doc |
|---|---|---|---|
| `targets` | string list | `["Linear"]` | modules to modify: class names, module names or `re:<regex>` |
| `ignore` | string list | `[]` | modules to leave alone, in the same forms |
)tmpl";

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw Failure(kExitProblem, "cannot write '" + path.string() + "': " + std::strerror(errno));
}

int run_new_plugin(const GlobalOptions& global, const std::string& name, const std::string& dir_option, bool torch) {
  if (std::string why = name_problem(name); !why.empty()) throw Failure(kExitUsage, why);
  const std::string snake = snake_case_stem(name);
  const fs::path dir = dir_option.empty() ? fs::path(snake) : fs::path(dir_option);
  std::error_code ec;
  if (fs::symlink_status(dir, ec).type() != fs::file_type::not_found) {
    throw Failure(kExitProblem, "cannot create '" + dir.string() +
                                    "': it already exists (expected a new directory; choose another with --dir)");
  }
  // build the project in a temporary sibling, then rename it into place: a
  // failed run leaves nothing behind and never touches an existing directory
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) throw Failure(kExitProblem, "cannot create '" + parent.string() + "': " + ec.message());
  std::string pattern = (parent / ("." + dir.filename().string() + ".tmp-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Failure(kExitProblem, "cannot create a directory in '" + parent.string() + "': " + std::strerror(errno));
  }
  const fs::path tmp(pattern);
  try {
    write_file(tmp / "CMakeLists.txt", fill(torch ? kTorchCMakeLists : kCMakeLists, name, snake));
    write_file(tmp / (snake + ".cpp"), fill(source_of(torch), name, snake));
    write_file(tmp / "README.md", fill(kReadme, name, snake));
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
      throw Failure(kExitProblem, "cannot create '" + dir.string() + "': " + std::strerror(errno));
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  if (global.json) {
    std::cout << nlohmann::json{{"name", name},
                                {"directory", dir.string()},
                                {"files", {"CMakeLists.txt", snake + ".cpp", "README.md"}}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << "created plugin project '" << dir.string() << "' for " << name << ":\n"
              << "  " << (dir / "CMakeLists.txt").string() << "\n"
              << "  " << (dir / (snake + ".cpp")).string() << "\n"
              << "  " << (dir / "README.md").string() << "\n"
              << "build it with: cmake -S " << dir.string() << " -B " << (dir / "build").string()
              << " && cmake --build " << (dir / "build").string() << '\n';
  }
  return kExitOk;
}

}  // namespace

Command add_new_plugin_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("new-plugin", "create an out-of-tree plugin project for a new modifier");
  auto name = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  app->add_option("name", *name, "the modifier's class name, an identifier ending in 'Modifier'")->required();
  auto torch = std::make_shared<bool>(false);
  app->add_option("--dir", *dir, "the project directory to create (default: ./<name in snake_case>); must not exist");
  app->add_flag("--torch", *torch, "a plugin that computes with LibTorch (reads each target's weight as an at::Tensor)");
  return {app, [&global, name, dir, torch] { return run_new_plugin(global, *name, *dir, *torch); }};
}

}  // namespace modkit::cli
