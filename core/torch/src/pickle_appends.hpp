// Python pickles that LibTorch 1.13's unpickler can read: its APPEND opcode is missing.
#pragma once

#include <string>

namespace modkit {

/// `pickle` with every APPEND (`list.append(item)`) written as MARK item APPENDS, which LibTorch's
/// unpickler knows. Python emits APPEND for a list of one item and for the last item of any list
/// whose length is 1 more than a multiple of 1000 (it batches appends by 1000), so
/// `torch.save([t], path)` failed with "Unknown opcode for unpickling at 0x61".
/// Walks the opcodes of protocols 0-3 (torch.save writes protocol 2); a pickle it cannot follow
/// (an unknown opcode, a truncated argument, a stack that runs dry) comes back unchanged, for the
/// unpickler to report.
std::string rewrite_appends(const std::string& pickle);

}  // namespace modkit
