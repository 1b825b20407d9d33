// Checks what MODKIT_EXPORT_MODIFIER builds: descriptor, metadata JSON (also in the ELF section), trampolines, Params.
#include <doctest/doctest.h>

#include <modkit/sdk.hpp>
#include <nlohmann/json.hpp>

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fake_host.hpp"

namespace sdk = modkit::sdk;
using nlohmann::json;

namespace probes {

// A modifier with a schema that exercises every kind of ParamSpec and text that needs escaping.
class SdkProbeModifier final : public sdk::Modifier {
 public:
  static constexpr uint32_t pipeline = MODKIT_PIPELINE_SEQUENTIAL;
  explicit SdkProbeModifier(const sdk::Params& p)
      : sparsity_(p.get<double>("sparsity")), targets_(p.get<std::vector<std::string>>("targets")) {}
  bool on_initialize(sdk::State&) override { return sparsity_ > 0 && !targets_.empty(); }

 private:
  double sparsity_;
  std::vector<std::string> targets_;
};

// Throws what its parameters ask for, where they ask for it.
class ThrowingProbeModifier final : public sdk::Modifier {
 public:
  static constexpr uint16_t abi_min_minor = MODKIT_ABI_MINOR;
  explicit ThrowingProbeModifier(const sdk::Params& p)
      : where_(p.get<std::string>("where")), kind_(p.get<std::string>("kind")) {
    p.get<double>("scale");  // a wrong type here must become INVALID_ARGUMENT
    if (where_ == "create") raise();
  }
  bool on_initialize(sdk::State&) override {
    if (where_ == "initialize") raise();
    return true;
  }
  bool on_finalize(sdk::State&) override {
    if (where_ == "finalize") raise();
    return false;
  }
  void on_update(sdk::State&, const sdk::Event& e) override {
    if (where_ == "update") raise();
    last_step = e.global_step();
  }
  int64_t last_step = -1;

 private:
  void raise() const {
    if (kind_ == "sdk_error") throw sdk::Error(MODKIT_ERROR_NOT_FOUND, "probe: no module named 'fc'");
    if (kind_ == "sdk_error_default") throw sdk::Error("probe: bad value");
    if (kind_ == "std_exception") throw std::runtime_error("probe: runtime failure");
    if (kind_ == "bad_alloc") throw std::bad_alloc();
    throw 42;  // not a std::exception
  }
  std::string where_;
  std::string kind_;
};

// The smallest possible modifier: no schema, no pipeline member, a summary that needs escaping.
class BareProbeModifier final : public sdk::Modifier {
 public:
  explicit BareProbeModifier(const sdk::Params&) {}
  bool on_initialize(sdk::State&) override { return true; }
};

MODKIT_EXPORT_MODIFIER(
    SdkProbeModifier, "2.3.4", "prunes \"weights\" by magnitude",
    (sdk::ParamSpec{"sparsity", sdk::Type::Float, MODKIT_JSON(0.5), "fraction of weights to zero"}
         .range(MODKIT_JSON(0.0), MODKIT_JSON(1.0))),
    (sdk::ParamSpec{"targets", sdk::Type::StringList, MODKIT_JSON(["Linear", "re:.*proj"]),
                    "modules to prune"}),
    (sdk::ParamSpec{"mask_structure", sdk::Type::String, MODKIT_JSON("unstructured"), "pattern"}
         .choices(MODKIT_JSON(["unstructured", "2:4"]))),
    (sdk::ParamSpec{"block_size", sdk::Type::Int, nullptr, "required: no default"}),
    (sdk::ParamSpec{"dampening", sdk::Type::Float, MODKIT_JSON(null), "optional, no value"}),
    (sdk::ParamSpec{"label", sdk::Type::String, MODKIT_JSON("say \"hi\" to C:\\tmp"),
                    "quote \" backslash \\ newline \n tab \t bell \x07 unit \x1f end"}))

MODKIT_EXPORT_MODIFIER(ThrowingProbeModifier, "0.0.1", "throws on request",
                       (sdk::ParamSpec{"where", sdk::Type::String, MODKIT_JSON(""), "callback"}),
                       (sdk::ParamSpec{"kind", sdk::Type::String, MODKIT_JSON("sdk_error"), "exception"}),
                       (sdk::ParamSpec{"scale", sdk::Type::Float, MODKIT_JSON(1.0), "a float"}))

MODKIT_EXPORT_MODIFIER(BareProbeModifier, "1.0.0", "back\\slash, \"quotes\" and a\ttab")

}  // namespace probes

