// A TorchScript model held by the host: load, atomic save, modules, tensors and the ABI's model services.
#pragma once

#include <modkit/core/errors.hpp>
#include <modkit/modkit.h>
#include <modkit/torch/hooks.hpp>

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace modkit {

/// A named module, tensor or index is absent (Python's LookupError). The ABI
/// services report it as MODKIT_ERROR_NOT_FOUND. A ValueError, so code that
/// catches ValueError sees it too.
class LookupError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// One module of a model, as llmcompressor sees it in `model.named_modules()`.
struct ModuleInfo {
  std::string name;        ///< dotted path ("layers.0.mlp.fc1"), "" for the root
  std::string class_name;  ///< last component of the TorchScript type name ("Linear")

  bool operator==(const ModuleInfo& other) const {
    return name == other.name && class_name == other.class_name;
  }
  bool operator!=(const ModuleInfo& other) const { return !(*this == other); }
};

/// What a module's tensor is: MODKIT_TENSOR_PARAMETER or MODKIT_TENSOR_BUFFER.
struct TensorInfo {
  std::string name;
  uint32_t kind;
};

/// The class name of a TorchScript module: the last component of its qualified
/// type name, so "__torch__.torch.nn.modules.linear.Linear", its mangled form
/// "__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear" and a module
/// made with torch::jit::Module("Linear") all give "Linear". "" when unnamed.
std::string class_name_of(const torch::jit::Module& module);

/// A TorchScript model (the format of `torch.jit.save`) and the host services
/// plugins reach it through.
///
/// Ownership: owns its torch::jit::Module handle (TorchScript modules are
/// reference counted: copies of the handle share the same object).
/// Lifetime: handle() is valid while this Model lives at the same address
/// (moving a Model invalidates handles of the moved-from object).
/// Thread safety: the ABI services lock the model, so plugins may call them
/// from several threads; the C++ members are not synchronized, so do not mix
/// them with concurrent service calls.
class Model {
 public:
  /// Takes a module, e.g. one built with torch::jit::Module::define.
  explicit Model(torch::jit::Module module);
  ~Model();
  Model(Model&& other) noexcept;
  Model& operator=(Model&& other) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// Loads a TorchScript archive onto the CPU. Throws ValueError
  /// "cannot load model '<path>': <what was expected, what was found>" for a
  /// missing file, a directory, a file that is not a zip archive, a
  /// torch.save checkpoint without TorchScript code, or a corrupt archive.
  static Model load(const std::string& path);

  /// Writes the model with torch::jit::save semantics, atomically: into a
  /// temporary file next to `path`, then renamed over it. On failure no
  /// temporary file remains and an existing `path` is untouched. Throws
  /// ValueError "cannot save model '<path>': ..." for a bad destination
  /// (missing directory, parent that is not a directory, path that is a
  /// directory) and RuntimeError for I/O failures.
  void save(const std::string& path) const;

  /// The TorchScript module. Changing its structure (adding or removing
  /// submodules) is allowed; the services notice it on their next call.
  torch::jit::Module& module() { return module_; }
  const torch::jit::Module& module() const { return module_; }

  /// Every module in model order: the root ("") first, then depth first in
  /// registration order (Python's `named_modules()`).
  std::vector<ModuleInfo> modules() const;

  /// The module at a dotted path ("" is the root). Throws LookupError
  /// "no module 'x' in the model" when absent.
  torch::jit::Module find_module(const std::string& name) const;

  /// The parameters and buffers `module` owns directly, in attribute order.
  /// Throws LookupError for an unknown module.
  std::vector<TensorInfo> tensors(const std::string& module) const;

  /// The parameter or buffer `name` of `module` itself (not a copy: in-place
  /// writes change the model). Throws LookupError when either is absent and
  /// ValueError when the attribute is not a parameter or buffer.
  at::Tensor get_tensor(const std::string& module, const std::string& name) const;

  /// Copies `value` into a module's tensor (flags == 0: same shape required,
  /// converted to the tensor's dtype), replaces it (MODKIT_TENSOR_SET_REPLACE:
  /// shape and dtype may change; a replaced parameter stays a parameter) or
  /// adds it as a new buffer when absent (MODKIT_TENSOR_SET_CREATE). `value`
  /// is copied, never aliased. Throws LookupError for an unknown module or
  /// tensor, ValueError for a shape mismatch or a non-tensor attribute.
  ///
  /// TorchScript stores attributes on the class type, which modules of the
  /// same type share (Python's scripting gives every nn.Linear of a model one
  /// type). When MODKIT_TENSOR_SET_CREATE adds a buffer to a shared type, the
  /// other modules of that type in this model receive an empty placeholder
  /// buffer (shape [0], same dtype) so that every object stays consistent with
  /// its type; a later CREATE on such a module replaces the placeholder.
  void set_tensor(const std::string& module, const std::string& name, const at::Tensor& value,
                  uint32_t flags = 0);

  /// Runs `hook` before (HookKind::ForwardPre) or after (HookKind::Forward)
  /// every forward of `module`, until remove_hook() or until this Model is
  /// destroyed. Works by instrumenting the module type's TorchScript graph
  /// (see hooks.hpp); modules of a shared type run only their own hooks, and
  /// save() never writes the instrumentation. Not while a forward runs: throws
  /// RuntimeError when called from inside a hook; LookupError for an unknown
  /// module; ValueError for a module without a TorchScript forward.
  HookId add_hook(const std::string& module, HookKind kind, HookFn hook);
  /// Removes a hook of any model; unknown ids are ignored.
  static void remove_hook(HookId id) noexcept { detail::remove_hook(id); }
  /// The hooks registered on this model.
  size_t hook_count() const { return detail::hook_count(state_.get()); }
  /// The ids of this model's hooks on the modules `on_module` accepts, in registration order.
  std::vector<HookId> hooks_where(const std::function<bool(const std::string& module)>& on_module) const {
    return detail::hook_ids(state_.get(), on_module);
  }
  /// Stops this model's hooks from running, except `keep`, until the
  /// returned scope is left (the seed's HooksMixin.disable_hooks; scopes nest).
  [[nodiscard]] HooksDisabled disable_hooks(const std::vector<HookId>& keep = {}) {
    return HooksDisabled(detail::disable_hooks(state_.get(), keep));
  }

  /// Runs the model's forward (call_forward: a failing hook's own exception).
  c10::IValue forward(std::vector<c10::IValue> args,
                      const std::unordered_map<std::string, c10::IValue>& kwargs = {}) const {
    return call_forward(module_, std::move(args), kwargs);
  }

  /// The opaque handle plugins receive in modkit_state.model.
  modkit_model* handle() { return reinterpret_cast<modkit_model*>(this); }
  /// The Model behind a handle made by handle(); nullptr for NULL.
  static Model* from_handle(modkit_model* handle) { return reinterpret_cast<Model*>(handle); }

  /// The host table with the model services (module count/info, match,
  /// tensor list/get/set) on top of the core's errors and logging. Static,
  /// shared by every Model: services take the model handle.
  static const modkit_host* host();

  struct State;  ///< internal: caches and locks of the services

 private:
  friend struct ModelServices;
  torch::jit::Module module_;
  std::unique_ptr<State> state_;
};

}  // namespace modkit
