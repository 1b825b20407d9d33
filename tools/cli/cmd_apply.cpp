// `modkit apply`: checks the recipe here (fast, no LibTorch), then runs `modkit-torch apply` for the model work.
#include "cli.hpp"
#include "cli_support.hpp"
#include "plugin_dirs.hpp"
#include "run_torch_tool.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>

#include <iostream>

namespace modkit::cli {
namespace {

struct ApplyOptions {
  std::string recipe;
  std::string model;
  std::string output;
  std::string report;
  std::string calib;
  std::string pipeline;
  std::vector<std::string> sequential_targets;
  int64_t samples = 0;
  int threads = 0;
  bool allow_unmatched = false;
};

int run_apply(const GlobalOptions& global, const ApplyOptions& o) {
  if (!o.model.empty() && o.output.empty()) {
    throw Failure(kExitUsage, "--model needs --output (where to write the compressed model)");
  }
  if (!o.recipe.empty()) {
    // the recipe is checked before LibTorch starts: its problems show in a fraction of a second
    Recipe recipe;
    std::vector<RecipeError> errors;
    try {
      recipe = Recipe::load(o.recipe);
      ModifierFactory factory(factory_options(global));
      factory.refresh();
      errors = find_recipe_errors(recipe, factory);
    } catch (const RecipeError& e) {
      errors.push_back(e);
    }
    if (!errors.empty()) {
      for (const auto& e : errors) std::cerr << e.what() << "\n";
      throw Failure(kExitProblem,
                    "recipe '" + o.recipe + "' is invalid (" + std::to_string(errors.size()) +
                        (errors.size() == 1 ? " error" : " errors") + "); nothing was applied",
                    {{"errors", recipe_errors_json(errors)}});
    }
  }

  std::vector<std::string> args{"apply"};
  for (const auto& dir : global.plugin_dirs) args.insert(args.end(), {"--plugin-dir", dir});
  if (!o.recipe.empty()) args.insert(args.end(), {"--recipe", o.recipe});
  if (!o.model.empty()) args.insert(args.end(), {"--model", o.model});
  if (!o.output.empty()) args.insert(args.end(), {"--output", o.output});
  if (!o.report.empty()) args.insert(args.end(), {"--report", o.report});
  if (!o.calib.empty()) args.insert(args.end(), {"--calib", o.calib});
  if (!o.pipeline.empty()) args.insert(args.end(), {"--pipeline", o.pipeline});
  for (const auto& t : o.sequential_targets) args.insert(args.end(), {"--sequential-targets", t});
  if (o.samples > 0) args.insert(args.end(), {"--samples", std::to_string(o.samples)});
  if (o.threads > 0) args.insert(args.end(), {"--threads", std::to_string(o.threads)});
  if (o.allow_unmatched) args.push_back("--allow-unmatched");
  if (global.json) args.push_back("--json");
  for (int i = 0; i < global.verbose; ++i) args.push_back("-v");
  exec_torch_tool(args);
}

}  // namespace

Command add_apply_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "apply",
      "apply a recipe to a TorchScript model in one shot (calibrating modifiers run on --calib samples) and "
      "report what changed; "
      "without arguments, applies the built-in default recipe to a generated small transformer (LibTorch, "
      "via modkit-torch)");
  auto o = std::make_shared<ApplyOptions>();
  app->add_option("--recipe", o->recipe, "the recipe (.toml or llmcompressor .yaml); default: the built-in one")
      ->type_name("RECIPE");
  app->add_option("--model", o->model, "the TorchScript model to compress (torch.jit.save); default: a generated one")
      ->type_name("MODEL");
  app->add_option("--output", o->output, "where to write the compressed model (atomically; may equal --model)")
      ->type_name("OUT");
  app->add_option("--report", o->report, "also write the report as JSON to this file")->type_name("FILE");
  app->add_option("--calib", o->calib,
                  "calibration samples: a torch.save list of forward inputs, or a safetensors file; "
                  "default for the generated model: synthetic hidden states")
      ->type_name("DATA");
  app->add_option("--samples", o->samples, "use only the first N calibration samples")->type_name("N")->check(positive_count());
  app->add_option("--pipeline", o->pipeline,
                  "run every stage with this pipeline instead of the one its modifiers ask for")
      ->type_name("NAME")
      ->check(CLI::IsMember(pipeline_keywords()));
  app->add_option("--sequential-targets", o->sequential_targets,
                  "the blocks of the sequential pipeline (class name, module name or re:<regex>; repeatable); "
                  "default: the children of the model's first ModuleList")
      ->type_name("TARGET");
  app->add_option("--threads", o->threads, "intra-op threads of the model work (default: every core)")
      ->type_name("N")
      ->check(positive_count());
  app->add_flag("--allow-unmatched", o->allow_unmatched,
                "skip modifiers whose targets match no module instead of failing");
  return {app, [&global, o] { return run_apply(global, *o); }};
}

}  // namespace modkit::cli
