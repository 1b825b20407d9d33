// A minimal in-test modkit_host: real error objects, a captured log and a two-module fake model.
#pragma once

#include <modkit/modkit.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace modkit_test {

/// The error objects this host hands out (modkit_error is opaque to plugins).
struct FakeError {
  modkit_status code;
  std::string message;
};

/// A host table whose services record what plugins do with them.
class FakeHost {
 public:
  FakeHost() {
    host_.struct_size = sizeof(modkit_host);
    host_.abi_major = MODKIT_ABI_MAJOR;
    host_.abi_minor = MODKIT_ABI_MINOR;
    host_.context = this;
    host_.error_new = [](const modkit_host* h, modkit_status code, const char* message) {
      ++self(h)->errors_made;
      ++live_errors();
      return reinterpret_cast<modkit_error*>(new FakeError{code, message});
    };
    host_.error_message = [](const modkit_error* e) {
      return reinterpret_cast<const FakeError*>(e)->message.c_str();
    };
    host_.error_code = [](const modkit_error* e) { return reinterpret_cast<const FakeError*>(e)->code; };
    host_.error_free = [](modkit_error* e) {
      if (e != nullptr) --live_errors();
      delete reinterpret_cast<FakeError*>(e);
    };
    host_.log = [](const modkit_host* h, int32_t level, const char* source, const char* message) {
      self(h)->logs.push_back(std::to_string(level) + " " + source + ": " + message);
    };
    host_.model_match = [](const modkit_host*, modkit_model*, const char* const*, size_t,
                           const char* const*, size_t, modkit_module_visitor visit, void* user,
                           modkit_error**) -> modkit_status {
      static const modkit_module_info modules[] = {
          {sizeof(modkit_module_info), 0, "fc", "Linear"},
          {sizeof(modkit_module_info), 0, "head", "Linear"},
      };
      for (const auto& m : modules) visit(user, &m);
      return MODKIT_OK;
    };
    host_.tensor_list = [](const modkit_host*, modkit_model*, const char*, modkit_tensor_visitor visit,
                           void* user, modkit_error**) -> modkit_status {
      visit(user, "weight", MODKIT_TENSOR_PARAMETER);
      visit(user, "bias", MODKIT_TENSOR_PARAMETER);
      visit(user, "weight_mask", MODKIT_TENSOR_BUFFER);
      return MODKIT_OK;
    };
    host_.tensor_get = [](const modkit_host* h, modkit_model*, const char*, const char*,
                          DLManagedTensor** out, modkit_error**) -> modkit_status {
      auto* t = new DLManagedTensor{};
      t->dl_tensor.ndim = 2;
      t->manager_ctx = self(h);
      t->deleter = [](DLManagedTensor* m) {
        ++static_cast<FakeHost*>(m->manager_ctx)->tensors_released;
        delete m;
      };
      *out = t;
      return MODKIT_OK;
    };
    state_.struct_size = sizeof(modkit_state);
    state_.host = &host_;
    state_.model = reinterpret_cast<modkit_model*>(&model_tag_);
    state_.rank = 0;
    state_.world_size = 1;
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const modkit_host* host() const { return &host_; }
  modkit_host* mutable_host() { return &host_; }
  const modkit_state* state() const { return &state_; }

  int errors_made = 0;
  int tensors_released = 0;
  /// Errors made by any FakeHost and not yet freed (error_free has no host argument).
  static int& live_errors() {
    static int live = 0;
    return live;
  }
  std::vector<std::string> logs;

 private:
  static FakeHost* self(const modkit_host* h) { return static_cast<FakeHost*>(h->context); }
  modkit_host host_{};
  modkit_state state_{};
  int model_tag_ = 0;
};

/// Takes ownership of an error a plugin returned; empty when there is none.
struct TakenError {
  modkit_status code = MODKIT_OK;
  std::string message;
  bool present = false;
};
inline TakenError take(const FakeHost& h, modkit_error*& e) {
  TakenError out;
  if (e != nullptr) {
    out.present = true;
    out.code = h.host()->error_code(e);
    out.message = h.host()->error_message(e);
    h.host()->error_free(e);
    e = nullptr;
  }
  return out;
}

/// Owns a modkit_value tree built in a test.
class ValueBuilder {
 public:
  const modkit_value* null() { return make(MODKIT_TYPE_NULL); }
  const modkit_value* boolean(bool b) {
    auto* v = make(MODKIT_TYPE_BOOL);
    v->int_value = b ? 1 : 0;
    return v;
  }
  const modkit_value* integer(int64_t i) {
    auto* v = make(MODKIT_TYPE_INT);
    v->int_value = i;
    v->float_value = static_cast<double>(i);
    return v;
  }
  const modkit_value* number(double d) {
    auto* v = make(MODKIT_TYPE_FLOAT);
    v->float_value = d;
    return v;
  }
  const modkit_value* string(const std::string& s) {
    auto* v = make(MODKIT_TYPE_STRING);
    strings_.push_back(std::make_unique<std::string>(s));
    v->string_value = strings_.back()->c_str();
    return v;
  }
  const modkit_value* list(std::vector<const modkit_value*> items) {
    auto* v = make(MODKIT_TYPE_LIST);
    item_arrays_.push_back(std::make_unique<std::vector<const modkit_value*>>(std::move(items)));
    v->count = item_arrays_.back()->size();
    v->items = item_arrays_.back()->data();
    return v;
  }
  const modkit_value* table(std::vector<std::pair<std::string, const modkit_value*>> entries) {
    auto* v = make(MODKIT_TYPE_TABLE);
    auto keys = std::make_unique<std::vector<const char*>>();
    auto items = std::make_unique<std::vector<const modkit_value*>>();
    for (auto& [k, item] : entries) {
      strings_.push_back(std::make_unique<std::string>(k));
      keys->push_back(strings_.back()->c_str());
      items->push_back(item);
    }
    v->count = items->size();
    v->keys = keys->data();
    v->items = items->data();
    key_arrays_.push_back(std::move(keys));
    item_arrays_.push_back(std::move(items));
    return v;
  }

 private:
  modkit_value* make(uint32_t type) {
    values_.push_back(std::make_unique<modkit_value>());
    values_.back()->struct_size = sizeof(modkit_value);
    values_.back()->type = type;
    return values_.back().get();
  }
  std::vector<std::unique_ptr<modkit_value>> values_;
  std::vector<std::unique_ptr<std::string>> strings_;
  std::vector<std::unique_ptr<std::vector<const char*>>> key_arrays_;
  std::vector<std::unique_ptr<std::vector<const modkit_value*>>> item_arrays_;
};

}  // namespace modkit_test
