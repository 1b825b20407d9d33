// MODKIT_EXPORT_MODIFIER: writes a modifier's descriptor, its metadata section and the noexcept trampolines.
#pragma once

#include <modkit/modkit.h>
#include <modkit/sdk/error.hpp>
#include <modkit/sdk/modifier.hpp>
#include <modkit/sdk/params.hpp>

#include <array>
#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace modkit::sdk::detail {

/// The LibTorch version a plugin is built against. This overload wins unless
/// <modkit/sdk/torch.hpp> was included, which adds a better match.
constexpr const char* torch_version(...) { return ""; }

#if defined(_GLIBCXX_USE_CXX11_ABI)
constexpr int kCxx11Abi = _GLIBCXX_USE_CXX11_ABI;
#else
constexpr int kCxx11Abi = -1;
#endif

template <class T, class = void>
struct PipelineOf : std::integral_constant<uint32_t, MODKIT_PIPELINE_DATAFREE> {};
template <class T>
struct PipelineOf<T, std::void_t<decltype(T::pipeline)>>
    : std::integral_constant<uint32_t, static_cast<uint32_t>(T::pipeline)> {};

template <class T, class = void>
struct MinMinorOf : std::integral_constant<uint16_t, 0> {};
template <class T>
struct MinMinorOf<T, std::void_t<decltype(T::abi_min_minor)>>
    : std::integral_constant<uint16_t, static_cast<uint16_t>(T::abi_min_minor)> {};

/// Everything the metadata JSON says about one modifier.
struct ModifierInfo {
  const char* name;
  const char* version;
  const char* summary;
  const char* torch_version;
  int cxx11_abi;
  uint32_t pipeline;
  uint16_t min_minor;
  const ParamSpec* params;
  size_t param_count;
};

/// Counts (out == nullptr) or writes JSON, usable in constant expressions.
struct JsonWriter {
  char* out = nullptr;
  size_t n = 0;

  constexpr void put(char c) {
    if (out != nullptr) out[n] = c;
    ++n;
  }
  constexpr void raw(const char* s) {
    while (*s != '\0') put(*s++);
  }
  constexpr void number(long v) {
    if (v < 0) {
      put('-');
      v = -v;
    }
    char digits[24] = {};
    int k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (k > 0) put(digits[--k]);
  }
  constexpr void string(const char* s) {
    constexpr const char* hex = "0123456789abcdef";
    put('"');
    for (; *s != '\0'; ++s) {
      const auto c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        put('\\');
        put(static_cast<char>(c));
      } else if (c < 0x20) {
        raw("\\u00");
        put(hex[c >> 4]);
        put(hex[c & 15]);
      } else {
        put(static_cast<char>(c));
      }
    }
    put('"');
  }
  constexpr void json_or_null(const char* s) { raw(s != nullptr ? s : "null"); }
  constexpr void key(const char* k) {
    string(k);
    put(':');
  }
};

constexpr const char* type_keyword(Type t) {
  switch (t) {
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "string";
    case Type::List: return "list";
    case Type::Table: return "table";
    case Type::StringList: return "string_list";
    case Type::Any: return "any";
  }
  return "any";
}

/// The keyword of pipeline code `p` (modkit.h's MODKIT_PIPELINES), or nullptr for no pipeline.
constexpr const char* pipeline_keyword(uint32_t p) {
#define MODKIT_PIPELINE_KEYWORD_(NAME, VALUE, KEYWORD) \
  if (p == VALUE) return KEYWORD;
  MODKIT_PIPELINES(MODKIT_PIPELINE_KEYWORD_)
#undef MODKIT_PIPELINE_KEYWORD_
  return nullptr;
}

