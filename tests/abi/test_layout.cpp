// Pins the x86_64 LP64 layout and constant values of modkit.h, and drives a modifier written in plain C.
#include <doctest/doctest.h>

#include <modkit/modkit.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "abi_layout.h"
#include "fake_host.hpp"

static_assert(sizeof(void*) == 8 && sizeof(size_t) == 8, "the pins are for an LP64 target");

// Compile-time pins in C++ (abi_c_compile.c makes the same checks as C11).
#define PIN_FIELD(type, field, offset, size)                                      \
  static_assert(offsetof(type, field) == (offset), #type "." #field " moved");    \
  static_assert(sizeof(type::field) == (size), #type "." #field " was retyped");
MODKIT_ABI_FIELDS(PIN_FIELD)
#undef PIN_FIELD

#define PIN_SIZE(type, size, align)                               \
  static_assert(sizeof(type) == (size), #type " changed size");   \
  static_assert(alignof(type) == (align), #type " changed alignment");
MODKIT_ABI_SIZES(PIN_SIZE)
#undef PIN_SIZE

#define PIN_CONSTANT(name, value) static_assert((name) == (value), #name " changed value");
MODKIT_ABI_CONSTANTS(PIN_CONSTANT)
#undef PIN_CONSTANT

// The frozen prefixes, spelled out: these may never change, whatever the version.
static_assert(offsetof(modkit_modifier_descriptor, magic) == 0);
static_assert(offsetof(modkit_modifier_descriptor, struct_size) == 4);
static_assert(offsetof(modkit_modifier_descriptor, abi_major) == 8);
static_assert(offsetof(modkit_modifier_descriptor, abi_min_minor) == 10);
static_assert(offsetof(modkit_host, struct_size) == 0);
static_assert(offsetof(modkit_host, abi_major) == 4);
static_assert(offsetof(modkit_host, abi_minor) == 6);
static_assert(offsetof(modkit_value, struct_size) == 0);
static_assert(offsetof(modkit_param_spec, struct_size) == 0);
static_assert(offsetof(modkit_state, struct_size) == 0);
static_assert(offsetof(modkit_event, struct_size) == 0);
static_assert(offsetof(modkit_module_info, struct_size) == 0);
static_assert(sizeof(modkit_status) == 4);

namespace {

struct Pin {
  std::string type;
  std::string field;
  size_t offset;
  size_t size;
  size_t cxx_offset;
  size_t cxx_size;
};

std::vector<Pin> field_pins() {
  return {
#define FIELD_PIN(type, field, offset, size) \
  {#type, #field, offset, size, offsetof(type, field), sizeof(type::field)},
      MODKIT_ABI_FIELDS(FIELD_PIN)
#undef FIELD_PIN
  };
}

std::map<std::string, std::pair<size_t, size_t>> size_pins() {
  return {
#define SIZE_PIN(type, size, align) {#type, {size, align}},
      MODKIT_ABI_SIZES(SIZE_PIN)
#undef SIZE_PIN
  };
}

}  // namespace

TEST_CASE("every field sits at its pinned offset with its pinned size") {
  for (const Pin& p : field_pins()) {
    INFO(p.type << "." << p.field);
    CHECK(p.cxx_offset == p.offset);
    CHECK(p.cxx_size == p.size);
  }
}

TEST_CASE("the pinned fields of each struct tile it, so no field is left unpinned") {
  std::map<std::string, size_t> end_of;
  for (const Pin& p : field_pins()) {
    INFO(p.type << "." << p.field);
    CHECK(p.offset == end_of[p.type]);  // starts where the previous field ended
    end_of[p.type] = p.offset + p.size;
  }
  const auto sizes = size_pins();
  CHECK(end_of.size() == sizes.size());
  for (const auto& [type, size_align] : sizes) {
    INFO(type);
    CHECK(end_of[type] == size_align.first);
  }
}

TEST_CASE("the C compiler and the C++ compiler agree on every offset, size and alignment") {
  size_t count = 0;
  const modkit_abi_c_entry* c = modkit_abi_c_layout(&count);
  const auto fields = field_pins();
  const auto sizes = size_pins();
  REQUIRE(count == fields.size() + sizes.size());
  size_t f = 0;
  for (size_t i = 0; i < count; ++i) {
    INFO(c[i].type_name << "." << (c[i].field != nullptr ? c[i].field : "(struct)"));
    if (c[i].field != nullptr) {
      REQUIRE(f < fields.size());
      CHECK(fields[f].type == c[i].type_name);
      CHECK(fields[f].field == c[i].field);
      CHECK(fields[f].cxx_offset == c[i].offset);
      CHECK(fields[f].cxx_size == c[i].size);
      ++f;
    } else {
      auto it = sizes.find(c[i].type_name);
      REQUIRE(it != sizes.end());
      CHECK(it->second.first == c[i].size);
      CHECK(it->second.second == c[i].offset);  // alignment, for a whole-struct entry
    }
  }
  CHECK(f == fields.size());
}

TEST_CASE("the enum and macro values are what the header says") {
  const std::vector<std::pair<const char*, long long>> expected = {
#define CONSTANT(name, value) {#name, static_cast<long long>(value)},
      MODKIT_ABI_CONSTANTS(CONSTANT)
#undef CONSTANT
  };
  const std::vector<long long> cxx = {
#define CONSTANT(name, value) static_cast<long long>(name),
      MODKIT_ABI_CONSTANTS(CONSTANT)
#undef CONSTANT
  };
  size_t count = 0;
  const long long* c = modkit_abi_c_constants(&count);
  REQUIRE(count == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(expected[i].first);
    CHECK(cxx[i] == expected[i].second);
    CHECK(c[i] == expected[i].second);
  }
  CHECK(std::string(MODKIT_METADATA_SECTION) == ".modkit_meta");
  // "MKMD" read as a little-endian uint32_t
  const uint32_t magic = MODKIT_DESCRIPTOR_MAGIC;
  CHECK(std::memcmp(&magic, "MKMD", 4) == 0);
}

TEST_CASE("MODKIT_HAS_FIELD tells a field the writer knew about from one it did not") {
  modkit_event e{};
  e.struct_size = offsetof(modkit_event, module_count);  // a writer that stopped before module_count
  CHECK(MODKIT_HAS_FIELD(&e, modkit_event, loss));
  CHECK_FALSE(MODKIT_HAS_FIELD(&e, modkit_event, module_count));
  CHECK_FALSE(MODKIT_HAS_FIELD(&e, modkit_event, modules));
  e.struct_size = sizeof(modkit_event);
  CHECK(MODKIT_HAS_FIELD(&e, modkit_event, modules));
}

TEST_CASE("a modifier written in plain C runs through the whole lifecycle") {
  modkit_test::FakeHost fake;
  modkit_test::ValueBuilder v;
  const modkit_modifier_descriptor* d = modkit_abi_c_descriptor();
  REQUIRE(d != nullptr);
  CHECK(d->magic == MODKIT_DESCRIPTOR_MAGIC);
  CHECK(d->struct_size == sizeof(modkit_modifier_descriptor));
  CHECK(d->param_spec_size == sizeof(modkit_param_spec));
  REQUIRE(d->param_count == 1);
  CHECK(std::string(d->params[0].name) == "threshold");
  CHECK(d->params[0].flags == MODKIT_PARAM_REQUIRED);

  SUBCASE("create reports a bad parameter as a status and a host error") {
    void* self = reinterpret_cast<void*>(0x1);
    modkit_error* err = nullptr;
    const modkit_status st = d->create(fake.host(), v.table({{"threshold", v.string("high")}}), &self, &err);
    CHECK(st == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(self == reinterpret_cast<void*>(0x1));  // out-parameter untouched on failure
    const auto e = modkit_test::take(fake, err);
    CHECK(e.code == MODKIT_ERROR_INVALID_ARGUMENT);
    CHECK(e.message == "parameter 'threshold': expected float");
  }

  SUBCASE("create, initialize, events and finalize see the host's model and events") {
    void* self = nullptr;
    modkit_error* err = nullptr;
    REQUIRE(d->create(fake.host(), v.table({{"threshold", v.number(0.25)}}), &self, &err) == MODKIT_OK);
    REQUIRE(self != nullptr);
    int32_t ok = -1;
    REQUIRE(d->on_initialize(self, fake.state(), &ok, &err) == MODKIT_OK);
    CHECK(ok == 1);
    CHECK(fake.tensors_released == 1);

    const char* calibrated[] = {"fc", "head"};
    modkit_event e{};
    e.struct_size = sizeof(modkit_event);
    e.type = MODKIT_EVENT_SEQUENTIAL_EPOCH_END;
    e.module_count = 2;
    e.modules = calibrated;
    REQUIRE(d->on_update(self, fake.state(), &e, &err) == MODKIT_OK);
    e.type = MODKIT_EVENT_CALIBRATION_END;
    e.module_count = 0;
    e.modules = nullptr;
    REQUIRE(d->on_event(self, fake.state(), &e, &err) == MODKIT_OK);
    CHECK((d->on_start == nullptr));
    CHECK((d->on_end == nullptr));

    ok = -1;
    REQUIRE(d->on_finalize(self, fake.state(), &ok, &err) == MODKIT_OK);
    CHECK(ok == 1);
    REQUIRE(fake.logs.size() == 1);
    CHECK(fake.logs[0] ==
          "2 CProbe: threshold=0.25 modules=2 tensors=3 ndim=2 events=2 calibrated=2 last=8");
    d->destroy(self);
    d->destroy(nullptr);  // destroy accepts NULL
    CHECK(fake.errors_made == 0);
  }
}
