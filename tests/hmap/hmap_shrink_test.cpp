// Shrinking — the part of leakless::hmap that Go's map lacks (golang/go#20135). Checks that erasing
// 99% of a large map followed by a modest number of writes gives the memory back (memory_bytes()
// under 10% of the peak, and after 1M -> 10k no more than 2x a fresh map holding the same
// survivors), that each shrink step is incremental and at most 8x, that lookups and contents stay
// correct while shrinking, and that the map does NOT shrink where it must not: clear() followed by
// a refill (Go keeps the bucket array; maintainers' warning in golang/go#54454), steady churn at
// constant size, below the hmap(hint) / reserve(n) floor. shrink_to_fit() ignores the floor and
// leaves the smallest bucket count that holds the entries. Each scenario drives the map with a
// fixed seed and inspects stats() after every write.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "hmap_test_util.hpp"

namespace {

using hmap_test::describe_stats;
using hmap_test::Equivalent;
using hmap_test::expected_buckets_for;
using hmap_test::over_load;
using hmap_test::StatsConsistent;

using U64Map = leakless::hmap<std::uint64_t, std::uint64_t>;
using Ref = std::unordered_map<std::uint64_t, std::uint64_t>;

std::vector<std::uint64_t> shuffled_range(std::uint64_t n, std::uint64_t seed) {
  std::vector<std::uint64_t> v(n);
  std::iota(v.begin(), v.end(), std::uint64_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

// Observes stats() after every write and checks the shrink rules.
struct ShrinkObserver {
  bool saw_shrinking = false;
  std::size_t shrink_starts = 0;
  std::size_t min_bucket_count = SIZE_MAX;
  bool last_shrinking = false;

  void observe(const leakless::hmap_stats& s) {
    ASSERT_FALSE(s.growing && s.shrinking) << describe_stats(s);
    if (s.shrinking) {
      saw_shrinking = true;
      ASSERT_LT(s.bucket_count, s.old_bucket_count) << describe_stats(s);
      ASSERT_LE(s.old_bucket_count / s.bucket_count, 8u)
          << "one shrink step may divide the bucket count by at most 8: " << describe_stats(s);
      if (!last_shrinking) ++shrink_starts;
    }
    last_shrinking = s.shrinking;
    min_bucket_count = std::min(min_bucket_count, s.bucket_count);
  }
};

TEST(HmapShrink, Erasing99PercentOf200kGivesMemoryBack) {
  constexpr std::uint64_t kN = 200000;
  U64Map m;
  Ref ref;
  for (std::uint64_t k = 0; k < kN; ++k) {
    m.insert_or_assign(k, k + 1);
    ref[k] = k + 1;
  }
  const auto peak = m.stats();
  ASSERT_EQ(peak.bucket_count, expected_buckets_for(kN));

  ShrinkObserver obs;
  std::size_t last_check = 0;
  std::size_t ops = 0;
  for (std::uint64_t k : shuffled_range(kN, 1)) {
    if (k % 100 == 0) continue;  // 1% survive
    ASSERT_EQ(m.erase(k), 1u);
    ref.erase(k);
    obs.observe(m.stats());
    ++ops;
    if (obs.last_shrinking && ops - last_check >= 20000) {
      ASSERT_TRUE(Equivalent(m, ref)) << "mid-shrink after " << ops << " erases";
      last_check = ops;
    }
  }
  const std::size_t survivors = m.size();
  ASSERT_EQ(survivors, kN / 100);
  for (std::uint64_t j = 0; j < survivors; ++j) {  // a modest number of further writes
    m.insert_or_assign(kN + j, 0);
    obs.observe(m.stats());
    m.erase(kN + j);
    obs.observe(m.stats());
  }
  const auto end = m.stats();
  std::printf("200k -> %zu entries: peak %zu bytes, now %zu bytes; %zu shrink step(s); %s\n",
              survivors, peak.memory_bytes, end.memory_bytes, obs.shrink_starts,
              describe_stats(end).c_str());
  EXPECT_TRUE(obs.saw_shrinking);
  EXPECT_LT(end.bucket_count, peak.bucket_count) << describe_stats(end);
  EXPECT_LT(end.memory_bytes, peak.memory_bytes / 10)
      << "peak " << peak.memory_bytes << " bytes, now " << end.memory_bytes << " bytes; stats "
      << describe_stats(end);
  EXPECT_FALSE(over_load(end.count, end.bucket_count)) << describe_stats(end);
  EXPECT_TRUE(Equivalent(m, ref));
  for (std::uint64_t k = 0; k < kN; ++k) ASSERT_EQ(m.contains(k), k % 100 == 0) << k;
}

TEST(HmapShrink, StringKeysAndValuesShrinkToo) {
  constexpr int kN = 100000;
  leakless::hmap<std::string, std::string> m;
  std::unordered_map<std::string, std::string> ref;
  for (int i = 0; i < kN; ++i) {
    std::string k = "key-" + std::to_string(i);
    std::string v = "a value long enough to live on the heap #" + std::to_string(i);
    m.insert_or_assign(k, v);
    ref.emplace(std::move(k), std::move(v));
  }
  const std::size_t peak = m.memory_bytes();
  const std::size_t peak_buckets = m.stats().bucket_count;
  ShrinkObserver obs;
  for (int i = 0; i < kN; ++i) {
    if (i % 100 == 0) continue;
    const std::string k = "key-" + std::to_string(i);
    ASSERT_EQ(m.erase(k), 1u);
    ref.erase(k);
    obs.observe(m.stats());
  }
  for (std::size_t j = 0; j < ref.size(); ++j) {
    const std::string k = "extra-" + std::to_string(j);
    m.insert_or_assign(k, "x");
    m.erase(k);
    obs.observe(m.stats());
  }
  EXPECT_TRUE(obs.saw_shrinking);
  EXPECT_LT(m.stats().bucket_count, peak_buckets);
  EXPECT_LT(m.memory_bytes(), peak / 10) << "peak " << peak << " now " << m.memory_bytes();
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapShrink, MemoryAfter99PercentEraseOf1MIsCloseToAFreshMap) {
  constexpr std::uint64_t kN = 1000000;
  U64Map m;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, k);
  const std::size_t peak = m.memory_bytes();
  for (std::uint64_t k : shuffled_range(kN, 2)) {
    if (k % 100 != 0) m.erase(k);
  }
  const std::size_t survivors = m.size();
  ASSERT_EQ(survivors, kN / 100);
  for (std::uint64_t j = 0; j < survivors; ++j) {
    m.insert_or_assign(kN + j, j);
    m.erase(kN + j);
  }
  U64Map fresh;
  for (std::uint64_t k = 0; k < kN; k += 100) fresh.insert_or_assign(k, k);
  const std::size_t shrunk_bytes = m.memory_bytes();
  const std::size_t fresh_bytes = fresh.memory_bytes();
  std::printf(
      "1M -> %zu entries: peak %zu bytes, after shrink %zu bytes (%s), fresh map %zu bytes (%s)\n",
      survivors, peak, shrunk_bytes, describe_stats(m.stats()).c_str(), fresh_bytes,
      describe_stats(fresh.stats()).c_str());
  EXPECT_LE(shrunk_bytes, 2 * fresh_bytes)
      << "after erasing 99% of 1M entries and " << survivors
      << " insert/erase pairs: memory_bytes()=" << shrunk_bytes << " (peak was " << peak
      << "); a fresh map with the same " << survivors << " entries: " << fresh_bytes << "; stats "
      << describe_stats(m.stats()) << " vs fresh " << describe_stats(fresh.stats());
  EXPECT_EQ(m.size(), fresh.size());
  for (std::uint64_t k = 0; k < kN; k += 100) ASSERT_EQ(m.get(k), k);
}

TEST(HmapShrink, ClearThenRefillDoesNotShrink) {
  constexpr std::uint64_t kN = 100000;
  U64Map m;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, k);
  ASSERT_FALSE(hmap_test::migrating(m.stats())) << describe_stats(m.stats());
  const std::size_t buckets = m.stats().bucket_count;
  for (std::uint64_t cycle = 1; cycle <= 3; ++cycle) {
    m.clear();
    EXPECT_TRUE(m.empty());
    auto s = m.stats();
    EXPECT_EQ(s.bucket_count, buckets) << "clear() must keep the bucket array";
    EXPECT_FALSE(s.shrinking);
    // Refill with other keys; a refill only to 10% must not shrink either.
    const std::uint64_t refill = cycle == 2 ? kN / 10 : kN;
    for (std::uint64_t k = 0; k < refill; ++k) {
      m.insert_or_assign(cycle * kN + k, k);
      s = m.stats();
      ASSERT_FALSE(s.shrinking) << "cycle " << cycle << " insert " << k << " " << describe_stats(s);
      ASSERT_EQ(s.bucket_count, buckets) << "cycle " << cycle << " insert " << k;
    }
    EXPECT_EQ(m.stats().bucket_count, buckets);
    EXPECT_EQ(m.size(), refill);
    EXPECT_TRUE(m.contains(cycle * kN));
    EXPECT_FALSE(m.contains((cycle - 1) * kN + 1)) << "entries from before clear() are gone";
  }
}

TEST(HmapShrink, ClearInMidGrowthThenRefillDoesNotShrink) {
  U64Map m;
  std::uint64_t k = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 4096)) {
    m.insert_or_assign(k, k);
    ++k;
  }
  const std::size_t buckets = m.stats().bucket_count;
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(StatsConsistent(m));
  for (std::uint64_t i = 0; i < k; ++i) {
    m.insert_or_assign(i, i);
    ASSERT_FALSE(m.stats().shrinking) << describe_stats(m.stats());
  }
  EXPECT_EQ(m.stats().bucket_count, buckets);
  for (std::uint64_t i = 0; i < k; ++i) ASSERT_EQ(m.get(i), i);
}

