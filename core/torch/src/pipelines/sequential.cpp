// The sequential pipeline: one block at a time — every sample through the block, SEQUENTIAL_EPOCH_END for its
// modules, then the compressed block's outputs feed the next block; modules outside the blocks come last.
#include "pipelines.hpp"

#include <modkit/torch/targets.hpp>

#include <ATen/ops/equal.h>

#include <set>

namespace modkit::pipelines {

// The outermost modules the targets match, or the children of the first
// ModuleList/Sequential with at least two children.
std::vector<std::string> find_blocks(const Model& model, const std::vector<std::string>& targets) {
  const std::vector<ModuleInfo> modules = model.modules();
  std::vector<std::string> blocks;
  if (!targets.empty()) {
    TargetMatcher matcher(targets, {});
    for (const ModuleInfo& m : modules) {
      if (!matcher.matches(m)) continue;
      if (!blocks.empty() && within(m.name, blocks.back())) continue;  // nested in the previous block
      blocks.push_back(m.name);
    }
    if (blocks.empty()) {
      std::string list;
      for (size_t i = 0; i < targets.size(); ++i) list += (i ? ", \"" : "\"") + targets[i] + "\"";
      throw ValueError("sequential_targets [" + list + "] match no module of the model");
    }
    return blocks;
  }
  for (const ModuleInfo& container : modules) {
    if (container.class_name != "ModuleList" && container.class_name != "Sequential") continue;
    const std::string prefix = container.name.empty() ? "" : container.name + ".";
    for (const ModuleInfo& m : modules) {
      if (m.name.size() > prefix.size() && m.name.compare(0, prefix.size(), prefix) == 0 &&
          m.name.find('.', prefix.size()) == std::string::npos) {
        blocks.push_back(m.name);
      }
    }
    if (blocks.size() >= 2) return blocks;
    blocks.clear();
  }
  return blocks;
}

namespace {

// Thrown by the capture hook once it has the first block's inputs: the rest of the forward is not needed.
struct StopForward {};

// The first tensor of a block's output: what the next block receives.
c10::IValue main_output(const c10::IValue& out) {
  if (out.isTuple() && !out.toTupleRef().elements().empty()) return out.toTupleRef().elements()[0];
  return out;
}

bool same_value(const c10::IValue& a, const c10::IValue& b) {
  if (!a.isTensor() || !b.isTensor()) return false;
  const at::Tensor& x = a.toTensor();
  const at::Tensor& y = b.toTensor();
  return x.is_same(y) || (x.sizes() == y.sizes() && x.dtype() == y.dtype() && at::equal(x, y));
}

// Captures every sample's inputs of the first block. On the first sample the
// whole model runs, and the blocks are checked to feed each other.
std::vector<CalibrationSample> capture_block_inputs(const PipelineRun& run, const std::vector<std::string>& blocks) {
  Model& model = *run.model;
  const CalibrationData& data = *run.data;
  std::vector<CalibrationSample> inputs;
  std::vector<std::vector<c10::IValue>> seen_inputs(blocks.size());
  std::vector<std::vector<c10::IValue>> seen_outputs(blocks.size());
  bool first_sample = true;
  std::vector<HookId> mine;
  struct Remove {
    std::vector<HookId>& ids;
    ~Remove() {
      for (HookId id : ids) Model::remove_hook(id);
    }
  } remove{mine};
  for (size_t b = 0; b < blocks.size(); ++b) {
    mine.push_back(model.add_hook(blocks[b], HookKind::ForwardPre, [&, b](const HookCall& c) {
      if (first_sample) seen_inputs[b].push_back(c.inputs.empty() ? c10::IValue() : c.inputs[0]);
      if (b != 0) return;
      CalibrationSample sample;
      for (const c10::IValue& v : c.inputs) sample.args.push_back(v.isTensor() ? c10::IValue(v.toTensor().clone()) : v);
      inputs.push_back(std::move(sample));  // cloned: a forward may change its inputs in place
      if (!first_sample) throw StopForward{};
    }));
    mine.push_back(model.add_hook(blocks[b], HookKind::Forward, [&, b](const HookCall& c) {
      if (first_sample) seen_outputs[b].push_back(main_output(*c.output));
    }));
  }
  const HooksDisabled only_mine = model.disable_hooks(mine);
  for (size_t i = 0; i < data.size(); ++i) {
    progress(run, "capturing the inputs of '" + blocks[0] + "': sample " + std::to_string(i + 1) + "/" +
                      std::to_string(data.size()));
    try {
      forward(model.module(), data.samples[i], i, data);
    } catch (const StopForward&) {
    }
    if (inputs.size() != i + 1) {
      throw ValueError("sequential pipeline: block '" + blocks[0] + "' did not run for calibration sample " +
                       std::to_string(i) + " (the model's forward does not call it)");
    }
    if (!first_sample) continue;
    first_sample = false;
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (seen_inputs[b].size() != 1) {
        throw ValueError("sequential pipeline: block '" + blocks[b] + "' ran " + std::to_string(seen_inputs[b].size()) +
                         " times in one forward, expected once: set sequential_targets to blocks that run once, "
                         "or use the basic pipeline");
      }
      if (b > 0 && !same_value(seen_inputs[b][0], seen_outputs[b - 1][0])) {
        throw ValueError("sequential pipeline: the input of block '" + blocks[b] + "' is not the output of '" +
                         blocks[b - 1] + "', expected a model built as a sequence of blocks: set sequential_targets "
                         "to blocks that feed each other, or use the basic pipeline");
      }
    }
  }
  return inputs;
}

}  // namespace

