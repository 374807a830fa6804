// tests/stack/cfi_unwind_test.cpp — the CFI unwinder, checked against libunwind.
//
// How it works: capture() takes a stack with either unwinder, from one call site, so that the
// caller's frames are the same for both; the CFI unwinder's frames from capture()'s caller on
// must then be exactly the end of libunwind's (which we trust, and which the heap profiler
// used before). Stacks go through plain recursion, glibc code built without frame
// pointers (qsort calling back), a frame too large for the rule cache's packing, an over-aligned
// frame (GCC realigns the stack for it), other threads, many threads at once (the cache is shared
// and filled concurrently), and more return addresses than the first cache holds (it is replaced
// by a larger one). A signal frame is the one thing the unwinder declines: it must say so and keep
// the frames it did find. The cache must answer as the tables do, and forget on flush.
#include "stack/cfi_unwind.hpp"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace leakless::stack {
namespace {

constexpr std::size_t kMaxFrames = 512;

struct trace {
  std::vector<std::uintptr_t> frames;
  unwind_end end = unwind_end::outermost;
};

// Keeps a value alive and stops the compiler from turning calls into tail calls.
template <class T>
void escape(T& value) {
  asm volatile("" : : "r"(&value) : "memory");
}

// The reference walks with unw_step (libunwind's general unwinder) rather than unw_backtrace,
// whose per-thread cache is freed at thread exit by a destructor that ThreadSanitizer's runtime
// does not survive.
[[gnu::noinline]] trace capture(bool with_cfi) {
  trace t;
  if (with_cfi) {
    std::array<std::uintptr_t, kMaxFrames> cfi{};
    const unwind_result r = cfi_backtrace(cfi.data(), cfi.size());
    t.frames.assign(cfi.begin(), cfi.begin() + static_cast<std::ptrdiff_t>(r.depth));
    t.end = r.end;
  } else {
    unw_context_t context;
    unw_cursor_t cursor;
    unw_getcontext(&context);
    if (unw_init_local(&cursor, &context) == 0) {
      while (t.frames.size() < kMaxFrames && unw_step(&cursor) > 0) {
        unw_word_t ip = 0;
        unw_get_reg(&cursor, UNW_REG_IP, &ip);
        t.frames.push_back(static_cast<std::uintptr_t>(ip));
      }
    }
  }
  escape(t);
  return t;
}

// Both captures, made from the same call instruction.
struct pair_of_traces {
  trace cfi;
  trace reference;
};

[[gnu::noinline]] pair_of_traces capture_both() {
  pair_of_traces both;
  for (int i = 0; i < 2; ++i) {
    trace t = capture(i == 0);
    (i == 0 ? both.cfi : both.reference) = std::move(t);
  }
  escape(both);
  return both;
}

// The CFI frames after the first (inside capture()) must be the reference's last frames.
void expect_same_stack(const pair_of_traces& both) {
  const auto& ours = both.cfi.frames;
  const auto& reference = both.reference.frames;
  EXPECT_EQ(both.cfi.end, unwind_end::outermost);
  ASSERT_GE(ours.size(), 3u);
  ASSERT_GE(reference.size(), ours.size() - 1);
  const std::vector<std::uintptr_t> our_tail(ours.begin() + 1, ours.end());
  const std::vector<std::uintptr_t> reference_tail(
      reference.end() - static_cast<std::ptrdiff_t>(our_tail.size()), reference.end());
  EXPECT_EQ(our_tail, reference_tail);
}

[[gnu::noinline]] pair_of_traces recurse(int depth) {
  if (depth == 0) return capture_both();
  pair_of_traces both = recurse(depth - 1);
  escape(both);
  return both;
}

TEST(CfiUnwind, RecursionMatchesLibunwind) {
  const pair_of_traces both = recurse(40);
  expect_same_stack(both);
  EXPECT_GE(both.cfi.frames.size(), 42u);
}

// qsort (glibc, no frame pointers) calls the comparator, which captures once.
pair_of_traces g_from_qsort;
std::atomic<bool> g_captured_in_qsort{false};

int compare_and_capture(const void* a, const void* b) {
  if (!g_captured_in_qsort.exchange(true)) g_from_qsort = capture_both();
  const int x = *static_cast<const int*>(a);
  const int y = *static_cast<const int*>(b);
  return (x > y) - (x < y);
}

TEST(CfiUnwind, ThroughGlibcCodeWithoutFramePointers) {
  std::array<int, 64> values{};
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 37) % 64);
  g_captured_in_qsort = false;
  std::qsort(values.data(), values.size(), sizeof(int), compare_and_capture);
  ASSERT_TRUE(g_captured_in_qsort.load());
  expect_same_stack(g_from_qsort);
}

