// Single-threaded tests of leakless::cache: the entry and byte bounds (and the 32-bit weight's
// saturation), exact LRU order, W-TinyLFU keeping a popular key through a scan of one-hit keys,
// hit ratios on a seeded Zipf(0.99) stream, expiry after write / after access / per-entry ttl on a
// clock the test moves by hand (no sleeps), reads that skip the clock when nothing can expire, the
// hash table against a std::map (also with a hash of 16 values), and the cause given to the
// removal listener for each way an entry leaves.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/manual_clock.hpp"

#include <leakless/cache.hpp>

namespace {

using namespace std::chrono_literals;

using leakless::test::manual_clock;

TEST(CacheBasic, GetPutEraseAndStats) {
  leakless::cache_options opts;
  opts.max_entries = 10;
  leakless::cache<int, std::string> c(opts);
  EXPECT_FALSE(c.get(1).has_value());
  c.put(1, "one");
  c.put(2, "two");
  EXPECT_EQ(c.get(1), "one");
  EXPECT_EQ(c.size(), 2u);
  c.put(1, "uno");
  EXPECT_EQ(c.get(1), "uno");
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.erase(1));
  EXPECT_FALSE(c.erase(1));
  EXPECT_FALSE(c.get(1).has_value());
  const auto st = c.stats();
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(st.bytes, (leakless::cache<int, std::string>::entry_overhead));
}

TEST(CacheBasic, EntryBoundNeverExceeded) {
  for (auto policy : {leakless::eviction::tinylfu, leakless::eviction::lru}) {
    leakless::cache_options opts;
    opts.max_entries = 50;
    opts.policy = policy;
    leakless::cache<int, int> c(opts);
    for (int i = 0; i < 5000; ++i) {
      c.put(i % 700, i);
      if (i % 3 == 0) (void)c.get(i % 97);
      ASSERT_LE(c.size(), 50u);
    }
    EXPECT_EQ(c.size(), 50u);
    EXPECT_GT(c.stats().evictions, 0u);
  }
}

TEST(CacheBasic, ByteBoundCountsWeigherAndOverhead) {
  using cache_t = leakless::cache<int, std::string>;
  leakless::cache_options<int, std::string> opts;
  opts.max_bytes = 20 * (cache_t::entry_overhead + 100);
  opts.weigher = [](const int&, const std::string& v) { return v.capacity(); };
  cache_t c(opts);
  for (int i = 0; i < 1000; ++i) {
    c.put(i, std::string(static_cast<std::size_t>(100 + i % 50), 'x'));
    ASSERT_LE(c.stats().bytes, opts.max_bytes);
  }
  const auto st = c.stats();
  EXPECT_GT(st.bytes, opts.max_bytes / 2);
  EXPECT_LT(c.size(), 20u);
  EXPECT_GT(c.size(), 5u);
  c.cleanup();
  for (int i = 0; i < 1000; ++i) c.erase(i);
  EXPECT_EQ(c.stats().bytes, 0u);
  EXPECT_EQ(c.size(), 0u);
}

// An entry's weight is kept in 32 bits: a heavier entry counts as 2^32 - 1 bytes, the same when it
// comes and when it goes, so the total stays exact.
TEST(CacheBasic, WeightSaturatesAt32Bits) {
  constexpr std::uint64_t kMax = 0xffffffffu;
  using cache_t = leakless::cache<int, std::string>;
  leakless::cache_options<int, std::string> opts;
  opts.max_bytes = std::size_t{1} << 40;
  opts.shards = 1;
  opts.weigher = [](const int& k, const std::string&) {
    return k == 0 ? std::size_t{1} << 36 : std::size_t{10};
  };
  cache_t c(opts);
  c.put(0, "heavy");
  c.put(1, "light");
  EXPECT_EQ(c.stats().bytes, kMax + cache_t::entry_overhead + 10);
  EXPECT_EQ(c.get(0), "heavy");
  c.put(0, "heavy again");  // replaced: the saturated weight out, the saturated weight in
  EXPECT_EQ(c.stats().bytes, kMax + cache_t::entry_overhead + 10);
  EXPECT_TRUE(c.erase(0));
  EXPECT_EQ(c.stats().bytes, cache_t::entry_overhead + 10);
  EXPECT_TRUE(c.erase(1));
  EXPECT_EQ(c.stats().bytes, 0u);
}

