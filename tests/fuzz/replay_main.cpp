// Runs fuzz inputs through a fuzz target's entry point once each, without libFuzzer: the corpus and regression replay test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0) inputs.push_back(e.path());
      }
    } else if (fs::exists(p, ec)) {
      inputs.push_back(p);
    }  // a missing directory (no regressions yet) is no input
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // an exact-size heap copy, so a sanitizer sees a read past the end
    std::vector<uint8_t> copy(bytes.begin(), bytes.end());
    std::printf("%s (%zu bytes)\n", p.string().c_str(), copy.size());
    std::fflush(stdout);
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
  }
  std::printf("%zu inputs replayed\n", inputs.size());
  return inputs.empty() ? 1 : 0;
}
