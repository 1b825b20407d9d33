/* abi_layout.h - the pinned x86_64 LP64 layout of every struct in modkit.h, shared by the C and C++ checks. */
#ifndef MODKIT_TESTS_ABI_LAYOUT_H
#define MODKIT_TESTS_ABI_LAYOUT_H

#include <stddef.h>

#include <modkit/modkit.h>

/* X(struct, field, offset, size) for every field, in declaration order. None of
 * these structs has internal padding, so the fields of one struct tile it: each
 * offset is the previous offset plus the previous size, and the last field ends
 * at sizeof(struct) (MODKIT_ABI_SIZES). A field that moves, changes type or is
 * added breaks a pin here, in C and in C++. */
#define MODKIT_ABI_FIELDS(X)                                   \
  X(modkit_value, struct_size, 0, 4)                           \
  X(modkit_value, type, 4, 4)                                  \
  X(modkit_value, int_value, 8, 8)                             \
  X(modkit_value, float_value, 16, 8)                          \
  X(modkit_value, string_value, 24, 8)                         \
  X(modkit_value, count, 32, 8)                                \
  X(modkit_value, keys, 40, 8)                                 \
  X(modkit_value, items, 48, 8)                                \
  X(modkit_param_spec, struct_size, 0, 4)                      \
  X(modkit_param_spec, type, 4, 4)                             \
  X(modkit_param_spec, name, 8, 8)                             \
  X(modkit_param_spec, doc, 16, 8)                             \
  X(modkit_param_spec, default_json, 24, 8)                    \
  X(modkit_param_spec, min_json, 32, 8)                        \
  X(modkit_param_spec, max_json, 40, 8)                        \
  X(modkit_param_spec, choices_json, 48, 8)                    \
  X(modkit_param_spec, flags, 56, 4)                           \
  X(modkit_param_spec, reserved, 60, 4)                        \
  X(modkit_state, struct_size, 0, 4)                           \
  X(modkit_state, reserved, 4, 4)                              \
  X(modkit_state, host, 8, 8)                                  \
  X(modkit_state, model, 16, 8)                                \
  X(modkit_state, rank, 24, 4)                                 \
  X(modkit_state, world_size, 28, 4)                           \
  X(modkit_event, struct_size, 0, 4)                           \
  X(modkit_event, type, 4, 4)                                  \
  X(modkit_event, global_step, 8, 8)                           \
  X(modkit_event, global_batch, 16, 8)                         \
  X(modkit_event, steps_per_epoch, 24, 8)                      \
  X(modkit_event, current_index, 32, 8)                        \
  X(modkit_event, loss, 40, 8)                                 \
  X(modkit_event, module_count, 48, 8)                         \
  X(modkit_event, modules, 56, 8)                              \
  X(modkit_module_info, struct_size, 0, 4)                     \
  X(modkit_module_info, reserved, 4, 4)                        \
  X(modkit_module_info, name, 8, 8)                            \
  X(modkit_module_info, class_name, 16, 8)                     \
  X(modkit_host, struct_size, 0, 4)                            \
  X(modkit_host, abi_major, 4, 2)                              \
  X(modkit_host, abi_minor, 6, 2)                              \
  X(modkit_host, context, 8, 8)                                \
  X(modkit_host, error_new, 16, 8)                             \
  X(modkit_host, error_message, 24, 8)                         \
  X(modkit_host, error_code, 32, 8)                            \
  X(modkit_host, error_free, 40, 8)                            \
  X(modkit_host, log, 48, 8)                                   \
  X(modkit_host, model_module_count, 56, 8)                    \
  X(modkit_host, model_module_info, 64, 8)                     \
  X(modkit_host, model_match, 72, 8)                           \
  X(modkit_host, tensor_list, 80, 8)                           \
  X(modkit_host, tensor_get, 88, 8)                            \
  X(modkit_host, tensor_set, 96, 8)                            \
  X(modkit_host, hook_add, 104, 8)                             \
  X(modkit_host, hook_remove, 112, 8)                          \
  X(modkit_host, hooks_disable, 120, 8)                        \
  X(modkit_host, hooks_restore, 128, 8)                        \
  X(modkit_hook_call, struct_size, 0, 4)                       \
  X(modkit_hook_call, kind, 4, 4)                              \
  X(modkit_hook_call, module, 8, 8)                            \
  X(modkit_hook_call, input_count, 16, 8)                      \
  X(modkit_hook_call, inputs, 24, 8)                           \
  X(modkit_hook_call, output_count, 32, 8)                     \
  X(modkit_hook_call, outputs, 40, 8)                          \
  X(modkit_modifier_descriptor, magic, 0, 4)                   \
  X(modkit_modifier_descriptor, struct_size, 4, 4)             \
  X(modkit_modifier_descriptor, abi_major, 8, 2)               \
  X(modkit_modifier_descriptor, abi_min_minor, 10, 2)          \
  X(modkit_modifier_descriptor, reserved, 12, 4)               \
  X(modkit_modifier_descriptor, type_name, 16, 8)              \
  X(modkit_modifier_descriptor, version, 24, 8)                \
  X(modkit_modifier_descriptor, summary, 32, 8)                \
  X(modkit_modifier_descriptor, metadata_json, 40, 8)          \
  X(modkit_modifier_descriptor, torch_version, 48, 8)          \
  X(modkit_modifier_descriptor, cxx11_abi, 56, 4)              \
  X(modkit_modifier_descriptor, pipeline, 60, 4)               \
  X(modkit_modifier_descriptor, param_spec_size, 64, 4)        \
  X(modkit_modifier_descriptor, param_count, 68, 4)            \
  X(modkit_modifier_descriptor, params, 72, 8)                 \
  X(modkit_modifier_descriptor, create, 80, 8)                 \
  X(modkit_modifier_descriptor, destroy, 88, 8)                \
  X(modkit_modifier_descriptor, on_initialize, 96, 8)          \
  X(modkit_modifier_descriptor, on_finalize, 104, 8)           \
  X(modkit_modifier_descriptor, on_start, 112, 8)              \
  X(modkit_modifier_descriptor, on_update, 120, 8)             \
  X(modkit_modifier_descriptor, on_end, 128, 8)                \
  X(modkit_modifier_descriptor, on_event, 136, 8)