TEST(CacheBasic, LruEvictsLeastRecentlyUsedInOrder) {
  leakless::cache_options<int, int> opts;
  opts.max_entries = 3;
  opts.policy = leakless::eviction::lru;
  std::vector<int> evicted;
  opts.removal_listener = [&](const int& k, const int&, leakless::removal_cause cause) {
    EXPECT_EQ(cause, leakless::removal_cause::size);
    evicted.push_back(k);
  };
  leakless::cache<int, int> c(opts);
  c.put(1, 1);
  c.put(2, 2);
  c.put(3, 3);
  EXPECT_TRUE(c.get(1));  // order now 2, 3, 1
  c.put(4, 4);            // evicts 2
  EXPECT_TRUE(c.get(3));  // order 1, 4, 3
  c.put(5, 5);            // evicts 1
  c.put(6, 6);            // evicts 4
  EXPECT_EQ(evicted, (std::vector<int>{2, 1, 4}));
  EXPECT_FALSE(c.get(2));
  EXPECT_TRUE(c.get(3));
  EXPECT_TRUE(c.get(5));
  EXPECT_TRUE(c.get(6));
}

TEST(CacheBasic, TinyLfuKeepsFrequentKeyThroughScan) {
  leakless::cache_options opts;
  opts.max_entries = 100;
  for (bool adaptive : {true, false}) {
    opts.adaptive_window = adaptive;
    // A pure scan of 1,000 one-hit keys right after the key was popular.
    leakless::cache<int, int> c(opts);
    for (int round = 0; round < 10; ++round) {
      c.put(-1, -1);
      for (int k = 0; k < 5; ++k) (void)c.get(-1);
    }
    for (int i = 0; i < 1000; ++i) c.put(i, i);
    EXPECT_TRUE(c.get(-1).has_value()) << "adaptive " << adaptive;
    // A long scan during which the key is still read now and then (once per 1,000 keys, so
    // that LRU would drop it every time).
    for (int i = 1000; i < 100000; ++i) {
      c.put(i, i);
      if (i % 1000 == 0) {
        ASSERT_TRUE(c.get(-1).has_value()) << "after " << i << " keys, adaptive " << adaptive;
      }
    }
    EXPECT_TRUE(c.get(-1).has_value());
  }

  // Plain LRU loses it.
  opts.policy = leakless::eviction::lru;
  leakless::cache<int, int> lru(opts);
  for (int k = 0; k < 50; ++k) lru.put(-1, -1);
  for (int i = 0; i < 1000; ++i) lru.put(i, i);
  EXPECT_FALSE(lru.get(-1).has_value());
}

// The protected part is a CLOCK: a hit marks its entry instead of moving it, and demotion gives a
// marked entry at the head a second chance, at most a fixed number per demotion. Here the working
// set moves on by 900 keys every generation while 100 keys are read in every round, so protected
// entries are marked and demoted all the time, past the per-demotion limit too (dozens of times
// over the run, counted with an instrumented build): the bound holds and the keys read all along
// stay cached.
TEST(CacheBasic, KeysReadAllAlongStayWhileProtectedEntriesAreMarkedAndDemoted) {
  leakless::cache_options opts;
  opts.max_entries = 1000;
  opts.shards = 1;
  opts.adaptive_window = false;
  leakless::cache<int, int> c(opts);
  constexpr int kHot = 100, kGeneration = 900;
  std::mt19937 rng(7);
  std::vector<int> keys;
  for (int gen = 0; gen < 20; ++gen) {
    keys.clear();
    for (int k = 0; k < kGeneration; ++k) keys.push_back(kHot + gen * kGeneration + k);
    for (int h = 0; h < kHot; ++h) keys.push_back(h);
    for (int round = 0; round < 5; ++round) {
      std::shuffle(keys.begin(), keys.end(), rng);
      for (const int k : keys) {
        if (!c.get(k)) c.put(k, k);
        ASSERT_LE(c.size(), 1000u);
      }
    }
    for (int h = 0; h < kHot; ++h)
      ASSERT_TRUE(c.get(h).has_value()) << h << " in generation " << gen;
  }
  EXPECT_EQ(c.size(), 1000u);
}

