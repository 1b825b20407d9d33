// Parameter schema declarations and typed access to a modifier's parameters.
#pragma once

#include <modkit/modkit.h>
#include <modkit/sdk/error.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

/// Writes a JSON literal as C++ source: MODKIT_JSON(0.5), MODKIT_JSON("cubic"),
/// MODKIT_JSON(["Linear", "Conv2d"]). Stringizing escapes quotes and
/// backslashes inside string literals exactly as JSON does.
#define MODKIT_JSON(...) #__VA_ARGS__

namespace modkit::sdk {

/// Declared type of a parameter.
enum class Type : uint32_t {
  Bool = MODKIT_TYPE_BOOL,
  Int = MODKIT_TYPE_INT,
  Float = MODKIT_TYPE_FLOAT,
  String = MODKIT_TYPE_STRING,
  List = MODKIT_TYPE_LIST,
  Table = MODKIT_TYPE_TABLE,
  StringList = MODKIT_TYPE_STRING_LIST,
  Any = MODKIT_TYPE_ANY,
};

/// One entry of a modifier's parameter schema. Values are JSON text (see
/// MODKIT_JSON) so the default reads exactly as written. A parameter without a
/// default is required; use MODKIT_JSON(null) for "optional, no value".
struct ParamSpec {
  const char* name = nullptr;
  Type type = Type::Any;
  const char* default_json = nullptr;
  const char* doc = "";
  const char* min_json = nullptr;
  const char* max_json = nullptr;
  const char* choices_json = nullptr;
  bool min_exclusive = false;
  bool max_exclusive = false;

  /// Inclusive bounds, as JSON numbers: lo <= value <= hi.
  constexpr ParamSpec range(const char* lo, const char* hi) const {
    ParamSpec p = *this;
    p.min_json = lo;
    p.max_json = hi;
    return p;
  }
  /// Bounds with either end open, e.g. range_open(MODKIT_JSON(0), MODKIT_JSON(1), false, true)
  /// for 0 <= value < 1 (a fraction that must leave something).
  constexpr ParamSpec range_open(const char* lo, const char* hi, bool lo_open, bool hi_open) const {
    ParamSpec p = range(lo, hi);
    p.min_exclusive = lo_open;
    p.max_exclusive = hi_open;
    return p;
  }
  /// The allowed values, as a JSON array.
  constexpr ParamSpec choices(const char* json_array) const {
    ParamSpec p = *this;
    p.choices_json = json_array;
    return p;
  }
  constexpr bool required() const { return default_json == nullptr; }
};

namespace detail {
inline const char* type_name(uint32_t type) {
  switch (type) {
    case MODKIT_TYPE_NULL: return "null";
    case MODKIT_TYPE_BOOL: return "bool";
    case MODKIT_TYPE_INT: return "int";
    case MODKIT_TYPE_FLOAT: return "float";
    case MODKIT_TYPE_STRING: return "string";
    case MODKIT_TYPE_LIST: return "list";
    case MODKIT_TYPE_TABLE: return "table";
    case MODKIT_TYPE_STRING_LIST: return "string list";
    case MODKIT_TYPE_ANY: return "any";
  }
  return "unknown";
}
}  // namespace detail

/// A read-only view of a parameter value tree (borrowed from the host).
class Value {
 public:
  explicit Value(const modkit_value* v, std::string path) : v_(v), path_(std::move(path)) {}

  uint32_t type() const { return v_ == nullptr ? uint32_t{MODKIT_TYPE_NULL} : v_->type; }
  bool is_null() const { return type() == MODKIT_TYPE_NULL; }
  const std::string& path() const { return path_; }

  /// Converts to T: bool, integral types, double/float, std::string,
  /// std::vector<U> of those, or std::optional<U> (null gives nullopt).
  template <class T>
  T as() const;

