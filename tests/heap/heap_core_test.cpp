// tests/heap/heap_core_test.cpp — the heap sampler's parts on their own, without the malloc
// interposition (so these run under ASan, UBSan and TSan too): the live table (including lock-free
// readers racing a writer), the stack buckets, the environment parsers, and the sampler's
// statistics (unbiased estimates, Go's sampling rule, reproducible seeds).
//
// How it works: on_sample_point() is driven with made-up addresses — the sampler never touches
// the memory it records — so the tests control exactly what is "allocated". The sampler is a
// process-wide singleton, so each test measures the change it caused in the bucket snapshot, in
// buckets only it creates (a size no other test uses).
#include <stdlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "heap/config.hpp"
#include "heap/lifecycle.hpp"
#include "heap/live_table.hpp"
#include "heap/sampler.hpp"
#include "heap/stack_buckets.hpp"

namespace leakless::heap {
namespace {

// The profiler reads its environment on its first sample; do it now, so that it cannot override
// the rates the tests below set (each test may run alone, in its own process).
const bool g_configured = (ensure_configured(), true);

// ---- live_table ---------------------------------------------------------------------------------

TEST(LiveTable, InsertLookupRemove) {
  live_table t;
  EXPECT_FALSE(t.may_contain(0x1000));
  EXPECT_TRUE(t.insert(0x1000, live_entry{nullptr, 2.5}));
  EXPECT_TRUE(t.may_contain(0x1000));
  ASSERT_NE(t.lookup(0x1000), nullptr);
  EXPECT_EQ(t.lookup(0x1000)->weight, 2.5);
  EXPECT_EQ(t.size(), 1u);
  live_entry out;
  EXPECT_TRUE(t.remove(0x1000, &out));
  EXPECT_EQ(out.weight, 2.5);
  EXPECT_FALSE(t.remove(0x1000, &out));
  EXPECT_FALSE(t.may_contain(0x1000));
  EXPECT_EQ(t.size(), 0u);
}

TEST(LiveTable, ReplacingAnAddressKeepsOneEntry) {
  live_table t;
  EXPECT_TRUE(t.insert(0x2000, live_entry{nullptr, 1}));
  EXPECT_TRUE(t.insert(0x2000, live_entry{nullptr, 7}));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.lookup(0x2000)->weight, 7);
}

// The page filter in front of the table: keys whose pages fold onto one counter (128 MiB apart)
// must all stay visible while any is live, also past the counter's saturation, and a fold whose
// keys are all gone answers "no" again unless its counter saturated.
TEST(LiveTable, PageFilterNeverHidesALiveKey) {
  live_table t;
  constexpr std::uintptr_t kFold = std::uintptr_t{128} << 20;
  constexpr std::uintptr_t kBase = 0x5000'0010;
  for (std::uintptr_t i = 0; i < 10; ++i) ASSERT_TRUE(t.insert(kBase + i * kFold, live_entry{}));
  EXPECT_TRUE(t.passes_filter(kBase + 0x20));     // same page: the filter says "maybe"
  EXPECT_FALSE(t.may_contain(kBase + 0x20));      // and the table "no"
  EXPECT_FALSE(t.passes_filter(kBase + 0x1000));  // the next page's fold holds no key
  for (std::uintptr_t i = 0; i < 9; ++i) {
    ASSERT_TRUE(t.remove(kBase + i * kFold, nullptr));
    ASSERT_TRUE(t.may_contain(kBase + 9 * kFold));
  }
  ASSERT_TRUE(t.remove(kBase + 9 * kFold, nullptr));
  EXPECT_FALSE(t.passes_filter(kBase));
  EXPECT_FALSE(t.may_contain(kBase));

  // 300 keys on one counter saturate it; the last key left is still found.
  constexpr std::uintptr_t kOther = 0x7000'0040;
  for (std::uintptr_t i = 0; i < 300; ++i) ASSERT_TRUE(t.insert(kOther + i * kFold, live_entry{}));
  for (std::uintptr_t i = 0; i < 299; ++i) ASSERT_TRUE(t.remove(kOther + i * kFold, nullptr));
  EXPECT_TRUE(t.may_contain(kOther + 299 * kFold));
  EXPECT_NE(t.lookup(kOther + 299 * kFold), nullptr);
  ASSERT_TRUE(t.remove(kOther + 299 * kFold, nullptr));
  EXPECT_TRUE(t.passes_filter(kOther));  // a saturated counter stays: a "maybe" for good
  EXPECT_FALSE(t.may_contain(kOther + 299 * kFold));
  EXPECT_EQ(t.size(), 0u);
}

// free(nullptr) asks the table too (no test of its own on the fast path): always "no".
TEST(LiveTable, NullIsNeverContained) {
  live_table t;
  ASSERT_TRUE(t.insert(0x10, live_entry{}));  // page 0's fold holds a key
  EXPECT_TRUE(t.passes_filter(0));
  EXPECT_FALSE(t.may_contain(0));
  EXPECT_FALSE(t.probe(0));
}

TEST(LiveTable, MatchesAReferenceSetThroughGrowthAndShiftingDeletes) {
  live_table t;
  std::set<std::uintptr_t> reference;
  std::mt19937_64 random(42);
  for (int step = 0; step < 200000; ++step) {
    // Few distinct addresses, so runs collide and deletes shift entries back often.
    const std::uintptr_t address = (random() % 4096 + 1) * 16;
    if (random() % 3 != 0) {
      ASSERT_TRUE(t.insert(address, live_entry{nullptr, static_cast<double>(address)}));
      reference.insert(address);
    } else {
      live_entry out;
      ASSERT_EQ(t.remove(address, &out), reference.erase(address) == 1);
      if (out.bucket == nullptr && reference.count(address) == 0 && out.weight != 0) {
        ASSERT_EQ(out.weight, static_cast<double>(address));
      }
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(t.size(), reference.size());
      for (const std::uintptr_t a : reference) {
        ASSERT_TRUE(t.may_contain(a)) << a;
        ASSERT_NE(t.lookup(a), nullptr);
        ASSERT_EQ(t.lookup(a)->weight, static_cast<double>(a));
      }
    }
  }
  for (std::uintptr_t a = 16; a <= 4096 * 16; a += 16) {
    ASSERT_EQ(t.lookup(a) != nullptr, reference.count(a) == 1) << a;
  }
}

// A reader asking for a key that stays present must never be told "no", however the writer
// shifts and grows the table meanwhile (the seqlock's promise). Run under TSan too.
TEST(LiveTable, ReadersNeverMissAPresentKeyWhileAWriterChurns) {
  live_table t;
  constexpr std::uintptr_t kStable = 64;
  std::vector<std::uintptr_t> stable;
  for (std::uintptr_t i = 1; i <= kStable; ++i) stable.push_back(i * 16 * 7919);
  for (const std::uintptr_t a : stable) ASSERT_TRUE(t.insert(a, live_entry{}));

  std::atomic<bool> stop{false};
  std::atomic<long> misses{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        for (const std::uintptr_t a : stable) {
          if (!t.may_contain(a)) misses.fetch_add(1);
        }
      }
    });
  }
  std::mt19937_64 random(7);
  std::vector<std::uintptr_t> churn;
  for (int step = 0; step < 20000; ++step) {
    if (churn.size() < 3000 && random() % 2 == 0) {
      const std::uintptr_t a = (random() % 100000 + 1) * 16 + 8;  // never a stable key
      if (t.insert(a, live_entry{})) churn.push_back(a);
    } else if (!churn.empty()) {
      const std::size_t i = random() % churn.size();
      t.remove(churn[i], nullptr);
      churn[i] = churn.back();
      churn.pop_back();
    }
  }
  stop = true;
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(misses.load(), 0);
}