// Hit ratio of get-then-put-on-miss over a Zipf(0.99) stream of `keys` keys.
double zipf_hit_ratio(leakless::eviction policy, bool adaptive = true) {
  constexpr int keys = 10000;
  constexpr int ops = 500000;
  std::vector<double> cdf;
  double sum = 0;
  for (int i = 0; i < keys; ++i) {
    sum += 1.0 / std::pow(i + 1, 0.99);
    cdf.push_back(sum);
  }
  for (double& x : cdf) x /= sum;
  std::mt19937_64 rng(42);
  leakless::cache_options opts;
  opts.max_entries = 100;
  opts.policy = policy;
  opts.adaptive_window = adaptive;
  leakless::cache<int, int> c(opts);
  int hits = 0;
  for (int i = 0; i < ops; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    // Scramble the rank so popular keys do not share hash neighbourhoods.
    const int key =
        static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()) * 7919 % keys;
    if (c.get(key)) {
      ++hits;
    } else {
      c.put(key, key);
    }
  }
  const auto st = c.stats();
  EXPECT_EQ(st.hits, static_cast<std::uint64_t>(hits));
  EXPECT_EQ(st.hits + st.misses, static_cast<std::uint64_t>(ops));
  return static_cast<double>(hits) / ops;
}

TEST(CacheBasic, ZipfHitRatioTinyLfuBeatsLru) {
  const double tinylfu = zipf_hit_ratio(leakless::eviction::tinylfu);
  const double fixed = zipf_hit_ratio(leakless::eviction::tinylfu, false);
  std::printf("zipf(0.99): tinylfu with a fixed 1%% window %.4f\n", fixed);
  EXPECT_GE(fixed, 0.45);
  const double lru = zipf_hit_ratio(leakless::eviction::lru);
  std::printf("zipf(0.99), 10^4 keys, 100 entries: tinylfu %.4f, lru %.4f\n", tinylfu, lru);
  EXPECT_GE(tinylfu, 0.45);
  EXPECT_GT(tinylfu, lru + 0.05);
}

// Hit ratio on a recency-driven stream: half the requests are new keys, half re-read one of the
// last ~60 new keys (LRU's best case, W-TinyLFU's worst with a 1% window).
double recency_hit_ratio(leakless::eviction policy, bool adaptive) {
  constexpr int ops = 400000;
  std::mt19937_64 rng(11);
  leakless::cache_options opts;
  opts.max_entries = 100;
  opts.policy = policy;
  opts.adaptive_window = adaptive;
  leakless::cache<int, int> c(opts);
  int newest = 0;
  int hits = 0;
  for (int i = 0; i < ops; ++i) {
    int key;
    if (rng() % 2 == 0) {
      key = ++newest;
    } else {
      key = std::max(0, newest - static_cast<int>(rng() % 60));
    }
    if (c.get(key)) {
      ++hits;
    } else {
      c.put(key, key);
    }
  }
  return static_cast<double>(hits) / ops;
}

TEST(CacheBasic, AdaptiveWindowFollowsRecency) {
  const double adaptive = recency_hit_ratio(leakless::eviction::tinylfu, true);
  const double fixed = recency_hit_ratio(leakless::eviction::tinylfu, false);
  const double lru = recency_hit_ratio(leakless::eviction::lru, false);
  std::printf(
      "recency stream, 100 entries: tinylfu adaptive %.4f, fixed 1%% window %.4f, lru %.4f\n",
      adaptive, fixed, lru);
  EXPECT_GT(adaptive, fixed + 0.05);
  EXPECT_GT(adaptive, 0.85 * lru);
}

