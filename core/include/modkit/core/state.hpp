// What the host side of the lifecycle knows of a session: host services, model, rank.
#pragma once

#include <modkit/core/export.hpp>
#include <modkit/core/host.hpp>
#include <modkit/modkit.h>

#include <cstdint>

namespace modkit {

/// The session state handed to every modifier callback (the part of
/// llmcompressor's State that the core needs). A plain value type; `host` and
/// `model` are borrowed and must outlive every call that receives the state.
struct MODKIT_CORE_API State {
  /// Host services; the core's table (errors and logging, no model services) by default.
  const modkit_host* host = default_host();
  /// The model, or nullptr when the session has none.
  modkit_model* model = nullptr;
  /// This process's rank, 0 when not distributed.
  int32_t rank = 0;
  /// Number of ranks, 1 when not distributed.
  int32_t world_size = 1;

  /// The C view for one ABI call, with struct_size = sizeof(modkit_state).
  modkit_state to_abi() const;
};

}  // namespace modkit
