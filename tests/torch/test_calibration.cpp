// Tests of calibration data: torch.save archives, safetensors files, synthetic samples, and the messages for bad files.
#include <modkit/torch/calibration.hpp>

#include "torch_test_support.hpp"

#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using modkit::CalibrationData;
using modkit::testing::ScratchDir;
using modkit::testing::thrown_message;

namespace {

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_pickle(const std::string& path, const c10::IValue& v) {
  const std::vector<char> bytes = torch::jit::pickle_save(v);  // the format of torch.save
  write(path, std::string(bytes.begin(), bytes.end()));
}

// A safetensors file: 8-byte little-endian header length, JSON header, data.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string floats(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  size_t i = 0;
  for (float v : values) std::memcpy(&out[4 * i++], &v, 4);
  return out;
}

std::string load_error(const std::string& path) {
  return thrown_message<modkit::ValueError>([&] { CalibrationData::load(path); });
}

// A torch.save archive of `pickle` (data.pkl) and the float32 storages data/0, data/1, ...
void write_torch_save(const std::string& path, const std::string& pickle,
                      const std::vector<std::vector<float>>& storages) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (size_t k = 0; k < storages.size(); ++k) {
    writer.writeRecord("data/" + std::to_string(k), storages[k].data(), storages[k].size() * sizeof(float));
  }
  writer.writeEndOfFile();
}

// What Python's pickle (protocol 2, as torch.save uses) writes for a list of n one-element float
// tensors holding 0, 1, ...: appends batched by 1000 between MARK and APPENDS, and a batch of one
// item as `item APPEND` (memo opcodes left out: they do not change the stack).
std::string python_list_pickle(size_t n) {
  using namespace std::string_literals;
  auto unicode = [](const std::string& text) {
    std::string out = "X";
    for (int i = 0; i < 4; ++i) out += static_cast<char>((text.size() >> (8 * i)) & 0xff);
    return out + text;
  };
  auto tensor = [&](size_t k) {
    return "ctorch._utils\n_rebuild_tensor_v2\n((" + unicode("storage") + "ctorch\nFloatStorage\n" +
           unicode(std::to_string(k)) + unicode("cpu") +
           "K\001tQK\000K\001\205K\001\205\211ccollections\nOrderedDict\n)RtR"s;  // "s": it holds a NUL
  };
  std::string out = "\200\002]";
  for (size_t begin = 0; begin < n; begin += 1000) {
    const size_t end = std::min(n, begin + 1000);
    if (end - begin == 1) {
      out += tensor(begin) + "a";
      continue;
    }
    out += "(";
    for (size_t k = begin; k < end; ++k) out += tensor(k);
    out += "e";
  }
  return out + ".";
}

}  // namespace

TEST_CASE("a torch.save list of tensors is one positional sample per tensor") {
  ScratchDir dir;
  c10::impl::GenericList list(c10::TensorType::get());
  list.push_back(at::ones({2, 3}));
  list.push_back(at::full({1, 3}, 2.0));
  write_pickle(dir.file("calib.pt"), list);
  const CalibrationData data = CalibrationData::load(dir.file("calib.pt"));
  REQUIRE(data.size() == 2);
  CHECK(data.source == dir.file("calib.pt"));
  REQUIRE(data.samples[1].args.size() == 1);
  CHECK(at::equal(data.samples[1].args[0].toTensor(), at::full({1, 3}, 2.0)));
  CHECK(data.samples[0].kwargs.empty());
}