TEST(CacheBasic, ExpireAfterWrite) {
  manual_clock clock;
  leakless::cache_options opts;
  opts.expire_after_write = 10s;
  opts.clock = clock.fn();
  leakless::cache<int, int> c(opts);
  c.put(1, 1);
  clock.advance(5s);
  c.put(2, 2);
  EXPECT_TRUE(c.get(1));  // reading does not extend a write deadline
  clock.advance(5s);
  EXPECT_FALSE(c.get(1));  // exactly at the deadline: expired
  EXPECT_TRUE(c.get(2));
  clock.advance(5s);
  EXPECT_FALSE(c.get(2));
  EXPECT_EQ(c.stats().expirations, 2u);
  EXPECT_EQ(c.size(), 0u);
}

TEST(CacheBasic, ExpireAfterAccess) {
  manual_clock clock;
  leakless::cache_options opts;
  opts.expire_after_access = 10s;
  opts.clock = clock.fn();
  leakless::cache<int, int> c(opts);
  c.put(1, 1);
  c.put(2, 2);
  for (int i = 0; i < 5; ++i) {
    clock.advance(9s);
    EXPECT_TRUE(c.get(1));  // each read moves the deadline
  }
  EXPECT_EQ(c.size(), 2u);  // 2 expired long ago but nothing removed it yet
  c.cleanup();
  EXPECT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.get(2));
  clock.advance(10s);
  EXPECT_FALSE(c.get(1));
}

TEST(CacheBasic, PerEntryTtlAndCleanup) {
  manual_clock clock;
  leakless::cache_options<int, int> opts;
  opts.expire_after_write = 100s;
  opts.clock = clock.fn();
  opts.shards = 1;  // so that the put below shares the shard of key 1
  std::vector<int> expired;
  opts.removal_listener = [&](const int& k, const int&, leakless::removal_cause cause) {
    EXPECT_EQ(cause, leakless::removal_cause::expired);
    expired.push_back(k);
  };
  leakless::cache<int, int> c(opts);
  c.put(1, 1, 30s);
  c.put(2, 2, 10s);
  c.put(3, 3, 20s);
  c.put(4, 4);  // 100s
  clock.advance(25s);
  c.cleanup();
  EXPECT_EQ(expired, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.size(), 2u);
  clock.advance(10s);
  c.put(5, 5);  // a write removes expired entries of its shard
  EXPECT_EQ(expired, (std::vector<int>{2, 3, 1}));
  clock.advance(100s);
  c.cleanup();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats().expirations, 5u);
  EXPECT_EQ(c.stats().bytes, 0u);
}