constexpr void render(JsonWriter& w, const ModifierInfo& m) {
  w.put('{');
  w.key("symbol"), w.string(m.name), w.put(',');
  w.key("abi"), w.put('['), w.number(MODKIT_ABI_MAJOR), w.put(','), w.number(m.min_minor), w.put(']'), w.put(',');
  w.key("version"), w.string(m.version), w.put(',');
  w.key("summary"), w.string(m.summary), w.put(',');
  w.key("torch"), w.string(m.torch_version), w.put(',');
  w.key("cxx11_abi"), w.number(m.cxx11_abi), w.put(',');
  w.key("pipeline"), w.string(pipeline_keyword(m.pipeline)), w.put(',');
  w.key("params"), w.put('[');
  for (size_t i = 0; i < m.param_count; ++i) {
    const ParamSpec& p = m.params[i];
    if (i > 0) w.put(',');
    w.put('{');
    w.key("name"), w.string(p.name), w.put(',');
    w.key("type"), w.string(type_keyword(p.type)), w.put(',');
    w.key("required"), w.raw(p.required() ? "true" : "false"), w.put(',');
    w.key("default"), w.json_or_null(p.default_json), w.put(',');
    w.key("min"), w.json_or_null(p.min_json), w.put(',');
    w.key("max"), w.json_or_null(p.max_json), w.put(',');
    // only when open: metadata of plugins with closed bounds reads as before
    if (p.min_exclusive) w.key("min_exclusive"), w.raw("true"), w.put(',');
    if (p.max_exclusive) w.key("max_exclusive"), w.raw("true"), w.put(',');
    w.key("choices"), w.json_or_null(p.choices_json), w.put(',');
    w.key("doc"), w.string(p.doc);
    w.put('}');
  }
  w.put(']');
  w.put('}');
}

constexpr size_t json_size(const ModifierInfo& m) {
  JsonWriter w;
  render(w, m);
  return w.n + 1;  // NUL separates the entries of the section
}

template <size_t N>
struct Blob {
  char data[N];
};

template <size_t N>
constexpr Blob<N> json_blob(const ModifierInfo& m) {
  Blob<N> b{};
  JsonWriter w{b.data, 0};
  render(w, m);
  b.data[w.n] = '\0';
  return b;
}

template <class... P>
constexpr std::array<ParamSpec, sizeof...(P)> make_params(P... p) {
  return {{p...}};
}

template <size_t N>
constexpr std::array<modkit_param_spec, N> c_specs(const std::array<ParamSpec, N>& p) {
  std::array<modkit_param_spec, N> out{};
  for (size_t i = 0; i < N; ++i) {
    out[i] = modkit_param_spec{sizeof(modkit_param_spec),
                               static_cast<uint32_t>(p[i].type),
                               p[i].name,
                               p[i].doc,
                               p[i].default_json,
                               p[i].min_json,
                               p[i].max_json,
                               p[i].choices_json,
                               (p[i].required() ? uint32_t{MODKIT_PARAM_REQUIRED} : 0u) |
                                   (p[i].min_exclusive ? uint32_t{MODKIT_PARAM_MIN_EXCLUSIVE} : 0u) |
                                   (p[i].max_exclusive ? uint32_t{MODKIT_PARAM_MAX_EXCLUSIVE} : 0u),
                               0u};
  }
  return out;
}

/// The noexcept functions the descriptor points to: each one catches
/// everything and reports it as a status plus a host error.
template <class Traits>
struct Trampolines {
  using Class = typename Traits::Class;

  template <class F>
  static modkit_status guard(const modkit_host* host, modkit_error** error, F&& f) noexcept {
    return detail::guard(host, error, std::forward<F>(f));
  }

  static Modifier* self_of(void* self) { return static_cast<Modifier*>(self); }

  static modkit_status create(const modkit_host* host, const modkit_value* params, void** out,
                              modkit_error** error) noexcept {
    return guard(host, error, [&] {
      Params p(params, Traits::params.data(), Traits::params.size());
      std::unique_ptr<Modifier> m = std::make_unique<Class>(p);
      *out = m.release();
    });
  }
  static void destroy(void* self) noexcept {
    try {
      delete self_of(self);
    } catch (...) {
      // a throwing destructor has nowhere to report to; never let it cross the ABI
    }
  }
  static modkit_status on_initialize(void* self, const modkit_state* state, int32_t* ok,
                                     modkit_error** error) noexcept {
    return guard(state->host, error, [&] {
      State s(*state);
      *ok = self_of(self)->on_initialize(s) ? 1 : 0;
    });
  }
  static modkit_status on_finalize(void* self, const modkit_state* state, int32_t* ok,
                                   modkit_error** error) noexcept {
    return guard(state->host, error, [&] {
      State s(*state);
      const bool done = self_of(self)->on_finalize(s);
      if (done) self_of(self)->remove_hooks();  // as HooksMixin: a finalized modifier's hooks are gone
      *ok = done ? 1 : 0;
    });
  }
  template <void (Modifier::*Callback)(State&, const Event&)>
  static modkit_status event(void* self, const modkit_state* state, const modkit_event* event,
                             modkit_error** error) noexcept {
    return guard(state->host, error, [&] {
      State s(*state);
      Event e(*event);
      (self_of(self)->*Callback)(s, e);
    });
  }
};

