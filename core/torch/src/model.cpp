// Model: loading with diagnosable errors, atomic saving, module enumeration and tensor access.
#include <modkit/core/atomic_file.hpp>
#include <modkit/torch/model.hpp>

#include "model_state.hpp"

#include <ATen/ops/empty.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace modkit {
namespace {

// The first non-empty line of a LibTorch message, without its C++ backtrace.
std::string first_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
  }
  return text;
}

std::string what_of(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    return first_line(c10->what_without_backtrace());
  }
  return first_line(e.what());
}

std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(sizes[i]);
  }
  return s + "]";
}

// Why a file that torch::jit::load refused is not a TorchScript archive.
std::string diagnose_archive(const std::string& path, const std::string& load_error) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    return "expected a TorchScript archive, found a corrupt or truncated zip archive (" + what_of(e) +
           ")";
  }
  bool has_code = false;
  for (const std::string& record : reader->getAllRecords()) {
    if (record.rfind("code/", 0) == 0) has_code = true;
  }
  if (!has_code || !reader->hasRecord("constants.pkl")) {
    return "expected a TorchScript archive (torch.jit.save), found a zip archive without "
           "TorchScript code (a torch.save checkpoint?)";
  }
  return "expected a TorchScript archive, found a corrupt one (" + load_error + ")";
}

// What a file that is not a zip archive looks like, from its first bytes.
std::string describe_non_zip(const std::string& head) {
  if (head.empty()) return "an empty file";
  if (static_cast<unsigned char>(head[0]) == 0x80) return "a pickle (a legacy torch.save file?)";
  return "a file that is not a zip archive";
}

[[noreturn]] void throw_load(const std::string& path, const std::string& why) {
  throw ValueError("cannot load model '" + path + "': " + why);
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

std::string class_name_of(const torch::jit::Module& module) {
  const auto& name = module.type()->name();
  return name ? name->name() : std::string();
}

Model::Model(torch::jit::Module module) : module_(std::move(module)), state_(std::make_unique<State>()) {}
Model::~Model() {
  if (state_) detail::remove_owner_hooks(state_.get());
}
Model::Model(Model&& other) noexcept = default;
Model& Model::operator=(Model&& other) noexcept {
  if (this != &other) {
    if (state_) detail::remove_owner_hooks(state_.get());
    module_ = std::move(other.module_);
    state_ = std::move(other.state_);
  }
  return *this;
}

HookId Model::add_hook(const std::string& module, HookKind kind, HookFn hook) {
  return detail::add_hook(*this, state_.get(), module, kind, std::move(hook));
}

namespace {

// An archive's pickle declares each tensor's storage size and, apart, its shape, strides and
// offset: LibTorch 1.13 loads a tensor that reaches past its storage, and its first use reads out
// of bounds or fails deep inside an operator. Every parameter and buffer is checked at load.
void check_tensor_extents(const torch::jit::Module& module, const std::string& path) {
  auto check = [&](const std::string& name, const at::Tensor& t) {
    if (!t.defined() || t.numel() == 0 || !t.has_storage()) return;
    uint64_t last = static_cast<uint64_t>(t.storage_offset());  // the furthest element
    for (int64_t d = 0; d < t.dim(); ++d) {
      if (t.stride(d) < 0) throw_load(path, "tensor '" + name + "' has a negative stride");
      last += static_cast<uint64_t>(t.size(d) - 1) * static_cast<uint64_t>(t.stride(d));
    }
    const uint64_t needed = (last + 1) * t.element_size();
    if (needed > t.storage().nbytes()) {
      throw_load(path, "tensor '" + name + "' of shape " + shape_str(t.sizes()) + " needs " + std::to_string(needed) +
                           " bytes of its storage, which holds " + std::to_string(t.storage().nbytes()) +
                           ": the archive is corrupt");
    }
  };
  for (const auto& p : module.named_parameters(true)) check(p.name, p.value);
  for (const auto& b : module.named_buffers(true)) check(b.name, b.value);
}

}  // namespace

Model Model::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw_load(path, errno == ENOENT ? "no such file" : errno_text(errno));
  }
  if (S_ISDIR(st.st_mode)) throw_load(path, "expected a TorchScript file, found a directory");
  std::string head(4, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_load(path, "cannot open the file for reading: " + errno_text(errno));
    in.read(head.data(), 4);
    head.resize(static_cast<size_t>(in.gcount()));
  }
  if (head != std::string("PK\x03\x04", 4)) {
    throw_load(path, "expected a TorchScript archive (a zip file written by torch.jit.save), found " +
                         describe_non_zip(head));
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    throw_load(path, diagnose_archive(path, what_of(e)));
  }
  check_tensor_extents(module, path);
  return Model(std::move(module));
}

void Model::save(const std::string& path) const {
  const std::string prefix = "cannot save model '" + path + "': ";
  const detail::InstrumentationPause clean(state_.get());  // hooks stay, their ops do not reach the file
  write_atomically(
      path,
      [&](int fd) {
        int write_errno = 0;
        try {
          // After a failed write the rest is dropped but reported as written: LibTorch's zip writer
          // throws on a short write, and throws again from its destructor, which terminated the
          // process on a full disk. The error is raised below, once the writer is done.
          torch::jit::ExportModule(module_, [&](const void* data, size_t size) -> size_t {
            if (write_errno == 0) write_errno = write_all(fd, data, size);
            return size;
          });
        } catch (const std::exception& e) {
          if (write_errno == 0) throw RuntimeError(prefix + "cannot serialize the model: " + what_of(e));
        }
        if (write_errno != 0) throw RuntimeError(prefix + "cannot write: " + errno_text(write_errno));
      },
      prefix);
}

