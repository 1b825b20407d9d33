/* abi_c_compile.c - proves modkit.h is ISO C11 (built with -std=c11 -pedantic -Werror) and uses every type it declares. */
#include <modkit/modkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi_layout.h"

/* The layout pins, checked by the C compiler. */
#define CHECK_FIELD(type, field, offset, size)                                         \
  _Static_assert(offsetof(type, field) == (offset), #type "." #field " moved");        \
  _Static_assert(sizeof(((type*)0)->field) == (size), #type "." #field " was retyped");
MODKIT_ABI_FIELDS(CHECK_FIELD)
#undef CHECK_FIELD

#define CHECK_SIZE(type, size, align)                                 \
  _Static_assert(sizeof(type) == (size), #type " changed size");      \
  _Static_assert(_Alignof(type) == (align), #type " changed alignment");
MODKIT_ABI_SIZES(CHECK_SIZE)
#undef CHECK_SIZE

#define CHECK_CONSTANT(name, value) _Static_assert((name) == (value), #name " changed value");
MODKIT_ABI_CONSTANTS(CHECK_CONSTANT)
#undef CHECK_CONSTANT

_Static_assert(sizeof(modkit_status) == 4, "modkit_status is int32_t");
_Static_assert(sizeof(MODKIT_METADATA_SECTION) == sizeof(".modkit_meta"), "metadata section name");

static const modkit_abi_c_entry c_layout[] = {
#define FIELD_ENTRY(type, field, offset, size) {#type, #field, offsetof(type, field), sizeof(((type*)0)->field)},
    MODKIT_ABI_FIELDS(FIELD_ENTRY)
#undef FIELD_ENTRY
#define SIZE_ENTRY(type, size, align) {#type, NULL, _Alignof(type), sizeof(type)},
    MODKIT_ABI_SIZES(SIZE_ENTRY)
#undef SIZE_ENTRY
};

const modkit_abi_c_entry* modkit_abi_c_layout(size_t* out_count) {
  *out_count = sizeof c_layout / sizeof c_layout[0];
  return c_layout;
}

static const long long c_constants[] = {
#define CONSTANT_ENTRY(name, value) (long long)(name),
    MODKIT_ABI_CONSTANTS(CONSTANT_ENTRY)
#undef CONSTANT_ENTRY
};

const long long* modkit_abi_c_constants(size_t* out_count) {
  *out_count = sizeof c_constants / sizeof c_constants[0];
  return c_constants;
}

/* ------------------------------------------------ a modifier in plain C */

/* What the probe has seen; reported through host->log when it finalizes. */
typedef struct probe {
  double threshold;
  size_t modules;
  size_t tensors;
  int64_t tensor_ndim;
  size_t events;
  size_t calibrated;
  uint32_t last_event;
} probe;

static void count_module(void* user, const modkit_module_info* module) {
  probe* self = (probe*)user;
  if (MODKIT_HAS_FIELD(module, modkit_module_info, class_name) && module->class_name != NULL) {
    ++self->modules;
  }
}

static void count_tensor(void* user, const char* name, uint32_t kind) {
  probe* self = (probe*)user;
  if (name != NULL && (kind == MODKIT_TENSOR_PARAMETER || kind == MODKIT_TENSOR_BUFFER)) {
    ++self->tensors;
  }
}

static modkit_status fail(const modkit_host* host, modkit_status code, const char* message,
                          modkit_error** error) {
  if (error != NULL) *error = host->error_new(host, code, message);
  return code;
}

static const modkit_value* find_param(const modkit_value* table, const char* name) {
  size_t i;
  if (table == NULL || table->type != MODKIT_TYPE_TABLE) return NULL;
  for (i = 0; i < table->count; ++i) {
    if (strcmp(table->keys[i], name) == 0) return table->items[i];
  }
  return NULL;
}

static modkit_status probe_create(const modkit_host* host, const modkit_value* params,
                                  void** out_self, modkit_error** error) {
  const modkit_value* threshold = find_param(params, "threshold");
  probe* self;
  if (threshold == NULL ||
      (threshold->type != MODKIT_TYPE_FLOAT && threshold->type != MODKIT_TYPE_INT)) {
    return fail(host, MODKIT_ERROR_INVALID_ARGUMENT, "parameter 'threshold': expected float",
                error);
  }
  self = (probe*)calloc(1, sizeof *self);
  if (self == NULL) return fail(host, MODKIT_ERROR_OUT_OF_MEMORY, "out of memory", error);
  self->threshold = threshold->float_value;
  *out_self = self;
  return MODKIT_OK;
}

static void probe_destroy(void* self) { free(self); }

static modkit_status probe_initialize(void* raw, const modkit_state* state, int32_t* out_ok,
                                      modkit_error** error) {
  probe* self = (probe*)raw;
  const modkit_host* host = state->host;
  const char* targets[] = {"Linear"};
  modkit_status status;
  DLManagedTensor* weight = NULL;
  if (state->model == NULL || host->model_match == NULL || host->tensor_list == NULL ||
      host->tensor_get == NULL) {
    return fail(host, MODKIT_ERROR_UNSUPPORTED, "the host has no model services", error);
  }
  status = host->model_match(host, state->model, targets, 1, NULL, 0, count_module, self, error);
  if (status != MODKIT_OK) return status;
  status = host->tensor_list(host, state->model, "fc", count_tensor, self, error);
  if (status != MODKIT_OK) return status;
  status = host->tensor_get(host, state->model, "fc", "weight", &weight, error);
  if (status != MODKIT_OK) return status;
  self->tensor_ndim = weight->dl_tensor.ndim;
  if (weight->deleter != NULL) weight->deleter(weight);
  *out_ok = state->world_size >= 1 && state->rank < state->world_size;
  return MODKIT_OK;
}

static modkit_status probe_finalize(void* raw, const modkit_state* state, int32_t* out_ok,
                                    modkit_error** error) {
  const probe* self = (const probe*)raw;
  char line[160];
  (void)error;
  snprintf(line, sizeof line, "threshold=%.2f modules=%zu tensors=%zu ndim=%lld events=%zu calibrated=%zu last=%u",
           self->threshold, self->modules, self->tensors, (long long)self->tensor_ndim,
           self->events, self->calibrated, (unsigned)self->last_event);
  if (state->host->log != NULL) state->host->log(state->host, MODKIT_LOG_INFO, "CProbe", line);
  *out_ok = 1;
  return MODKIT_OK;
}

static modkit_status probe_event(void* raw, const modkit_state* state, const modkit_event* event,
                                 modkit_error** error) {
  probe* self = (probe*)raw;
  (void)state;
  (void)error;
  ++self->events;
  self->last_event = event->type;
  if (event->type == MODKIT_EVENT_SEQUENTIAL_EPOCH_END &&
      MODKIT_HAS_FIELD(event, modkit_event, modules)) {
    self->calibrated += event->module_count;
  }
  return MODKIT_OK;
}

static const modkit_param_spec probe_params[] = {
    {sizeof(modkit_param_spec), MODKIT_TYPE_FLOAT, "threshold", "a value the probe keeps", NULL,
     "0", "1", NULL, MODKIT_PARAM_REQUIRED, 0},
};

static const modkit_create_fn probe_create_fn = probe_create;
static const modkit_destroy_fn probe_destroy_fn = probe_destroy;
static const modkit_state_fn probe_initialize_fn = probe_initialize;
static const modkit_event_fn probe_event_fn = probe_event;

static const modkit_modifier_descriptor probe_descriptor = {
    MODKIT_DESCRIPTOR_MAGIC,
    sizeof(modkit_modifier_descriptor),
    MODKIT_ABI_MAJOR,
    0,
    0,
    "CProbeModifier",
    "0.1.0",
    "a modifier written in plain C",
    "{}",
    "",
    -1,
    MODKIT_PIPELINE_DATAFREE,
    sizeof(modkit_param_spec),
    1,
    probe_params,
    NULL, /* create, destroy, on_initialize and on_update are set below through the typedefs */
    NULL,
    NULL,
    probe_finalize,
    NULL,
    NULL,
    NULL,
    probe_event,
};

const modkit_modifier_descriptor* modkit_abi_c_descriptor(void) {
  /* A copy filled through the callback typedefs, so each of them is used from C. */
  static modkit_modifier_descriptor copy;
  static const modkit_descriptor_fn self_fn = modkit_abi_c_descriptor;
  (void)self_fn;
  if (copy.magic == 0) {
    copy = probe_descriptor;
    copy.create = probe_create_fn;
    copy.destroy = probe_destroy_fn;
    copy.on_initialize = probe_initialize_fn;
    copy.on_update = probe_event_fn;
  }
  return &copy;
}
