// Registry cache encoding: a checksummed header, then length-prefixed little-endian records; every read is bounds-checked.
#include "cache_format.hpp"
#include <modkit/core/errors.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace modkit::detail {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'D', 'K', 'I', 'T', 'R', 'C'};
constexpr uint32_t kFormatVersion = 2;  // 2: open parameter bounds
// JSON values (defaults, bounds, choices) nest; a bound on depth keeps a
// hostile file from exhausting the stack
constexpr int kMaxDepth = 32;

enum Tag : uint8_t { kNull, kFalse, kTrue, kInt, kUnsigned, kFloat, kString, kArray, kObject };

// FNV-1a over 8-byte words (then the tail bytes): catches truncation and
// stray writes, not tampering, and costs a fraction of a millisecond per MiB.
uint64_t checksum(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, data + i, sizeof word);
    h = (h ^ word) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void value(const nlohmann::json& v, int depth = 0) {
    if (depth > kMaxDepth) throw ValueError("a value nested deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (v.type()) {
      case nlohmann::json::value_t::boolean: u8(v.get<bool>() ? kTrue : kFalse); break;
      case nlohmann::json::value_t::number_integer: u8(kInt), u64(static_cast<uint64_t>(v.get<int64_t>())); break;
      case nlohmann::json::value_t::number_unsigned: u8(kUnsigned), u64(v.get<uint64_t>()); break;
      case nlohmann::json::value_t::number_float: {
        const double d = v.get<double>();
        uint64_t bits = 0;
        std::memcpy(&bits, &d, sizeof bits);
        u8(kFloat), u64(bits);
        break;
      }
      case nlohmann::json::value_t::string: u8(kString), str(v.get_ref<const std::string&>()); break;
      case nlohmann::json::value_t::array:
        u8(kArray), u32(static_cast<uint32_t>(v.size()));
        for (const auto& item : v) value(item, depth + 1);
        break;
      case nlohmann::json::value_t::object:
        u8(kObject), u32(static_cast<uint32_t>(v.size()));
        for (const auto& [key, item] : v.items()) str(key), value(item, depth + 1);
        break;
      default: u8(kNull); break;  // null (binary and discarded values never occur in metadata)
    }
  }
  void info(const ModifierInfo& m) {
    str(m.name);
    u32(m.abi_major);
    u32(m.abi_min_minor);
    str(m.version);
    str(m.summary);
    str(m.torch_version);
    u32(static_cast<uint32_t>(m.cxx11_abi));
    str(m.pipeline);
    u32(static_cast<uint32_t>(m.params.size()));
    for (const auto& p : m.params) {
      str(p.name);
      str(p.type);
      u8(p.required ? 1 : 0);
      value(p.default_value);
      value(p.min);
      value(p.max);
      u8(static_cast<uint8_t>((p.min_exclusive ? 1 : 0) | (p.max_exclusive ? 2 : 0)));
      value(p.choices);
      str(p.doc);
    }
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& name) : p_(data), end_(data + size), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const { throw ValueError("registry cache '" + name_ + "' " + what); }

  size_t left() const { return static_cast<size_t>(end_ - p_); }
  const uint8_t* here() const { return p_; }

  const uint8_t* take(size_t n, const char* what) {
    if (n > left()) {
      fail("is truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes, " +
           std::to_string(left()) + " left");
    }
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint8_t u8(const char* what) { return *take(1, what); }
  uint32_t u32(const char* what) {
    const uint8_t* b = take(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b[i]) << (8 * i);
    return v;
  }
  uint64_t u64(const char* what) {
    const uint8_t* b = take(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    return v;
  }
  bool flag(const char* what) {
    const uint8_t v = u8(what);
    if (v > 1) fail("has a corrupt " + std::string(what) + " (expected 0 or 1, found " + std::to_string(v) + ")");
    return v == 1;
  }
  std::string str(const char* what) { return std::string(view(what)); }
  std::string_view view(const char* what) {
    const uint32_t n = u32(what);
    const uint8_t* b = take(n, what);
    return {reinterpret_cast<const char*>(b), n};
  }
  void skip_str(const char* what) { take(u32(what), what); }
  // A count of items that each take at least `min_bytes`: checked against
  // what is left, so a corrupt count never reserves more than the file holds.
  uint32_t count(const char* what, size_t min_bytes) {
    const uint32_t n = u32(what);
    if (static_cast<uint64_t>(n) * min_bytes > left()) {
      fail("is truncated: " + std::to_string(n) + " " + what + " cannot fit in the " + std::to_string(left()) +
           " bytes left");
    }
    return n;
  }
  nlohmann::json value(const char* what, int depth = 0) {
    if (depth > kMaxDepth) fail("has a value nested deeper than " + std::to_string(kMaxDepth) + " levels");
    const uint8_t tag = u8(what);
    switch (tag) {
      case kNull: return nullptr;
      case kFalse: return false;
      case kTrue: return true;
      case kInt: return static_cast<int64_t>(u64(what));
      case kUnsigned: return u64(what);
      case kFloat: {
        const uint64_t bits = u64(what);
        double d = 0;
        std::memcpy(&d, &bits, sizeof d);
        return d;
      }
      case kString: return str(what);
      case kArray: {
        nlohmann::json a = nlohmann::json::array();
        const uint32_t n = count(what, 1);
        for (uint32_t i = 0; i < n; ++i) a.push_back(value(what, depth + 1));
        return a;
      }
      case kObject: {
        nlohmann::json o = nlohmann::json::object();
        const uint32_t n = count(what, 5);
        for (uint32_t i = 0; i < n; ++i) {
          std::string key = str(what);
          o[std::move(key)] = value(what, depth + 1);
        }
        return o;
      }
    }
    fail("has a corrupt " + std::string(what) + " (value tag " + std::to_string(tag) + ")");
  }
  ModifierInfo info() {
    ModifierInfo m;
    m.name = str("type name");
    m.abi_major = u32("ABI major");
    m.abi_min_minor = u32("ABI minor");
    m.version = str("type version");
    m.summary = str("type summary");
    m.torch_version = str("LibTorch version");
    m.cxx11_abi = static_cast<int32_t>(u32("C++ ABI flag"));
    m.pipeline = str("pipeline");  // checked by check_info below
    const uint32_t n = count("parameters", 4 + 4 + 1 + 4 + 4);
    m.params.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      ParamInfo p;
      p.name = str("parameter name");
      p.type = str("parameter type");
      p.required = flag("required flag");
      p.default_value = value("parameter default");
      p.min = value("parameter minimum");
      p.max = value("parameter maximum");
      const uint8_t open = u8("parameter bound flags");
      if (open > 3) fail("has corrupt parameter bound flags (expected 0 to 3, found " + std::to_string(open) + ")");
      p.min_exclusive = (open & 1) != 0;
      p.max_exclusive = (open & 2) != 0;
      p.choices = value("parameter choices");
      p.doc = str("parameter doc");
      m.params.push_back(std::move(p));
    }
    try {
      check_info(m);
    } catch (const std::exception& e) {
      fail(std::string("has an invalid entry: ") + e.what());
    }
    return m;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& name_;
};

// Stages a scan can record; `shadowed` is decided by the walk, never cached.
bool cached_stage(uint8_t v, LoadStage& out) {
  for (LoadStage s : {LoadStage::Scan, LoadStage::Open, LoadStage::Resolve, LoadStage::Validate, LoadStage::Loaded,
                      LoadStage::Isolated}) {
    if (v == static_cast<uint8_t>(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

// The types block of one file: a count, then each type, one per loaded name in order.
std::vector<ModifierInfo> read_types(Reader& in, const std::vector<std::string_view>& names, std::string_view path) {
  const uint32_t types = in.count("types", 4 * 8);
  if (types != names.size()) {
    in.fail("lists " + std::to_string(types) + " valid types for '" + std::string(path) + "', expected one per loaded record (" +
            std::to_string(names.size()) + ")");
  }
  std::vector<ModifierInfo> out;
  out.reserve(types);
  for (uint32_t i = 0; i < types; ++i) {
    out.push_back(in.info());
    if (out.back().name != names[i]) {
      in.fail("has type '" + out.back().name + "' where its records say '" + std::string(names[i]) + "' in '" +
              std::string(path) + "'");
    }
  }
  if (in.left() != 0) {
    in.fail("has " + std::to_string(in.left()) + " stray bytes after the types of '" + std::string(path) + "'");
  }
  return out;
}

std::string encode_types(const std::vector<ModifierInfo>& types) {
  Writer w;
  w.u32(static_cast<uint32_t>(types.size()));
  for (const auto& t : types) w.info(t);
  return std::move(w.bytes());
}

CachedFile read_file_entry(Reader& in, const CacheBytes& bytes, const std::shared_ptr<const std::string>& name) {
  CachedFile f;
  const std::string_view path = in.view("file path");
  if (path.empty()) in.fail("has an entry without a file path");
  f.path = path;
  f.experimental = in.flag("registry flag");
  f.stamp.device = in.u64("file stamp");
  f.stamp.inode = in.u64("file stamp");
  f.stamp.size = in.u64("file stamp");
  f.stamp.mtime_ns = static_cast<int64_t>(in.u64("file stamp"));
  f.stamp.ctime_ns = static_cast<int64_t>(in.u64("file stamp"));
  // the records stay encoded until used; they are checked here, and the
  // names of the loaded ones kept (the types must match them)
  const uint32_t records = in.count("records", 4 + 1 + 4);
  const uint8_t* first_record = in.here();
  std::vector<std::string_view> loaded;
  loaded.reserve(records);
  for (uint32_t i = 0; i < records; ++i) {
    const std::string_view record_name = in.view("record name");
    const uint8_t stage = in.u8("record stage");
    LoadStage parsed = LoadStage::Scan;
    if (!cached_stage(stage, parsed)) {
      in.fail("has a corrupt record stage " + std::to_string(stage) + " for '" + f.path + "'");
    }
    in.skip_str("record reason");
    if (parsed == LoadStage::Loaded) {
      loaded.push_back(record_name);
    } else {
      ++f.encoded_failures;
    }
  }
  const auto* base = reinterpret_cast<const uint8_t*>(bytes->data());
  f.encoded_records = {bytes, static_cast<size_t>(first_record - base), static_cast<size_t>(in.here() - first_record),
                       records};
  // the schemas stay encoded until a type is used
  const uint64_t block = in.u64("types size");
  if (block > in.left()) {
    in.fail("is truncated: the types of '" + f.path + "' need " + std::to_string(block) + " bytes, " +
            std::to_string(in.left()) + " left");
  }
  const uint8_t* at = in.take(static_cast<size_t>(block), "types");
  f.types = CachedTypes::encoded_in(bytes, static_cast<size_t>(at - base), static_cast<size_t>(block), name, path,
                                    std::move(loaded));
  return f;
}

}  // namespace

struct CachedTypes::State {
  bool known = false;
  std::vector<ModifierInfo> types;
  // while encoded:
  CacheBytes bytes;
  size_t offset = 0, size = 0;
  std::shared_ptr<const std::string> file;  // the cache file
  std::string_view plugin;                  // the plugin file they describe
  std::vector<std::string_view> names;      // views into `bytes`, or into the copies below
  std::string own_plugin;                   // copies, when given as strings (State never moves)
  std::vector<std::string> own_names;
  std::once_flag decoded;
  std::string error;  // why they do not decode ("" when they do)

  std::vector<ModifierInfo> decode() const {
    Reader in(reinterpret_cast<const uint8_t*>(bytes->data()) + offset, size, *file);
    return read_types(in, names, plugin);
  }
};

CachedTypes::CachedTypes() : state_(std::make_shared<State>()) { state_->known = true; }

CachedTypes::CachedTypes(std::vector<ModifierInfo> types) : CachedTypes() { state_->types = std::move(types); }

CachedTypes::CachedTypes(CacheBytes bytes, size_t offset, size_t size, std::string file,
                         std::string plugin, std::vector<std::string> names)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.bytes = std::move(bytes);
  s.offset = offset;
  s.size = size;
  s.file = std::make_shared<const std::string>(std::move(file));
  s.own_plugin = std::move(plugin);
  s.own_names = std::move(names);
  s.plugin = s.own_plugin;
  s.names.assign(s.own_names.begin(), s.own_names.end());
}

CachedTypes CachedTypes::encoded_in(CacheBytes bytes, size_t offset, size_t size,
                                    std::shared_ptr<const std::string> file, std::string_view plugin,
                                    std::vector<std::string_view> names) {
  CachedTypes t;
  State& s = *t.state_;
  s.known = false;
  s.bytes = std::move(bytes);
  s.offset = offset;
  s.size = size;
  s.file = std::move(file);
  s.plugin = plugin;
  s.names = std::move(names);
  return t;
}

const std::vector<ModifierInfo>& CachedTypes::get() const {
  State& s = *state_;
  if (s.known) return s.types;
  std::call_once(s.decoded, [&s] {
    try {
      s.types = s.decode();
    } catch (const std::exception& e) {
      s.error = e.what();
    }
  });
  if (!s.error.empty()) throw ValueError(s.error);
  return s.types;
}

std::vector<ModifierInfo> CachedTypes::decode() const {
  if (state_->known) return state_->types;
  return state_->decode();
}

size_t CachedTypes::size() const { return state_->known ? state_->types.size() : state_->names.size(); }

std::string_view CachedTypes::name(size_t index) const {
  return state_->known ? std::string_view(state_->types.at(index).name) : state_->names.at(index);
}

std::vector<LoadRecord> CachedFile::load_records() const {
  std::vector<LoadRecord> out;
  append_records(out);
  return out;
}

void CachedFile::append_records(std::vector<LoadRecord>& out) const {
  if (!encoded_records.bytes) {
    out.insert(out.end(), records.begin(), records.end());
    return;
  }
  Reader in(reinterpret_cast<const uint8_t*>(encoded_records.bytes->data()) + encoded_records.offset,
            encoded_records.size, path);
  if (const size_t needed = out.size() + encoded_records.count; needed > out.capacity()) {
    out.reserve(std::max(needed, 2 * out.capacity()));  // geometric: callers append entry after entry
  }
  for (uint32_t i = 0; i < encoded_records.count; ++i) {
    LoadRecord& r = out.emplace_back();
    r.name = in.view("record name");
    cached_stage(in.u8("record stage"), r.stage);  // checked when the entry was read
    r.reason = in.view("record reason");
    r.file = path;
    r.experimental = experimental;
    r.source = RecordSource::Cache;
  }
}

std::string CachedTypes::encoded() const {
  if (state_->known) return encode_types(state_->types);
  return std::string(state_->bytes->substr(state_->offset, state_->size));
}

CacheBytes cache_bytes(std::string text) {
  struct Owned {
    std::string text;
    std::string_view view;
  };
  auto owned = std::make_shared<Owned>();
  owned->text = std::move(text);
  owned->view = owned->text;
  return CacheBytes(owned, &owned->view);  // the view shares the string's lifetime
}

std::string encode_cache(const CacheImage& image) {
  Writer payload;
  payload.u32(static_cast<uint32_t>(image.files.size()));
  for (const auto& f : image.files) {
    payload.str(f.path);
    payload.u8(f.experimental ? 1 : 0);
    payload.u64(f.stamp.device);
    payload.u64(f.stamp.inode);
    payload.u64(f.stamp.size);
    payload.u64(static_cast<uint64_t>(f.stamp.mtime_ns));
    payload.u64(static_cast<uint64_t>(f.stamp.ctime_ns));
    if (const auto& e = f.encoded_records; e.bytes) {
      payload.u32(e.count);  // as read: written again without decoding
      payload.bytes().append(e.bytes->data() + e.offset, e.size);
    } else {
      payload.u32(static_cast<uint32_t>(f.records.size()));
      for (const auto& r : f.records) {
        payload.str(r.name);
        payload.u8(static_cast<uint8_t>(r.stage));
        payload.str(r.reason);
      }
    }
    const std::string types = f.types.encoded();
    payload.u64(types.size());
    payload.bytes().append(types);
  }
  const std::string& body = payload.bytes();
  Writer out;
  out.bytes().append(kMagic, sizeof kMagic);
  out.u32(kFormatVersion);
  out.str(image.host_key);
  out.u64(body.size());
  out.u64(checksum(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
  out.bytes().append(body);
  return std::move(out.bytes());
}

std::vector<CachedFile> decode_cache_payload(CacheBytes bytes, size_t offset,
                                             const std::string& name) {
  if (offset > bytes->size()) throw ValueError("registry cache '" + name + "' has no payload");
  Reader in(reinterpret_cast<const uint8_t*>(bytes->data()) + offset, bytes->size() - offset, name);
  // the smallest entry: an empty path is refused, so 1 byte of it, plus flag, stamp, a count and a size
  const uint32_t files = in.count("file entries", 4 + 1 + 1 + 5 * 8 + 4 + 8);
  std::vector<CachedFile> out;
  out.reserve(files);
  const auto shared_name = std::make_shared<const std::string>(name);
  for (uint32_t i = 0; i < files; ++i) out.push_back(read_file_entry(in, bytes, shared_name));
  if (in.left() != 0) in.fail("has " + std::to_string(in.left()) + " bytes after its last entry");
  return out;
}

CacheImage decode_cache(CacheBytes bytes, const std::string& name) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes->data());
  const size_t size = bytes->size();
  Reader in(data, size, name);
  if (size < sizeof kMagic || std::memcmp(data, kMagic, sizeof kMagic) != 0) {
    in.fail("is not a modkit registry cache (expected the magic 'MODKITRC')");
  }
  in.take(sizeof kMagic, "magic");
  const uint32_t version = in.u32("format version");
  if (version != kFormatVersion) {
    in.fail("has format version " + std::to_string(version) + ", expected " + std::to_string(kFormatVersion));
  }
  CacheImage image;
  image.host_key = in.str("host key");
  const uint64_t payload_size = in.u64("payload size");
  const uint64_t expected_sum = in.u64("checksum");
  if (payload_size != in.left()) {
    in.fail("is truncated or padded: expected " + std::to_string(payload_size) + " payload bytes, found " +
            std::to_string(in.left()));
  }
  if (const uint64_t actual = checksum(in.here(), in.left()); actual != expected_sum) {
    in.fail("is corrupt: checksum " + hex64(actual) + ", expected " + hex64(expected_sum));
  }
  image.files = decode_cache_payload(std::move(bytes), static_cast<size_t>(in.here() - data), name);
  return image;
}

}  // namespace modkit::detail
