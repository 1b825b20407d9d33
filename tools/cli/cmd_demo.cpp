// `modkit demo`: runs `modkit-torch demo` (installed beside modkit) so the modkit binary itself never links LibTorch.
#include "cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace modkit::cli {

Command add_demo_command(CLI::App& parent, const GlobalOptions& global) {
  auto* app = parent.add_subcommand("demo", "prune a generated TorchScript model during a short training loop (LibTorch)");
  auto steps = std::make_shared<int>(12);
  auto output = std::make_shared<std::string>();
  app->add_option("--steps", *steps, "training steps")->check(CLI::Range(6, 10000));
  app->add_option("--output", *output, "where to save the pruned model (TorchScript)");
  return {app, [&global, steps, output]() -> int {
            std::error_code ec;
            const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
            if (ec) throw Failure(kExitProblem, "cannot locate the modkit executable: " + ec.message());
            const std::string demo = (self.parent_path() / "modkit-torch").string();
            std::vector<std::string> args{demo, "demo", "--steps", std::to_string(*steps)};
            for (const auto& dir : global.plugin_dirs) args.insert(args.end(), {"--plugin-dir", dir});
            if (!output->empty()) args.insert(args.end(), {"--output", *output});
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(demo.c_str(), argv.data());
            throw Failure(kExitProblem, "cannot run '" + demo + "': " + std::strerror(errno));
          }};
}

}  // namespace modkit::cli