// The extern "C" descriptor functions the macro wrote (they share the class names).
using probes::BareProbeModifier;
using probes::SdkProbeModifier;
using probes::ThrowingProbeModifier;

namespace {

// The entries of the ".modkit_meta" section of this very executable, read from the file.
std::vector<std::string> metadata_section_entries() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(file.size() > sizeof(Elf64_Ehdr));
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  REQUIRE(std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0);
  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  std::memcpy(sections.data(), file.data() + eh.e_shoff, eh.e_shnum * sizeof(Elf64_Shdr));
  const char* names = file.data() + sections[eh.e_shstrndx].sh_offset;
  std::vector<std::string> entries;
  for (const auto& s : sections) {
    if (std::string(names + s.sh_name) != MODKIT_METADATA_SECTION) continue;
    const char* p = file.data() + s.sh_offset;
    const char* end = p + s.sh_size;
    while (p < end) {
      std::string entry(p);
      p += entry.size() + 1;
      if (!entry.empty()) entries.push_back(entry);
    }
  }
  return entries;
}

const char* type_keyword(uint32_t type) {
  switch (type) {
    case MODKIT_TYPE_BOOL: return "bool";
    case MODKIT_TYPE_INT: return "int";
    case MODKIT_TYPE_FLOAT: return "float";
    case MODKIT_TYPE_STRING: return "string";
    case MODKIT_TYPE_LIST: return "list";
    case MODKIT_TYPE_TABLE: return "table";
    case MODKIT_TYPE_STRING_LIST: return "string_list";
    default: return "any";
  }
}

json parse_or_null(const char* text) { return text == nullptr ? json() : json::parse(text); }

// Every fact the metadata JSON states must be what the descriptor says.
void check_metadata_matches(const modkit_modifier_descriptor& d, const json& m) {
  CHECK(m.at("symbol") == d.type_name);
  CHECK(m.at("abi") == json::array({d.abi_major, d.abi_min_minor}));
  CHECK(m.at("version") == d.version);
  CHECK(m.at("summary") == d.summary);
  CHECK(m.at("torch") == d.torch_version);
  CHECK(m.at("cxx11_abi") == d.cxx11_abi);
  const char* pipelines[] = {"datafree", "basic", "sequential"};
  REQUIRE(d.pipeline <= 2);
  CHECK(m.at("pipeline") == pipelines[d.pipeline]);
  const json& params = m.at("params");
  REQUIRE(params.size() == d.param_count);
  for (uint32_t i = 0; i < d.param_count; ++i) {
    const modkit_param_spec& s = d.params[i];
    INFO("param " << s.name);
    CHECK(params[i].at("name") == s.name);
    CHECK(params[i].at("type") == type_keyword(s.type));
    CHECK(params[i].at("required") == ((s.flags & MODKIT_PARAM_REQUIRED) != 0));
    CHECK(params[i].at("default") == parse_or_null(s.default_json));
    CHECK(params[i].at("min") == parse_or_null(s.min_json));
    CHECK(params[i].at("max") == parse_or_null(s.max_json));
    CHECK(params[i].at("choices") == parse_or_null(s.choices_json));
    CHECK(params[i].at("doc") == s.doc);
  }
}

modkit_event make_event(int64_t step) {
  modkit_event e{};
  e.struct_size = sizeof(modkit_event);
  e.type = MODKIT_EVENT_BATCH_START;
  e.global_step = step;
  e.current_index = static_cast<double>(step);
  return e;
}

}  // namespace