TEST_CASE("a Python torch.save list of one sample loads (LibTorch 1.13 cannot read its APPEND opcode)") {
  ScratchDir dir;
  SUBCASE("torch.save([torch.tensor([1.0, 2.0])], path), byte for byte as Python 3.11 and torch 1.13 write it") {
    const std::string pickle(
        "\200\002]q\000ctorch._utils\012_rebuild_tensor_v2\012q\001((X\007\000\000\000storageq\002ctorch\012FloatStorage"
        "\012q\003X\001\000\000\0000q\004X\003\000\000\000cpuq\005K\002tq\006QK\000K\002\205q\007K\001\205q\010\211"
        "ccollections\012OrderedDict\012q\011)Rq\012tq\013Rq\014a.",
        154);
    write_torch_save(dir.file("one.pt"), pickle, {{1.0f, 2.0f}});
    const CalibrationData data = CalibrationData::load(dir.file("one.pt"));
    REQUIRE(data.size() == 1);
    CHECK(at::equal(data.samples[0].args[0].toTensor(), at::tensor({1.0f, 2.0f})));
  }
  for (size_t n : {size_t{1}, size_t{2}, size_t{1000}, size_t{1001}, size_t{2001}}) {
    CAPTURE(n);
    std::vector<std::vector<float>> values(n);
    for (size_t k = 0; k < n; ++k) values[k] = {static_cast<float>(k)};
    write_torch_save(dir.file("list.pt"), python_list_pickle(n), values);
    const CalibrationData data = CalibrationData::load(dir.file("list.pt"));
    REQUIRE(data.size() == n);
    CHECK(data.samples[n - 1].args[0].toTensor().item<float>() == static_cast<float>(n - 1));
    CHECK(data.samples[n / 2].args[0].toTensor().item<float>() == static_cast<float>(n / 2));
  }
}

TEST_CASE("tuples are positional arguments and dicts keyword arguments") {
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::ivalue::Tuple::create({at::ones({1}), at::zeros({2})}));
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  dict.insert("input_ids", at::ones({1, 4}));
  list.push_back(dict);
  const CalibrationData data = CalibrationData::from_ivalue(list, "calib.pt");
  REQUIRE(data.size() == 2);
  CHECK(data.samples[0].args.size() == 2);
  REQUIRE(data.samples[1].kwargs.count("input_ids") == 1);
  CHECK(data.samples[1].args.empty());
}

TEST_CASE("calibration values that are not a list of samples are refused with what was found") {
  CHECK(thrown_message<modkit::ValueError>([] { CalibrationData::from_ivalue(at::ones({4, 8}), "c.pt"); }) ==
        std::string("cannot read calibration data 'c.pt': expected a list of samples (torch.save(list_of_tensors, "
                    "path)), found a single tensor of shape [4, 8]: save [t] for one sample, or list(t.split(1)) for "
                    "one sample per batch row"));
  CHECK(thrown_message<modkit::ValueError>([] { CalibrationData::from_ivalue(c10::IValue(3), "c.pt"); }) ==
        std::string("cannot read calibration data 'c.pt': expected a list of samples (torch.save(list_of_tensors, "
                    "path)), found an int"));
  c10::impl::GenericList empty(c10::TensorType::get());
  CHECK(thrown_message<modkit::ValueError>([&] { CalibrationData::from_ivalue(empty, "c.pt"); }) ==
        std::string("cannot read calibration data 'c.pt': expected at least one sample, found an empty list"));
  c10::impl::GenericList mixed(c10::AnyType::get());
  mixed.push_back(at::ones({1}));
  mixed.push_back(c10::IValue(std::string("text")));
  CHECK(thrown_message<modkit::ValueError>([&] { CalibrationData::from_ivalue(mixed, "c.pt"); }) ==
        std::string("cannot read calibration data 'c.pt': sample 1: expected a tensor, a tuple of forward arguments "
                    "or a dict of keyword arguments, found a str"));
}

TEST_CASE("safetensors tensors are samples in natural name order") {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"10":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("2":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}})";
  const CalibrationData data = CalibrationData::parse_safetensors(safetensors(header, floats({10, 2, 3})), "c.safetensors");
  REQUIRE(data.size() == 2);
  CHECK(at::equal(data.samples[0].args[0].toTensor(), at::tensor({2.0f, 3.0f}).reshape({1, 2})));
  CHECK(data.samples[1].args[0].toTensor().item<float>() == 10.0f);
}

