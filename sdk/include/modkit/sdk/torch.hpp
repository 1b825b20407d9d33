// LibTorch helpers for plugins: model tensors as at::Tensor (zero-copy through DLPack).
#pragma once

// Only at::Tensor and its methods: a plugin's own translation unit includes the operators it
// calls (<ATen/ops/zeros.h>, <ATen/Parallel.h>, ...), so it never pays for all of <ATen/ATen.h>
// (about 3x the compile time of a plugin that includes what it uses).
#if defined(__has_include) && !__has_include(<torch/version.h>)
#error "<modkit/sdk/torch.hpp> needs LibTorch's headers: build the plugin with modkit_add_plugin(NAME SOURCES ... TORCH)"
#endif
#include <ATen/core/Tensor.h>
#include <torch/version.h>  // header only: the version macros

#include <modkit/sdk/error.hpp>
#include <modkit/sdk/modifier.hpp>
#include <modkit/sdk/torch_dlpack.hpp>

#include <string>
#include <vector>

namespace modkit::sdk {
namespace detail {
/// Chosen over the variadic fallback in export.hpp: records the LibTorch
/// version in the descriptor's fingerprint.
constexpr const char* torch_version(int) { return TORCH_VERSION; }

/// at::fromDLPack of a heap copy of `t` made for LibTorch 1.13: the byte offset folded into the
/// pointer (it ignores byte_offset) and a non-NULL pointer when there are no elements (it never
/// runs the deleter of a NULL one, which leaked). The copy's deleter frees the copy and then runs
/// `owner`'s deleter; with no owner the data stays the lender's.
inline at::Tensor from_dlpack(const DLManagedTensor& t, DLManagedTensor* owner) {
  static char no_elements;  // never read: the tensor has no elements
  auto* view = new DLManagedTensor(t);
  view->manager_ctx = owner;
  view->deleter = [](DLManagedTensor* self) {
    auto* owner = static_cast<DLManagedTensor*>(self->manager_ctx);
    delete self;
    if (owner != nullptr && owner->deleter != nullptr) owner->deleter(owner);
  };
  char* data = static_cast<char*>(t.dl_tensor.data);
  view->dl_tensor.data = data == nullptr ? &no_elements : data + t.dl_tensor.byte_offset;
  view->dl_tensor.byte_offset = 0;
  try {
    return at::fromDLPack(view);
  } catch (...) {
    view->deleter(view);  // refused (device or dtype) before LibTorch took it
    throw;
  }
}
}  // namespace detail

/// Takes ownership of a DLPack tensor (`owned`'s deleter runs when the last at::Tensor sharing
/// it dies). Use it rather than at::fromDLPack, which in LibTorch 1.13 ignores `byte_offset` and
/// never runs the deleter of a tensor with no elements (its NULL data pointer).
inline at::Tensor adopt_tensor(DLManagedTensor* owned) {
  return detail::from_dlpack(*owned, owned);
}

/// A zero-copy view of a module's parameter or buffer: in-place writes change the model.
inline at::Tensor get_tensor(const State& state, const std::string& module,
                                const std::string& name) {
  const modkit_host& host = state.host();
  DLManagedTensor* dl = nullptr;
  modkit_error* err = nullptr;
  check(host, require_service(host.tensor_get, "tensor_get")(&host, state.model(), module.c_str(),
                                                             name.c_str(), &dl, &err),
        err);
  return adopt_tensor(dl);
}

/// Copies `value` into a module's tensor, or adds/replaces it (MODKIT_TENSOR_SET_* flags).
inline void set_tensor(const State& state, const std::string& module, const std::string& name,
                       const at::Tensor& value, uint32_t flags = 0) {
  const modkit_host& host = state.host();
  DLManagedTensor* dl = at::toDLPack(value.contiguous());
  modkit_error* err = nullptr;
  modkit_status st = require_service(host.tensor_set, "tensor_set")(
      &host, state.model(), module.c_str(), name.c_str(), dl, flags, &err);
  dl->deleter(dl);
  check(host, st, err);
}

/// A tensor the host lends for one call (e.g. a hook's input) as an
/// at::Tensor without taking ownership: valid only while the lender's call
/// lasts; clone() it to keep it. Undefined for NULL.
inline at::Tensor borrow_tensor(const DLManagedTensor* t) {
  return t == nullptr ? at::Tensor() : detail::from_dlpack(*t, nullptr);
}

/// The tensors of one hook call, borrowed for the call (see borrow_tensor).
class HookView {
 public:
  explicit HookView(const modkit_hook_call& call) : call_(call) {}
  const char* module() const { return call_.module; }
  HookKind kind() const { return static_cast<HookKind>(call_.kind); }
  size_t input_count() const { return call_.input_count; }
  size_t output_count() const { return call_.output_count; }
  /// Forward's argument `i` (without self); throws when it is absent or not a tensor.
  at::Tensor input(size_t i = 0) const { return pick(call_.inputs, call_.input_count, i, "input"); }
  /// The output `i` (a tuple's element); throws when absent or not a tensor.
  at::Tensor output(size_t i = 0) const { return pick(call_.outputs, call_.output_count, i, "output"); }

