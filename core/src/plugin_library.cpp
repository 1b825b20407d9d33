// Loads one plugin file and validates each descriptor it exports; failures become load records.
#include "elf.hpp"
#include "plugin_library.hpp"
#include <modkit/core/errors.hpp>

#include <boost/dll/shared_library.hpp>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace modkit::detail {
namespace {

// Drops a leading "<subject>" the record already names ("'f.so' is not ELF" -> "not ELF").
std::string without_subject(const std::string& message, const std::string& subject) {
  return message.rfind(subject, 0) == 0 ? message.substr(subject.size()) : message;
}

// Boost.DLL wraps dlerror() as "... (dlerror system message: <text>): ..."; keep <text>.
std::string loader_message(const std::string& what) {
  const std::string marker = "dlerror system message: ";
  const auto begin = what.find(marker);
  if (begin == std::string::npos) return what;
  const auto end = what.rfind("): ");
  if (end == std::string::npos || end < begin) return what.substr(begin + marker.size());
  return what.substr(begin + marker.size(), end - begin - marker.size());
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The base address of the loaded object containing `p`, or nullptr.
const void* image_of(const void* p) {
  Dl_info info{};
  if (dladdr(p, &info) == 0) return nullptr;
  return info.dli_fbase;
}

constexpr size_t kDescriptorV1Size =
    offsetof(modkit_modifier_descriptor, on_event) + sizeof(modkit_event_fn);
constexpr size_t kParamSpecV1Size = offsetof(modkit_param_spec, reserved) + sizeof(uint32_t);

}  // namespace

HostFingerprint HostFingerprint::current() {
  HostFingerprint f;
  f.torch_version = MODKIT_HOST_TORCH_VERSION;
#if defined(_GLIBCXX_USE_CXX11_ABI)
  f.cxx11_abi = _GLIBCXX_USE_CXX11_ABI;
#endif
  return f;
}

struct PluginLibrary::Impl {
  boost::dll::shared_library library;
};

PluginLibrary::PluginLibrary(const std::string& path) : impl_(std::make_unique<Impl>()), path_(path) {
  try {
    impl_->library.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const boost::system::system_error& e) {
    throw ValueError(loader_message(e.what()));  // the loader refused it (dlerror)
  } catch (const std::exception& e) {
    // a static constructor threw and the exception unwound through dlopen
    throw ValueError(std::string("a static constructor threw: ") + e.what());
  } catch (...) {
    throw ValueError("a static constructor threw an exception that is not a std::exception");
  }
  // its static constructors have run and may have left pointers into it
  // anywhere (LibTorch registries, atexit, thread-locals): never unmap it, even
  // when its descriptors fail validation and this handle is closed
  if (void* pinned = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); pinned == nullptr) {
    spdlog::debug("cannot pin '{}' in memory: {}", path, ::dlerror());
  }
}

PluginLibrary::~PluginLibrary() = default;

void* PluginLibrary::symbol(const std::string& name) const {
  if (!impl_->library.has(name)) return nullptr;
  return reinterpret_cast<void*>(&impl_->library.get<char>(name));
}

std::string check_compatibility(uint32_t abi_major, uint32_t min_minor, const std::string& torch,
                                int cxx11_abi, const HostFingerprint& host) {
  if (abi_major != host.abi_major) {
    return "built for ABI " + std::to_string(abi_major) + "." + std::to_string(min_minor) +
           ", host supports " + std::to_string(host.abi_major) + ".x";
  }
  if (min_minor > host.abi_minor) {
    return "needs ABI " + std::to_string(abi_major) + "." + std::to_string(min_minor) +
           " or newer, host provides " + std::to_string(host.abi_major) + "." + std::to_string(host.abi_minor);
  }
  if (!torch.empty() && !host.torch_version.empty() && torch != host.torch_version) {
    return "built against LibTorch " + torch + ", host uses LibTorch " + host.torch_version;
  }
  if (!torch.empty() && host.cxx11_abi >= 0 && cxx11_abi >= 0 && cxx11_abi != host.cxx11_abi) {
    return "built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(cxx11_abi) +
           ", host uses _GLIBCXX_USE_CXX11_ABI=" + std::to_string(host.cxx11_abi);
  }
  return "";
}

