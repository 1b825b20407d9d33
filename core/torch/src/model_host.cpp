// The ABI's model services over a Model: every entry catches everything and returns a status.
#include <modkit/core/host.hpp>
#include <modkit/core/signals.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/targets.hpp>

#include "model_state.hpp"

#include <modkit/sdk/torch_dlpack.hpp>

#include <cstddef>
#include <cstdio>
#include <new>

namespace modkit {

struct ModelServices {
  // Runs `body` with the model locked; turns exceptions into statuses.
  template <class Body>
  static modkit_status guarded(modkit_model* handle, modkit_error** error, Body&& body) noexcept {
    try {
      Model* model = Model::from_handle(handle);
      if (model == nullptr || !model->state_) {
        return fail(error, MODKIT_ERROR_INVALID_ARGUMENT, "the model handle is NULL");
      }
      std::lock_guard<std::mutex> lock(model->state_->mutex);
      body(*model, *model->state_);
      return MODKIT_OK;
    } catch (const LookupError& e) {
      return fail(error, MODKIT_ERROR_NOT_FOUND, e.what());
    } catch (const RuntimeError& e) {
      return fail(error, MODKIT_ERROR_FAILED_PRECONDITION, e.what());
    } catch (const ValueError& e) {
      return fail(error, MODKIT_ERROR_INVALID_ARGUMENT, e.what());
    } catch (const std::bad_alloc&) {
      return fail(error, MODKIT_ERROR_OUT_OF_MEMORY, "out of memory");
    } catch (const c10::Error& e) {
      return fail(error, MODKIT_ERROR_INTERNAL, e.what_without_backtrace());
    } catch (const std::exception& e) {
      return fail(error, MODKIT_ERROR_INTERNAL, e.what());
    } catch (...) {
      return fail(error, MODKIT_ERROR_INTERNAL, "unknown exception in a model service");
    }
  }

  static modkit_status fail(modkit_error** error, modkit_status code, const std::string& message) noexcept {
    if (error != nullptr) {
      try {
        *error = make_error(code, message);
      } catch (...) {
        *error = make_error(MODKIT_ERROR_OUT_OF_MEMORY, "out of memory");
      }
    }
    return code;
  }

  static std::string str(const char* s, const char* what) {
    if (s == nullptr) throw ValueError(std::string(what) + " is NULL");
    return s;
  }

  static void refresh_modules(Model& model, Model::State& state) {
    std::vector<modkit_module_info> infos;
    for (const ModuleInfo& m : model.modules()) {
      modkit_module_info info{};
      info.struct_size = sizeof(modkit_module_info);
      info.name = state.intern(m.name);
      info.class_name = state.intern(m.class_name);
      infos.push_back(info);
    }
    state.modules = std::move(infos);
    state.modules_valid = true;
  }

