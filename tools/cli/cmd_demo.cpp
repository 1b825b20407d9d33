// `modkit demo`: runs `modkit-torch demo` (installed beside modkit) so the modkit binary itself never links LibTorch.
#include "cli.hpp"
#include "run_torch_tool.hpp"

namespace modkit::cli {

Command add_demo_command(CLI::App& parent, const GlobalOptions& global) {
  auto* app = parent.add_subcommand("demo", "prune a generated TorchScript model during a short training loop (LibTorch)");
  auto steps = std::make_shared<int>(12);
  auto output = std::make_shared<std::string>();
  app->add_option("--steps", *steps, "training steps")->check(CLI::Range(6, 10000));
  app->add_option("--output", *output, "where to save the pruned model (TorchScript)");
  return {app, [&global, steps, output]() -> int {
            std::vector<std::string> args{"demo", "--steps", std::to_string(*steps)};
            for (const auto& dir : global.plugin_dirs) args.insert(args.end(), {"--plugin-dir", dir});
            if (!output->empty()) args.insert(args.end(), {"--output", *output});
            exec_torch_tool(args);
          }};
}

}  // namespace modkit::cli
