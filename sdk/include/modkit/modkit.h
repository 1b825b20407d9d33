/* modkit.h - the C ABI between a modkit host and its modifier plugins.
 *
 * This header is the only contract between a host and a plugin. It is pure C11
 * and includes only <stddef.h>, <stdint.h> and DLPack. No C++, STL, LibTorch,
 * spdlog or toml++ type ever crosses it.
 *
 * Rules (see docs in sdk/README.md):
 *  - Every struct that crosses starts with a frozen prefix and `struct_size`;
 *    structs only grow at their end. A reader checks `struct_size` before it
 *    touches a field that a newer minor appended (MODKIT_HAS_FIELD).
 *  - Fallible calls return a modkit_status and take a final `modkit_error**`
 *    out-parameter; on failure other out-parameters are left untouched.
 *    Errors are allocated by the host (modkit_host.error_new) and freed by the
 *    host, or by whoever receives one (modkit_host.error_free).
 *  - Destroy functions return void and accept NULL.
 *  - No C++ exception ever crosses this boundary.
 *
 * Pointer annotations: `borrowed` (the callee must not free it and must not
 * keep it past the call), `owned: free with X`, `valid until X`, `static`
 * (lives as long as the plugin library stays loaded).
 */
#ifndef MODKIT_MODKIT_H
#define MODKIT_MODKIT_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

/** Bumped when anything is removed, reordered or retyped. A host accepts a
 *  plugin only when both were built for the same major. */
#define MODKIT_ABI_MAJOR 1
/** Bumped when a field or a host function is appended. A host accepts a
 *  plugin when host minor >= the minimum minor the plugin declares.
 *  1: forward hooks (modkit_host.hook_add ... hooks_restore). */
#define MODKIT_ABI_MINOR 1

/** First field of every modkit_modifier_descriptor ("MKMD", little-endian). */
#define MODKIT_DESCRIPTOR_MAGIC 0x444D4B4Du

/** Name of the ELF section that carries each modifier's metadata as JSON,
 *  readable without loading the library. */
#define MODKIT_METADATA_SECTION ".modkit_meta"

/** True when a struct whose first field is `struct_size` is large enough to
 *  contain FIELD, i.e. the writer knew about FIELD. */
#define MODKIT_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* ------------------------------------------------------------ status/error */

typedef int32_t modkit_status;

enum {
  MODKIT_OK = 0,
  MODKIT_ERROR_INVALID_ARGUMENT = 1, /* a parameter or input has the wrong value */
  MODKIT_ERROR_NOT_FOUND = 2,        /* a named module, tensor or type is absent */
  MODKIT_ERROR_FAILED_PRECONDITION = 3, /* called in the wrong lifecycle state */
  MODKIT_ERROR_UNSUPPORTED = 4,      /* the host or plugin lacks this service */
  MODKIT_ERROR_OUT_OF_MEMORY = 5,
  MODKIT_ERROR_INTERNAL = 6          /* anything else, e.g. an unexpected exception */
};

/** Opaque error, allocated by the host. */
typedef struct modkit_error modkit_error;

/* ------------------------------------------------------------------ values */

/** Kinds of modkit_value and of declared parameters. */
enum {
  MODKIT_TYPE_NULL = 0,
  MODKIT_TYPE_BOOL = 1,
  MODKIT_TYPE_INT = 2,
  MODKIT_TYPE_FLOAT = 3, /* an INT value is accepted where a FLOAT is declared */
  MODKIT_TYPE_STRING = 4,
  MODKIT_TYPE_LIST = 5,  /* a list of any values */
  MODKIT_TYPE_TABLE = 6, /* string keys to values */
  MODKIT_TYPE_STRING_LIST = 7, /* schema only: a LIST of STRING (a single STRING is accepted) */
  MODKIT_TYPE_ANY = 8          /* schema only: any value */
};

/** A parameter value: a tree built by the host, borrowed for one call. */
typedef struct modkit_value {
  uint32_t struct_size;
  uint32_t type;                          /* MODKIT_TYPE_NULL .. MODKIT_TYPE_TABLE */
  int64_t int_value;                      /* BOOL (0 or 1) and INT */
  double float_value;                     /* FLOAT, and INT converted */
  const char* string_value;               /* STRING: NUL-terminated UTF-8 */
  size_t count;                           /* LIST and TABLE: number of items */
  const char* const* keys;                /* TABLE: `count` keys */
  const struct modkit_value* const* items; /* LIST and TABLE: `count` items */
} modkit_value;

/* ------------------------------------------------------------------ schema */

enum {
  MODKIT_PARAM_REQUIRED = 1u << 0,
  MODKIT_PARAM_MIN_EXCLUSIVE = 1u << 1, /* the value must be above min_json, not equal to it */
  MODKIT_PARAM_MAX_EXCLUSIVE = 1u << 2  /* the value must be below max_json, not equal to it */
};

