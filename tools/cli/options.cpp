// The option declarations both executables of the CLI parse.
#include "options.hpp"

#include <modkit/core/logging.hpp>
#include <modkit/core/modifier_info.hpp>

namespace modkit::cli {

void add_global_options(CLI::App& app, GlobalOptions& global) {
  // global options may come before or after the subcommand
  app.fallthrough();
  app.add_option("--plugin-dir", global.plugin_dirs, "a plugin directory to search first (repeatable)")
      ->type_name("DIR")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("--json", global.json, "machine-readable JSON output");
  app.add_flag("-v,--verbose", global.verbose, "log the core's warnings (-vv: debug) to stderr");
  app.add_flag("--no-cache", global.no_cache,
               "neither read nor write the registry cache (MODKIT_NO_CACHE=1 does the same)");
}

void parse(CLI::App& app, GlobalOptions& global, int argc, char** argv) {
  global.args.assign(argv + (argc > 0 ? 1 : 0), argv + argc);
  app.parse(argc, argv);
}

FactoryOptions factory_options(const GlobalOptions& global) {
  FactoryOptions options;
  options.plugin_dirs = global.plugin_dirs;
  if (global.no_cache) options.cache = CacheMode::Off;
  return options;
}

void set_up_logging(const GlobalOptions& global) {
  log_to_stderr();  // stdout carries the listing, report or JSON only
  set_log_level(global.verbose >= 2 ? LogLevel::Debug : global.verbose == 1 ? LogLevel::Warn : LogLevel::Off);
}

CLI::App* add_apply_options(CLI::App& parent, ApplyOptions& o) {
  CLI::App* app = parent.add_subcommand(
      "apply",
      "apply a recipe to a TorchScript model in one shot (calibrating modifiers run on --calib samples) and "
      "report what changed; "
      "without arguments, applies the built-in default recipe to a generated small transformer (LibTorch, "
      "via modkit-torch)");
  app->add_option("--recipe", o.recipe, "the recipe (.toml or llmcompressor .yaml); default: the built-in one")
      ->type_name("RECIPE");
  app->add_option("--model", o.model, "the TorchScript model to compress (torch.jit.save); default: a generated one")
      ->type_name("MODEL");
  app->add_option("--output", o.output, "where to write the compressed model (atomically; may equal --model)")
      ->type_name("OUT");
  app->add_option("--report", o.report, "also write the report as JSON to this file")->type_name("FILE");
  app->add_option("--calib", o.calib,
                  "calibration samples: a torch.save list of forward inputs, or a safetensors file; "
                  "default for the generated model: synthetic hidden states")
      ->type_name("DATA");
  app->add_option("--samples", o.samples, "use only the first N calibration samples")->type_name("N")->check(positive_count());
  app->add_option("--pipeline", o.pipeline,
                  "run every stage with this pipeline instead of the one its modifiers ask for")
      ->type_name("NAME")
      ->check(CLI::IsMember(pipeline_keywords()));
  app->add_option("--sequential-targets", o.sequential_targets,
                  "the blocks of the sequential pipeline (class name, module name or re:<regex>; repeatable); "
                  "default: the children of the model's first ModuleList")
      ->type_name("TARGET");
  app->add_option("--threads", o.threads, "intra-op threads of the model work (default: every core)")
      ->type_name("N")
      ->check(positive_count());
  app->add_flag("--allow-unmatched", o.allow_unmatched,
                "skip modifiers whose targets match no module instead of failing");
  return app;
}

void check_apply_options(const ApplyOptions& o) {
  if (!o.model.empty() && o.output.empty()) {
    throw Failure(kExitUsage, "--model needs --output (where to write the compressed model)");
  }
}

CLI::App* add_demo_options(CLI::App& parent, DemoOptions& o) {
  CLI::App* app =
      parent.add_subcommand("demo", "prune a generated TorchScript model during a short training loop (LibTorch)");
  app->add_option("--steps", o.steps, "training steps")->check(CLI::Range(6, 10000));
  app->add_option("--output", o.output, "where to save the pruned model (TorchScript)");
  return app;
}

}  // namespace modkit::cli