TEST(HmapShrink, SteadyChurnDoesNotShrink) {
  std::mt19937_64 rng(77);
  for (std::size_t n : {1000u, 6657u, 50000u}) {
    SCOPED_TRACE(n);
    U64Map m;
    std::vector<std::uint64_t> keys;
    std::uint64_t next = 0;
    for (; next < n; ++next) {
      m.insert_or_assign(next, next);
      keys.push_back(next);
    }
    auto churn_once = [&] {
      const std::size_t i = rng() % keys.size();
      ASSERT_EQ(m.erase(keys[i]), 1u);
      keys[i] = next++;
      ASSERT_TRUE(m.insert_or_assign(keys[i], keys[i]));
    };
    while (m.stats().growing) churn_once();  // let the initial growth finish
    const std::size_t buckets = m.stats().bucket_count;
    for (int round = 0; round < 300000; ++round) {
      churn_once();
      const auto s = m.stats();
      ASSERT_FALSE(s.shrinking) << "round " << round << " " << describe_stats(s);
      ASSERT_EQ(s.bucket_count, buckets) << "round " << round << " " << describe_stats(s);
    }
    EXPECT_EQ(m.size(), n);
    for (std::uint64_t key : keys) ASSERT_EQ(m.get(key), key);
  }
}

TEST(HmapShrink, HintFloorIsRespected) {
  constexpr std::uint64_t kN = 100000;
  {
    U64Map m(kN);
    const std::size_t floor = m.stats().bucket_count;
    ASSERT_EQ(floor, expected_buckets_for(kN));
    for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, k);
    for (std::uint64_t k : shuffled_range(kN, 3)) {
      if (k % 1000 != 0) m.erase(k);
      ASSERT_FALSE(m.stats().shrinking) << describe_stats(m.stats());
    }
    for (std::uint64_t j = 0; j < 20000; ++j) {
      m.insert_or_assign(kN + j, j);
      m.erase(kN + j);
      ASSERT_EQ(m.stats().bucket_count, floor) << describe_stats(m.stats());
    }
    EXPECT_EQ(m.size(), kN / 1000);
  }
  {
    // A map that grew far beyond its hint may shrink, but never below the hint's size.
    U64Map m(10000);
    const std::size_t floor = expected_buckets_for(10000);
    for (std::uint64_t k = 0; k < 2 * kN; ++k) m.insert_or_assign(k, k);
    const std::size_t peak_buckets = m.stats().bucket_count;
    ShrinkObserver obs;
    for (std::uint64_t k : shuffled_range(2 * kN, 4)) {
      if (k % 100 != 0) m.erase(k);
      obs.observe(m.stats());
    }
    for (std::uint64_t j = 0; j < 2000; ++j) {
      m.insert_or_assign(3 * kN + j, j);
      m.erase(3 * kN + j);
      obs.observe(m.stats());
    }
    EXPECT_GE(obs.min_bucket_count, floor);
    EXPECT_LT(m.stats().bucket_count, peak_buckets) << "no shrink toward the floor";
    EXPECT_EQ(m.size(), 2 * kN / 100);
  }
}