TEST_CASE("broken safetensors files name the defect") {
  auto error = [](const std::string& bytes) {
    return thrown_message<modkit::ValueError>([&] { CalibrationData::parse_safetensors(bytes, "c.st"); });
  };
  const std::string prefix = "cannot read calibration data 'c.st': ";
  CHECK(error("abc") == prefix + "expected a safetensors file (an 8-byte header length first), found 3 bytes");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({1})).substr(0, 60)) ==
        prefix + "the safetensors header length is 54 bytes but only 52 follow (truncated file?)");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({1}))) ==
        prefix + "tensor 'a': data_offsets [0, 8] lie outside the 4 data bytes (truncated file?)");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2}))) ==
        prefix + "tensor 'a': shape [3] of F32 needs 12 bytes, found 8");
  CHECK(error(safetensors(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x")) ==
        prefix + "tensor 'a': expected dtype F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL, found \"F8\"");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1}))) ==
        prefix + "tensor 'a': expected a shape of non-negative integers (at most 2^40 elements), found [-1]");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[1048576,1048576,1048576],"data_offsets":[0,4]}})", floats({1}))) ==
        prefix + "tensor 'a': expected a shape of non-negative integers (at most 2^40 elements), found [1048576,1048576,1048576]");
  CHECK(error(safetensors("[1]", "")) == prefix + "expected the safetensors header to be a JSON object, found array");
  CHECK(error(safetensors(R"({"__metadata__":{}})", "")) ==
        prefix + "expected at least one tensor, found a safetensors file without tensors");
  CHECK_STARTS_WITH(error(safetensors("{oops", "")), prefix + "the safetensors header is not valid JSON (");
  // the tensors tile the data, as the safetensors library requires
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          floats({1, 2}))) ==
        prefix + "tensor 'b' (data_offsets [4, 8]) overlaps tensor 'a' (which ends at 8)");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", floats({1, 2}))) ==
        prefix + "data bytes [0, 4) belong to no tensor (the next is 'a'): expected tensors stored back to back");
  CHECK(error(safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({1, 2}))) ==
        prefix + "expected 4 data bytes after the header (the tensors' extent), found 8");
}

TEST_CASE("calibration files of the wrong kind are refused with what was found") {
  ScratchDir dir;
  const std::string prefix = "cannot read calibration data '";
  CHECK(load_error(dir.file("none.pt")) == prefix + dir.file("none.pt") + "': no such file");
  CHECK(load_error(dir.path()) == prefix + dir.path() + "': expected a file, found a directory");
  write(dir.file("empty.pt"), "");
  CHECK(load_error(dir.file("empty.pt")) == prefix + dir.file("empty.pt") + "': expected a torch.save or safetensors file, found an empty file");
  write(dir.file("text.pt"), "hello world, not tensors");
  CHECK(load_error(dir.file("text.pt")) ==
        prefix + dir.file("text.pt") + "': expected a torch.save archive (a zip file) or a safetensors file, found neither");
  write(dir.file("legacy.pt"), std::string("\x80\x02") + "rest");
  CHECK(load_error(dir.file("legacy.pt")) ==
        prefix + dir.file("legacy.pt") + "': found a legacy (pre-1.6) torch.save file; save it again with the default zip format");
  c10::impl::GenericList list(c10::TensorType::get());
  list.push_back(at::ones({64, 64}));
  write_pickle(dir.file("whole.pt"), list);
  std::ifstream in(dir.file("whole.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write(dir.file("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  CHECK_STARTS_WITH(load_error(dir.file("truncated.pt")),
                    prefix + dir.file("truncated.pt") + "': expected a torch.save archive, found a corrupt one or another zip file (");
}

TEST_CASE("synthetic samples are reproducible and have outlier channels") {
  const CalibrationData a = CalibrationData::synthetic(3, {2, 4, 48}, 7);
  const CalibrationData b = CalibrationData::synthetic(3, {2, 4, 48}, 7);
  REQUIRE(a.size() == 3);
  CHECK(a.source == "<synthetic: 3 x [2, 4, 48]>");
  CHECK(at::equal(a.samples[2].args[0].toTensor(), b.samples[2].args[0].toTensor()));
  const at::Tensor x = at::cat({a.samples[0].args[0].toTensor(), a.samples[1].args[0].toTensor()}).reshape({-1, 48});
  const at::Tensor range = x.abs().amax(0);
  const double outlier = range[16].item<double>();  // channels 0, 16 and 32 carry outliers
  const double typical = range.median().item<double>();
  CHECK(outlier > 8 * typical);
  CalibrationData c = a;
  c.truncate(1);
  CHECK(c.size() == 1);
}