 private:
  at::Tensor pick(const DLManagedTensor* const* items, size_t count, size_t i, const char* what) const {
    if (i >= count || items[i] == nullptr) {
      throw Error(MODKIT_ERROR_INVALID_ARGUMENT,
                  std::string("module '") + call_.module + "': expected a tensor as " + what + " " +
                      std::to_string(i) + ", found " + (i >= count ? std::to_string(count) + " " + what + "s" : "another value"));
    }
    return borrow_tensor(items[i]);
  }
  const modkit_hook_call& call_;
};

/// True when the module owns a parameter or buffer called `name`.
inline bool has_tensor(const State& state, const std::string& module, const std::string& name) {
  const modkit_host& host = state.host();
  struct Search {
    const std::string* name;
    bool found = false;
  } search{&name};
  modkit_error* err = nullptr;
  check(host,
        require_service(host.tensor_list, "tensor_list")(
            &host, state.model(), module.c_str(),
            [](void* user, const char* n, uint32_t) {
              auto* s = static_cast<Search*>(user);
              if (*s->name == n) s->found = true;
            },
            &search, &err),
        err);
  return search.found;
}

/// Renders names as a recipe writes them: ["Linear", "re:.*fc1"].
inline std::string quoted_names(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i > 0 ? ", \"" : "\"") + names[i] + "\"";
  return out + "]";
}

/// The modules `targets` match (minus `ignore`) that own a tensor `tensor`, in
/// model order; matched modules without it are logged at debug level and
/// skipped. Throws NOT_FOUND "targets [...] match no module[ once ignore [...]
/// is applied]" or "targets [...] match N modules but none has a 'weight'
/// tensor", so every plugin reports an empty selection the same way.
inline std::vector<ModuleRef> match_with_tensor(const State& state, const std::vector<std::string>& targets,
                                                const std::vector<std::string>& ignore, const std::string& source,
                                                const std::string& tensor = "weight") {
  const std::vector<ModuleRef> modules = state.match(targets, ignore);
  if (modules.empty()) {
    throw Error(MODKIT_ERROR_NOT_FOUND,
                "targets " + quoted_names(targets) + " match no module" +
                    (ignore.empty() ? std::string() : " once ignore " + quoted_names(ignore) + " is applied"));
  }
  std::vector<ModuleRef> out;
  for (const auto& module : modules) {
    if (has_tensor(state, module.name, tensor)) {
      out.push_back(module);
    } else {
      state.log(MODKIT_LOG_DEBUG, source, "skipping '" + module.name + "' (" + module.class_name + "): no '" + tensor + "'");
    }
  }
  if (out.empty()) {
    throw Error(MODKIT_ERROR_NOT_FOUND, "targets " + quoted_names(targets) + " match " +
                                            std::to_string(modules.size()) + " modules but none has a '" + tensor +
                                            "' tensor");
  }
  return out;
}

}  // namespace modkit::sdk