TEST(CacheBasic, ExpiredEntriesNeverReturned) {
  manual_clock clock;
  leakless::cache_options opts;
  opts.clock = clock.fn();
  opts.max_entries = 1000;
  leakless::cache<int, int> c(opts);
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const int k = static_cast<int>(rng() % 200);
    const auto ttl = std::chrono::seconds(1 + rng() % 20);
    if (rng() % 2) {
      c.put(k, static_cast<int>(clock.ns.load() / 1'000'000'000 + ttl.count()), ttl);
    } else if (auto v = c.get(k)) {
      ASSERT_LT(clock.ns.load() / 1'000'000'000, *v);  // the value holds its expiry second
    }
    if (step % 10 == 0) clock.advance(1s);
  }
}

// The shard's open-addressing table against a std::map, through random puts, erases and gets,
// with a hash of only 16 values (long probe runs, so that erasing shifts many entries back) and
// with the default hash.
struct sixteen_hashes {
  std::size_t operator()(int k) const noexcept { return static_cast<std::size_t>(k % 16); }
};

template <class Hash>
void check_against_map() {
  leakless::cache_options opts;
  opts.shards = 1;
  leakless::cache<int, int, Hash> c(opts);
  std::map<int, int> model;
  std::mt19937 rng(11);
  for (int step = 0; step < 40000; ++step) {
    const int k = static_cast<int>(rng() % 600);
    switch (rng() % 3) {
      case 0:
        c.put(k, step);
        model[k] = step;
        break;
      case 1:
        ASSERT_EQ(c.erase(k), model.erase(k) == 1);
        break;
      default: {
        const auto it = model.find(k);
        ASSERT_EQ(c.get(k), it == model.end() ? std::nullopt : std::optional<int>(it->second));
      }
    }
    ASSERT_EQ(c.size(), model.size());
  }
  for (const auto& [k, v] : model) ASSERT_EQ(c.get(k), v);
  c.cleanup();  // shrinks the table once mostly empty
  for (int k = 0; k < 600; ++k) c.erase(k);
  EXPECT_EQ(c.size(), 0u);
  c.cleanup();
  c.put(7, 70);
  EXPECT_EQ(c.get(7), 70);
}

TEST(CacheBasic, TableAgreesWithAMap) {
  check_against_map<sixteen_hashes>();
  check_against_map<leakless::hash<int>>();
}

// Without expiry in the options, a read of an entry without a deadline does not call the clock;
// an entry given its own ttl is still checked against it.
TEST(CacheBasic, ReadsSkipTheClockUnlessADeadlineCanApply) {
  manual_clock clock;
  std::atomic<int>& reads = clock.reads;
  leakless::cache_options opts;
  opts.max_entries = 100;
  opts.clock = clock.fn();
  leakless::cache<int, int> c(opts);
  c.put(1, 10);
  reads = 0;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(c.get(1), 10);
  EXPECT_FALSE(c.get(2).has_value());
  EXPECT_EQ(c.get_or_load(1, [](int) { return 0; }), 10);
  EXPECT_EQ(reads.load(), 0);
  c.put(3, 30, 5s);
  EXPECT_EQ(c.get(3), 30);
  EXPECT_GT(reads.load(), 0);
  clock.advance(5s);
  EXPECT_FALSE(c.get(3).has_value());
  EXPECT_EQ(c.get(1), 10);
  EXPECT_EQ(c.stats().expirations, 1u);
}

// Without expiry in the options, a put or an erase does not call the clock either, until the
// shard holds an entry with a deadline of its own: from then on a put reads it, to expire what is
// due, and so does an erase of that entry.
TEST(CacheBasic, WritesSkipTheClockUntilAnEntryHasADeadline) {
  manual_clock clock;
  std::atomic<int>& reads = clock.reads;
  leakless::cache_options opts;
  opts.max_entries = 100;
  opts.shards = 1;
  opts.clock = clock.fn();
  leakless::cache<int, int> c(opts);
  c.put(1, 10);
  c.put(1, 11);  // replaces
  c.put(2, 20);
  c.put(5, 50);
  EXPECT_TRUE(c.erase(5));
  EXPECT_FALSE(c.erase(6));
  EXPECT_EQ(reads.load(), 0);
  c.put(3, 30, 5s);
  EXPECT_GT(reads.load(), 0);
  clock.advance(5s);
  reads = 0;
  c.put(4, 40);  // expires 3 on the way
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(c.stats().expirations, 1u);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.get(1), 11);
  EXPECT_FALSE(c.get(3).has_value());
  c.put(7, 70, 5s);
  clock.advance(5s);
  reads = 0;
  EXPECT_FALSE(c.erase(7));  // expired: it counts as absent, and is removed
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(c.stats().expirations, 2u);
}

TEST(CacheBasic, GetOrLoadReloadsExpiredEntries) {
  manual_clock clock;
  leakless::cache_options<int, int> opts;
  opts.expire_after_write = 10s;
  opts.clock = clock.fn();
  std::vector<std::pair<int, leakless::removal_cause>> seen;
  opts.removal_listener = [&](const int& k, const int&, leakless::removal_cause cause) {
    seen.emplace_back(k, cause);
  };
  leakless::cache<int, int> c(opts);
  int loads = 0;
  auto load = [&](const int& k) { return k * 100 + ++loads; };
  EXPECT_EQ(c.get_or_load(1, load), 101);
  clock.advance(9s);
  EXPECT_EQ(c.get_or_load(1, load), 101);
  clock.advance(1s);
  EXPECT_EQ(c.get_or_load(1, load), 102);  // expired: loaded again
  const auto st = c.stats();
  EXPECT_EQ(st.loads, 2u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.expirations, 1u);
  // The expired value is reported once (not again when the reloaded value is stored).
  EXPECT_EQ(seen, (std::vector<std::pair<int, leakless::removal_cause>>{
                      {1, leakless::removal_cause::expired}}));
}

TEST(CacheBasic, NonPositiveTtlExpiresAtOnce) {
  manual_clock clock;
  leakless::cache_options<int, int> opts;
  opts.clock = clock.fn();
  std::vector<std::pair<int, leakless::removal_cause>> seen;
  opts.removal_listener = [&](const int& k, const int&, leakless::removal_cause cause) {
    seen.emplace_back(k, cause);
  };
  leakless::cache<int, int> c(opts);
  c.put(1, 10);
  c.put(1, 1, 0s);
  c.put(2, 2, -5s);
  EXPECT_EQ(c.size(), 0u);
  using rc = leakless::removal_cause;
  EXPECT_EQ(seen, (std::vector<std::pair<int, rc>>{
                      {1, rc::replaced}, {1, rc::expired}, {2, rc::expired}}));
  EXPECT_EQ(c.stats().expirations, 2u);
  EXPECT_FALSE(c.get(1));
  EXPECT_FALSE(c.get(2));
  EXPECT_EQ(c.size(), 0u);
}

TEST(CacheBasic, BothBoundsHold) {
  using cache_t = leakless::cache<int, std::vector<char>>;
  leakless::cache_options<int, std::vector<char>> opts;
  opts.max_entries = 100;
  opts.max_bytes = 50 * (cache_t::entry_overhead + 256);
  opts.weigher = [](const int&, const std::vector<char>& v) { return v.capacity(); };
  cache_t c(opts);
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    // Small values: the entry bound binds; large ones: the byte bound.
    const std::size_t len = (i / 2000) % 2 == 0 ? 8 : 1024 + rng() % 512;
    c.put(static_cast<int>(rng() % 3000), std::vector<char>(len));
    ASSERT_LE(c.size(), 100u);
    ASSERT_LE(c.stats().bytes, opts.max_bytes);
  }
}

