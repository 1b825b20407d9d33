// modkit-torch: the LibTorch executable behind `modkit demo` and `modkit apply` (modkit itself never links LibTorch).
// It parses the arguments modkit was given, with the same declarations (tools/cli/options.hpp).
#include "torch_tool.hpp"

#include <modkit/core/signals.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace modkit::cli;
  CLI::App app{"modkit-torch: the LibTorch side of the modkit CLI (run through 'modkit demo' and 'modkit apply')",
               "modkit-torch"};
  app.require_subcommand(1);
  GlobalOptions global;
  add_global_options(app, global);
  DemoOptions demo;
  ApplyOptions apply;
  CLI::App* demo_app = add_demo_options(app, demo);
  add_apply_options(app, apply);
  const bool json = wants_json(argc, argv);
  try {
    parse(app, global, argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    report_error(e.what(), kExitUsage, json);
    return kExitUsage;
  }
  // no temporary file outlives a signal; a crash names the plugin callback that was running
  modkit::install_signal_handlers("modkit");
  try {
    return demo_app->parsed() ? modkit::tool::run_demo(global, demo) : modkit::tool::run_apply(global, apply);
  } catch (const Failure& e) {
    report_error(e.what(), e.code(), json, e.details());
    return e.code();
  } catch (const std::exception& e) {
    report_error(e.what(), kExitProblem, json);
    return kExitProblem;
  }
}