/** One declared parameter. All texts are static UTF-8; values are JSON text so
 *  that a default reads exactly as its author wrote it.
 *
 *  Names the host reads (llmcompressor's meaning; the C++ SDK declares them in
 *  modkit::sdk::well_known): "targets" (string list: class names, module names
 *  or "re:<regex>") minus "ignore" (string list) are the modules a modifier
 *  works on — the host matches them for its report and refuses targets that
 *  match no module; "sequential_targets" (string list or null) are the blocks
 *  of the sequential pipeline. "mask_structure" is not read by the host; its
 *  meaning is fixed all the same: "N:M" (0 < N < M) prunes N of every M
 *  consecutive input weights of a row, "0:0" is unstructured. */
typedef struct modkit_param_spec {
  uint32_t struct_size;
  uint32_t type;            /* MODKIT_TYPE_* */
  const char* name;         /* static; a lower_snake_case identifier */
  const char* doc;          /* static; one sentence */
  const char* default_json; /* static; JSON of the default, NULL when none */
  const char* min_json;     /* static; lower bound (JSON number), NULL when unbounded; inclusive unless MODKIT_PARAM_MIN_EXCLUSIVE */
  const char* max_json;     /* static; upper bound (JSON number), NULL when unbounded; inclusive unless MODKIT_PARAM_MAX_EXCLUSIVE */
  const char* choices_json; /* static; JSON array of the allowed values, NULL when any */
  uint32_t flags;           /* MODKIT_PARAM_* */
  uint32_t reserved;
} modkit_param_spec;

/* ------------------------------------------------------------ model, state */

/** Opaque model handle owned by the host. */
typedef struct modkit_model modkit_model;

typedef struct modkit_host modkit_host;

/** What a callback sees of the session. Borrowed for the call. */
typedef struct modkit_state {
  uint32_t struct_size;
  uint32_t reserved;
  const modkit_host* host; /* borrowed; the host services */
  modkit_model* model;     /* borrowed; NULL when the session has no model */
  int32_t rank;            /* this process's rank, 0 when not distributed */
  int32_t world_size;      /* number of ranks, 1 when not distributed */
} modkit_state;

/** Event types, as llmcompressor's EventType. */
enum {
  MODKIT_EVENT_BATCH_START = 1,
  MODKIT_EVENT_LOSS_CALCULATED = 2,
  MODKIT_EVENT_OPTIM_PRE_STEP = 3,
  MODKIT_EVENT_OPTIM_POST_STEP = 4,
  MODKIT_EVENT_BATCH_END = 5,
  MODKIT_EVENT_CALIBRATION_START = 6,
  MODKIT_EVENT_SEQUENTIAL_EPOCH_END = 7,
  MODKIT_EVENT_CALIBRATION_END = 8
};

/** One lifecycle event. Borrowed for the call. */
typedef struct modkit_event {
  uint32_t struct_size;
  uint32_t type;            /* MODKIT_EVENT_* */
  int64_t global_step;
  int64_t global_batch;
  int64_t steps_per_epoch;  /* 0 when the schedule is step based */
  double current_index;     /* global_step, or global_step / steps_per_epoch */
  double loss;              /* LOSS_CALCULATED: the loss; NaN otherwise */
  size_t module_count;      /* SEQUENTIAL_EPOCH_END: modules just calibrated */
  const char* const* modules; /* borrowed; `module_count` module names */
} modkit_event;

/* ------------------------------------------------------------ host services */

enum {
  MODKIT_LOG_TRACE = 0,
  MODKIT_LOG_DEBUG = 1,
  MODKIT_LOG_INFO = 2,
  MODKIT_LOG_WARN = 3,
  MODKIT_LOG_ERROR = 4
};

/** A module of the host's model. Valid until the model's structure changes. */
typedef struct modkit_module_info {
  uint32_t struct_size;
  uint32_t reserved;
  const char* name;       /* dotted path, "" for the root module */
  const char* class_name; /* e.g. "Linear" */
} modkit_module_info;

/** Kinds of named tensors of a module. */
enum { MODKIT_TENSOR_PARAMETER = 1, MODKIT_TENSOR_BUFFER = 2 };

/** Flags of modkit_host.tensor_set. */
enum {
  /** Create the tensor as a new buffer when the module has no tensor of that name. */
  MODKIT_TENSOR_SET_CREATE = 1u << 0,
  /** Replace the tensor (shape or dtype may change) instead of copying into it. */
  MODKIT_TENSOR_SET_REPLACE = 1u << 1
};

