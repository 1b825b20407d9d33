// The safetensors format: the header reader every safetensors input goes through, and the atomic writer.
#include <modkit/core/atomic_file.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/torch/safetensors.hpp>

#include <ATen/ops/empty.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

namespace modkit::safetensors {
namespace {

struct DType {
  const char* name;
  at::ScalarType type;
  size_t bytes;
};

constexpr DType kTypes[] = {{"F64", at::kDouble, 8}, {"F32", at::kFloat, 4},    {"F16", at::kHalf, 2},
                            {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8}, {"I32", at::kInt, 4},
                            {"I16", at::kShort, 2},    {"I8", at::kChar, 1},    {"U8", at::kByte, 1},
                            {"BOOL", at::kBool, 1}};

[[noreturn]] void fail(const std::string& prefix, const std::string& why) { throw ValueError(prefix + why); }

const DType* find_dtype(const std::string& name) {
  for (const DType& t : kTypes) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string da = a.substr(i, ie - i), db = b.substr(j, je - j);
      const size_t za = da.find_first_not_of('0'), zb = db.find_first_not_of('0');
      const std::string na = za == std::string::npos ? "" : da.substr(za);
      const std::string nb = zb == std::string::npos ? "" : db.substr(zb);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string dtype_name(at::ScalarType type) {
  for (const DType& t : kTypes) {
    if (t.type == type) return t.name;
  }
  return "";
}

Header parse_header(const char* bytes, size_t size, const std::string& prefix) {
  if (size < 8) {
    fail(prefix, "expected a safetensors file (an 8-byte header length first), found " + std::to_string(size) + " bytes");
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_size > size - 8) {
    fail(prefix, "the safetensors header length is " + std::to_string(header_size) + " bytes but only " +
         std::to_string(size - 8) + " follow (truncated file?)");
  }
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const nlohmann::json::exception& e) {
    fail(prefix, std::string("the safetensors header is not valid JSON (") + e.what() + ")");
  }
  if (!json.is_object()) fail(prefix, "expected the safetensors header to be a JSON object, found " + std::string(json.type_name()));
  Header header;
  header.data_offset = 8 + header_size;
  const uint64_t data_size = size - header.data_offset;

  std::vector<std::string> names;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      header.metadata = entry;
    } else {
      names.push_back(name);
    }
  }
  if (names.empty()) fail(prefix, "expected at least one tensor, found a safetensors file without tensors");
  std::sort(names.begin(), names.end(), natural_less);

  for (const std::string& name : names) {
    const nlohmann::json& e = json[name];
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets")) {
      fail(prefix, where + ": expected {dtype, shape, data_offsets}, found " + e.dump());
    }
    const DType* dtype = e["dtype"].is_string() ? find_dtype(e["dtype"].get<std::string>()) : nullptr;
    if (dtype == nullptr) {
      fail(prefix, where + ": expected dtype F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL, found " + e["dtype"].dump());
    }
    const nlohmann::json& shape = e["shape"];
    const nlohmann::json& offsets = e["data_offsets"];
    // element counts beyond 2^40 are refused before they can overflow
    constexpr uint64_t kMaxElements = uint64_t{1} << 40;
    Entry entry;
    entry.name = name;
    entry.dtype = dtype->name;
    entry.scalar_type = dtype->type;
    uint64_t numel = 1;
    bool shape_ok = shape.is_array();
    for (const auto& d : shape) {
      const uint64_t n = d.is_number_unsigned() ? d.get<uint64_t>() : kMaxElements + 1;
      if (n > kMaxElements || (n != 0 && numel > kMaxElements / n)) {
        shape_ok = false;
        break;
      }
      entry.shape.push_back(static_cast<int64_t>(n));
      numel *= n;
    }
    if (!shape_ok) fail(prefix, where + ": expected a shape of non-negative integers (at most 2^40 elements), found " + shape.dump());
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      fail(prefix, where + ": expected data_offsets [begin, end], found " + offsets.dump());
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      fail(prefix, where + ": data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
           "] lie outside the " + std::to_string(data_size) + " data bytes (truncated file?)");
    }
    if (entry.end - entry.begin != numel * dtype->bytes) {
      fail(prefix, where + ": shape " + shape.dump() + " of " + dtype->name + " needs " + std::to_string(numel * dtype->bytes) +
           " bytes, found " + std::to_string(entry.end - entry.begin));
    }
    header.tensors.push_back(std::move(entry));
  }

  // As the safetensors library checks: the tensors tile the data, without overlaps or holes.
  std::vector<const Entry*> extents;
  for (const Entry& e : header.tensors) extents.push_back(&e);
  std::sort(extents.begin(), extents.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : extents) {
    if (e->begin < covered) {
      fail(prefix, "tensor '" + e->name + "' (data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
           "]) overlaps tensor '" + previous->name + "' (which ends at " + std::to_string(covered) + ")");
    }
    if (e->begin > covered) {
      fail(prefix, "data bytes [" + std::to_string(covered) + ", " + std::to_string(e->begin) + ") belong to no tensor (the next is '" +
           e->name + "'): expected tensors stored back to back");
    }
    covered = e->end;
    previous = e;
  }
  if (covered != data_size) {
    fail(prefix, "expected " + std::to_string(covered) + " data bytes after the header (the tensors' extent), found " +
         std::to_string(data_size));
  }
  return header;
}

void write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
           const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string prefix = "cannot write safetensors file '" + path + "': ";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) m[key] = value;
    header["__metadata__"] = std::move(m);
  }
  std::vector<at::Tensor> data;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second) {
      throw ValueError(prefix + "tensor name '" + name + "' is " + (name == "__metadata__" ? "reserved" : "given twice"));
    }
    const std::string dtype = dtype_name(tensor.scalar_type());
    if (dtype.empty()) {
      throw ValueError(prefix + "tensor '" + name + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) +
                       ", which safetensors cannot store");
    }
    at::Tensor t = tensor.device().is_cpu() ? tensor.contiguous() : tensor.to(at::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.nbytes());
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  modkit::write_atomically(
      path,
      [&](int fd) {
        unsigned char length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
        auto put = [&](const void* p, size_t n) {
          if (n == 0) return;
          if (const int e = modkit::write_all(fd, p, n); e != 0) {
            throw RuntimeError(prefix + "cannot write: " + std::strerror(e));
          }
        };
        put(length, sizeof length);
        put(text.data(), text.size());
        for (const at::Tensor& t : data) put(t.data_ptr(), static_cast<size_t>(t.nbytes()));
      },
      prefix);
}

}  // namespace modkit::safetensors
