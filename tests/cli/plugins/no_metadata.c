/* Test plugin: exports a *Modifier function but no metadata and no descriptor. */
#include <stddef.h>

__attribute__((visibility("default"))) const void* NoMetadataModifier(void) { return NULL; }
