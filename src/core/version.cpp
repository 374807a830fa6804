// src/core/version.cpp — defines leakless::version() inside libleakless.so.
//
// How it works: LEAKLESS_VERSION_STRING is passed by the build (src/CMakeLists.txt) from the CMake
// project version; a static_assert below keeps the header's LEAKLESS_VERSION_* macros equal to that
// string, so a version bump that forgets one of the two fails to compile.
#include <string_view>

#include <leakless/version.hpp>

#ifndef LEAKLESS_VERSION_STRING
#error "LEAKLESS_VERSION_STRING must be defined by the build system"
#endif

namespace leakless {
namespace {

#define LEAKLESS_STR2(x) #x
#define LEAKLESS_STR(x) LEAKLESS_STR2(x)
constexpr std::string_view kHeaderVersion = LEAKLESS_STR(LEAKLESS_VERSION_MAJOR) "." LEAKLESS_STR(
    LEAKLESS_VERSION_MINOR) "." LEAKLESS_STR(LEAKLESS_VERSION_PATCH);
#undef LEAKLESS_STR
#undef LEAKLESS_STR2

constexpr std::string_view kVersion = LEAKLESS_VERSION_STRING;
static_assert(kVersion == kHeaderVersion,
              "LEAKLESS_VERSION_* in include/leakless/version.hpp must match the CMake project "
              "version");

}  // namespace

std::string_view version() noexcept { return kVersion; }

}  // namespace leakless