void run_sequential(const PipelineRun& run, const std::vector<std::string>& blocks) {
  Model& model = *run.model;
  const CalibrationData& data = *run.data;
  Session& session = *run.session;
  std::vector<CalibrationSample> inputs = capture_block_inputs(run, blocks);

  for (size_t b = 0; b < blocks.size(); ++b) {
    const std::string& block = blocks[b];
    const torch::jit::Module module = model.find_module(block);
    const std::string step = "block " + std::to_string(b + 1) + "/" + std::to_string(blocks.size()) + " '" + block + "'";
    std::vector<std::string> block_modules;
    for (const std::string& m : run.modules) {
      if (within(m, block)) block_modules.push_back(m);
    }
    {
      // calibration: only the hooks on this block's modules
      const HooksDisabled others = model.disable_hooks(model.hooks_where([&](const std::string& m) { return within(m, block); }));
      for (size_t i = 0; i < inputs.size(); ++i) {
        progress(run, step + ": sample " + std::to_string(i + 1) + "/" + std::to_string(inputs.size()));
        forward(module, inputs[i], i, data, block);
      }
    }
    progress(run, step + ": compressing");
    session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, block_modules);
    if (b + 1 == blocks.size()) break;
    // propagation: the compressed block's outputs are the next block's inputs
    const HooksDisabled none = model.disable_hooks();
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i].args.at(0) = main_output(forward(module, inputs[i], i, data, block));
    }
  }
  inputs.clear();

  std::vector<std::string> rest;
  for (const std::string& m : run.modules) {
    bool inside = false;
    for (const std::string& block : blocks) inside = inside || within(m, block) || within(block, m);
    if (!inside) rest.push_back(m);
  }
  if (rest.empty()) return;
  const std::set<std::string> rest_set(rest.begin(), rest.end());
  const std::vector<HookId> rest_hooks = model.hooks_where([&](const std::string& m) { return rest_set.count(m) != 0; });
  if (!rest_hooks.empty()) {
    const HooksDisabled others = model.disable_hooks(rest_hooks);
    progress(run, "modules outside the blocks");
    run_all_samples(run);
  }
  session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, rest);
}

}  // namespace modkit::pipelines