TEST_CASE("the export macro writes a descriptor with the frozen prefix and the declared schema") {
  const modkit_modifier_descriptor* d = SdkProbeModifier();
  REQUIRE(d != nullptr);
  CHECK(d == SdkProbeModifier());  // static data, not rebuilt per call
  CHECK(d->magic == MODKIT_DESCRIPTOR_MAGIC);
  CHECK(d->struct_size == sizeof(modkit_modifier_descriptor));
  CHECK(d->abi_major == MODKIT_ABI_MAJOR);
  CHECK(d->abi_min_minor == 0);
  CHECK(d->reserved == 0);
  CHECK(std::string(d->type_name) == "SdkProbeModifier");
  CHECK(std::string(d->version) == "2.3.4");
  CHECK(std::string(d->summary) == "prunes \"weights\" by magnitude");
  CHECK(std::string(d->torch_version) == "");  // this TU does not include <modkit/sdk/torch.hpp>
#if defined(_GLIBCXX_USE_CXX11_ABI)
  CHECK(d->cxx11_abi == _GLIBCXX_USE_CXX11_ABI);
#else
  CHECK(d->cxx11_abi == -1);
#endif
  CHECK(d->pipeline == MODKIT_PIPELINE_SEQUENTIAL);
  CHECK(d->param_spec_size == sizeof(modkit_param_spec));
  REQUIRE(d->param_count == 6);
  for (uint32_t i = 0; i < d->param_count; ++i) CHECK(d->params[i].struct_size == sizeof(modkit_param_spec));

  const modkit_param_spec& sparsity = d->params[0];
  CHECK(std::string(sparsity.name) == "sparsity");
  CHECK(sparsity.type == MODKIT_TYPE_FLOAT);
  CHECK(std::string(sparsity.default_json) == "0.5");
  CHECK(std::string(sparsity.min_json) == "0.0");
  CHECK(std::string(sparsity.max_json) == "1.0");
  CHECK(sparsity.choices_json == nullptr);
  CHECK(sparsity.flags == 0);
  CHECK(std::string(d->params[1].default_json) == "[\"Linear\", \"re:.*proj\"]");
  CHECK(d->params[1].type == MODKIT_TYPE_STRING_LIST);
  CHECK(std::string(d->params[2].choices_json) == "[\"unstructured\", \"2:4\"]");
  CHECK(d->params[3].default_json == nullptr);
  CHECK(d->params[3].flags == MODKIT_PARAM_REQUIRED);
  CHECK(std::string(d->params[4].default_json) == "null");
  CHECK(d->params[4].flags == 0);

  CHECK((d->create != nullptr));
  CHECK((d->destroy != nullptr));
  CHECK((d->on_initialize != nullptr));
  CHECK((d->on_finalize != nullptr));
  CHECK((d->on_start != nullptr));
  CHECK((d->on_update != nullptr));
  CHECK((d->on_end != nullptr));
  CHECK((d->on_event != nullptr));
}

TEST_CASE("a class without pipeline or abi_min_minor members gets datafree and minor 0") {
  const modkit_modifier_descriptor* d = BareProbeModifier();
  CHECK(d->pipeline == MODKIT_PIPELINE_DATAFREE);
  CHECK(d->abi_min_minor == 0);
  CHECK(d->param_count == 0);
  CHECK(ThrowingProbeModifier()->abi_min_minor == MODKIT_ABI_MINOR);
}

TEST_CASE("the compile-time metadata is valid JSON that matches the descriptor") {
  for (const modkit_modifier_descriptor* d : {SdkProbeModifier(), ThrowingProbeModifier(), BareProbeModifier()}) {
    INFO(d->type_name);
    REQUIRE(d->metadata_json != nullptr);
    json m;
    REQUIRE_NOTHROW(m = json::parse(d->metadata_json));
    check_metadata_matches(*d, m);
  }
  const json m = json::parse(SdkProbeModifier()->metadata_json);
  CHECK(m.at("pipeline") == "sequential");
  CHECK(m.at("params")[0].at("min") == 0.0);
  CHECK(m.at("params")[1].at("default") == json::array({"Linear", "re:.*proj"}));
  CHECK(m.at("params")[3].at("required") == true);
  CHECK(m.at("params")[3].at("default").is_null());
  CHECK(m.at("params")[4].at("required") == false);
}

