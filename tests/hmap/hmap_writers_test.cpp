// Second-writer detection in leakless::hmap, Go's "fatal error: concurrent map writes": in builds
// with assertions (NDEBUG not defined) a write that overlaps another write on the same map aborts
// the process with a message containing "concurrent map writes". The overlap is made
// deterministic: every key hashes to one constant (so inserting key 2 must compare it with key 1),
// and the KeyEqual blocks — only on thread A, only once a global flag is set — until released.
// Thread A is thus parked inside insert while the main thread (B) writes to the same map; the death
// test expects the abort (from B's write, or from A when it resumes and sees the interference).
// Not built under ThreadSanitizer (the overlap is a deliberate data race). Sequential writes from
// different threads, and concurrent writes to different maps, must never abort — in every build.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

#include <gtest/gtest.h>

#include <leakless/hmap.hpp>

namespace {

std::atomic<bool> g_block{false};    // KeyEqual blocks (on the blocker thread) while set
std::atomic<bool> g_inside{false};   // the blocker thread is parked inside KeyEqual
std::atomic<bool> g_release{false};  // lets the blocker thread continue
thread_local bool t_is_blocker = false;

// Waits for `flag`, giving up after 30 s so that a broken implementation cannot hang the suite.
bool wait_for(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

struct BlockingEq {
  bool operator()(int a, int b) const {
    if (t_is_blocker && g_block.load()) {
      g_inside.store(true);
      wait_for(g_release);
    }
    return a == b;
  }
};

struct CollidingHash {
  std::size_t operator()(int) const noexcept {
    return static_cast<std::size_t>(0x9e3779b97f4a7c15ULL);
  }
};

using BlockingMap = leakless::hmap<int, int, CollidingHash, BlockingEq>;

// Parks thread A inside m.insert_or_assign(2, 2), then runs `second_write` on this thread.
template <class SecondWrite>
void overlapping_writes(SecondWrite second_write) {
  BlockingMap m;
  m.insert_or_assign(1, 1);
  g_block.store(true);
  std::thread a([&m] {
    t_is_blocker = true;
    m.insert_or_assign(2, 2);
  });
  wait_for(g_inside);
  second_write(m);  // a second writer while A is inside insert
  g_release.store(true);
  a.join();
}

TEST(HmapWriters, SequentialWritesFromDifferentThreadsDoNotAbort) {
  BlockingMap m;  // g_block stays false: nothing blocks here
  std::thread a([&m] {
    for (int i = 0; i < 1000; ++i) m.insert_or_assign(i, i);
  });
  a.join();
  std::thread b([&m] {
    for (int i = 0; i < 1000; i += 2) m.erase(i);
    m[5000] = 1;
  });
  b.join();
  EXPECT_EQ(m.size(), 501u);
  EXPECT_EQ(m.get(999), 999);
  EXPECT_FALSE(m.contains(998));
  EXPECT_EQ(m.get(5000), 1);
}

TEST(HmapWriters, ConcurrentWritesToDifferentMapsDoNotAbort) {
  leakless::hmap<int, int> m1;
  leakless::hmap<int, int> m2;
  std::thread a([&m1] {
    for (int i = 0; i < 50000; ++i) m1.insert_or_assign(i, i);
    for (int i = 0; i < 50000; i += 3) m1.erase(i);
  });
  std::thread b([&m2] {
    for (int i = 0; i < 50000; ++i) m2[i] = -i;
    m2.clear();
  });
  a.join();
  b.join();
  EXPECT_EQ(m1.size(), 50000u - 16667u);
  EXPECT_TRUE(m2.empty());
}

#ifndef NDEBUG

TEST(HmapWritersDeathTest, InsertDuringInsertAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overlapping_writes([](BlockingMap& m) { m.insert_or_assign(3, 3); }),
               "concurrent map writes");
}

TEST(HmapWritersDeathTest, EraseDuringInsertAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overlapping_writes([](BlockingMap& m) { m.erase(1); }), "concurrent map writes");
}

TEST(HmapWritersDeathTest, SubscriptDuringInsertAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overlapping_writes([](BlockingMap& m) { m[4] = 4; }), "concurrent map writes");
}

TEST(HmapWritersDeathTest, ClearDuringInsertAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overlapping_writes([](BlockingMap& m) { m.clear(); }), "concurrent map writes");
}

#else
// NDEBUG: the second-writer check is compiled out of release builds, so there is no abort to test.
#endif

}  // namespace