/* X(struct, size, alignment) for every struct of modkit.h. */
#define MODKIT_ABI_SIZES(X)                 \
  X(modkit_value, 56, 8)                    \
  X(modkit_param_spec, 64, 8)               \
  X(modkit_state, 32, 8)                    \
  X(modkit_event, 64, 8)                    \
  X(modkit_module_info, 24, 8)              \
  X(modkit_host, 136, 8)                    \
  X(modkit_hook_call, 48, 8)                \
  X(modkit_modifier_descriptor, 144, 8)

/* X(name, value) for every enumerator and value macro of modkit.h. */
#define MODKIT_ABI_CONSTANTS(X)                       \
  X(MODKIT_ABI_MAJOR, 1)                              \
  X(MODKIT_ABI_MINOR, 1)                              \
  X(MODKIT_DESCRIPTOR_MAGIC, 0x444D4B4D)              \
  X(MODKIT_OK, 0)                                     \
  X(MODKIT_ERROR_INVALID_ARGUMENT, 1)                 \
  X(MODKIT_ERROR_NOT_FOUND, 2)                        \
  X(MODKIT_ERROR_FAILED_PRECONDITION, 3)              \
  X(MODKIT_ERROR_UNSUPPORTED, 4)                      \
  X(MODKIT_ERROR_OUT_OF_MEMORY, 5)                    \
  X(MODKIT_ERROR_INTERNAL, 6)                         \
  X(MODKIT_TYPE_NULL, 0)                              \
  X(MODKIT_TYPE_BOOL, 1)                              \
  X(MODKIT_TYPE_INT, 2)                               \
  X(MODKIT_TYPE_FLOAT, 3)                             \
  X(MODKIT_TYPE_STRING, 4)                            \
  X(MODKIT_TYPE_LIST, 5)                              \
  X(MODKIT_TYPE_TABLE, 6)                             \
  X(MODKIT_TYPE_STRING_LIST, 7)                       \
  X(MODKIT_TYPE_ANY, 8)                               \
  X(MODKIT_PARAM_REQUIRED, 1)                         \
  X(MODKIT_EVENT_BATCH_START, 1)                      \
  X(MODKIT_EVENT_LOSS_CALCULATED, 2)                  \
  X(MODKIT_EVENT_OPTIM_PRE_STEP, 3)                   \
  X(MODKIT_EVENT_OPTIM_POST_STEP, 4)                  \
  X(MODKIT_EVENT_BATCH_END, 5)                        \
  X(MODKIT_EVENT_CALIBRATION_START, 6)                \
  X(MODKIT_EVENT_SEQUENTIAL_EPOCH_END, 7)             \
  X(MODKIT_EVENT_CALIBRATION_END, 8)                  \
  X(MODKIT_LOG_TRACE, 0)                              \
  X(MODKIT_LOG_DEBUG, 1)                              \
  X(MODKIT_LOG_INFO, 2)                               \
  X(MODKIT_LOG_WARN, 3)                               \
  X(MODKIT_LOG_ERROR, 4)                              \
  X(MODKIT_TENSOR_PARAMETER, 1)                       \
  X(MODKIT_TENSOR_BUFFER, 2)                          \
  X(MODKIT_TENSOR_SET_CREATE, 1)                      \
  X(MODKIT_TENSOR_SET_REPLACE, 2)                     \
  X(MODKIT_PIPELINE_DATAFREE, 0)                      \
  X(MODKIT_PIPELINE_BASIC, 1)                         \
  X(MODKIT_PIPELINE_SEQUENTIAL, 2)                    \
  X(MODKIT_HOOK_FORWARD_PRE, 1)                       \
  X(MODKIT_HOOK_FORWARD, 2)

/* What the C compiler computed, for the C++ side to compare with its own. */
typedef struct modkit_abi_c_entry {
  const char* type_name;
  const char* field; /* NULL for a whole-struct entry */
  size_t offset;     /* the struct's alignment for a whole-struct entry */
  size_t size;
} modkit_abi_c_entry;

#ifdef __cplusplus
extern "C" {
#endif

/** The C compiler's offsetof/sizeof/_Alignof of every pinned field and struct. */
const modkit_abi_c_entry* modkit_abi_c_layout(size_t* out_count);
/** The C compiler's value of every pinned constant, in MODKIT_ABI_CONSTANTS order. */
const long long* modkit_abi_c_constants(size_t* out_count);
/** A modifier written in plain C against modkit.h (not exported). */
const modkit_modifier_descriptor* modkit_abi_c_descriptor(void);

#ifdef __cplusplus
}
#endif

#endif /* MODKIT_TESTS_ABI_LAYOUT_H */
