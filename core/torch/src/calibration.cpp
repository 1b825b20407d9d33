// Calibration data: torch.save archives (via torch::pickle_load), safetensors files and synthetic hidden states.
#include <modkit/core/errors.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/safetensors.hpp>

#include "pickle_appends.hpp"

#include <ATen/core/Tensor.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randn.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>

namespace modkit {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw ValueError("cannot read calibration data '" + source + "': " + why);
}

std::string first_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
  }
  return text;
}

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// What a value is, in the words of its Python type.
std::string describe(const c10::IValue& v) {
  if (v.isTensor()) return "a tensor of shape " + shape_of(v.toTensor());
  if (v.isNone()) return "None";
  if (v.isInt()) return "an int";
  if (v.isDouble()) return "a float";
  if (v.isBool()) return "a bool";
  if (v.isString()) return "a str";
  if (v.isList()) return "a list of " + std::to_string(v.toListRef().size());
  if (v.isTuple()) return "a tuple of " + std::to_string(v.toTupleRef().elements().size());
  if (v.isGenericDict()) return "a dict of " + std::to_string(v.toGenericDict().size());
  return "a value of type " + v.type()->repr_str();
}

CalibrationSample to_sample(const c10::IValue& v, size_t index, const std::string& source) {
  CalibrationSample s;
  if (v.isTensor()) {
    s.args.push_back(v);
  } else if (v.isTuple() || v.isList()) {
    const auto items = v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
    if (items.empty()) fail(source, "sample " + std::to_string(index) + " is an empty " + (v.isTuple() ? "tuple" : "list") + " of arguments");
    s.args = items;
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict()) {
      if (!entry.key().isString()) {
        fail(source, "sample " + std::to_string(index) + ": expected keyword argument names (str keys), found " +
                         describe(entry.key()));
      }
      s.kwargs.emplace(entry.key().toStringRef(), entry.value());
    }
    if (s.kwargs.empty()) fail(source, "sample " + std::to_string(index) + " is an empty dict of keyword arguments");
  } else {
    fail(source, "sample " + std::to_string(index) +
                     ": expected a tensor, a tuple of forward arguments or a dict of keyword arguments, found " +
                     describe(v));
  }
  return s;
}

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, errno == ENOENT ? "no such file" : std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "expected a file, found a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open the file for reading: ") + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) fail(path, "cannot read the file");
  return out.str();
}

}  // namespace

CalibrationData CalibrationData::from_ivalue(const c10::IValue& value, const std::string& source) {
  if (value.isTensor()) {
    fail(source, "expected a list of samples (torch.save(list_of_tensors, path)), found a single tensor of shape " +
                     shape_of(value.toTensor()) +
                     ": save [t] for one sample, or list(t.split(1)) for one sample per batch row");
  }
  if (!value.isList() && !value.isTuple()) {
    fail(source, "expected a list of samples (torch.save(list_of_tensors, path)), found " + describe(value));
  }
  const auto items = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
  if (items.empty()) fail(source, "expected at least one sample, found an empty " + std::string(value.isTuple() ? "tuple" : "list"));
  CalibrationData data;
  data.source = source;
  for (size_t i = 0; i < items.size(); ++i) data.samples.push_back(to_sample(items[i], i, source));
  return data;
}

CalibrationData CalibrationData::parse_safetensors(const std::string& bytes, const std::string& source) {
  const safetensors::Header header =
      safetensors::parse_header(bytes.data(), bytes.size(), "cannot read calibration data '" + source + "': ");
  CalibrationData out;
  out.source = source;
  for (const safetensors::Entry& e : header.tensors) {  // natural name order: one sample each
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.scalar_type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + header.data_offset + e.begin, e.end - e.begin);
    CalibrationSample s;
    s.args.push_back(t);
    out.samples.push_back(std::move(s));
  }
  return out;
}

namespace {

// The bytes of a file for PyTorch's zip reader. torch::jit::pickle_load's own adapter copies
// whatever range the reader asks for, and on a truncated archive miniz asks past the end
// (AddressSanitizer caught the over-read): reads here stop at the end of the data.
class BoundedReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReader(const std::string& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::string& bytes_;
};

// What torch.save wrote: the pickle "data.pkl" of the archive, with its tensors "data/<key>"
// (as torch::jit::readArchiveAndTensors reads it, after making Python's APPENDs readable).
c10::IValue load_torch_save(const std::string& bytes) {
  caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BoundedReader>(bytes));
  const auto record = reader.getRecord("data.pkl");
  const std::string pickle =
      rewrite_appends(std::string(static_cast<const char*>(std::get<0>(record).get()), std::get<1>(record)));
  size_t read = 0;
  torch::jit::Unpickler unpickler(
      [&](char* buffer, size_t n) {
        n = std::min(n, pickle.size() - read);
        std::memcpy(buffer, pickle.data() + read, n);
        read += n;
        return n;
      },
      /*type_resolver=*/nullptr, /*obj_loader=*/nullptr,
      [&](const std::string& key) { return std::get<0>(reader.getRecord("data/" + key)); }, c10::nullopt);
  unpickler.set_version(reader.version());
  return unpickler.parse_ivalue();
}

}  // namespace

CalibrationData CalibrationData::load(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.empty()) fail(path, "expected a torch.save or safetensors file, found an empty file");
  if (bytes.compare(0, 4, std::string("PK\x03\x04", 4)) == 0) {
    c10::IValue value;
    try {
      value = load_torch_save(bytes);
    } catch (const c10::Error& e) {
      fail(path, "expected a torch.save archive, found a corrupt one or another zip file (" +
                     first_line(e.what_without_backtrace()) + ")");
    } catch (const std::exception& e) {
      fail(path, "expected a torch.save archive, found a corrupt one or another zip file (" + first_line(e.what()) + ")");
    }
    return from_ivalue(value, path);
  }
  if (static_cast<unsigned char>(bytes[0]) == 0x80) {
    fail(path, "found a legacy (pre-1.6) torch.save file; save it again with the default zip format");
  }
  if (bytes.size() >= 9 && bytes[8] == '{') return parse_safetensors(bytes, path);
  fail(path, "expected a torch.save archive (a zip file) or a safetensors file, found neither");
}

CalibrationData CalibrationData::synthetic(int64_t count, const std::vector<int64_t>& shape, uint64_t seed) {
  if (count <= 0 || shape.empty()) throw ValueError("synthetic calibration data needs a positive count and a shape");
  const int64_t hidden = shape.back();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // correlated channels: x = z (0.6 I + U Vᵀ / sqrt(rank)), then a few outlier channels x20
  const int64_t rank = std::min<int64_t>(8, hidden);
  const at::Tensor u = at::randn({hidden, rank}, gen);
  const at::Tensor v = at::randn({rank, hidden}, gen);
  const at::Tensor mix = at::eye(hidden).mul_(0.6).add_(at::matmul(u, v).div_(std::sqrt(static_cast<double>(rank * hidden))));
  at::Tensor gain = at::ones({hidden});
  for (int64_t c : {int64_t{0}, hidden / 3, (2 * hidden) / 3}) gain[c] = 20.0;
  CalibrationData data;
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  data.source = "<synthetic: " + std::to_string(count) + " x [" + dims + "]>";
  for (int64_t i = 0; i < count; ++i) {
    CalibrationSample s;
    s.args.push_back(at::matmul(at::randn(shape, gen), mix).mul_(gain));
    data.samples.push_back(std::move(s));
  }
  return data;
}

void CalibrationData::truncate(size_t n) {
  if (n < samples.size()) samples.resize(n);
}

}  // namespace modkit
