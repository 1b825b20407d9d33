// A stage of modifiers applied together: llmcompressor's StageModifiers.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/modifier.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace modkit {

/// Modifiers applied together, in order, as llmcompressor's StageModifiers.
/// initialize / update_event / finalize fan out to every modifier; once the
/// stage is finalized it is `applied` and all three do nothing. Owns its
/// modifiers; movable, not copyable; not thread-safe.
class MODKIT_CORE_API StageModifiers : public ModifierInterface {
 public:
  /// The modifiers, in the order they run.
  std::vector<std::unique_ptr<Modifier>> modifiers;
  /// Position of the stage in its recipe.
  std::optional<int64_t> index;
  /// Name of the stage, e.g. "quant" or "sparsity".
  std::optional<std::string> group;
  /// True once finalize() ran for every modifier: the stage is then skipped.
  bool applied = false;

  /// True when every modifier is initialized (also for an empty stage, like Python's all()).
  bool initialized() const override;
  /// True when every modifier is finalized (also for an empty stage).
  bool finalized() const override;

  /// `group + "_" + index`, e.g. "quant_0". Throws ValueError when group or index is unset.
  std::string unique_id() const;

  /// Initializes each modifier not yet initialized, in order; nothing when applied.
  void initialize(State& state) override;
  /// Finalizes each modifier in order and marks the stage applied; nothing when applied.
  void finalize(State& state) override;
  /// Sends `event` to each modifier in order; nothing when applied.
  void update_event(State& state, const Event& event) override;
};

}  // namespace modkit
