// tests/heap/heap_linked_test.cpp — the heap profiler inside a program that links libleakless.so:
// every allocation entry point keeps glibc's behaviour, sampled blocks are tracked through
// realloc, frees on other threads and exiting threads, and profile writing races safely with
// allocation and with dlopen/dlclose.
//
// How it works: the test binary links libleakless.so, so its malloc and operator new are ours.
// Exact checks run at sample rate 1 (every allocation recorded) and read the legacy text profile
// (debug=1), whose records carry raw counts: a record "I: IB [A: AB] @ ..." has I live objects of
// IB bytes out of A allocated of AB bytes. Each test uses allocation sizes no other code here uses,
// so it can pick out its own records.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <queue>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <leakless/profile.hpp>

namespace {

// Sizes no allocator can satisfy, hidden from the compiler (it would warn about the literal).
volatile std::size_t g_huge = SIZE_MAX;
std::size_t huge() { return g_huge; }
std::size_t half_huge() { return g_huge / 2; }

struct size_totals {
  std::uint64_t inuse_objects = 0;
  std::uint64_t alloc_objects = 0;
};

// Sums the text profile's records whose allocation size is `size`.
size_totals totals_for_size(std::size_t size) {
  std::ostringstream out;
  leakless::write_heap_profile(out, 1);
  std::istringstream in(out.str());
  std::string line;
  size_totals t;
  while (std::getline(in, line)) {
    unsigned long long inuse = 0, inuse_bytes = 0, allocs = 0, alloc_bytes = 0;
    if (line.rfind("heap profile:", 0) == 0) continue;
    if (std::sscanf(line.c_str(), "%llu: %llu [%llu: %llu] @", &inuse, &inuse_bytes, &allocs,
                    &alloc_bytes) != 4 ||
        allocs == 0 || alloc_bytes / allocs != size) {
      continue;
    }
    t.inuse_objects += inuse;
    t.alloc_objects += allocs;
  }
  return t;
}

// Makes `p` observable, so the compiler cannot elide a new/delete pair (C++14 allows it).
void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

class every_allocation {
 public:
  every_allocation() { leakless::set_sample_rate(1); }
  ~every_allocation() { leakless::set_sample_rate(512 * 1024); }
};

TEST(HeapLinked, TextProfileHasGosHeader) {
  std::ostringstream out;
  leakless::write_heap_profile(out, 1);
  EXPECT_EQ(out.str().rfind("heap profile: ", 0), 0u) << out.str().substr(0, 200);
  EXPECT_NE(out.str().find("@ heap/1048576\n"), std::string::npos);  // 2 * rate, as Go prints
}

TEST(HeapLinked, EveryEntryPointIsCountedAndFreed) {
  every_allocation rate;
  constexpr std::size_t kSize = 1111;
  const size_totals before = totals_for_size(kSize);
  std::vector<void*> blocks;
  blocks.push_back(malloc(kSize));
  blocks.push_back(calloc(1, kSize));
  blocks.push_back(memalign(64, kSize));
  blocks.push_back(aligned_alloc(256, kSize));
  void* p = nullptr;
  ASSERT_EQ(posix_memalign(&p, 128, kSize), 0);
  blocks.push_back(p);
  blocks.push_back(valloc(kSize));
  blocks.push_back(reallocarray(nullptr, 1, kSize));
  blocks.push_back(realloc(nullptr, kSize));
  const size_totals during = totals_for_size(kSize);
  EXPECT_EQ(during.alloc_objects - before.alloc_objects, blocks.size());
  EXPECT_EQ(during.inuse_objects - before.inuse_objects, blocks.size());
  for (void* b : blocks) free(b);
  const size_totals after = totals_for_size(kSize);
  EXPECT_EQ(after.inuse_objects, before.inuse_objects);
}

TEST(HeapLinked, OperatorNewAndDeleteFormsAreCounted) {
  every_allocation rate;
  struct alignas(64) aligned_block {
    char bytes[1216];
  };
  const size_totals before_plain = totals_for_size(1213);
  const size_totals before_aligned = totals_for_size(sizeof(aligned_block));
  char* a = new char[1213];
  auto* b = new aligned_block;
  auto* c = new (std::nothrow) aligned_block;
  void* d = ::operator new(1213);
  void* e = ::operator new(1213, std::nothrow);
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(c), d, e}) {
    escape(p);
  }
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c) % 64, 0u);
  EXPECT_EQ(totals_for_size(1213).inuse_objects - before_plain.inuse_objects, 3u);
  EXPECT_EQ(totals_for_size(sizeof(aligned_block)).inuse_objects - before_aligned.inuse_objects,
            2u);
  delete[] a;
  delete b;
  delete c;
  ::operator delete(d, 1213);
  ::operator delete(e, std::nothrow);
  EXPECT_EQ(totals_for_size(1213).inuse_objects, before_plain.inuse_objects);
  EXPECT_EQ(totals_for_size(sizeof(aligned_block)).inuse_objects, before_aligned.inuse_objects);
}

