// leakless/version.hpp — the version of the leakless library that a program is running with.
//
// How it works: leakless::version() is defined inside libleakless.so, so it reports the version of
// the library actually loaded at run time (which may differ from the headers compiled against;
// compare with LEAKLESS_VERSION_MAJOR below when that matters). The string is "MAJOR.MINOR.PATCH".
#pragma once

#include <string_view>

#include <leakless/export.hpp>

// Version of these headers (must equal the CMake project version; checked when the library is
// built).
#define LEAKLESS_VERSION_MAJOR 0
#define LEAKLESS_VERSION_MINOR 1
#define LEAKLESS_VERSION_PATCH 0

namespace leakless {

// Returns the version of the loaded libleakless.so, e.g. "0.1.0". The view refers to static
// storage.
LEAKLESS_API std::string_view version() noexcept;

}  // namespace leakless
