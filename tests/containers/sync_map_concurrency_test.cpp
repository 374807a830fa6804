// leakless::sync_map under concurrency: four threads, released together, mix load, store,
// load_or_store, load_and_delete, erase and range on one map, and every answer is checked against
// invariants that hold whatever the interleaving:
//  - every value seen for a key (load, range, load_and_delete, load_or_store) is one that some
//    thread stored for that key (values encode key, thread and sequence number);
//  - range visits each key at most once per call;
//  - racers calling load_or_store on the same absent key all get the same value back, exactly one
//    of them with loaded == false, and that value is what the map holds afterwards;
//  - a key stored once and never deleted stays visible, with its value, to every reader that has
//    seen it (written-once, read-many: the promotions of the dirty map must not lose it);
//  - at the end size() equals the number of keys load() and range() find.
// The assertions catch wrong answers; the tsan and asan presets catch races and use-after-free in
// the lock-free paths (snapshot replacement, value replacement, entry removal).
#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "leakless/sync_map.hpp"

namespace {

constexpr int kThreads = 4;
using Map = leakless::sync_map<std::uint32_t, std::uint64_t>;

// value = key << 32 | thread << 24 | sequence (sequence < 2^24).
std::uint64_t encode(std::uint32_t key, unsigned thread, std::uint32_t seq) {
  return (std::uint64_t{key} << 32) | (std::uint64_t{thread} << 24) | (seq & 0xffffffu);
}
std::uint32_t key_of(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }
unsigned thread_of(std::uint64_t v) { return static_cast<unsigned>((v >> 24) & 0xff); }
std::uint32_t seq_of(std::uint64_t v) { return static_cast<std::uint32_t>(v & 0xffffff); }

// Starts kThreads threads running body(thread) at the same moment and joins them.
template <class Body>
void run_together(Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      body(t);
    });
  }
  for (auto& th : threads) th.join();
}

TEST(SyncMapConcurrency, MixedOperationsKeepInvariants) {
  Map m;
  constexpr std::uint32_t kKeys = 128;
  constexpr std::uint32_t kOps = 40'000;
  // Highest sequence number each thread has used (stored values have seq <= this).
  std::atomic<std::uint32_t> used[kThreads] = {};
  std::atomic<int> failures{0};
  const auto valid = [&](std::uint32_t key, std::uint64_t v) {
    const bool ok = key_of(v) == key && thread_of(v) < kThreads &&
                    seq_of(v) <= used[thread_of(v)].load(std::memory_order_acquire);
    if (!ok) failures.fetch_add(1);
    return ok;
  };
  run_together([&](unsigned t) {
    std::minstd_rand rng(1000 + t);
    for (std::uint32_t seq = 1; seq <= kOps; ++seq) {
      used[t].store(seq, std::memory_order_release);
      const auto key = static_cast<std::uint32_t>(rng() % kKeys);
      const std::uint64_t mine = encode(key, t, seq);
      switch (rng() % 8) {
        case 0:
        case 1:
          m.store(key, mine);
          break;
        case 2: {
          const auto [v, loaded] = m.load_or_store(key, mine);
          valid(key, v);
          if (!loaded && v != mine) failures.fetch_add(1);  // stored: must be our value
          break;
        }
        case 3:
          if (const auto v = m.load_and_delete(key)) valid(key, *v);
          break;
        case 4:
          m.erase(key);
          break;
        case 5:
          if (seq % 64 == 0) {
            std::set<std::uint32_t> seen;
            m.range([&](const std::uint32_t& k, const std::uint64_t& v) {
              valid(k, v);
              if (!seen.insert(k).second) failures.fetch_add(1);
              return seen.size() < 100 || (rng() & 1);  // sometimes stop early
            });
          }
          break;
        default:
          if (const auto v = m.load(key)) valid(key, *v);
          break;
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);

  std::size_t present = 0;
  for (std::uint32_t k = 0; k < kKeys; ++k) {
    if (const auto v = m.load(k)) {
      ++present;
      EXPECT_TRUE(valid(k, *v)) << "key " << k;
    }
  }
  std::size_t ranged = 0;
  m.range([&](const std::uint32_t& k, const std::uint64_t& v) {
    EXPECT_TRUE(valid(k, v));
    return ++ranged, true;
  });
  EXPECT_EQ(m.size(), present);
  EXPECT_EQ(ranged, present);
}

TEST(SyncMapConcurrency, LoadOrStoreRacersAgree) {
  Map m;
  constexpr std::uint32_t kKeys = 20'000;
  // results[t][k]: what thread t got back for key k.
  std::vector<std::vector<std::pair<std::uint64_t, bool>>> results(
      kThreads, std::vector<std::pair<std::uint64_t, bool>>(kKeys));
  run_together([&](unsigned t) {
    for (std::uint32_t k = 0; k < kKeys; ++k) {
      // Alternate the direction so that threads meet on keys in every phase of the map.
      const std::uint32_t key = (t % 2 == 0) ? k : kKeys - 1 - k;
      results[t][key] = m.load_or_store(key, encode(key, t, key & 0xffffff));
      if (k % 7 == 0) m.load(kKeys + k);  // misses: promotions while racing
    }
  });
  for (std::uint32_t k = 0; k < kKeys; ++k) {
    int stored = 0;
    for (unsigned t = 0; t < kThreads; ++t) {
      ASSERT_EQ(results[t][k].first, results[0][k].first) << "key " << k << " thread " << t;
      stored += !results[t][k].second;
    }
    ASSERT_EQ(stored, 1) << "key " << k;
    ASSERT_EQ(m.load(k), results[0][k].first) << "key " << k;
    ASSERT_EQ(key_of(results[0][k].first), k);
  }
  EXPECT_EQ(m.size(), kKeys);
}

TEST(SyncMapConcurrency, WrittenOnceKeysStayVisible) {
  Map m;
  constexpr std::uint32_t kKeys = 30'000;
  std::atomic<std::uint32_t> published{0};  // keys [0, published) are stored
  std::atomic<int> failures{0};
  run_together([&](unsigned t) {
    if (t == 0) {
      for (std::uint32_t k = 0; k < kKeys; ++k) {
        m.store(k, encode(k, 0, k & 0xffffff));
        published.store(k + 1, std::memory_order_release);
      }
      return;
    }
    std::minstd_rand rng(t);
    std::uint32_t n = 0;
    while (n < kKeys) {
      n = published.load(std::memory_order_acquire);
      if (n == 0) continue;
      for (int i = 0; i < 64; ++i) {
        const auto k = static_cast<std::uint32_t>(rng() % n);
        const auto v = m.load(k);
        if (!v || *v != encode(k, 0, k & 0xffffff)) failures.fetch_add(1);
      }
      if (t == 1 && rng() % 512 == 0) {  // a range now and then forces promotions too
        std::uint32_t visited = 0;
        m.range([&](const std::uint32_t& k, const std::uint64_t& v) {
          if (v != encode(k, 0, k & 0xffffff)) failures.fetch_add(1);
          return ++visited, true;
        });
        if (visited < n) failures.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(m.size(), kKeys);
}

}  // namespace
