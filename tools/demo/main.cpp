// modkit-torch: the LibTorch executable behind `modkit demo` and `modkit apply` (modkit itself never links LibTorch).
#include "torch_tool.hpp"
#include "cli_support.hpp"

#include <modkit/core/signals.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"modkit-torch: the LibTorch side of the modkit CLI (run through 'modkit demo' and 'modkit apply')",
               "modkit-torch"};
  app.require_subcommand(1);
  std::function<int()> run_selected;
  modkit::tool::add_demo_command(app, run_selected);
  modkit::tool::add_apply_command(app, run_selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    modkit::cli::report_error(e.what(), 2, modkit::cli::wants_json(argc, argv));
    return 2;
  }
  // no temporary file outlives a signal; a crash names the plugin callback that was running
  modkit::install_signal_handlers("modkit");
  try {
    return run_selected ? run_selected() : 2;
  } catch (const std::exception& e) {
    modkit::cli::report_error(e.what(), 1, modkit::cli::wants_json(argc, argv));
    return 1;
  }
}