  /// Items of a LIST or entries of a TABLE.
  size_t size() const { return is_container() ? v_->count : 0; }
  Value item(size_t i) const {
    expect_container();
    return Value(v_->items[i], path_ + "[" + std::to_string(i) + "]");
  }
  std::string key(size_t i) const {
    expect(MODKIT_TYPE_TABLE);
    return v_->keys[i];
  }
  /// The entry `name` of a TABLE; a null value when absent.
  Value operator[](const std::string& name) const {
    expect(MODKIT_TYPE_TABLE);
    for (size_t i = 0; i < v_->count; ++i) {
      if (name == v_->keys[i]) return Value(v_->items[i], child(name));
    }
    return Value(nullptr, child(name));
  }
  bool contains(const std::string& name) const {
    if (type() != MODKIT_TYPE_TABLE) return false;
    for (size_t i = 0; i < v_->count; ++i) {
      if (name == v_->keys[i]) return true;
    }
    return false;
  }

 private:
  template <class T> struct Tag {};
  std::string child(const std::string& name) const { return path_.empty() ? name : path_ + "." + name; }
  bool is_container() const { return type() == MODKIT_TYPE_LIST || type() == MODKIT_TYPE_TABLE; }
  void expect_container() const {
    if (!is_container()) fail("list or table");
  }
  void expect(uint32_t t) const {
    if (type() != t) fail(detail::type_name(t));
  }
  [[noreturn]] void fail(const char* expected) const {
    throw Error(MODKIT_ERROR_INVALID_ARGUMENT, "parameter '" + path_ + "': expected " + expected +
                                                   ", found " + detail::type_name(type()));
  }

  bool get(Tag<bool>) const {
    expect(MODKIT_TYPE_BOOL);
    return v_->int_value != 0;
  }
  double get(Tag<double>) const {
    if (type() == MODKIT_TYPE_INT) return static_cast<double>(v_->int_value);
    expect(MODKIT_TYPE_FLOAT);
    return v_->float_value;
  }
  float get(Tag<float>) const { return static_cast<float>(get(Tag<double>{})); }
  std::string get(Tag<std::string>) const {
    expect(MODKIT_TYPE_STRING);
    return v_->string_value;
  }
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  I get(Tag<I>) const {
    expect(MODKIT_TYPE_INT);
    return static_cast<I>(v_->int_value);
  }
  template <class U>
  std::vector<U> get(Tag<std::vector<U>>) const {
    std::vector<U> out;
    if (type() != MODKIT_TYPE_LIST) {
      if (std::is_same_v<U, std::string> && type() == MODKIT_TYPE_STRING) {
        out.push_back(as<U>());  // a single string where a string list is declared
        return out;
      }
      fail("list");
    }
    out.reserve(v_->count);
    for (size_t i = 0; i < v_->count; ++i) out.push_back(item(i).template as<U>());
    return out;
  }
  template <class U>
  std::optional<U> get(Tag<std::optional<U>>) const {
    if (is_null()) return std::nullopt;
    return as<U>();
  }

  const modkit_value* v_;
  std::string path_;
};

template <class T>
T Value::as() const {
  return get(Tag<T>{});
}

/// The parameters a modifier was created with. The host has already checked
/// them against the declared schema and filled in defaults; reading a name
/// the schema does not declare is a programming error and throws.
class Params {
 public:
  Params(const modkit_value* table, const ParamSpec* specs, size_t spec_count)
      : table_(table, ""), specs_(specs), spec_count_(spec_count) {}

  /// The value of `name`, converted to T.
  template <class T>
  T get(const std::string& name) const {
    return value(name).as<T>();
  }
  /// The value of `name`, or `fallback` when it is null.
  template <class T>
  T get_or(const std::string& name, T fallback) const {
    Value v = value(name);
    return v.is_null() ? fallback : v.as<T>();
  }
  /// The raw value of a declared parameter (null when unset).
  Value value(const std::string& name) const {
    if (!declared(name)) {
      throw Error(MODKIT_ERROR_INTERNAL,
                  "parameter '" + name + "' is not declared in the modifier's schema");
    }
    if (table_.type() != MODKIT_TYPE_TABLE) return Value(nullptr, name);
    return table_[name];
  }
  bool declared(const std::string& name) const {
    for (size_t i = 0; i < spec_count_; ++i) {
      if (name == specs_[i].name) return true;
    }
    // lifecycle keys every modifier accepts
    return name == "start" || name == "end" || name == "update" || name == "index" ||
           name == "group";
  }

 private:
  Value table_;
  const ParamSpec* specs_;
  size_t spec_count_;
};

}  // namespace modkit::sdk
