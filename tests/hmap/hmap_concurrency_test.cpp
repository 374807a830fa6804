// Concurrent readers of leakless::hmap: like the std containers, const member functions may run
// from many threads at once on one map. Several threads (released together by an atomic latch)
// run lookup / contains / get / heterogeneous string lookups / stats / full const iterations /
// copy construction on the same const map — quiet, in mid-growth and in mid-shrink — and every
// result is checked against the known contents. Independent maps written by separate threads must
// not share state either (per-map seeds, iteration randomness). The assertions catch wrong answers;
// ThreadSanitizer (this test is built in the tsan preset) catches data races, e.g. a non-atomic
// "live iterator" count or a shared random generator. Writer detection is in hmap_writers_test.cpp.
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "hmap_test_util.hpp"

namespace {

using hmap_test::describe_stats;

using U64Map = leakless::hmap<std::uint64_t, std::uint64_t>;

constexpr std::uint64_t value_for(std::uint64_t k) { return k * 0x9e3779b97f4a7c15ULL + 3; }
constexpr int kThreads = 4;

// Runs body(thread_index) on kThreads threads released at the same moment.
template <class Body>
void run_together(Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(t);
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
}

// Reads everything in `m` (holding keys [0, n) minus `absent`) and counts wrong answers.
std::uint64_t read_all(const U64Map& m, std::uint64_t n, std::uint64_t stride_seed, int rounds) {
  std::uint64_t wrong = 0;
  std::mt19937_64 rng(stride_seed);
  for (int round = 0; round < rounds; ++round) {
    for (std::uint64_t i = 0; i < n + 500; ++i) {
      const std::uint64_t k = (i * 7919 + rng() % 2) % (n + 500);
      const bool present = k < n;
      if (m.contains(k) != present) ++wrong;
      const std::uint64_t* p = m.lookup(k);
      if ((p != nullptr) != present || (p != nullptr && *p != value_for(k))) ++wrong;
      if (m.get(k) != (present ? value_for(k) : 0)) ++wrong;
    }
    std::uint64_t visits = 0;
    std::uint64_t key_sum = 0;
    for (auto&& [k, v] : m) {
      ++visits;
      key_sum += k;
      if (v != value_for(k)) ++wrong;
    }
    if (visits != n) ++wrong;
    if (key_sum != n * (n - 1) / 2) ++wrong;
    const auto s = m.stats();
    if (s.count != n || m.size() != n || s.memory_bytes != m.memory_bytes()) ++wrong;
  }
  return wrong;
}

void check_concurrent_reads(const U64Map& m, std::uint64_t n) {
  const auto before = m.stats();
  std::atomic<std::uint64_t> wrong{0};
  run_together([&](int t) { wrong.fetch_add(read_all(m, n, static_cast<std::uint64_t>(t), 3)); });
  EXPECT_EQ(wrong.load(), 0u);
  const auto after = m.stats();
  // Readers never migrate.
  EXPECT_EQ(after.growing, before.growing) << describe_stats(after);
  EXPECT_EQ(after.shrinking, before.shrinking) << describe_stats(after);
  EXPECT_EQ(after.bucket_count, before.bucket_count);
  EXPECT_EQ(after.old_bucket_count, before.old_bucket_count);
}

TEST(HmapConcurrentReaders, QuietMap) {
  U64Map m;
  constexpr std::uint64_t kN = 20000;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, value_for(k));
  ASSERT_FALSE(hmap_test::migrating(m.stats())) << describe_stats(m.stats());
  check_concurrent_reads(m, kN);
}

TEST(HmapConcurrentReaders, MapInMidGrowth) {
  U64Map m;
  std::uint64_t n = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 2048)) {
    m.insert_or_assign(n, value_for(n));
    ++n;
  }
  ASSERT_TRUE(m.stats().growing);
  check_concurrent_reads(m, n);
  EXPECT_TRUE(m.stats().growing);
}

TEST(HmapConcurrentReaders, MapInMidShrink) {
  U64Map m;
  constexpr std::uint64_t kN = 60000;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, value_for(k));
  // Erase from the top so that the survivors stay [0, n).
  std::uint64_t n = kN;
  while (!m.stats().shrinking) {
    ASSERT_GT(n, 0u) << "never started shrinking";
    --n;
    m.erase(n);
  }
  check_concurrent_reads(m, n);
  EXPECT_TRUE(m.stats().shrinking);
}