TEST_CASE("quotes, backslashes and control characters in texts are escaped in the metadata") {
  const json m = json::parse(SdkProbeModifier()->metadata_json);
  CHECK(m.at("summary") == "prunes \"weights\" by magnitude");
  CHECK(m.at("params")[5].at("doc") == "quote \" backslash \\ newline \n tab \t bell \x07 unit \x1f end");
  CHECK(m.at("params")[5].at("default") == "say \"hi\" to C:\\tmp");
  const std::string raw = SdkProbeModifier()->metadata_json;
  CHECK(raw.find("\\u000a") != std::string::npos);  // newline as \u000a
  CHECK(raw.find("\\u0007") != std::string::npos);
  CHECK(raw.find("\\u001f") != std::string::npos);
  for (char c : raw) CHECK(static_cast<unsigned char>(c) >= 0x20);  // no raw control character left
  CHECK(json::parse(BareProbeModifier()->metadata_json).at("summary") == "back\\slash, \"quotes\" and a\ttab");
}

TEST_CASE("the metadata section of the binary holds the same JSON, one NUL-terminated entry per modifier") {
  const std::vector<std::string> entries = metadata_section_entries();
  for (const modkit_modifier_descriptor* d : {SdkProbeModifier(), ThrowingProbeModifier(), BareProbeModifier()}) {
    INFO(d->type_name);
    int found = 0;
    for (const std::string& e : entries) {
      const json m = json::parse(e);  // every entry parses on its own
      if (m.at("symbol") == d->type_name) {
        ++found;
        CHECK(e == d->metadata_json);
      }
    }
    CHECK(found == 1);
  }
}