TEST(HeapLinked, ReallocMovesTheRecordWithTheBlock) {
  every_allocation rate;
  const size_totals small_before = totals_for_size(1301);
  const size_totals big_before = totals_for_size(70001);
  void* p = malloc(1301);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xAB, 1301);
  void* q = realloc(p, 70001);  // grows (and usually moves)
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(static_cast<unsigned char*>(q)[1300], 0xAB);
  EXPECT_EQ(totals_for_size(1301).inuse_objects, small_before.inuse_objects);
  EXPECT_EQ(totals_for_size(70001).inuse_objects - big_before.inuse_objects, 1u);
  void* r = realloc(q, 1301);  // shrinks in place or moves: the record follows either way
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(totals_for_size(70001).inuse_objects, big_before.inuse_objects);
  EXPECT_EQ(totals_for_size(1301).inuse_objects - small_before.inuse_objects, 1u);
  errno = 0;
  EXPECT_EQ(realloc(r, 0), nullptr);  // glibc frees the block
  EXPECT_EQ(totals_for_size(1301).inuse_objects, small_before.inuse_objects);
}

TEST(HeapLinked, FailedReallocKeepsTheBlockAndItsRecord) {
  every_allocation rate;
  const size_totals before = totals_for_size(1303);
  // Volatile: the compiler cannot know the realloc fails, and would warn about the free.
  void* volatile p = malloc(1303);
  ASSERT_NE(p, nullptr);
  errno = 0;
  EXPECT_EQ(realloc(p, half_huge()), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(totals_for_size(1303).inuse_objects - before.inuse_objects, 1u);
  free(p);
  EXPECT_EQ(totals_for_size(1303).inuse_objects, before.inuse_objects);
}

TEST(HeapLinked, FailuresBehaveAsGlibcDoes) {
  errno = 0;
  EXPECT_EQ(malloc(huge()), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(calloc(half_huge(), 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(reallocarray(nullptr, half_huge(), 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = reinterpret_cast<void*>(0x1);
  errno = 1234;
  EXPECT_EQ(posix_memalign(&p, 3, 16), EINVAL);
  EXPECT_EQ(posix_memalign(&p, 24, 16), EINVAL);
  EXPECT_EQ(posix_memalign(&p, 64, half_huge()), ENOMEM);
  EXPECT_EQ(errno, 1234);  // posix_memalign reports through its result only
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1));
  EXPECT_THROW((void)::operator new(half_huge()), std::bad_alloc);
  EXPECT_THROW((void)::operator new[](half_huge(), std::align_val_t{64}), std::bad_alloc);
  EXPECT_EQ(::operator new(half_huge(), std::nothrow), nullptr);
}

TEST(HeapLinked, ZeroSizeAndUsableSize) {
  void* zero = malloc(0);
  EXPECT_NE(zero, nullptr);
  free(zero);
  void* one = ::operator new(0);
  EXPECT_NE(one, nullptr);
  ::operator delete(one);
  for (std::size_t n : {1u, 24u, 1000u, 200000u}) {
    void* p = malloc(n);
    EXPECT_GE(malloc_usable_size(p), n);
    free(p);
  }
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  void* page = valloc(10);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(page) % static_cast<std::uintptr_t>(getpagesize()),
            0u);
  free(page);
  void* whole = pvalloc(10);
  EXPECT_GE(malloc_usable_size(whole), static_cast<std::size_t>(getpagesize()) - 16);
  free(whole);
}

int g_handler_calls = 0;
void release_and_uninstall() {
  ++g_handler_calls;
  std::set_new_handler(nullptr);
}

TEST(HeapLinked, NewHandlerIsCalledBeforeBadAlloc) {
  g_handler_calls = 0;
  std::set_new_handler(release_and_uninstall);
  EXPECT_THROW((void)::operator new(half_huge()), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 1);
  std::set_new_handler(release_and_uninstall);
  EXPECT_EQ(::operator new(half_huge(), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 2);
}

TEST(HeapLinked, FreesOnOtherThreadsAndExitingThreadsBalance) {
  every_allocation rate;
  constexpr std::size_t kSize = 1409;
  const size_totals before = totals_for_size(kSize);
  std::mutex mutex;
  std::queue<void*> handoff;
  std::atomic<int> producers_left{4};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {  // allocates, hands to a consumer, then exits
      for (int i = 0; i < 5000; ++i) {
        void* p = malloc(kSize);
        std::lock_guard<std::mutex> lock(mutex);
        handoff.push(p);
      }
      producers_left.fetch_sub(1);
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        void* p = nullptr;
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (!handoff.empty()) {
            p = handoff.front();
            handoff.pop();
          } else if (producers_left.load() == 0) {
            return;
          }
        }
        free(p);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const size_totals after = totals_for_size(kSize);
  EXPECT_EQ(after.alloc_objects - before.alloc_objects, 20000u);
  EXPECT_EQ(after.inuse_objects, before.inuse_objects);
}

TEST(HeapLinked, ProfilesWrittenWhileThreadsAllocateStayConsistent) {
  leakless::set_sample_rate(4096);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&stop, t] {
      std::vector<std::string*> kept;
      while (!stop.load(std::memory_order_relaxed)) {
        kept.push_back(new std::string(100 + static_cast<std::size_t>(t) * 50, 'x'));
        if (kept.size() > 1000) {
          for (std::string* s : kept) delete s;
          kept.clear();
        }
      }
      for (std::string* s : kept) delete s;
    });
  }
  for (int i = 0; i < 20; ++i) {
    std::ostringstream out;
    leakless::write_heap_profile(out, i % 2);
    EXPECT_FALSE(out.str().empty());
    const leakless::heap_profile_stats s = leakless::heap_stats();
    EXPECT_LE(s.live_samples, s.samples);
    EXPECT_GT(s.profiler_bytes, 0u);
  }
  stop = true;
  for (std::thread& w : workers) w.join();
  leakless::set_sample_rate(512 * 1024);
}

// A library is loaded and unloaded over and over while other threads allocate at rate 1 (every
// allocation unwinds) and profiles are written: no deadlock on the loader's lock, no crash on
// stale unwind information.
TEST(HeapLinked, DlopenChurnWhileSamplingAndWriting) {
  every_allocation rate;
  std::atomic<bool> stop{false};
  std::atomic<int> loads{0};
  std::thread loader([&] {
    for (int i = 0; i < 300; ++i) {
      void* handle = dlopen(LEAKLESS_CHURN_LIBRARY, RTLD_NOW | RTLD_LOCAL);
      ASSERT_NE(handle, nullptr) << dlerror();
      auto allocate = reinterpret_cast<void* (*)(std::size_t)>(dlsym(handle, "churn_allocate"));
      ASSERT_NE(allocate, nullptr);
      free(allocate(100));  // sampled inside the library that is about to be unloaded
      ASSERT_EQ(dlclose(handle), 0);
      loads.fetch_add(1);
    }
    stop = true;
  });
  std::vector<std::thread> allocators;
  for (int t = 0; t < 2; ++t) {
    allocators.emplace_back([&] {
      while (!stop.load()) {
        std::vector<int> v(64);
        v[0] = 1;
      }
    });
  }
  while (!stop.load()) {
    std::ostringstream out;
    leakless::write_heap_profile(out);
  }
  loader.join();
  for (std::thread& a : allocators) a.join();
  EXPECT_EQ(loads.load(), 300);
}

// The number after "# <name> = " in the text profile's trailer.
std::size_t trailer_value(const std::string& name) {
  std::ostringstream out;
  leakless::write_heap_profile(out, 1);
  const std::string text = out.str();
  const std::string key = "# " + name + " = ";
  const std::size_t at = text.find(key);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no '" << key << "' in the text profile";
    return 0;
  }
  return std::stoul(text.substr(at + key.size()));
}

