// Runs `modkit-torch` (installed beside modkit) for the subcommands that need LibTorch, so modkit itself never links it.
#pragma once

#include <string>
#include <vector>

namespace modkit::cli {

/// Replaces this process by `modkit-torch <args...>` from modkit's own
/// directory. Sets OMP_WAIT_POLICY=PASSIVE unless the caller's environment
/// sets it: LibTorch's OpenMP threads otherwise spin between parallel regions,
/// which on a busy machine turns small calibration steps ten times slower.
/// Returns only by throwing Failure when the tool cannot run.
[[noreturn]] void exec_torch_tool(const std::vector<std::string>& args);

}  // namespace modkit::cli