/** Called once per matching module by modkit_host.model_match. */
typedef void (*modkit_module_visitor)(void* user, const modkit_module_info* module);
/** Called once per named tensor by modkit_host.tensor_list. */
typedef void (*modkit_tensor_visitor)(void* user, const char* name, uint32_t kind);

/** Kinds of forward hooks (the seed's HooksMixin: register_forward_pre_hook,
 *  register_forward_hook). */
enum {
  MODKIT_HOOK_FORWARD_PRE = 1, /* before the module's forward: sees its inputs */
  MODKIT_HOOK_FORWARD = 2      /* after the module's forward: sees its inputs and outputs */
};

/** What a hook receives. Borrowed for the call: the tensors are zero-copy
 *  views of the module's inputs and outputs, valid until the hook returns (a
 *  hook that keeps one must copy it). An input or output that is not a tensor
 *  is a NULL entry, so positions match the module's forward arguments. */
typedef struct modkit_hook_call {
  uint32_t struct_size;
  uint32_t kind;                          /* MODKIT_HOOK_* */
  const char* module;                     /* borrowed; the module's dotted name */
  size_t input_count;                     /* forward's arguments, without self */
  const DLManagedTensor* const* inputs;   /* borrowed; `input_count` entries */
  size_t output_count;                    /* MODKIT_HOOK_FORWARD: 1, or the tuple's size; else 0 */
  const DLManagedTensor* const* outputs;  /* borrowed; `output_count` entries */
} modkit_hook_call;

/** A hook. Runs on the thread that runs the model's forward; a failure aborts
 *  that forward with the hook's message. */
typedef modkit_status (*modkit_hook_fn)(void* user, const modkit_hook_call* call,
                                        modkit_error** error);

/** Services the host offers to plugins; passed to every callback through
 *  modkit_state and to `create`. Functions a host does not provide are NULL
 *  (model services are NULL when the host has no model support). */
struct modkit_host {
  uint32_t struct_size;
  uint16_t abi_major; /* MODKIT_ABI_MAJOR of the host */
  uint16_t abi_minor; /* MODKIT_ABI_MINOR of the host */
  void* context;      /* host private */

  /** Makes an error. Never returns NULL. owned: free with error_free, or
   *  return it through a `modkit_error**` out-parameter. */
  modkit_error* (*error_new)(const modkit_host* host, modkit_status code,
                             const char* message);
  /** valid until error_free. */
  const char* (*error_message)(const modkit_error* error);
  modkit_status (*error_code)(const modkit_error* error);
  void (*error_free)(modkit_error* error);

  /** Logs through the host's logger; `source` names the plugin or modifier. */
  void (*log)(const modkit_host* host, int32_t level, const char* source,
              const char* message);

  /* Model services. */
  modkit_status (*model_module_count)(const modkit_host* host, modkit_model* model,
                                      size_t* out_count, modkit_error** error);
  modkit_status (*model_module_info)(const modkit_host* host, modkit_model* model,
                                     size_t index, modkit_module_info* out_info,
                                     modkit_error** error);
  /** Visits the modules matched as llmcompressor matches targets: a class
   *  name ("Linear"), an exact module name, or "re:<regex>" on the name; a
   *  module matched by `ignore` is skipped. */
  modkit_status (*model_match)(const modkit_host* host, modkit_model* model,
                               const char* const* targets, size_t target_count,
                               const char* const* ignore, size_t ignore_count,
                               modkit_module_visitor visit, void* user,
                               modkit_error** error);
  /** Visits the parameters and buffers a module owns directly. */
  modkit_status (*tensor_list)(const modkit_host* host, modkit_model* model,
                               const char* module, modkit_tensor_visitor visit,
                               void* user, modkit_error** error);
  /** A zero-copy view of a module's parameter or buffer: writes through it
   *  change the model. owned: release with (*out)->deleter(*out). */
  modkit_status (*tensor_get)(const modkit_host* host, modkit_model* model,
                              const char* module, const char* name,
                              DLManagedTensor** out_tensor, modkit_error** error);
  /** Copies `value` into a module's tensor (same shape), replaces it
   *  (MODKIT_TENSOR_SET_REPLACE) or adds it as a new buffer
   *  (MODKIT_TENSOR_SET_CREATE). `value` is borrowed: the host copies it. */
  modkit_status (*tensor_set)(const modkit_host* host, modkit_model* model,
                              const char* module, const char* name,
                              const DLManagedTensor* value, uint32_t flags,
                              modkit_error** error);

  /* Minor 1: forward hooks. A host without them leaves them NULL. */

