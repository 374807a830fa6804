// tests/pprof/symbolizer_test.cpp — the libdw symbolizer on this test program's own code.
//
// How it works: small functions record the return address of a call made on a known line
// (__LINE__), so the expected function, file and line of each address are known exactly. One
// caller calls through an always_inline helper, whose frame must come back as an inline frame
// (innermost first) with the caller's frame at the line of the inlined call. Also checked: C
// library symbols get a name without debug information, unknown addresses give no frames, and
// results are cached. The test is compiled with -g whatever the preset (see CMakeLists.txt).
#include "pprof/symbolizer.hpp"

#include <unistd.h>

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace leakless::pprof {
namespace {

[[gnu::noinline]] std::uintptr_t return_address() {
  auto address = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return address;
}

[[gnu::noinline]] std::uintptr_t plain_caller(int* line) {
  *line = __LINE__ + 1;
  std::uintptr_t address = return_address();
  asm volatile("" ::: "memory");  // keeps the call a call, not a tail jump
  return address;
}

[[gnu::always_inline]] inline std::uintptr_t inlined_helper(int* line) {
  *line = __LINE__ + 1;
  std::uintptr_t address = return_address();
  asm volatile("" ::: "memory");
  return address;
}

[[gnu::noinline]] std::uintptr_t inline_caller(int* helper_line, int* call_line) {
  *call_line = __LINE__ + 1;
  std::uintptr_t address = inlined_helper(helper_line);
  asm volatile("" ::: "memory");
  return address;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(Symbolizer, NamesFileAndLineOfACall) {
  int line = 0;
  const std::uintptr_t address = plain_caller(&line);
  symbolizer s;
  const symbolized& sym = s.lookup(address - 1);
  ASSERT_EQ(sym.frames.size(), 1u);
  const frame& f = sym.frames[0];
  EXPECT_EQ(f.function, "leakless::pprof::(anonymous namespace)::plain_caller(int*)");
  EXPECT_EQ(f.system_name.rfind("_ZN8leakless5pprof12_GLOBAL__N_112plain_caller", 0), 0u)
      << f.system_name;
  EXPECT_TRUE(ends_with(f.file, "/tests/pprof/symbolizer_test.cpp")) << f.file;
  EXPECT_EQ(f.file.front(), '/');
  EXPECT_EQ(f.line, line);
  EXPECT_GT(f.start_line, 0);
  EXPECT_LT(f.start_line, line);
  EXPECT_GT(sym.symbol_offset, 0u);
}

TEST(Symbolizer, InlinedCallsAreSeparateFramesInnermostFirst) {
  int helper_line = 0;
  int call_line = 0;
  const std::uintptr_t address = inline_caller(&helper_line, &call_line);
  symbolizer s;
  const symbolized& sym = s.lookup(address - 1);
  ASSERT_EQ(sym.frames.size(), 2u);
  // Inlined, and without a linkage name in GCC's DWARF (internal linkage): the qualified name.
  EXPECT_EQ(
      sym.frames[0].function.rfind("leakless::pprof::(anonymous namespace)::inlined_helper", 0), 0u)
      << sym.frames[0].function;
  EXPECT_EQ(sym.frames[0].line, helper_line);
  EXPECT_EQ(sym.frames[1].function,
            "leakless::pprof::(anonymous namespace)::inline_caller(int*, int*)");
  EXPECT_EQ(sym.frames[1].line, call_line);
  EXPECT_TRUE(ends_with(sym.frames[1].file, "/tests/pprof/symbolizer_test.cpp"));
}

TEST(Symbolizer, LibrarySymbolsWithoutDebugInfoStillHaveNames) {
  symbolizer s;
  // The address of a C library function that this program calls.
  const auto address = reinterpret_cast<std::uintptr_t>(&::getpid) + 1;
  const symbolized& sym = s.lookup(address);
  ASSERT_FALSE(sym.frames.empty());
  EXPECT_NE(sym.frames.back().function.find("getpid"), std::string::npos)
      << sym.frames.back().function;
}

TEST(Symbolizer, UnknownAddressesHaveNoFramesAndResultsAreCached) {
  symbolizer s;
  EXPECT_TRUE(s.lookup(0x10).frames.empty());
  int line = 0;
  const std::uintptr_t address = plain_caller(&line) - 1;
  const symbolized* first = &s.lookup(address);
  EXPECT_EQ(first, &s.lookup(address));
}

}  // namespace
}  // namespace leakless::pprof