template <class Traits>
constexpr modkit_modifier_descriptor make_descriptor(const char* metadata,
                                                     const modkit_param_spec* specs) {
  using T = Trampolines<Traits>;
  return modkit_modifier_descriptor{
      MODKIT_DESCRIPTOR_MAGIC,
      sizeof(modkit_modifier_descriptor),
      MODKIT_ABI_MAJOR,
      Traits::info.min_minor,
      0u,
      Traits::info.name,
      Traits::info.version,
      Traits::info.summary,
      metadata,
      Traits::info.torch_version,
      Traits::info.cxx11_abi,
      Traits::info.pipeline,
      sizeof(modkit_param_spec),
      static_cast<uint32_t>(Traits::params.size()),
      specs,
      &T::create,
      &T::destroy,
      &T::on_initialize,
      &T::on_finalize,
      &T::template event<&Modifier::on_start>,
      &T::template event<&Modifier::on_update>,
      &T::template event<&Modifier::on_end>,
      &T::template event<&Modifier::on_event>,
  };
}

/// Whether `name` ends in "Modifier": the symbols a host looks for.
constexpr bool names_a_modifier(std::string_view name) {
  constexpr std::string_view suffix = "Modifier";
  return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
}

}  // namespace modkit::sdk::detail

/// Exports modifier class NAME (derived from modkit::sdk::Modifier, with a
/// constructor taking `const modkit::sdk::Params&`) as the plugin symbol NAME.
/// VERSION and SUMMARY are string literals; the remaining arguments are the
/// modkit::sdk::ParamSpec entries of its schema. Use it once per modifier, at
/// the end of the file, in the namespace where NAME is declared. The class may
/// declare `static constexpr uint32_t pipeline = MODKIT_PIPELINE_...;` and
/// `static constexpr uint16_t abi_min_minor = N;` (the lowest host minor whose
/// services it uses; 0 by default).
#define MODKIT_EXPORT_MODIFIER(NAME, VERSION, SUMMARY, ...)                                   \
  namespace modkit_export_##NAME {                                                           \
  struct Traits {                                                                            \
    using Class = NAME;                                                                      \
    static_assert(std::is_base_of_v<::modkit::sdk::Modifier, NAME>,                          \
                  #NAME " must derive from modkit::sdk::Modifier");                          \
    static_assert(::modkit::sdk::detail::pipeline_keyword(                                   \
                      ::modkit::sdk::detail::PipelineOf<NAME>::value) != nullptr,            \
                  #NAME "::pipeline is not one of modkit.h's MODKIT_PIPELINE_* values");     \
    static_assert(::modkit::sdk::detail::names_a_modifier(#NAME),                            \
                  #NAME ": hosts load only symbols whose names end in 'Modifier' (as "       \
                  "llmcompressor finds its modifiers): rename the class, e.g. " #NAME        \
                  "Modifier");                                                               \
    static constexpr auto params = ::modkit::sdk::detail::make_params(__VA_ARGS__);          \
    static constexpr ::modkit::sdk::detail::ModifierInfo info{                               \
        #NAME,                                                                               \
        VERSION,                                                                             \
        SUMMARY,                                                                             \
        ::modkit::sdk::detail::torch_version(0),                                             \
        ::modkit::sdk::detail::kCxx11Abi,                                                    \
        ::modkit::sdk::detail::PipelineOf<NAME>::value,                                      \
        ::modkit::sdk::detail::MinMinorOf<NAME>::value,                                      \
        params.data(),                                                                       \
        params.size()};                                                                      \
  };                                                                                         \
  [[gnu::used, gnu::section(MODKIT_METADATA_SECTION)]] constexpr auto metadata =             \
      ::modkit::sdk::detail::json_blob<::modkit::sdk::detail::json_size(Traits::info)>(     \
          Traits::info);                                                                     \
  constexpr auto specs = ::modkit::sdk::detail::c_specs(Traits::params);                    \
  constexpr modkit_modifier_descriptor descriptor =                                          \
      ::modkit::sdk::detail::make_descriptor<Traits>(metadata.data, specs.data());           \
  }                                                                                          \
  extern "C" __attribute__((visibility("default"))) const modkit_modifier_descriptor* NAME( \
      void) {                                                                                \
    return &modkit_export_##NAME::descriptor;                                                \
  }