// Runs `body` on each of `count` threads and, while all of them are still alive (each has done
// its work and waits), calls `while_alive`.
template <class Body, class WhileAlive>
void on_live_threads(std::size_t count, Body body, WhileAlive while_alive) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t done = 0;
  bool finish = false;
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < count; ++i) {
    workers.emplace_back([&] {
      body();
      std::unique_lock lock(m);
      ++done;
      cv.notify_all();
      cv.wait(lock, [&] { return finish; });
    });
  }
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done == count; });
  }
  while_alive();
  {
    std::lock_guard lock(m);
    finish = true;
  }
  cv.notify_all();
  for (std::thread& w : workers) w.join();
}

constexpr std::size_t kLibunwindCacheBytes = 256 * 1024;

// The profiler's figures about its unwinders, as the profile reports them.
struct unwinder_figures {
  std::size_t threads_holding_libunwind_cache = 0;
  std::size_t fallbacks = 0;
  std::size_t profiler_bytes = 0;
};

unwinder_figures read_unwinder_figures() {
  return {trailer_value("UnwindingThreads"), trailer_value("UnwinderFallbacks"),
          leakless::heap_stats().profiler_bytes};
}

// The CFI unwinder keeps one rule cache for the whole process: threads that sample add no
// per-thread unwinder memory (libunwind's unw_backtrace would add 256 KiB each).
TEST(HeapLinked, SamplingThreadsShareOneUnwinderCache) {
  every_allocation rate;
  constexpr std::size_t kThreads = 4;
  const unwinder_figures before = read_unwinder_figures();
  unwinder_figures alive;
  on_live_threads(
      kThreads,
      [] {
        void* p = malloc(4321);  // sampled: rate 1
        escape(p);
        free(p);
      },
      [&] { alive = read_unwinder_figures(); });
  EXPECT_EQ(totals_for_size(4321).alloc_objects, kThreads);
  EXPECT_EQ(alive.threads_holding_libunwind_cache, before.threads_holding_libunwind_cache);
  EXPECT_EQ(read_unwinder_figures().fallbacks, before.fallbacks);
  EXPECT_LT(alive.profiler_bytes, before.profiler_bytes + kLibunwindCacheBytes);
}

