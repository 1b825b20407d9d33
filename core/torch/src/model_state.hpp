// Internal state of a Model behind its ABI services: lock, interned strings, module list, placeholders.
#pragma once

#include <modkit/torch/model.hpp>

#include <mutex>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace modkit {

struct Model::State {
  /// Serializes service calls on one model.
  std::mutex mutex;
  /// Every string handed out through the ABI. Node-based, so the pointers stay
  /// valid for the model's life (the ABI only promises "until the structure changes").
  std::unordered_set<std::string> strings;
  /// The module list of the last model_module_count call (built on demand).
  std::vector<modkit_module_info> modules;
  bool modules_valid = false;
  /// Buffers added as empty placeholders to objects of a shared type: (object, name).
  std::set<std::pair<const void*, std::string>> placeholders;

  const char* intern(const std::string& s) { return strings.insert(s).first->c_str(); }
};

}  // namespace modkit