TEST(CacheBasic, RemovalCauses) {
  manual_clock clock;
  leakless::cache_options<std::string, int> opts;
  opts.max_entries = 2;
  opts.policy = leakless::eviction::lru;
  opts.clock = clock.fn();
  std::vector<std::tuple<std::string, int, leakless::removal_cause>> seen;
  opts.removal_listener = [&](const std::string& k, const int& v, leakless::removal_cause cause) {
    seen.emplace_back(k, v, cause);
  };
  leakless::cache<std::string, int> c(opts);
  using rc = leakless::removal_cause;
  c.put("a", 1);
  c.put("a", 2);
  EXPECT_TRUE(c.erase("a"));
  c.put("b", 3, 5s);
  c.put("c", 4);
  c.put("d", 5);      // evicts b (least recent)
  c.put("e", 6, 1s);  // evicts c
  clock.advance(2s);
  EXPECT_FALSE(c.get("e"));
  const std::vector<std::tuple<std::string, int, rc>> want{{"a", 1, rc::replaced},
                                                           {"a", 2, rc::explicit_},
                                                           {"b", 3, rc::size},
                                                           {"c", 4, rc::size},
                                                           {"e", 6, rc::expired}};
  EXPECT_EQ(seen, want);
}

TEST(CacheBasic, ListenerMayUseTheCache) {
  leakless::cache_options<int, int> opts;
  opts.max_entries = 1;
  leakless::cache<int, int>* self = nullptr;
  int reentered = 0;
  opts.removal_listener = [&](const int& k, const int&, leakless::removal_cause) {
    if (k == 1) {
      (void)self->get(2);
      ++reentered;
    }
  };
  leakless::cache<int, int> c(opts);
  self = &c;
  c.put(1, 1);
  c.put(2, 2);
  c.erase(1);
  c.erase(2);
  EXPECT_EQ(reentered, 1);
}

}  // namespace