TEST_CASE("trampolines turn exceptions into a status and a host error") {
  modkit_test::FakeHost fake;
  modkit_test::ValueBuilder v;
  const modkit_modifier_descriptor* d = ThrowingProbeModifier();
  auto params = [&](const std::string& where, const std::string& kind) {
    return v.table({{"where", v.string(where)}, {"kind", v.string(kind)}, {"scale", v.number(2.0)}});
  };

  SUBCASE("create") {
    struct Case {
      const char* kind;
      modkit_status status;
      const char* message;
    };
    const Case cases[] = {
        {"sdk_error", MODKIT_ERROR_NOT_FOUND, "probe: no module named 'fc'"},
        {"sdk_error_default", MODKIT_ERROR_INVALID_ARGUMENT, "probe: bad value"},
        {"std_exception", MODKIT_ERROR_INTERNAL, "probe: runtime failure"},
        {"bad_alloc", MODKIT_ERROR_OUT_OF_MEMORY, "out of memory"},
        {"non_std", MODKIT_ERROR_INTERNAL,
         "threw a value that is not a std::exception (throw modkit::sdk::Error or a std::exception to say what "
         "failed)"},
    };
    for (const Case& c : cases) {
      INFO(c.kind);
      void* self = reinterpret_cast<void*>(0x1);
      modkit_error* err = nullptr;
      CHECK(d->create(fake.host(), params("create", c.kind), &self, &err) == c.status);
      CHECK(self == reinterpret_cast<void*>(0x1));  // untouched on failure
      const auto e = modkit_test::take(fake, err);
      CHECK(e.present);
      CHECK(e.code == c.status);
      CHECK(e.message == c.message);
    }
  }

  SUBCASE("a wrong parameter type read in the constructor") {
    void* self = nullptr;
    modkit_error* err = nullptr;
    auto bad = v.table({{"where", v.string("")}, {"kind", v.string("x")}, {"scale", v.string("big")}});
    CHECK(d->create(fake.host(), bad, &self, &err) == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(modkit_test::take(fake, err).message == "parameter 'scale': expected float, found string");
    CHECK(self == nullptr);
  }

  SUBCASE("initialize, update and finalize") {
    for (const char* where : {"initialize", "update", "finalize"}) {
      INFO(where);
      void* self = nullptr;
      modkit_error* err = nullptr;
      REQUIRE(d->create(fake.host(), params(where, "std_exception"), &self, &err) == MODKIT_OK);
      REQUIRE(self != nullptr);
      CHECK(err == nullptr);
      int32_t ok = 7;
      modkit_status st = MODKIT_OK;
      const modkit_event e = make_event(3);
      if (std::string(where) == "initialize") st = d->on_initialize(self, fake.state(), &ok, &err);
      if (std::string(where) == "update") st = d->on_update(self, fake.state(), &e, &err);
      if (std::string(where) == "finalize") st = d->on_finalize(self, fake.state(), &ok, &err);
      CHECK(st == MODKIT_ERROR_INTERNAL);
      CHECK(ok == 7);  // untouched on failure
      CHECK(modkit_test::take(fake, err).message == "probe: runtime failure");
      d->destroy(self);
    }
  }

  SUBCASE("success passes results through and leaves the error alone") {
    void* self = nullptr;
    modkit_error* err = nullptr;
    REQUIRE(d->create(fake.host(), params("", "sdk_error"), &self, &err) == MODKIT_OK);
    int32_t ok = -1;
    CHECK(d->on_initialize(self, fake.state(), &ok, &err) == MODKIT_OK);
    CHECK(ok == 1);
    const modkit_event e = make_event(11);
    CHECK(d->on_start(self, fake.state(), &e, &err) == MODKIT_OK);
    CHECK(d->on_update(self, fake.state(), &e, &err) == MODKIT_OK);
    CHECK(static_cast<class probes::ThrowingProbeModifier*>(static_cast<sdk::Modifier*>(self))->last_step == 11);
    CHECK(d->on_end(self, fake.state(), &e, &err) == MODKIT_OK);
    CHECK(d->on_event(self, fake.state(), &e, &err) == MODKIT_OK);
    CHECK(d->on_finalize(self, fake.state(), &ok, &err) == MODKIT_OK);
    CHECK(ok == 0);  // on_finalize returned false: "not done"
    CHECK(err == nullptr);
    CHECK(fake.errors_made == 0);
    d->destroy(self);
    d->destroy(nullptr);
  }

  SUBCASE("a caller that passes no error out-parameter still gets the status") {
    void* self = nullptr;
    CHECK(d->create(fake.host(), params("create", "sdk_error"), &self, nullptr) == MODKIT_ERROR_NOT_FOUND);
    CHECK(fake.errors_made == 0);
  }
}

TEST_CASE("a host service's error reaches the plugin with its message, and is freed") {
  // The SDK calls host services as check(host, service(..., &err), err): the message must survive
  // whatever order the compiler evaluates those arguments in.
  modkit_test::FakeHost fake;
  fake.mutable_host()->hook_add = [](const modkit_host* h, modkit_model*, const char* module, uint32_t,
                                     modkit_hook_fn, void*, uint64_t*, modkit_error** err) -> modkit_status {
    *err = h->error_new(h, MODKIT_ERROR_NOT_FOUND, (std::string("no module '") + module + "'").c_str());
    return MODKIT_ERROR_NOT_FOUND;
  };
  fake.mutable_host()->hooks_disable = [](const modkit_host* h, modkit_model*, const uint64_t*, size_t, uint64_t*,
                                          modkit_error** err) -> modkit_status {
    *err = h->error_new(h, MODKIT_ERROR_FAILED_PRECONDITION, "hooks are being removed");
    return MODKIT_ERROR_FAILED_PRECONDITION;
  };
  fake.mutable_host()->hooks_restore = [](const modkit_host*, uint64_t) {};
  const int live_before = modkit_test::FakeHost::live_errors();
  const sdk::State state(*fake.state());

  SUBCASE("register_hook") {
    class probes::BareProbeModifier modifier(sdk::Params(nullptr, nullptr, 0));  // "class": the export macro made a function of that name too
    try {
      modifier.register_hook(state, "fc2", sdk::HookKind::Forward, [](const modkit_hook_call&) {});
      FAIL("register_hook did not throw");
    } catch (const sdk::Error& e) {
      CHECK(e.code() == MODKIT_ERROR_NOT_FOUND);
      CHECK(std::string(e.what()) == "no module 'fc2'");
    }
  }
  SUBCASE("HooksDisabled") {
    try {
      sdk::HooksDisabled scope(state);
      FAIL("HooksDisabled did not throw");
    } catch (const sdk::Error& e) {
      CHECK(e.code() == MODKIT_ERROR_FAILED_PRECONDITION);
      CHECK(std::string(e.what()) == "hooks are being removed");
    }
  }
  CHECK(fake.errors_made == 1);
  CHECK(modkit_test::FakeHost::live_errors() == live_before);
}

TEST_CASE("Params gives typed access to declared parameters") {
  using sdk::ParamSpec;
  using sdk::Type;
  const ParamSpec specs[] = {
      ParamSpec{"x", Type::Float, MODKIT_JSON(0.5)},
      ParamSpec{"n", Type::Int, MODKIT_JSON(1)},
      ParamSpec{"targets", Type::StringList, MODKIT_JSON(["Linear"])},
      ParamSpec{"damp", Type::Float, MODKIT_JSON(null)},
      ParamSpec{"flag", Type::Bool, MODKIT_JSON(false)},
      ParamSpec{"name", Type::String, MODKIT_JSON("")},
  };
  modkit_test::ValueBuilder v;
  auto params_of = [&](const modkit_value* table) { return sdk::Params(table, specs, std::size(specs)); };

  SUBCASE("values of the declared types") {
    const sdk::Params p = params_of(v.table({{"x", v.number(0.75)},
                                             {"n", v.integer(128)},
                                             {"targets", v.list({v.string("Linear"), v.string("re:.*proj")})},
                                             {"damp", v.number(0.01)},
                                             {"flag", v.boolean(true)},
                                             {"name", v.string("w")}}));
    CHECK(p.get<double>("x") == 0.75);
    CHECK(p.get<float>("x") == 0.75f);
    CHECK(p.get<int>("n") == 128);
    CHECK(p.get<int64_t>("n") == 128);
    CHECK(p.get<std::vector<std::string>>("targets") == std::vector<std::string>{"Linear", "re:.*proj"});
    CHECK(p.get<std::optional<double>>("damp") == std::optional<double>(0.01));
    CHECK(p.get<bool>("flag"));
    CHECK(p.get<std::string>("name") == "w");
  }

  SUBCASE("the conversions the schema allows") {
    const sdk::Params p = params_of(
        v.table({{"x", v.integer(2)}, {"targets", v.string("Linear")}, {"damp", v.null()}}));
    CHECK(p.get<double>("x") == 2.0);  // an INT where a FLOAT is declared
    CHECK(p.get<std::vector<std::string>>("targets") == std::vector<std::string>{"Linear"});
    CHECK(p.get<std::optional<double>>("damp") == std::nullopt);
    CHECK(p.get<std::optional<int>>("n") == std::nullopt);  // absent reads as null
    CHECK(p.get_or<int>("n", 9) == 9);
    CHECK(p.value("flag").is_null());
  }

  SUBCASE("a wrong type names the parameter, the expected and the found type") {
    const sdk::Params p = params_of(v.table({{"x", v.string("high")},
                                             {"n", v.number(1.5)},
                                             {"targets", v.list({v.string("Linear"), v.integer(3)})},
                                             {"flag", v.integer(1)}}));
    auto message_of = [](auto&& f) -> std::string {
      try {
        f();
      } catch (const sdk::Error& e) {
        CHECK(e.code() == MODKIT_ERROR_INVALID_ARGUMENT);
        return e.what();
      }
      return "no exception";
    };
    CHECK(message_of([&] { p.get<double>("x"); }) == "parameter 'x': expected float, found string");
    CHECK(message_of([&] { p.get<int>("n"); }) == "parameter 'n': expected int, found float");
    CHECK(message_of([&] { p.get<std::vector<std::string>>("targets"); }) ==
          "parameter 'targets[1]': expected string, found int");
    CHECK(message_of([&] { p.get<bool>("flag"); }) == "parameter 'flag': expected bool, found int");
    CHECK(message_of([&] { p.get<std::vector<double>>("x"); }) == "parameter 'x': expected list, found string");
    CHECK(message_of([&] { p.get<double>("damp"); }) == "parameter 'damp': expected float, found null");
  }

  SUBCASE("reading a name the schema does not declare is a programming error") {
    const sdk::Params p = params_of(v.table({{"x", v.number(1.0)}}));
    try {
      p.get<double>("sparsity");
      FAIL("no exception");
    } catch (const sdk::Error& e) {
      CHECK(e.code() == MODKIT_ERROR_INTERNAL);
      CHECK(std::string(e.what()) == "parameter 'sparsity' is not declared in the modifier's schema");
    }
    CHECK_NOTHROW(p.value("start"));  // lifecycle keys every modifier accepts
    CHECK_NOTHROW(p.value("group"));
  }
}