// A stack through a signal frame is one the CFI unwinder declines: libunwind captures it whole,
// and its 256 KiB cache counts in the profiler's memory while the thread lives (the peak keeps it).
void allocate_in_handler(int) {
  void* p = malloc(4323);  // sampled: rate 1
  escape(p);
  free(p);
}

[[gnu::noinline]] void raise_the_allocating_signal() {
  raise(SIGUSR2);
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
}

TEST(HeapLinked, StacksThroughSignalFramesFallBackToLibunwindAndItsCacheCounts) {
  every_allocation rate;
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = allocate_in_handler;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &action, &previous), 0);
  const unwinder_figures before = read_unwinder_figures();
  unwinder_figures alive;
  on_live_threads(
      1, [] { raise_the_allocating_signal(); }, [&] { alive = read_unwinder_figures(); });
  sigaction(SIGUSR2, &previous, nullptr);
  const unwinder_figures after = read_unwinder_figures();
  EXPECT_EQ(totals_for_size(4323).alloc_objects, 1u);
  EXPECT_EQ(after.fallbacks, before.fallbacks + 1);
  EXPECT_EQ(alive.threads_holding_libunwind_cache, before.threads_holding_libunwind_cache + 1);
  EXPECT_GE(alive.profiler_bytes, before.profiler_bytes + kLibunwindCacheBytes);
  EXPECT_EQ(after.threads_holding_libunwind_cache, before.threads_holding_libunwind_cache);
  EXPECT_GE(trailer_value("PeakProfilerBytes"), alive.profiler_bytes);
  // libunwind follows the signal frame: the record of the handler's allocation goes on to the
  // function that raised the signal.
  std::ostringstream out;
  leakless::write_heap_profile(out, 1);
  const std::string text = out.str();
  const std::size_t record = text.find("[1: 4323] @");
  ASSERT_NE(record, std::string::npos);
  const std::size_t record_end = text.find("\n\n", record);
  const std::string stack = text.substr(record, record_end - record);
  EXPECT_NE(stack.find("allocate_in_handler"), std::string::npos) << stack;
  EXPECT_NE(stack.find("raise_the_allocating_signal"), std::string::npos) << stack;
}

TEST(HeapLinked, StatsEstimateAKnownLeak) {
  // 64 MiB held in 48 KiB blocks, at a 64 KiB rate: ~1000 samples, so the estimate is within 10%
  // with overwhelming probability (standard error ~3%).
  leakless::set_sample_rate(64 * 1024);
  const leakless::heap_profile_stats before = leakless::heap_stats();
  std::vector<void*> held;
  for (std::size_t total = 0; total < (64u << 20); total += 48 * 1024) {
    held.push_back(malloc(48 * 1024));
  }
  const leakless::heap_profile_stats after = leakless::heap_stats();
  const double estimate =
      static_cast<double>(after.inuse_bytes) - static_cast<double>(before.inuse_bytes);
  EXPECT_NEAR(estimate / (64 << 20), 1.0, 0.10);
  EXPECT_EQ(after.sample_rate, 64u * 1024);
  for (void* p : held) free(p);
  const leakless::heap_profile_stats freed = leakless::heap_stats();
  EXPECT_NEAR(static_cast<double>(freed.inuse_bytes), static_cast<double>(before.inuse_bytes),
              0.02 * (64 << 20));
  leakless::set_sample_rate(512 * 1024);
}

}  // namespace
