// The modkit command-line tool: parses global options, dispatches to one subcommand, maps failures to exit codes.
#include "cli.hpp"
#include "cli_support.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/signals.hpp>
#include <modkit/core/text.hpp>
#include <modkit/modkit.h>

#include <algorithm>
#include <cctype>
#include <iostream>

namespace {

std::string version_text() {
  const std::string torch = modkit::FactoryOptions::default_torch_version();
  return "modkit " MODKIT_VERSION " (ABI " + std::to_string(MODKIT_ABI_MAJOR) + "." +
         std::to_string(MODKIT_ABI_MINOR) + ", plugins checked against LibTorch " +
         (torch.empty() ? std::string("none") : torch) + ")";
}

// CLI11 words its errors as sentences; modkit's messages start lower-case.
std::string lower_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// The first argument that is neither an option nor an option's value: the command's name, or "".
std::string first_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--plugin-dir") {
      ++i;  // its value
    } else if (arg.empty() || arg[0] != '-') {
      return arg;
    }
  }
  return "";
}

int run(int argc, char** argv) {
  using namespace modkit::cli;
  GlobalOptions global;
  CLI::App app{"modkit: list, inspect and diagnose model-compression modifier plugins; check recipes and apply them", "modkit"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);
  app.footer(
      "Plugin directories: --plugin-dir (repeatable, searched first), then MODKIT_PLUGIN_PATH "
      "(colon separated), then the install default.\n"
      "Registry cache: MODKIT_CACHE_DIR, else $XDG_CACHE_HOME/modkit, else ~/.cache/modkit.\n"
      "Exit codes: 0 success, 1 a plugin/recipe/model problem, 2 a usage error.\n");
  add_global_options(app, global);

  std::vector<Command> commands = {
      add_list_command(app, global),
      add_inspect_command(app, global),
      add_errors_command(app, global),
      add_new_plugin_command(app, global),
      add_check_command(app, global),
      add_recipe_command(app, global),
      add_apply_command(app, global),
      add_demo_command(app, global),
  };

  try {
    parse(app, global, argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    std::vector<std::string> names;
    for (const auto& command : commands) names.push_back(command.app->get_name());
    std::string message = lower_first(e.what());
    if (!std::any_of(commands.begin(), commands.end(), [](const Command& c) { return c.app->parsed(); })) {
      // CLI11 takes an unknown command for a stray argument and says only that one is required
      const std::string word = first_word(argc, argv);
      std::string known;
      for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
      message = word.empty() ? "a command is required: " + known
                             : "unknown command '" + word + "'" + modkit::did_you_mean(word, names) +
                                   " (the commands: " + known + ")";
    }
    report_error(message, kExitUsage, wants_json(argc, argv));
    std::cerr << "run 'modkit --help' (or 'modkit <command> --help') for usage\n";
    return kExitUsage;
  }

  set_up_logging(global);
  for (const auto& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return kExitUsage;  // unreachable: require_subcommand(1)
}

}  // namespace

int main(int argc, char** argv) {
  modkit::install_signal_handlers("modkit");  // a signal removes the temporary files of writes in progress
  const bool json = modkit::cli::wants_json(argc, argv);
  try {
    return run(argc, argv);
  } catch (const modkit::cli::Failure& e) {
    modkit::cli::report_error(e.what(), e.code(), json, e.details());
    return e.code();
  } catch (const std::exception& e) {
    modkit::cli::report_error(e.what(), modkit::cli::kExitProblem, json);
    return modkit::cli::kExitProblem;
  }
}