// 64 KiB of locals: a CFA offset the rule cache cannot pack, so the rule is computed every time.
[[gnu::noinline]] pair_of_traces big_frame(int depth) {
  volatile char buffer[64 * 1024];
  buffer[0] = static_cast<char>(depth);
  buffer[sizeof buffer - 1] = buffer[0];
  pair_of_traces both = depth == 0 ? capture_both() : big_frame(depth - 1);
  escape(both);
  return both;
}

TEST(CfiUnwind, FramesTooLargeForTheCacheStillUnwind) {
  for (int round = 0; round < 2; ++round) expect_same_stack(big_frame(3));
}

// A local aligned beyond the ABI's 16 bytes: GCC realigns the stack in the prologue.
[[gnu::noinline]] pair_of_traces over_aligned_frame(int depth) {
  alignas(128) char block[128];
  block[0] = static_cast<char>(depth);
  escape(block);
  pair_of_traces both = depth == 0 ? capture_both() : over_aligned_frame(depth - 1);
  escape(both);
  return both;
}

TEST(CfiUnwind, ThroughRealignedFrames) { expect_same_stack(over_aligned_frame(3)); }

TEST(CfiUnwind, OnAnotherThreadItEndsAtTheThreadsFirstFrame) {
  pair_of_traces both;
  std::thread worker([&] { both = recurse(5); });
  worker.join();
  expect_same_stack(both);
}

TEST(CfiUnwind, StopsAtMaxFramesAndSaysSo) {
  std::array<std::uintptr_t, 4> few{};
  const unwind_result r = cfi_backtrace(few.data(), few.size());
  EXPECT_EQ(r.end, unwind_end::full);
  EXPECT_EQ(r.depth, few.size());
  std::array<std::uintptr_t, kMaxFrames> all{};
  const unwind_result whole = cfi_backtrace(all.data(), all.size());
  ASSERT_GT(whole.depth, few.size());
  // Same frames but the first (two call sites in this function).
  for (std::size_t i = 1; i < few.size(); ++i) EXPECT_EQ(few[i], all[i]);
}

// A signal frame is not followed: the frames inside the handler are reported, then "unsupported".
// The handler only calls the unwinder (async-signal-safe: no lock, no allocation).
std::array<std::uintptr_t, kMaxFrames> g_handler_frames;
unwind_result g_in_handler;
void capture_in_handler(int) {
  g_in_handler = cfi_backtrace(g_handler_frames.data(), g_handler_frames.size());
}

TEST(CfiUnwind, DeclinesSignalFramesAndKeepsTheFramesBefore) {
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = capture_in_handler;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);
  g_in_handler = {};
  raise(SIGUSR1);
  sigaction(SIGUSR1, &previous, nullptr);
  std::array<std::uintptr_t, kMaxFrames> here{};
  const unwind_result outside = cfi_backtrace(here.data(), here.size());
  EXPECT_EQ(g_in_handler.end, unwind_end::unsupported);
  // At least the handler's return into the signal trampoline, and nothing from outside the
  // signal: none of this test's own callers.
  ASSERT_GE(g_in_handler.depth, 1u);
  ASSERT_EQ(outside.end, unwind_end::outermost);
  for (std::size_t i = 0; i < g_in_handler.depth; ++i) {
    for (std::size_t j = 1; j < outside.depth; ++j) EXPECT_NE(g_handler_frames[i], here[j]);
  }
}

// Bad frames. Two functions written in assembly call back into C++ (`callback` in rdi):
// - one with no unwind information at all: the unwinder must stop there and say so;
// - one whose CFI lies (it says its frame is just the return address, then pushes a word the CFI
//   does not mention): the unwinder takes that word (a small number, no code's address) for the
//   return address and must stop there, unharmed, saying it cannot go on.
// Both keep the stack 16-byte aligned at the call, as the ABI wants.
extern "C" void leakless_test_call_without_cfi(void (*callback)());
extern "C" void leakless_test_call_with_lying_cfi(void (*callback)());
asm(R"(
  .text
  .p2align 4
  .type leakless_test_call_without_cfi, @function
leakless_test_call_without_cfi:
  sub $8, %rsp
  call *%rdi
  add $8, %rsp
  ret
  .size leakless_test_call_without_cfi, .-leakless_test_call_without_cfi

  .p2align 4
  .type leakless_test_call_with_lying_cfi, @function
leakless_test_call_with_lying_cfi:
  .cfi_startproc
  push $0x10
  call *%rdi
  add $8, %rsp
  ret
  .cfi_endproc
  .size leakless_test_call_with_lying_cfi, .-leakless_test_call_with_lying_cfi
)");

