// exec_torch_tool: the hand-over from modkit to modkit-torch.
#include "run_torch_tool.hpp"

#include "cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace modkit::cli {

void exec_torch_tool(const std::vector<std::string>& args) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Failure(kExitProblem, "cannot locate the modkit executable: " + ec.message());
  const std::string tool = (self.parent_path() / "modkit-torch").string();
  std::vector<std::string> argv_strings{tool};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  ::execv(tool.c_str(), argv.data());
  throw Failure(kExitProblem, "cannot run '" + tool + "': " + std::strerror(errno));
}

}  // namespace modkit::cli
