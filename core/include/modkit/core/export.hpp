// MODKIT_CORE_API marks what libmodkit_core exports: it is built with hidden visibility (as fmt's FMT_API), so a
// symbol without this mark is private to the library and never part of its ABI.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define MODKIT_CORE_API __attribute__((visibility("default")))
#else
#define MODKIT_CORE_API
#endif
