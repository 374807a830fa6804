// leakless/export.hpp — symbol visibility for libleakless.so.
//
// How it works: the library is compiled with -fvisibility=hidden, so nothing is exported unless it
// is marked LEAKLESS_API, which expands to the ELF "default" visibility attribute. Consumers see
// the same attribute on declarations, which is harmless. Header-only code (hmap, hash) needs no
// marking.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define LEAKLESS_API __attribute__((visibility("default")))
#define LEAKLESS_HIDDEN __attribute__((visibility("hidden")))
#else
#define LEAKLESS_API
#define LEAKLESS_HIDDEN
#endif