std::vector<ModuleInfo> Model::modules() const {
  std::vector<ModuleInfo> out;
  for (const auto& named : module_.named_modules()) {
    out.push_back(ModuleInfo{named.name, class_name_of(named.value)});
  }
  return out;
}

torch::jit::Module Model::find_module(const std::string& name) const {
  torch::jit::Module current = module_;
  if (name.empty()) return current;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const auto& type = current.type();
    const auto slot = type->findAttributeSlot(part);
    if (part.empty() || !slot || !type->getAttribute(*slot)->is_module()) {
      throw LookupError("no module '" + name + "' in the model");
    }
    current = torch::jit::Module(current._ivalue()->getSlot(*slot).toObject());
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

namespace {

// The slot of a parameter or buffer of `m`; throws for anything else.
size_t tensor_slot(const torch::jit::Module& m, const std::string& module, const std::string& name,
                   bool* is_parameter) {
  const auto& type = m.type();
  const auto slot = type->findAttributeSlot(name);
  if (!slot) throw LookupError("module '" + module + "' has no tensor '" + name + "'");
  const bool param = type->is_parameter(*slot);
  const bool buffer = type->is_buffer(*slot);
  const auto& attr_type = type->getAttribute(*slot);
  if ((!param && !buffer) || !attr_type->isSubtypeOf(*c10::TensorType::get()) ||
      !m._ivalue()->getSlot(*slot).isTensor()) {
    throw ValueError("'" + name + "' of module '" + module + "' is not a parameter or buffer (found " +
                     (attr_type->is_module() ? std::string("a submodule") : attr_type->repr_str()) + ")");
  }
  if (is_parameter != nullptr) *is_parameter = param;
  return *slot;
}

}  // namespace

std::vector<TensorInfo> Model::tensors(const std::string& module) const {
  const torch::jit::Module m = find_module(module);
  const auto& type = m.type();
  std::vector<TensorInfo> out;
  for (size_t i = 0; i < type->numAttributes(); ++i) {
    const bool param = type->is_parameter(i);
    if (!param && !type->is_buffer(i)) continue;
    if (!type->getAttribute(i)->isSubtypeOf(*c10::TensorType::get())) continue;
    if (!m._ivalue()->getSlot(i).isTensor()) continue;
    out.push_back(TensorInfo{type->getAttributeName(i),
                             static_cast<uint32_t>(param ? MODKIT_TENSOR_PARAMETER : MODKIT_TENSOR_BUFFER)});
  }
  return out;
}

at::Tensor Model::get_tensor(const std::string& module, const std::string& name) const {
  const torch::jit::Module m = find_module(module);
  const size_t slot = tensor_slot(m, module, name, nullptr);
  return m._ivalue()->getSlot(slot).toTensor();
}

void Model::set_tensor(const std::string& module, const std::string& name, const at::Tensor& value,
                       uint32_t flags) {
  if (!value.defined()) throw ValueError("cannot set tensor '" + name + "' of module '" + module + "': undefined value");
  torch::jit::Module m = find_module(module);
  const bool create = (flags & MODKIT_TENSOR_SET_CREATE) != 0;
  const bool replace = (flags & MODKIT_TENSOR_SET_REPLACE) != 0;
  const auto& type = m.type();
  const auto existing = type->findAttributeSlot(name);
  State& state = *state_;

  if (!existing) {
    if (!create) throw LookupError("module '" + module + "' has no tensor '" + name + "'");
    // Other objects of this (possibly shared) type must get the new slot too.
    std::vector<torch::jit::Module> siblings;
    for (const auto& other : module_.modules()) {
      if (other.type() == type && other._ivalue() != m._ivalue()) siblings.push_back(other);
    }
    m.register_buffer(name, value.detach().clone(at::MemoryFormat::Contiguous));
    for (torch::jit::Module& other : siblings) {
      other._ivalue()->setAttr(name, at::empty({0}, value.options()));
      state.placeholders.emplace(other._ivalue().get(), name);
    }
    return;
  }

  bool is_parameter = false;
  const size_t slot = tensor_slot(m, module, name, &is_parameter);
  const bool placeholder = state.placeholders.count({m._ivalue().get(), name}) != 0;
  at::Tensor current = m._ivalue()->getSlot(slot).toTensor();
  if (replace || (create && placeholder)) {
    at::Tensor fresh = value.detach().clone(at::MemoryFormat::Contiguous);
    if (is_parameter && current.requires_grad() && fresh.is_floating_point()) fresh.requires_grad_(true);
    m._ivalue()->setSlot(slot, fresh);
    state.placeholders.erase({m._ivalue().get(), name});
    return;
  }
  if (current.sizes() != value.sizes()) {
    throw ValueError("cannot set tensor '" + name + "' of module '" + module + "': expected shape " +
                     shape_str(current.sizes()) + ", found " + shape_str(value.sizes()));
  }
  at::NoGradGuard no_grad;  // parameters are leaves that require grad
  current.copy_(value);
}

}  // namespace modkit