  /** Registers `fn` to run on every forward of `module` (MODKIT_HOOK_*),
   *  until hook_remove. `user` is passed back to `fn` as is. *out_id is a
   *  handle unique in the process, never 0. The host instruments the model's
   *  TorchScript graph; the instrumentation is gone from the graph once the
   *  module's last hook is removed, and never reaches a saved model. Not to
   *  be called while the model runs a forward. */
  modkit_status (*hook_add)(const modkit_host* host, modkit_model* model, const char* module,
                            uint32_t kind, modkit_hook_fn fn, void* user, uint64_t* out_id,
                            modkit_error** error);
  /** Removes a hook; unknown ids (already removed, or of a model that no
   *  longer exists) are ignored. */
  void (*hook_remove)(const modkit_host* host, uint64_t id);
  /** Enters a scope in which the model's hooks do not run, except those in
   *  `keep` (the seed's HooksMixin.disable_hooks). Scopes nest: hooks run
   *  again only when every scope is left, and a hook kept by any open scope
   *  runs. *out_scope is the handle hooks_restore takes. */
  modkit_status (*hooks_disable)(const modkit_host* host, modkit_model* model, const uint64_t* keep,
                                 size_t keep_count, uint64_t* out_scope, modkit_error** error);
  /** Leaves a scope entered by hooks_disable; unknown handles are ignored. */
  void (*hooks_restore)(const modkit_host* host, uint64_t scope);
};

/* -------------------------------------------------------------- descriptor */

/** Calibration a modifier needs, which picks the pipeline a oneshot run uses: the one list of
 *  pipelines, X(NAME, value, "keyword"), that the enum below, the SDK, hosts and tools expand.
 *  DATAFREE: no calibration data; BASIC: all batches through the whole model; SEQUENTIAL: block
 *  by block. */
#define MODKIT_PIPELINES(X)          \
  X(DATAFREE, 0, "datafree")         \
  X(BASIC, 1, "basic")               \
  X(SEQUENTIAL, 2, "sequential")

#define MODKIT_PIPELINE_ENUMERATOR_(NAME, VALUE, KEYWORD) MODKIT_PIPELINE_##NAME = VALUE,
enum { MODKIT_PIPELINES(MODKIT_PIPELINE_ENUMERATOR_) };
#undef MODKIT_PIPELINE_ENUMERATOR_

/* Lifecycle callbacks. `self` is what `create` returned. `out_ok` receives 1
 * for success and 0 for "not done" (Python's bool return). */
typedef modkit_status (*modkit_create_fn)(const modkit_host* host, const modkit_value* params,
                                          void** out_self, modkit_error** error);
typedef void (*modkit_destroy_fn)(void* self);
typedef modkit_status (*modkit_state_fn)(void* self, const modkit_state* state,
                                         int32_t* out_ok, modkit_error** error);
typedef modkit_status (*modkit_event_fn)(void* self, const modkit_state* state,
                                         const modkit_event* event, modkit_error** error);

/** The static description of one modifier type, returned by the exported
 *  function whose name is the type name. */
typedef struct modkit_modifier_descriptor {
  /* frozen prefix */
  uint32_t magic;       /* MODKIT_DESCRIPTOR_MAGIC */
  uint32_t struct_size; /* sizeof(modkit_modifier_descriptor) as the plugin saw it */
  uint16_t abi_major;   /* MODKIT_ABI_MAJOR the plugin was built for */
  uint16_t abi_min_minor; /* the lowest host minor whose services it uses */
  uint32_t reserved;

  const char* type_name;      /* static; equals the exported symbol's name */
  const char* version;        /* static; the modifier's own version, e.g. "1.2.0" */
  const char* summary;        /* static; one line */
  const char* metadata_json;  /* static; the same JSON the metadata section holds */

  /* fingerprint of what the plugin was built against */
  const char* torch_version;  /* static; "" when the plugin does not use LibTorch */
  int32_t cxx11_abi;          /* _GLIBCXX_USE_CXX11_ABI, -1 when not libstdc++ */
  uint32_t pipeline;          /* MODKIT_PIPELINE_* */

  uint32_t param_spec_size;   /* sizeof(modkit_param_spec) as the plugin saw it: the stride of `params` */
  uint32_t param_count;
  const modkit_param_spec* params; /* static; `param_count` entries */

  /* lifecycle: create, destroy and on_initialize are required, the rest may be NULL */
  modkit_create_fn create;
  modkit_destroy_fn destroy;
  modkit_state_fn on_initialize;
  modkit_state_fn on_finalize;
  modkit_event_fn on_start;
  modkit_event_fn on_update;
  modkit_event_fn on_end;
  modkit_event_fn on_event;
} modkit_modifier_descriptor;

/** The signature of every exported `*Modifier` symbol. Runs no work: it
 *  returns a pointer to static data inside the plugin. */
typedef const modkit_modifier_descriptor* (*modkit_descriptor_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MODKIT_MODKIT_H */
