// `modkit recipe convert`: imports a recipe (llmcompressor YAML or TOML) and writes its canonical TOML form.
#include "cli.hpp"

#include <modkit/core/recipe.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace modkit::cli {
namespace {

namespace fs = std::filesystem;

// Writes `text` to `path` atomically: a temporary file in the same directory, flushed, then
// renamed over `path`, so readers see the old file or the whole new one, never a part.
void write_atomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (!fs::exists(status)) {
    throw Failure(kExitProblem, "cannot write '" + path + "': directory '" + dir.string() + "' does not exist");
  }
  if (!fs::is_directory(status)) {
    throw Failure(kExitProblem, "cannot write '" + path + "': '" + dir.string() + "' is not a directory");
  }
  if (fs::is_directory(target, ec)) {
    throw Failure(kExitProblem, "cannot write '" + path + "': it is a directory (expected a file path)");
  }
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw Failure(kExitProblem, "cannot write '" + path + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Failure(kExitProblem, "cannot write '" + path + "': " + what + ": " + reason);
  };
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0644);  // mkstemp creates 0600; a recipe is an ordinary file
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Failure(kExitProblem, "cannot write '" + path + "': close failed: " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Failure(kExitProblem, "cannot write '" + path + "': rename failed: " + reason);
  }
}

int run_convert(const std::string& input, const std::string& output) {
  Recipe recipe;
  try {
    recipe = Recipe::load(input);
  } catch (const RecipeError& e) {
    std::cerr << e.what() << "\n";
    return kExitProblem;
  }
  std::string toml;
  try {
    toml = recipe.to_toml();
  } catch (const std::exception& e) {
    throw Failure(kExitProblem, "cannot convert '" + input + "' to TOML: " + e.what());
  }
  if (output.empty() || output == "-") {
    std::cout << toml;
    return kExitOk;
  }
  write_atomically(output, toml);
  std::cerr << "wrote " << output << "\n";
  return kExitOk;
}

}  // namespace

Command add_recipe_command(CLI::App& parent, const GlobalOptions& /*global*/) {
  CLI::App* app = parent.add_subcommand("recipe", "work with recipe files (no plugin is loaded)");
  app->require_subcommand(1);
  CLI::App* convert = app->add_subcommand(
      "convert",
      "read a recipe (llmcompressor .yaml/.yml, or .toml) and write its canonical TOML form, to stdout or "
      "atomically to -o (syntax only: run 'modkit check' to check it against the plugins)");
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  convert->add_option("input", *input, "the recipe to convert")->required()->type_name("RECIPE");
  convert->add_option("-o,--output", *output, "where to write the TOML recipe (default: stdout)")->type_name("FILE");
  return {app, [input, output] { return run_convert(*input, *output); }};
}

}  // namespace modkit::cli