trace g_bad_frame_trace;
void capture_from_assembly() { g_bad_frame_trace = capture(true); }

TEST(CfiUnwind, StopsAtFramesWithoutUnwindInformation) {
  g_bad_frame_trace = {};
  leakless_test_call_without_cfi(capture_from_assembly);
  EXPECT_EQ(g_bad_frame_trace.end, unwind_end::unsupported);
  // Returns into capture(), capture_from_assembly() and the assembly: nothing beyond it.
  EXPECT_EQ(g_bad_frame_trace.frames.size(), 3u);
}

TEST(CfiUnwind, StopsAtAFrameWhoseUnwindInformationLies) {
  g_bad_frame_trace = {};
  leakless_test_call_with_lying_cfi(capture_from_assembly);
  EXPECT_EQ(g_bad_frame_trace.end, unwind_end::unsupported);
  // Returns into capture(), capture_from_assembly() and the assembly, then the bogus word.
  ASSERT_EQ(g_bad_frame_trace.frames.size(), 4u);
  EXPECT_EQ(g_bad_frame_trace.frames[3], 0x10u);
}

TEST(CfiUnwind, CachedRulesGiveTheSameStacksAndFlushForgetsThem) {
  // Three captures from one call site: the tables, then the cache, then the tables after a flush.
  std::array<pair_of_traces, 3> runs;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (i == 1) {
      EXPECT_GT(cfi_cached_rules(), 0u);
      EXPECT_GT(cfi_cache_bytes(), 0u);
    }
    if (i == 2) {
      cfi_flush_cache();
      EXPECT_EQ(cfi_cached_rules(), 0u);
    }
    runs[i] = recurse(8);
  }
  expect_same_stack(runs[0]);
  EXPECT_EQ(runs[1].cfi.frames, runs[0].cfi.frames);
  EXPECT_EQ(runs[2].cfi.frames, runs[0].cfi.frames);
  EXPECT_GT(cfi_cached_rules(), 0u);
}

TEST(CfiUnwind, ManyThreadsFillTheSharedCacheAndAgree) {
  // libunwind sets up its globals on first use without guarding every read of them: use it once
  // here, before the threads do (src/threads does the same).
  expect_same_stack(recurse(1));
  cfi_flush_cache();
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const pair_of_traces both = recurse((round + t) % 12);
        const auto& ours = both.cfi.frames;
        const auto& reference = both.reference.frames;
        if (both.cfi.end != unwind_end::outermost || ours.size() < 2 ||
            reference.size() < ours.size() - 1 ||
            !std::equal(ours.begin() + 1, ours.end(),
                        reference.end() - static_cast<std::ptrdiff_t>(ours.size() - 1))) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// Many distinct return addresses: one leaf function per index, each calling capture_both().
template <int N>
[[gnu::noinline]] pair_of_traces distinct_leaf() {
  pair_of_traces both = capture_both();
  escape(both);
  return both;
}

template <int... N>
constexpr std::array<pair_of_traces (*)(), sizeof...(N)> make_leaves(
    std::integer_sequence<int, N...>) {
  return {&distinct_leaf<N>...};
}

TEST(CfiUnwind, TheCacheIsReplacedByALargerOneWhenItFills) {
  // 2,500 leaves, each a return address of its own: more than half of the first table's 4,096.
  static constexpr auto leaves = make_leaves(std::make_integer_sequence<int, 2500>{});
  cfi_flush_cache();
  int mismatches = 0;
  for (int round = 0; round < 2; ++round) {
    for (auto leaf : leaves) {
      const pair_of_traces both = leaf();
      const auto& ours = both.cfi.frames;
      const auto& reference = both.reference.frames;
      if (both.cfi.end != unwind_end::outermost || ours.size() < 2 ||
          !std::equal(ours.begin() + 1, ours.end(),
                      reference.end() - static_cast<std::ptrdiff_t>(ours.size() - 1))) {
        ++mismatches;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The first table (4,096 entries of 8 bytes) and at least its 16,384-entry successor.
  EXPECT_GE(cfi_cache_bytes(), (std::size_t{4096} + 16384) * 8);
  EXPECT_GE(cfi_cached_rules(), 2500u);  // the second round filled the new table
}

}  // namespace
}  // namespace leakless::stack
