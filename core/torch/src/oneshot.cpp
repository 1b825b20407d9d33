// Oneshot compression: build every stage from the recipe, then run each stage through its own session.
#include <modkit/torch/oneshot.hpp>

#include <modkit/core/session.hpp>
#include <modkit/core/state.hpp>
#include <modkit/torch/targets.hpp>

#include <chrono>
#include <set>

namespace modkit {
namespace {

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

// A StringList parameter: a list of strings, or one string standing for a list of one (as the SDK
// accepts it).
bool is_string_list(const Params& params, const std::string& key) {
  const auto it = params.find(key);
  return it != params.end() && (it->is_array() || it->is_string());
}

std::vector<std::string> string_list(const Params& params, const std::string& key) {
  std::vector<std::string> out;
  const auto it = params.find(key);
  if (it == params.end()) return out;
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// The modifier's parameters as it sees them: the schema's defaults filled in for plugin
// types (so an omitted `targets` means the plugin's default); as written for registered ones.
Params resolved(const RecipeModifier& entry, const ModifierFactory& factory) {
  const auto found = factory.find(entry.type);
  if (!found || found->registered) return entry.params;
  return resolve_params(found->info, entry.params);
}

// The pipeline a stage runs and the modifier that asks for it.
struct StagePipeline {
  PipelineKind kind = PipelineKind::Datafree;
  SourceLocation why;  // the modifier entry that needs it
  std::string reason;  // "GPTQModifier calibrates (pipeline 'sequential')"
};

int rank(PipelineKind k) { return k == PipelineKind::Sequential ? 2 : k == PipelineKind::Basic ? 1 : 0; }

StagePipeline choose_pipeline(const RecipeStage& stage, const ModifierFactory& factory, const OneshotOptions& options) {
  StagePipeline out;
  out.why = stage.where;
  for (const RecipeModifier& m : stage.modifiers) {
    const auto found = factory.find(m.type);
    if (!found || found->info.pipeline.empty()) continue;
    const PipelineKind k = parse_pipeline(found->info.pipeline);
    if (rank(k) > rank(out.kind)) {
      out.kind = k;
      out.why = m.where;
      out.reason = m.type + " calibrates (pipeline '" + to_string(k) + "')";
    }
  }
  if (options.pipeline) {
    if (*options.pipeline != PipelineKind::Datafree && out.kind == PipelineKind::Datafree) {
      out.reason = std::string("the pipeline was set to '") + to_string(*options.pipeline) + "'";
    }
    out.kind = *options.pipeline;
  }
  return out;
}

// The first `sequential_targets` parameter a modifier of the stage sets.
std::vector<std::string> stage_sequential_targets(const OneshotStageSummary& summary) {
  for (const OneshotModifierSummary& m : summary.modifiers) {
    std::vector<std::string> targets = string_list(m.params, "sequential_targets");
    if (!targets.empty()) return targets;
  }
  return {};
}

}  // namespace

std::vector<OneshotStageSummary> oneshot(Model& model, const Recipe& recipe, const ModifierFactory& factory,
                                         const OneshotOptions& options) {
  for (const RecipeStage& stage : recipe.stages) {
    if (stage.run_type == "train") {
      throw RecipeError(stage.where, "stage '" + stage.name +
                                         "' has run_type 'train': oneshot runs only oneshot stages "
                                         "(expected run_type 'oneshot' or none)");
    }
  }
  // Every modifier is created (and the recipe checked) before the model is touched.
  std::vector<StageModifiers> built =
      build_stages(recipe, factory, options.allow_registered, options.allow_experimental);
  std::vector<StagePipeline> pipelines;
  for (const RecipeStage& stage : recipe.stages) {
    pipelines.push_back(choose_pipeline(stage, factory, options));
    const StagePipeline& p = pipelines.back();
    if (p.kind != PipelineKind::Datafree && (options.calibration == nullptr || options.calibration->empty())) {
      throw RecipeError(p.why, "stage '" + stage.name + "' needs calibration data: " + p.reason +
                                   " (give calibration samples, e.g. modkit apply --calib FILE)");
    }
  }
  const std::vector<ModuleInfo> all_modules = model.modules();

  std::vector<OneshotStageSummary> summaries;
  for (size_t s = 0; s < built.size(); ++s) {
    const RecipeStage& entry = recipe.stages[s];
    StageModifiers& stage = built[s];
    if (options.on_stage) options.on_stage(s, built.size(), entry.name);
    const auto started = std::chrono::steady_clock::now();

    OneshotStageSummary summary;
    summary.name = entry.name;
    summary.group = entry.group;
    summary.index = static_cast<int64_t>(s);

    // 1. match targets; drop (allow_unmatched) or refuse modifiers that select nothing
    std::set<std::string> targeted;
    bool everything = false;
    std::vector<std::unique_ptr<Modifier>> kept;
    for (size_t m = 0; m < stage.modifiers.size(); ++m) {
      const RecipeModifier& me = entry.modifiers[m];
      OneshotModifierSummary ms;
      ms.type = me.type;
      ms.group = me.group;
      ms.index = me.index;
      ms.params = resolved(me, factory);
      if (is_string_list(ms.params, "targets")) {
        const std::vector<std::string> targets = string_list(ms.params, "targets");
        const std::vector<std::string> ignore = string_list(ms.params, "ignore");
        TargetMatcher matcher(targets, ignore);
        for (const ModuleInfo& module : all_modules) {
          if (matcher.matches(module)) ms.modules.push_back(module.name);
        }
        ms.unmatched_targets = matcher.unmatched_targets();
        if (ms.modules.empty()) {
          const std::string why = me.type + ": targets " + json_list(targets) + " match no module" +
                                  (ignore.empty() ? std::string() : " once ignore " + json_list(ignore) + " is applied");
          if (!options.allow_unmatched) throw RecipeError(me.location_of("targets"), why);
          ms.skipped = true;
          ms.note = why + " (skipped: allow_unmatched)";
          summary.modifiers.push_back(std::move(ms));
          continue;
        }
        targeted.insert(ms.modules.begin(), ms.modules.end());
      } else {
        everything = true;
      }
      kept.push_back(std::move(stage.modifiers[m]));
      summary.modifiers.push_back(std::move(ms));
    }
    stage.modifiers = std::move(kept);
    for (const ModuleInfo& module : all_modules) {
      if (everything || targeted.count(module.name)) summary.modules.push_back(module.name);
    }

    // 2. initialize one modifier at a time, so a failure names its recipe entry
    State state;
    state.host = Model::host();
    state.model = model.handle();
    std::vector<const RecipeModifier*> entries;
    for (size_t m = 0; m < summary.modifiers.size(); ++m) {
      if (!summary.modifiers[m].skipped) entries.push_back(&entry.modifiers[m]);
    }
    for (size_t m = 0; m < stage.modifiers.size(); ++m) {
      try {
        stage.modifiers[m]->initialize(state);
      } catch (const RecipeError&) {
        throw;
      } catch (const std::exception& e) {
        for (size_t k = 0; k < m; ++k) {  // release hooks of the ones already set up
          try {
            stage.modifiers[k]->finalize(state);
          } catch (...) {
          }
        }
        throw RecipeError(entries[m]->where, "stage '" + entry.name + "': " + e.what());
      }
    }

    // 3. the pipeline's calibration events and finalize, through a session of this stage alone
    Session session(state);
    session.initialize([&] {
      std::vector<StageModifiers> one;
      one.push_back(std::move(stage));
      return one;
    }());
    PipelineRun run;
    run.model = &model;
    run.session = &session;
    run.data = options.calibration;
    run.modules = summary.modules;
    run.sequential_targets = options.sequential_targets.empty() ? stage_sequential_targets(summary)
                                                                : options.sequential_targets;
    run.on_progress = options.on_progress;
    // hooks registered for a stage that runs no forward would see nothing, silently
    const size_t idle_hooks = pipelines[s].kind == PipelineKind::Datafree ? model.hook_count() : 0;
    PipelineReport report;
    try {
      report = run_pipeline(pipelines[s].kind, run);
    } catch (const RecipeError&) {
      throw;
    } catch (const std::exception& e) {
      throw RecipeError(entry.where, "stage '" + entry.name + "': " + e.what());
    }
    session.finalize();
    summary.pipeline = report.kind;
    summary.blocks = report.blocks;
    summary.samples = report.samples;
    summary.pipeline_note = report.note;
    if (idle_hooks > 0) {
      summary.pipeline_note += std::string(summary.pipeline_note.empty() ? "" : "; ") + std::to_string(idle_hooks) +
                               " forward hook" + (idle_hooks == 1 ? " was" : "s were") +
                               " registered, but the datafree pipeline runs no forward pass, so they saw nothing "
                               "(a modifier that calibrates declares the basic or sequential pipeline)";
    }

    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

}  // namespace modkit
