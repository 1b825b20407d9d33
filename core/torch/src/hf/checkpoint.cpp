// Hugging Face checkpoint directories: config.json, the safetensors files mapped privately, the index checked
// against the shards' own headers.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hf/checkpoint.hpp>
#include <modkit/torch/model.hpp>

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace modkit::hf {

/// One safetensors file, mapped privately (copy-on-write: the file is never written).
struct Checkpoint::Mapping {
  std::string name;  ///< within the directory
  char* data = nullptr;
  size_t size = 0;
  safetensors::Header header;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data != nullptr) ::munmap(data, size);
  }
};

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A file of the directory named by the index: a plain name, never a path out of it.
bool plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

nlohmann::json read_json(const std::string& path, const std::string& prefix) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ValueError(prefix + "cannot read it: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(prefix + "not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& directory) {
  const std::string where = "checkpoint '" + directory + "': ";
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) throw ValueError(where + "expected a directory, found nothing at that path");
  if (!S_ISDIR(st.st_mode)) {
    throw ValueError(where + "expected a directory (config.json and safetensors files), found a file");
  }
  Checkpoint c;
  c.directory_ = directory;
  const std::string dir = directory.back() == '/' ? directory : directory + "/";

  if (!is_file(dir + "config.json")) throw ValueError(where + "expected config.json, found none");
  c.config_ = read_json(dir + "config.json", where + "config.json: ");
  if (!c.config_.is_object()) {
    throw ValueError(where + "config.json: expected a JSON object, found " + std::string(c.config_.type_name()));
  }

  auto map = [&](const std::string& name) {
    auto m = std::make_shared<Mapping>();
    m->name = name;
    const std::string path = dir + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ValueError(where + "cannot open '" + name + "': " + std::strerror(errno));
    struct stat fst {};
    if (::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
      ::close(fd);
      throw ValueError(where + "'" + name + "' is not a regular file");
    }
    m->size = static_cast<size_t>(fst.st_size);
    if (m->size > 0) {
      void* p = ::mmap(nullptr, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw ValueError(where + "cannot map '" + name + "': " + std::strerror(e));
      }
      m->data = static_cast<char*>(p);
    }
    ::close(fd);
    m->header = safetensors::parse_header(m->data, m->size, where + "'" + name + "': ");
    c.mappings_[name] = m;
    return m;
  };

  if (is_file(dir + "model.safetensors")) {  // as transformers: the single file first
    const auto m = map("model.safetensors");
    for (const auto& e : m->header.tensors) c.tensors_[e.name] = TensorLocation{m->name, e};
    return c;
  }
  const std::string index_name = "model.safetensors.index.json";
  if (!is_file(dir + index_name)) {
    std::string found;
    for (const char* other : {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt"}) {
      if (is_file(dir + other)) found = std::string(", found ") + other + " (convert it to safetensors)";
    }
    throw ValueError(where + "expected model.safetensors or " + index_name + found + (found.empty() ? ", found neither" : ""));
  }
  const nlohmann::json index = read_json(dir + index_name, where + index_name + ": ");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw ValueError(where + index_name + ": expected an object with a \"weight_map\" object, found " + index.dump().substr(0, 200));
  }
  const nlohmann::json& weight_map = index["weight_map"];
  if (weight_map.empty()) throw ValueError(where + index_name + ": its weight_map names no tensor");
  for (const auto& [name, file] : weight_map.items()) {
    if (!file.is_string() || !plain_name(file.get<std::string>())) {
      throw ValueError(where + index_name + ": tensor '" + name + "': expected the name of a file in the directory, found " +
                       file.dump());
    }
    const std::string shard = file.get<std::string>();
    if (c.mappings_.count(shard) != 0) continue;
    if (!is_file(dir + shard)) {
      throw ValueError(where + index_name + " puts tensor '" + name + "' in '" + shard + "', which is missing");
    }
    map(shard);
  }
  // every tensor where the index says, and nowhere else
  for (const auto& [shard, m] : c.mappings_) {
    for (const auto& e : m->header.tensors) {
      const auto it = weight_map.find(e.name);
      if (it == weight_map.end()) {
        throw ValueError(where + "'" + shard + "' holds tensor '" + e.name + "', which " + index_name + " does not list");
      }
      const std::string listed = it->get<std::string>();
      if (listed != shard) {
        throw ValueError(where + "tensor '" + e.name + "' is in both '" + shard + "' and '" + listed + "' (" +
                         index_name + " names '" + listed + "')");
      }
      c.tensors_[e.name] = TensorLocation{shard, e};
    }
  }
  for (const auto& [name, file] : weight_map.items()) {
    if (c.tensors_.count(name) == 0) {
      throw ValueError(where + index_name + " puts tensor '" + name + "' in '" + file.get<std::string>() +
                       "', which does not hold it");
    }
  }
  return c;
}

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : mappings_) out.push_back(name);
  return out;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& [name, location] : tensors_) out.push_back(name);
  std::sort(out.begin(), out.end(), safetensors::natural_less);
  return out;
}

const TensorLocation& Checkpoint::locate(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw LookupError("checkpoint '" + directory_ + "' has no tensor '" + name + "'");
  return it->second;
}

at::Tensor Checkpoint::tensor(const std::string& name) const {
  const TensorLocation& location = locate(name);
  const std::shared_ptr<const Mapping>& m = mappings_.at(location.file);
  const safetensors::Entry& e = location.entry;
  char* bytes = m->data + m->header.data_offset + e.begin;
  const auto options = at::TensorOptions().dtype(e.scalar_type);
  const size_t element = c10::elementSize(e.scalar_type);
  if (e.end == e.begin || reinterpret_cast<uintptr_t>(bytes) % element != 0) {
    // LibTorch's kernels may assume aligned elements: a misaligned tensor is copied
    at::Tensor copy = at::empty(e.shape, options);
    if (e.end > e.begin) std::memcpy(copy.data_ptr(), bytes, e.end - e.begin);
    return copy;
  }
  return at::from_blob(bytes, e.shape, [keep = m](void*) {}, options);
}

void Checkpoint::release(const std::string& name) const {
  const TensorLocation& location = locate(name);
  const Mapping& m = *mappings_.at(location.file);
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(m.data + m.header.data_offset + location.entry.begin);
  const uintptr_t end = reinterpret_cast<uintptr_t>(m.data + m.header.data_offset + location.entry.end);
  // only the pages wholly inside the tensor: a neighbour's stay as they are
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void Checkpoint::expect_shape(const std::string& name, const std::vector<int64_t>& shape, const std::string& why) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw ValueError("checkpoint '" + directory_ + "': expected tensor '" + name + "' of shape " + shape_text(shape) +
                     " (" + why + "), found none");
  }
  if (it->second.entry.shape != shape) {
    throw ValueError("checkpoint '" + directory_ + "': tensor '" + name + "' in '" + it->second.file + "' has shape " +
                     shape_text(it->second.entry.shape) + ", expected " + shape_text(shape) + " (" + why + ")");
  }
}

}  // namespace modkit::hf