TEST(HmapShrink, ReserveFloorIsRespected) {
  constexpr std::uint64_t kN = 200000;
  U64Map m;
  for (std::uint64_t k = 0; k < kN; ++k) m.insert_or_assign(k, k);
  m.reserve(kN / 2);
  const std::size_t floor = expected_buckets_for(kN / 2);
  ShrinkObserver obs;
  for (std::uint64_t k : shuffled_range(kN, 5)) {
    if (k % 100 != 0) m.erase(k);
    obs.observe(m.stats());
  }
  for (std::uint64_t j = 0; j < 10000; ++j) {
    m.insert_or_assign(kN + j, j);
    m.erase(kN + j);
    obs.observe(m.stats());
  }
  EXPECT_GE(obs.min_bucket_count, floor);
  EXPECT_EQ(m.size(), kN / 100);
  for (std::uint64_t k = 0; k < kN; k += 100) ASSERT_EQ(m.get(k), k);
}

TEST(HmapShrink, ShrinkToFitIgnoresTheFloor) {
  U64Map m(100000);
  Ref ref;
  for (std::uint64_t k = 0; k < 1000; ++k) {
    m.insert_or_assign(k, k * 5);
    ref[k] = k * 5;
  }
  const std::size_t before = m.memory_bytes();
  m.shrink_to_fit();
  const auto s = m.stats();
  EXPECT_EQ(s.bucket_count, expected_buckets_for(1000)) << describe_stats(s);
  EXPECT_FALSE(s.growing);
  EXPECT_FALSE(s.shrinking);
  EXPECT_LT(s.memory_bytes, before);
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapShrink, ShrinkToFitFinishesAShrinkInProgress) {
  U64Map m;
  Ref ref;
  for (std::uint64_t k = 0; k < 100000; ++k) {
    m.insert_or_assign(k, k);
    ref[k] = k;
  }
  for (std::uint64_t k : shuffled_range(100000, 6)) {
    if (m.stats().shrinking) break;
    m.erase(k);
    ref.erase(k);
  }
  ASSERT_TRUE(m.stats().shrinking) << describe_stats(m.stats());
  m.shrink_to_fit();
  const auto s = m.stats();
  EXPECT_FALSE(s.shrinking);
  EXPECT_FALSE(s.growing);
  EXPECT_EQ(s.old_bucket_count, 0u);
  EXPECT_EQ(s.bucket_count, expected_buckets_for(ref.size())) << describe_stats(s);
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapShrink, ShrinkThenRegrow) {
  std::mt19937_64 rng(8);
  U64Map m;
  Ref ref;
  for (int cycle = 0; cycle < 3; ++cycle) {
    for (std::uint64_t k = 0; k < 60000; ++k) {
      m.insert_or_assign(k, k + static_cast<std::uint64_t>(cycle));
      ref[k] = k + static_cast<std::uint64_t>(cycle);
    }
    ASSERT_TRUE(Equivalent(m, ref)) << "cycle " << cycle << " full";
    const std::size_t full_buckets = m.stats().bucket_count;
    for (std::uint64_t k : shuffled_range(60000, rng())) {
      if (k % 200 != 0) {
        m.erase(k);
        ref.erase(k);
      }
    }
    for (std::uint64_t j = 0; j < 1000; ++j) {
      m.insert_or_assign(1000000 + j, 1);
      m.erase(1000000 + j);
    }
    ASSERT_TRUE(Equivalent(m, ref)) << "cycle " << cycle << " shrunk";
    EXPECT_LT(m.stats().bucket_count, full_buckets) << "cycle " << cycle;
  }
}

}  // namespace
