// bench_pipeline_memory: peak memory of a GPTQ oneshot run, sequential pipeline against basic, on a model of 8+ blocks.
//
// Each pipeline runs in its own child process. The child builds the model and
// the calibration samples, resets its peak-RSS counter (/proc/self/clear_refs),
// runs oneshot, and reports VmHWM - VmRSS(before): the memory the run itself
// needed at its peak. Next to it, what the pipeline should need: one block's
// Hessians and one block's activations (sequential) or every block's Hessians
// (basic).
#include <modkit/core/factory.hpp>
#include <modkit/core/logging.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/torch/oneshot.hpp>
#include <modkit/torch/demo_models.hpp>

#include <ATen/Parallel.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

namespace {

constexpr const char* kRecipe = R"([[stage]]
name = "quantization"
[[stage.modifiers]]
type = "GPTQModifier"
targets = ["Linear"]
ignore = ["lm_head"]
scheme = "W4A16"
)";

struct Config {
  std::string plugin_dir;
  int64_t layers = 8, hidden = 512, samples = 32, tokens = 128;
  int threads = 1;  // memory is the figure; 1 thread keeps OpenMP spinning out of a busy machine's timings
};

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM").
double status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;
  }
  return -1;
}

// In the child: run oneshot with `pipeline`, print "<peak over baseline> <seconds>" to `fd`.
int child(const Config& c, modkit::PipelineKind pipeline, int fd) {
  at::set_num_threads(c.threads);
  modkit::set_log_level(modkit::LogLevel::Off);
  modkit::FactoryOptions options;
  options.plugin_dirs = {c.plugin_dir};
  options.use_environment = false;
  options.use_install_dir = false;
  options.isolation = modkit::Isolation::InProcess;
  modkit::ModifierFactory factory(options);
  factory.refresh();
  if (!factory.find("GPTQModifier")) {
    std::cerr << "bench_pipeline_memory: no GPTQModifier in '" << c.plugin_dir << "'\n";
    return 1;
  }
  modkit::Model model(modkit::demo_models::make_tiny_transformer(c.layers, c.hidden, 1));
  const modkit::CalibrationData data =
      modkit::CalibrationData::synthetic(c.samples, {1, c.tokens, c.hidden}, 3);
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(kRecipe, "<bench>");
  {  // warm LibTorch's allocator and the executor outside the measured window
    const at::NoGradGuard no_grad;
    model.forward(data.samples[0].args);
  }
  const double before = status_bytes("VmRSS");
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  modkit::OneshotOptions o;
  o.calibration = &data;
  o.pipeline = pipeline;
  const auto t0 = std::chrono::steady_clock::now();
  modkit::oneshot(model, recipe, factory, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string line = std::to_string(status_bytes("VmHWM") - before) + " " + std::to_string(seconds) + "\n";
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) ? 0 : 1;
}

bool measure(const Config& c, modkit::PipelineKind pipeline, double* peak, double* seconds) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::_exit(child(c, pipeline, fds[1]));
  }
  ::close(fds[1]);
  char buf[128] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && std::sscanf(buf, "%lf %lf", peak, seconds) == 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--plugin-dir") c.plugin_dir = v;
    else if (a == "--layers") c.layers = std::atoll(v);
    else if (a == "--hidden") c.hidden = std::atoll(v);
    else if (a == "--samples") c.samples = std::atoll(v);
    else if (a == "--tokens") c.tokens = std::atoll(v);
    else if (a == "--threads") c.threads = std::atoi(v);
    else {
      std::cerr << "usage: bench_pipeline_memory --plugin-dir DIR [--layers 8] [--hidden 512] [--samples 32] [--tokens 128] [--threads 1]\n";
      return 2;
    }
  }
  if (c.plugin_dir.empty()) {
    std::cerr << "bench_pipeline_memory: --plugin-dir is required (the build's plugins/)\n";
    return 2;
  }
  const double h = static_cast<double>(c.hidden);
  // per block: q, k, v, o and fc1 see hidden inputs, fc2 2*hidden: 9 h^2 floats of Hessian
  const double block_hessians = 9 * h * h * 4;
  const double weights = (8 * h * h) * 4;  // per block: 4 h^2 (attention) + 2 * 2 h^2 (mlp)
  const double activations = static_cast<double>(c.samples * c.tokens) * h * 4;  // one block's inputs
  std::printf("model: TinyTransformer, %lld blocks, hidden %lld: %.1f MiB of block weights; GPTQ W4A16, "
              "%lld samples x %lld tokens, %d threads\n",
              static_cast<long long>(c.layers), static_cast<long long>(c.hidden), mib(weights * c.layers),
              static_cast<long long>(c.samples), static_cast<long long>(c.tokens), c.threads);
  std::printf("one block: Hessians %.1f MiB, activations %.1f MiB; all blocks' Hessians %.1f MiB\n",
              mib(block_hessians), mib(activations), mib(block_hessians * c.layers));
  double seq = 0, seq_s = 0, basic = 0, basic_s = 0;
  if (!measure(c, modkit::PipelineKind::Sequential, &seq, &seq_s) ||
      !measure(c, modkit::PipelineKind::Basic, &basic, &basic_s)) {
    std::cerr << "bench_pipeline_memory: a child run failed\n";
    return 1;
  }
  std::printf("%-11s %14s %22s %9s\n", "pipeline", "peak - before", "vs one block (H + X)", "seconds");
  std::printf("%-11s %10.1f MiB %21.2fx %9.2f\n", "sequential", mib(seq), seq / (block_hessians + activations), seq_s);
  std::printf("%-11s %10.1f MiB %21.2fx %9.2f\n", "basic", mib(basic), basic / (block_hessians + activations), basic_s);
  std::printf("sequential / basic peak: %.2f\n", seq / basic);
  return 0;
}