// ---- stack_buckets ------------------------------------------------------------------------------

TEST(StackBuckets, SameStackAndSizeShareABucket) {
  stack_buckets b;
  const std::uintptr_t s1[] = {0x10, 0x20, 0x30};
  const std::uintptr_t s2[] = {0x10, 0x20, 0x31};
  stack_bucket* a = b.find_or_create(s1, 3, 64);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(b.find_or_create(s1, 3, 64), a);
  EXPECT_NE(b.find_or_create(s1, 3, 65), a);  // another size: another bucket
  EXPECT_NE(b.find_or_create(s2, 3, 64), a);  // another stack
  EXPECT_NE(b.find_or_create(s1, 2, 64), a);  // a prefix is another stack
  EXPECT_EQ(b.count(), 4u);
  EXPECT_EQ(a->depth, 3u);
  EXPECT_EQ(a->frames(), (std::vector<std::uintptr_t>{0x10, 0x20, 0x30}));
  EXPECT_EQ(a->size, 64u);
}

// Stacks are stored compressed (varints of the differences between frames): they must come back
// exactly, whatever the jumps between frames (up, down, across objects, the ends of the address
// space), and a stack within one object must take much less than 8 bytes a frame.
TEST(StackBuckets, StacksComeBackExactlyFromTheirCompressedForm) {
  stack_buckets b;
  const std::vector<std::uintptr_t> jumps = {0x55d1c03486ce,     0x55d1c03486ce,
                                             0x55d1c0348000,     0x7efd89a5a050,
                                             0x55d1c0349870,     0x1,
                                             0xffffffffffffffff, 0x0,
                                             0x7fffffffffffffff, 0x8000000000000000,
                                             0x7efd89aa71f5,     0x7efd89b278ec};
  stack_bucket* j = b.find_or_create(jumps.data(), static_cast<std::uint32_t>(jumps.size()), 24);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->frames(), jumps);

  std::vector<std::uintptr_t> deep(kMaxStackDepth + 10);
  for (std::size_t i = 0; i < deep.size(); ++i) deep[i] = 0x55d1c0300000 + (i * 7919) % 0x40000;
  const std::size_t bytes_before = b.memory_bytes();
  stack_bucket* d = b.find_or_create(deep.data(), static_cast<std::uint32_t>(deep.size()), 40);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->depth, kMaxStackDepth);  // deeper stacks keep their first kMaxStackDepth frames
  EXPECT_EQ(d->frames(), std::vector<std::uintptr_t>(deep.begin(), deep.begin() + kMaxStackDepth));
  EXPECT_LE(d->encoded_bytes, kMaxStackDepth * 3);
  EXPECT_EQ(b.find_or_create(deep.data(), kMaxStackDepth, 40), d);  // the same stack, truncated
  EXPECT_LT(b.memory_bytes() - bytes_before, sizeof(stack_bucket) + kMaxStackDepth * 4);
}

