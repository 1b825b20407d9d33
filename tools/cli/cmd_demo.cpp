// `modkit demo`: runs `modkit-torch demo` (installed beside modkit) so the modkit binary itself never links LibTorch.
#include "cli.hpp"
#include "run_torch_tool.hpp"

namespace modkit::cli {

Command add_demo_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<DemoOptions>();  // parsed here for --help and usage errors; modkit-torch uses them
  CLI::App* app = add_demo_options(parent, *o);
  return {app, [&global]() -> int { exec_torch_tool(global.args); }};
}

}  // namespace modkit::cli