  static modkit_status module_count(const modkit_host*, modkit_model* handle, size_t* out_count,
                                    modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State& state) {
      if (out_count == nullptr) throw ValueError("out_count is NULL");
      refresh_modules(model, state);
      *out_count = state.modules.size();
    });
  }

  static modkit_status module_info(const modkit_host*, modkit_model* handle, size_t index,
                                   modkit_module_info* out_info, modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State& state) {
      if (out_info == nullptr) throw ValueError("out_info is NULL");
      if (out_info->struct_size < offsetof(modkit_module_info, class_name) + sizeof(const char*)) {
        throw ValueError("out_info->struct_size is " + std::to_string(out_info->struct_size) +
                         ", expected sizeof(modkit_module_info) = " + std::to_string(sizeof(modkit_module_info)));
      }
      if (!state.modules_valid) refresh_modules(model, state);
      if (index >= state.modules.size()) {
        throw LookupError("module index " + std::to_string(index) + " out of range: the model has " +
                          std::to_string(state.modules.size()) + " modules");
      }
      // Writes only the fields this host knows; a newer caller's extra fields stay untouched.
      const modkit_module_info& info = state.modules[index];
      out_info->name = info.name;
      out_info->class_name = info.class_name;
    });
  }

  static std::vector<std::string> strings(const char* const* items, size_t count, const char* what) {
    if (items == nullptr && count > 0) throw ValueError(std::string(what) + " is NULL");
    std::vector<std::string> out;
    for (size_t i = 0; i < count; ++i) {
      out.push_back(str(items[i], (std::string(what) + "[" + std::to_string(i) + "]").c_str()));
    }
    return out;
  }

  static modkit_status match(const modkit_host*, modkit_model* handle, const char* const* targets,
                             size_t target_count, const char* const* ignore, size_t ignore_count,
                             modkit_module_visitor visit, void* user, modkit_error** error) {
    std::vector<modkit_module_info> matched;
    const modkit_status st = guarded(handle, error, [&](Model& model, Model::State& state) {
      if (visit == nullptr) throw ValueError("visit is NULL");
      const auto found = match_modules(model, strings(targets, target_count, "targets"),
                                       strings(ignore, ignore_count, "ignore"));
      for (const ModuleInfo& m : found) {
        modkit_module_info info{};
        info.struct_size = sizeof(modkit_module_info);
        info.name = state.intern(m.name);
        info.class_name = state.intern(m.class_name);
        matched.push_back(info);
      }
    });
    // Visit outside the lock so that the visitor may call other services.
    if (st != MODKIT_OK) return st;
    try {
      for (const modkit_module_info& info : matched) visit(user, &info);
    } catch (...) {
      return fail(error, MODKIT_ERROR_INTERNAL, "the model_match visitor threw an exception");
    }
    return MODKIT_OK;
  }

  static modkit_status tensor_list(const modkit_host*, modkit_model* handle, const char* module,
                                   modkit_tensor_visitor visit, void* user, modkit_error** error) {
    std::vector<TensorInfo> found;
    const modkit_status st = guarded(handle, error, [&](Model& model, Model::State&) {
      if (visit == nullptr) throw ValueError("visit is NULL");
      found = model.tensors(str(module, "module"));
    });
    if (st != MODKIT_OK) return st;
    try {
      for (const TensorInfo& t : found) visit(user, t.name.c_str(), t.kind);
    } catch (...) {
      return fail(error, MODKIT_ERROR_INTERNAL, "the tensor_list visitor threw an exception");
    }
    return MODKIT_OK;
  }

  static modkit_status tensor_get(const modkit_host*, modkit_model* handle, const char* module,
                                  const char* name, DLManagedTensor** out_tensor, modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State&) {
      if (out_tensor == nullptr) throw ValueError("out_tensor is NULL");
      const at::Tensor t = model.get_tensor(str(module, "module"), str(name, "name"));
      // detach() shares the storage: the view writes into the model, without autograd history.
      *out_tensor = at::toDLPack(t.detach());
    });
  }

  static modkit_status tensor_set(const modkit_host*, modkit_model* handle, const char* module,
                                  const char* name, const DLManagedTensor* value, uint32_t flags,
                                  modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State&) {
      if (value == nullptr) throw ValueError("value is NULL");
      const uint32_t known = MODKIT_TENSOR_SET_CREATE | MODKIT_TENSOR_SET_REPLACE;
      if ((flags & ~known) != 0) {
        throw ValueError("unknown tensor_set flags 0x" + to_hex(flags & ~known));
      }
      // A borrowed view: no deleter (the caller owns `value`), and the byte
      // offset folded into the pointer (at::fromDLPack of LibTorch 1.13 ignores it).
      DLManagedTensor borrowed = *value;
      borrowed.deleter = nullptr;
      borrowed.manager_ctx = nullptr;
      borrowed.dl_tensor.data = static_cast<char*>(value->dl_tensor.data) + value->dl_tensor.byte_offset;
      borrowed.dl_tensor.byte_offset = 0;
      at::Tensor view = at::fromDLPack(&borrowed);
      model.set_tensor(str(module, "module"), str(name, "name"), view, flags);
    });
  }

  // A HookFn that calls a plugin's C hook with DLPack views of the tensors.
  // `owner` is the modifier that registered the hook: its failures and crashes are named after it.
  static HookFn abi_hook(modkit_hook_fn fn, void* user, const std::string& owner) {
    return [fn, user, owner](const HookCall& call) {
      struct Views {
        std::vector<DLManagedTensor*> owned;
        ~Views() {
          for (DLManagedTensor* t : owned) t->deleter(t);
        }
        const DLManagedTensor* view(const c10::IValue& v) {
          if (!v.isTensor()) return nullptr;
          owned.push_back(at::toDLPack(v.toTensor().detach()));  // capacity reserved: cannot throw
          return owned.back();
        }
      } views;
      const size_t tuple = call.output != nullptr && call.output->isTuple() ? call.output->toTupleRef().elements().size() : 1;
      views.owned.reserve(call.inputs.size() + tuple);
      std::vector<const DLManagedTensor*> inputs, outputs;
      for (const c10::IValue& v : call.inputs) inputs.push_back(views.view(v));
      if (call.output != nullptr) {
        if (call.output->isTuple()) {
          for (const c10::IValue& v : call.output->toTupleRef().elements()) outputs.push_back(views.view(v));
        } else {
          outputs.push_back(views.view(*call.output));
        }
      }
      modkit_hook_call c{};
      c.struct_size = sizeof(modkit_hook_call);
      c.kind = static_cast<uint32_t>(call.kind);
      c.module = call.module.c_str();
      c.input_count = inputs.size();
      c.inputs = inputs.data();
      c.output_count = outputs.size();
      c.outputs = outputs.data();
      const std::string what = (owner.empty() ? std::string("a plugin") : owner) + "'s " +
                               (call.kind == HookKind::ForwardPre ? "forward-pre" : "forward") + " hook on '" +
                               call.module + "'";
      modkit_error* err = nullptr;
      modkit_status st = MODKIT_OK;
      {
        const PluginCallScope scope(what);
        st = fn(user, &c, &err);
      }
      if (st != MODKIT_OK) {
        std::string message = take_error_message(err);
        if (message.empty()) message = std::string("returned status '") + status_name(st) + "'";
        throw PluginError(st, what + " failed: " + message);
      }
      if (err != nullptr) take_error_message(err);  // an error with an OK status: dropped
    };
  }

  static modkit_status hook_add(const modkit_host*, modkit_model* handle, const char* module, uint32_t kind,
                                modkit_hook_fn fn, void* user, uint64_t* out_id, modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State&) {
      require_minor(1, "hook_add");
      if (fn == nullptr) throw ValueError("fn is NULL");
      if (out_id == nullptr) throw ValueError("out_id is NULL");
      *out_id = model.add_hook(str(module, "module"), static_cast<HookKind>(kind),
                               abi_hook(fn, user, PluginCallScope::current_modifier()));
    });
  }

  static void hook_remove(const modkit_host*, uint64_t id) { Model::remove_hook(id); }

  static modkit_status hooks_disable(const modkit_host*, modkit_model* handle, const uint64_t* keep,
                                     size_t keep_count, uint64_t* out_scope, modkit_error** error) {
    return guarded(handle, error, [&](Model& model, Model::State&) {
      require_minor(1, "hooks_disable");
      if (out_scope == nullptr) throw ValueError("out_scope is NULL");
      if (keep == nullptr && keep_count > 0) throw ValueError("keep is NULL");
      *out_scope = model.disable_hooks(std::vector<HookId>(keep, keep + keep_count)).release();
    });
  }

  static void hooks_restore(const modkit_host*, uint64_t scope) { detail::restore_hooks(scope); }

  // A plugin that calls a service of ABI minor `minor` while declaring a lower abi_min_minor would
  // load on an older host and fail there mid-run: it is refused here, on every host, at first use.
  static void require_minor(int minor, const char* service) {
    const int declared = PluginCallScope::current_abi_min_minor();
    if (declared < 0 || declared >= minor) return;
    throw ValueError(PluginCallScope::current_modifier() + " calls " + service + ", a service of ABI 1." +
                     std::to_string(minor) + ", but declares abi_min_minor = " + std::to_string(declared) +
                     ": declare `static constexpr uint16_t abi_min_minor = " + std::to_string(minor) +
                     ";` in the class, so that older hosts refuse it at load");
  }

  static std::string to_hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", v);
    return buf;
  }

  static modkit_host make_table() {
    modkit_host table{};
    init_host_table(table);
    table.model_module_count = &module_count;
    table.model_module_info = &module_info;
    table.model_match = &match;
    table.tensor_list = &tensor_list;
    table.tensor_get = &tensor_get;
    table.tensor_set = &tensor_set;
    table.hook_add = &hook_add;
    table.hook_remove = &hook_remove;
    table.hooks_disable = &hooks_disable;
    table.hooks_restore = &hooks_restore;
    return table;
  }
};

const modkit_host* Model::host() {
  static const modkit_host table = ModelServices::make_table();
  return &table;
}

}  // namespace modkit