TEST(StackBuckets, ManyBucketsSurviveIndexGrowth) {
  stack_buckets b;
  std::vector<stack_bucket*> made;
  for (std::uintptr_t i = 0; i < 5000; ++i) {
    const std::uintptr_t frames[] = {i, i * 3};
    made.push_back(b.find_or_create(frames, 2, 8));
  }
  EXPECT_EQ(b.count(), 5000u);
  for (std::uintptr_t i = 0; i < 5000; ++i) {
    const std::uintptr_t frames[] = {i, i * 3};
    ASSERT_EQ(b.find_or_create(frames, 2, 8), made[i]);
  }
  std::size_t listed = 0;
  for (stack_bucket* x = b.newest(); x != nullptr; x = x->next_created) ++listed;
  EXPECT_EQ(listed, 5000u);
  EXPECT_GT(b.memory_bytes(), 5000 * sizeof(stack_bucket));
}

// ---- configuration parsers ----------------------------------------------------------------------

TEST(Config, ByteCounts) {
  EXPECT_EQ(parse_byte_count("524288"), 524288u);
  EXPECT_EQ(parse_byte_count("512k"), 524288u);
  EXPECT_EQ(parse_byte_count("512K"), 524288u);
  EXPECT_EQ(parse_byte_count("2m"), 2u << 20);
  EXPECT_EQ(parse_byte_count("1G"), 1u << 30);
  EXPECT_EQ(parse_byte_count("0"), 0u);
  EXPECT_EQ(parse_byte_count("1"), 1u);
  for (const char* bad : {"", "k", "-1", "1.5", "12x", " 12", "12 ", "0x10", "99999999999999999999",
                          "17179869184g"}) {
    EXPECT_FALSE(parse_byte_count(bad).has_value()) << bad;
  }
}