std::string validate_descriptor(const std::string& name, const modkit_modifier_descriptor* d,
                                const void* image_symbol, const HostFingerprint& host) {
  if (d == nullptr) return "symbol '" + name + "' returned no descriptor";
  const void* image = image_of(image_symbol);
  if (image == nullptr || image_of(d) != image) {
    return "symbol '" + name + "' returned a pointer outside its plugin, not a modkit descriptor";
  }
  if (d->magic != MODKIT_DESCRIPTOR_MAGIC) {
    return "symbol '" + name + "' is not a modkit descriptor (magic " + hex32(d->magic) +
           ", expected " + hex32(MODKIT_DESCRIPTOR_MAGIC) + ")";
  }
  if (d->struct_size < kDescriptorV1Size) {
    return "descriptor of '" + name + "' is too small (" + std::to_string(d->struct_size) +
           " bytes, expected at least " + std::to_string(kDescriptorV1Size) + ")";
  }
  if (image_of(reinterpret_cast<const char*>(d) + kDescriptorV1Size - 1) != image) {
    return "descriptor of '" + name + "' extends outside its plugin";
  }
  if (d->type_name == nullptr || name != d->type_name) {
    return "descriptor names type '" + std::string(d->type_name ? d->type_name : "") +
           "' but its symbol is '" + name + "'";
  }
  if (std::string why = check_compatibility(d->abi_major, d->abi_min_minor,
                                            d->torch_version != nullptr ? d->torch_version : "",
                                            d->cxx11_abi, host);
      !why.empty()) {
    return why;
  }
  std::vector<std::string> missing;
  if (d->create == nullptr) missing.push_back("create");
  if (d->destroy == nullptr) missing.push_back("destroy");
  if (d->on_initialize == nullptr) missing.push_back("on_initialize");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return "descriptor of '" + name + "' lacks required callbacks: " + list;
  }
  if (d->param_count > 0 && (d->params == nullptr || d->param_spec_size < kParamSpecV1Size)) {
    return "descriptor of '" + name + "' has a malformed parameter table";
  }
  return "";
}

FileLoad load_plugin_file(const std::string& path, bool experimental, const HostFingerprint& host) {
  FileLoad out;
  auto record = [&](const std::string& name, LoadStage stage, std::string reason) {
    out.records.push_back(LoadRecord::make(name, path, stage, std::move(reason), experimental));
    if (!out.records.back().ok()) spdlog::warn("{}", out.records.back().message());
  };

  ElfContents elf;
  try {
    elf = read_elf(path);
  } catch (const std::exception& e) {
    record("", LoadStage::Scan, unreadable_reason(e.what(), path));
    return out;
  }
  std::vector<std::string> names;
  for (const auto& sym : elf.symbols) {
    if (!is_modifier_name(sym.name)) continue;
    if (!sym.is_function) {
      record(sym.name, LoadStage::Scan,
             "symbol '" + sym.name + "' is a data object, expected a function returning a modkit descriptor");
      continue;
    }
    names.push_back(sym.name);
  }
  if (names.empty()) {
    spdlog::debug("'{}' exports no *Modifier functions", path);
    return out;
  }

  std::shared_ptr<PluginLibrary> library;
  try {
    library = std::make_shared<PluginLibrary>(path);
  } catch (const std::exception& e) {
    const std::string reason = without_subject(e.what(), path + ": ");
    for (const auto& name : names) record(name, LoadStage::Open, reason);
    return out;
  }

  for (const auto& name : names) {
    void* address = library->symbol(name);
    if (address == nullptr) {
      record(name, LoadStage::Resolve, "symbol '" + name + "' is listed but cannot be resolved");
      continue;
    }
    auto fn = reinterpret_cast<modkit_descriptor_fn>(address);
    const modkit_modifier_descriptor* d = fn();
    std::string reason = validate_descriptor(name, d, address, host);
    if (!reason.empty()) {
      record(name, LoadStage::Validate, reason);
      continue;
    }
    auto type = std::make_shared<PluginModifierType>();
    type->library = library;
    type->descriptor = d;
    try {
      type->info = info_from_descriptor(*d);
    } catch (const std::exception& e) {
      record(name, LoadStage::Validate, e.what());
      continue;
    }
    // the metadata section is what `modkit list` shows; it must agree with the descriptor
    for (const auto& entry : elf.metadata) {
      try {
        ModifierInfo meta = parse_metadata(entry, path);
        if (meta.name == name && meta.to_json() != type->info.to_json()) {
          spdlog::warn("'{}': metadata of '{}' disagrees with its descriptor; using the descriptor",
                       path, name);
        }
      } catch (const std::exception& e) {
        spdlog::warn("{}", e.what());
      }
    }
    record(name, LoadStage::Loaded, "");
    out.types.push_back(std::move(type));
  }
  return out;
}

}  // namespace modkit::detail