TEST(HmapConcurrentReaders, StringKeysWithHeterogeneousLookup) {
  leakless::hmap<std::string, std::string> m;
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) {
    keys.push_back("key/with/some/length/" + std::to_string(i));
    m.insert_or_assign(keys.back(), std::to_string(i));
  }
  const auto& cm = m;
  std::atomic<std::uint64_t> wrong{0};
  run_together([&](int t) {
    std::uint64_t bad = 0;
    for (int round = 0; round < 3; ++round) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::string_view sv = keys[(i + static_cast<std::size_t>(t) * 131) % keys.size()];
        const std::string* p = cm.lookup(sv);
        if (p == nullptr || cm.get(std::string(sv)) != *p) ++bad;
        if (!cm.contains(sv)) ++bad;
        if (cm.contains(std::string_view("absent/key"))) ++bad;
        if (cm.lookup(keys[i].c_str()) == nullptr) ++bad;
      }
      std::size_t visits = 0;
      for (auto&& [k, v] : cm) {
        ++visits;
        if (k.substr(k.rfind('/') + 1) != v) ++bad;
      }
      if (visits != keys.size()) ++bad;
    }
    wrong.fetch_add(bad);
  });
  EXPECT_EQ(wrong.load(), 0u);
}

TEST(HmapConcurrentReaders, ConcurrentCopiesOfOneMap) {
  U64Map m;
  constexpr std::uint64_t kN = 10000;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, value_for(k));
  const U64Map& cm = m;
  std::atomic<std::uint64_t> wrong{0};
  run_together([&](int t) {
    U64Map copy = cm;  // reads the shared map
    // The copy is private to this thread: write to it.
    for (std::uint64_t k = 0; k < kN; k += 2) copy.erase(k);
    copy.insert_or_assign(kN + static_cast<std::uint64_t>(t), 1);
    std::uint64_t bad = 0;
    if (copy.size() != kN / 2 + 1) ++bad;
    for (std::uint64_t k = 1; k < kN; k += 2) {
      if (copy.get(k) != value_for(k)) ++bad;
    }
    wrong.fetch_add(bad);
  });
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(m.size(), kN);
  for (std::uint64_t k = 0; k < kN; ++k) ASSERT_EQ(m.get(k), value_for(k));
}

TEST(HmapConcurrentReaders, ManyLiveIteratorsAtOnce) {
  U64Map m;
  std::uint64_t n = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 512)) {
    m.insert_or_assign(n, value_for(n));
    ++n;
  }
  const U64Map& cm = m;
  std::atomic<std::uint64_t> wrong{0};
  run_together([&](int) {
    std::uint64_t bad = 0;
    for (int round = 0; round < 20; ++round) {
      // Two interleaved iterators per thread, all threads at once.
      auto a = cm.begin();
      auto b = cm.begin();
      std::unordered_set<std::uint64_t> sa;
      std::unordered_set<std::uint64_t> sb;
      while (a != cm.end() || b != cm.end()) {
        if (a != cm.end()) {
          if (!sa.insert(a->first).second) ++bad;
          ++a;
        }
        if (b != cm.end()) {
          if (!sb.insert(b->first).second) ++bad;
          ++b;
        }
      }
      if (sa.size() != n || sb.size() != n) ++bad;
    }
    wrong.fetch_add(bad);
  });
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_TRUE(m.stats().growing);
  // After all iterators are gone, writes resume the migration.
  std::uint64_t writes = 0;
  while (m.stats().growing) {
    m.insert_or_assign(n, value_for(n));
    ++n;
    ASSERT_LE(++writes, 2000u) << describe_stats(m.stats());
  }
}

TEST(HmapIndependentMaps, EachThreadWritesItsOwnMap) {
  std::atomic<std::uint64_t> wrong{0};
  run_together([&](int t) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 100);
    std::uint64_t bad = 0;
    for (int round = 0; round < 3; ++round) {
      U64Map m;
      std::unordered_set<std::uint64_t> ref;
      for (int op = 0; op < 30000; ++op) {
        const std::uint64_t k = rng() % 8000;
        if (rng() % 3 == 0) {
          if (m.erase(k) != ref.erase(k)) ++bad;
        } else {
          m.insert_or_assign(k, value_for(k));
          ref.insert(k);
        }
      }
      std::size_t visits = 0;
      for (auto&& [k, v] : m) {
        ++visits;
        if (!ref.count(k) || v != value_for(k)) ++bad;
      }
      if (visits != ref.size()) ++bad;
      U64Map copy = m;
      U64Map moved = std::move(copy);
      if (moved.size() != ref.size()) ++bad;
      m.clear();
      m.shrink_to_fit();
    }
    wrong.fetch_add(bad);
  });
  EXPECT_EQ(wrong.load(), 0u);
}

}  // namespace
