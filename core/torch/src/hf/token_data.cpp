// Token data: JSON lines of input_ids, safetensors input_ids, or torch.save lists of integer tensors.
#include <modkit/core/errors.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/hf/token_data.hpp>
#include <modkit/torch/safetensors.hpp>

#include <ATen/ops/from_blob.h>
#include <ATen/ops/tensor.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace modkit::hf {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw ValueError("token data '" + path + "': " + why);
}

std::string read_all(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, "no such file");
  if (S_ISDIR(st.st_mode)) fail(path, "expected a file, found a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file for reading");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Checks every id of `ids` (int64, 1-D) against the vocabulary; `where` names the sequence.
void check_ids(const at::Tensor& ids, int64_t vocab_size, const std::string& path, const std::string& where) {
  if (ids.numel() == 0) fail(path, where + ": the sequence is empty");
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (p[i] < 0 || p[i] >= vocab_size) {
      fail(path, where + ": token " + std::to_string(p[i]) + " at position " + std::to_string(i) +
                     " is outside the vocabulary (vocab_size " + std::to_string(vocab_size) + ")");
    }
  }
}

void from_json_lines(const std::string& text, int64_t vocab_size, const std::string& path, TokenData& out) {
  std::istringstream in(text);
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(number);
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(path, where + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!row.is_object() || !row.contains("input_ids") || !row["input_ids"].is_array()) {
      fail(path, where + ": expected an object with \"input_ids\": [token ids], found " + row.dump().substr(0, 120));
    }
    std::vector<int64_t> ids;
    for (const auto& id : row["input_ids"]) {
      if (!id.is_number_integer()) {
        fail(path, where + ": expected integer token ids, found " + id.dump() + " at position " + std::to_string(ids.size()));
      }
      ids.push_back(id.get<int64_t>());
    }
    at::Tensor t = at::tensor(ids, at::kLong);
    check_ids(t, vocab_size, path, where);
    out.sequences.push_back(std::move(t));
  }
}

// One sequence per row of an integer tensor (1-D: one sequence).
void add_rows(const at::Tensor& tensor, int64_t vocab_size, const std::string& path, const std::string& where,
              TokenData& out) {
  if (at::isFloatingType(tensor.scalar_type()) || tensor.scalar_type() == at::kBool) {
    fail(path, where + ": expected integer token ids, found a " + std::string(c10::toString(tensor.scalar_type())) +
                   " tensor");
  }
  if (tensor.dim() != 1 && tensor.dim() != 2) {
    fail(path, where + ": expected a 2-D tensor [sequences, length] (or 1-D for one sequence), found " +
                   std::to_string(tensor.dim()) + " dimensions");
  }
  const at::Tensor rows = (tensor.dim() == 1 ? tensor.unsqueeze(0) : tensor).to(at::kLong).contiguous();
  for (int64_t r = 0; r < rows.size(0); ++r) {
    at::Tensor row = rows[r].clone();
    check_ids(row, vocab_size, path, where + (rows.size(0) > 1 ? " row " + std::to_string(r) : std::string()));
    out.sequences.push_back(std::move(row));
  }
}

}  // namespace

int64_t TokenData::tokens() const {
  int64_t n = 0;
  for (const at::Tensor& s : sequences) n += s.numel();
  return n;
}

TokenData TokenData::load(const std::string& path, int64_t vocab_size) {
  TokenData out;
  out.source = path;
  const std::string bytes = read_all(path);
  if (bytes.empty()) fail(path, "expected JSON lines, a safetensors or a torch.save file, found an empty file");
  if (bytes.compare(0, 4, std::string("PK\x03\x04", 4)) == 0) {
    const CalibrationData data = CalibrationData::load(path);
    for (size_t i = 0; i < data.size(); ++i) {
      const auto& args = data.samples[i].args;
      if (args.size() != 1 || !args[0].isTensor()) fail(path, "sample " + std::to_string(i) + ": expected one tensor of token ids");
      add_rows(args[0].toTensor(), vocab_size, path, "sample " + std::to_string(i), out);
    }
  } else if (bytes.size() >= 9 && bytes[8] == '{') {
    const safetensors::Header header =
        safetensors::parse_header(bytes.data(), bytes.size(), "token data '" + path + "': ");
    const safetensors::Entry* ids = nullptr;
    for (const auto& e : header.tensors) {
      if (e.name == "input_ids") ids = &e;
    }
    if (ids == nullptr) {
      std::string names;
      for (const auto& e : header.tensors) names += (names.empty() ? "'" : ", '") + e.name + "'";
      fail(path, "expected a tensor named 'input_ids', found " + names);
    }
    if (ids->shape.size() != 2) {
      fail(path, "tensor 'input_ids': expected 2 dimensions [sequences, length], found shape of " +
                     std::to_string(ids->shape.size()));
    }
    const at::Tensor t = at::from_blob(const_cast<char*>(bytes.data() + header.data_offset + ids->begin), ids->shape,
                                       at::TensorOptions().dtype(ids->scalar_type));
    add_rows(t, vocab_size, path, "tensor 'input_ids'", out);
  } else {
    from_json_lines(bytes, vocab_size, path, out);
  }
  if (out.sequences.empty()) fail(path, "expected at least one sequence, found none");
  return out;
}

TokenData TokenData::windows(int64_t length) const {
  if (length < 2) throw ValueError("a window of " + std::to_string(length) + " tokens: expected at least 2");
  TokenData out;
  out.source = source;
  for (const at::Tensor& s : sequences) {
    for (int64_t begin = 0; begin < s.numel(); begin += length) {
      const int64_t n = std::min(length, s.numel() - begin);
      if (n >= 2) out.sequences.push_back(s.narrow(0, begin, n));
    }
  }
  return out;
}

}  // namespace modkit::hf
