// Times ModifierFactory::refresh() over a plugin directory in both isolation modes (not a test).
#include <modkit/core/factory.hpp>
#include <modkit/core/logging.hpp>

#include <chrono>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <plugin-dir> [subprocess|inprocess]...\n", argv[0]);
    return 2;
  }
  modkit::set_log_level(modkit::LogLevel::Off);
  for (int i = 2; i < argc || i == 2; ++i) {
    const std::string mode = i < argc ? argv[i] : "subprocess";
    modkit::FactoryOptions o;
    o.plugin_dirs = {argv[1]};
    o.use_environment = false;
    o.use_install_dir = false;
    o.isolation = mode == "inprocess" ? modkit::Isolation::InProcess : modkit::Isolation::Subprocess;
    modkit::ModifierFactory f(o);
    const auto t0 = std::chrono::steady_clock::now();
    f.refresh();
    const auto t1 = std::chrono::steady_clock::now();
    f.refresh();
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("%-10s first refresh %.1f ms, second %.1f ms, %zu records\n", mode.c_str(),
                std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count(), f.records().size());
  }
  return 0;
}