TEST(Config, Signals) {
  EXPECT_EQ(parse_signal("USR2"), SIGUSR2);
  EXPECT_EQ(parse_signal("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(parse_signal("sigusr1"), SIGUSR1);
  EXPECT_EQ(parse_signal("10"), 10);
  EXPECT_EQ(parse_signal("PROF"), SIGPROF);
  for (const char* bad : {"", "0", "9", "19", "KILL", "STOP", "SIG", "USR3", "65", "-2", "usr2 "}) {
    EXPECT_FALSE(parse_signal(bad).has_value()) << bad;
  }
}

TEST(Config, Seconds) {
  EXPECT_EQ(parse_seconds("30"), 30.0);
  EXPECT_EQ(parse_seconds("0.5"), 0.5);
  for (const char* bad : {"", "0", "-1", "abc", "1s", "inf", "nan", "1e999"}) {
    EXPECT_FALSE(parse_seconds(bad).has_value()) << bad;
  }
}

TEST(Config, EnvironmentBadValuesAreReportedAndDefaulted) {
  setenv("LEAKLESS_SAMPLE_RATE", "lots", 1);
  setenv("LEAKLESS_DUMP_SIGNAL", "USR9", 1);
  setenv("LEAKLESS_HEAP_INTERVAL", "-3", 1);
  setenv("LEAKLESS_HEAP_PROFILE", "relative/prefix", 1);
  testing::internal::CaptureStderr();
  const heap_config c = read_environment();
  const std::string err = testing::internal::GetCapturedStderr();
  unsetenv("LEAKLESS_SAMPLE_RATE");
  unsetenv("LEAKLESS_DUMP_SIGNAL");
  unsetenv("LEAKLESS_HEAP_INTERVAL");
  unsetenv("LEAKLESS_HEAP_PROFILE");
  EXPECT_EQ(c.sample_rate, kDefaultSampleRate);
  EXPECT_EQ(c.dump_signal, SIGUSR2);
  EXPECT_EQ(c.interval_seconds, 0.0);
  EXPECT_NE(err.find("leakless: LEAKLESS_SAMPLE_RATE=lots is not a byte count"), std::string::npos)
      << err;
  EXPECT_NE(err.find("leakless: LEAKLESS_DUMP_SIGNAL=USR9 is not a signal"), std::string::npos);
  EXPECT_NE(err.find("leakless: LEAKLESS_HEAP_INTERVAL=-3 is not a positive number"),
            std::string::npos);
  // A relative prefix is anchored at the starting directory.
  char cwd[PATH_MAX];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(std::string(c.profile_prefix), std::string(cwd) + "/relative/prefix");
}

// ---- sampler statistics -------------------------------------------------------------------------

TEST(Sampler, SampleWeightIsGosScale) {
  EXPECT_EQ(sample_weight(100, 1), 1.0);
  EXPECT_EQ(sample_weight(0, 524288), 1.0);
  EXPECT_NEAR(sample_weight(524288, 524288), 1.0 / (1.0 - std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(sample_weight(16, 524288), 524288.0 / 16, 1.0);  // small: ~rate/size allocations
  EXPECT_NEAR(sample_weight(64 << 20, 524288), 1.0, 1e-12);    // huge: always sampled, counts 1
}

// Sum of the estimates over the buckets of one allocation size.
heap_estimate estimate_for_size(std::size_t size) {
  heap_estimate sum;
  for (const bucket_snapshot& s : snapshot_buckets()) {
    if (s.bucket->size != size) continue;
    const heap_estimate e = estimate(s);
    sum.alloc_objects += e.alloc_objects;
    sum.alloc_bytes += e.alloc_bytes;
    sum.inuse_objects += e.inuse_objects;
    sum.inuse_bytes += e.inuse_bytes;
  }
  return sum;
}

// Allocates (on paper) `count` blocks of `size` at fresh fake addresses, freeing every other one
// when `free_half`; returns the addresses still live.
std::vector<std::uintptr_t> simulate(std::size_t count, std::size_t size, bool free_half,
                                     std::uintptr_t base) {
  std::vector<std::uintptr_t> live;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uintptr_t address = base + i * 64;
    if (note_allocation(size)) on_sample_point(reinterpret_cast<void*>(address), size, 0);
    if (free_half && i % 2 == 1) {
      if (maybe_sampled(reinterpret_cast<void*>(address))) {
        on_sampled_free(reinterpret_cast<void*>(address));
      }
    } else {
      live.push_back(address);
    }
  }
  return live;
}

TEST(Sampler, EstimatesAreUnbiasedAcrossSeeds) {
  // 100 MiB in 12,345-byte blocks, at the default rate, with 40 seeds: each run's estimate is
  // noisy (a few hundred samples), their mean must be within 2% of the truth.
  constexpr std::size_t kSize = 12345;
  constexpr std::size_t kCount = (100u << 20) / kSize;
  double sum_ratio = 0;
  constexpr int kSeeds = 40;
  std::uintptr_t base = std::uintptr_t{1} << 40;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    set_sample_seed(static_cast<std::uint64_t>(seed));
    set_sample_rate(kDefaultSampleRate);  // new generation: this thread redraws its countdown
    tls_sampler.random_state = 0;         // and reseeds from the new seed
    const heap_estimate before = estimate_for_size(kSize);
    const std::vector<std::uintptr_t> live = simulate(kCount, kSize, false, base);
    base += kCount * 64 + 4096;
    const heap_estimate after = estimate_for_size(kSize);
    sum_ratio += (after.inuse_bytes - before.inuse_bytes) / static_cast<double>(kCount * kSize);
  }
  EXPECT_NEAR(sum_ratio / kSeeds, 1.0, 0.02);
}

TEST(Sampler, FreesAreCountedAndRateOneRecordsEverything) {
  constexpr std::size_t kSize = 777;
  set_sample_rate(1);
  const heap_estimate before = estimate_for_size(kSize);
  const std::vector<std::uintptr_t> live = simulate(1000, kSize, true, std::uintptr_t{3} << 40);
  const heap_estimate after = estimate_for_size(kSize);
  EXPECT_EQ(after.alloc_objects - before.alloc_objects, 1000.0);
  EXPECT_EQ(after.inuse_objects - before.inuse_objects, 500.0);
  EXPECT_EQ(after.inuse_bytes - before.inuse_bytes, 500.0 * kSize);
  for (const std::uintptr_t a : live) on_sampled_free(reinterpret_cast<void*>(a));
  EXPECT_EQ(estimate_for_size(kSize).inuse_objects, before.inuse_objects);
  set_sample_rate(kDefaultSampleRate);
}

constexpr std::size_t kSeedTestSize = 4321;

// The allocations (of kSeedTestSize bytes at fake addresses) sampled with `seed` at 64 KiB.
std::vector<std::size_t> samples_with_seed(std::uint64_t seed, std::uintptr_t base) {
  set_sample_seed(seed);
  set_sample_rate(64 * 1024);
  tls_sampler.random_state = 0;
  std::vector<std::size_t> sampled;
  for (std::size_t i = 0; i < 20000; ++i) {
    if (note_allocation(kSeedTestSize + 1)) {
      const std::uint64_t before = totals().samples;
      on_sample_point(reinterpret_cast<void*>(base + i * 64), kSeedTestSize + 1, 0);
      if (totals().samples != before) sampled.push_back(i);
    }
  }
  return sampled;
}

TEST(Sampler, RateZeroSamplesNothingAndSeedsChangeTheSamples) {
  set_sample_rate(0);
  simulate(10000, kSeedTestSize, false, std::uintptr_t{4} << 40);
  EXPECT_EQ(estimate_for_size(kSeedTestSize).alloc_objects, 0.0);

  // (That a seed reproduces a run is checked across processes in heap_program_test: within one
  // process every reseeded thread draws a fresh stream.)
  const std::vector<std::size_t> first = samples_with_seed(99, std::uintptr_t{5} << 40);
  const std::vector<std::size_t> other = samples_with_seed(100, std::uintptr_t{7} << 40);
  EXPECT_FALSE(first.empty());
  EXPECT_NE(first, other);
  // About one sample per 64 KiB: 20000 * 4322 bytes / 65536 ≈ 1319.
  EXPECT_NEAR(static_cast<double>(first.size()), 1319.0, 150.0);
  set_sample_rate(kDefaultSampleRate);
}

}  // namespace
}  // namespace leakless::heap
