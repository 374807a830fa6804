// tests/cache/cache_oom_test.cpp — leakless::cache when memory runs out in the middle of a put.
//
// How it works: this binary replaces the global operator new with one that throws std::bad_alloc
// when a countdown reaches zero; the countdown is armed only around the put under test. For
// n = 0, 1, 2, ... the n-th allocation of the put fails, until a put completes before reaching
// it. A put that throws must have changed nothing: the same size, the key as it was, no removal
// reported. A put that runs out of memory while copying an evicted entry for the removal listener
// evicts it all the same and counts stats().notices_lost. Either way the cache stays whole: size()
// within the bound, every key that get() finds holding a value that was put for it, and — the
// check that catches an entry published but missing from the deadline heap — every entry gone
// once the clock passes all deadlines and cleanup() runs.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/manual_clock.hpp"

#include <leakless/cache.hpp>

namespace {

// Allocations left before the next one fails; negative: never fail.
thread_local long g_allocations_left = -1;

void* allocate_or_throw(std::size_t bytes) {
  if (g_allocations_left == 0) {
    g_allocations_left = -1;  // fail once: the unwinding code may allocate again
    throw std::bad_alloc();
  }
  if (g_allocations_left > 0) --g_allocations_left;
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}

}  // namespace

// The replacements pair malloc with free; GCC, seeing operator new's result reach free() once they
// are inlined, would call that a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t bytes) { return allocate_or_throw(bytes); }
void* operator new[](std::size_t bytes) { return allocate_or_throw(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using namespace std::chrono_literals;

using leakless::test::manual_clock;

// Values long enough that copying one allocates.
std::string value_for(int key, int version) {
  return "value of key " + std::to_string(key) + ", version " + std::to_string(version) +
         std::string(40, '.');
}

struct outcome {
  bool failed = false;     // the put threw
  bool completed = false;  // the put returned without reaching the armed allocation
  std::uint64_t notices_lost = 0;
};

struct scenario {
  bool replace = false;        // the put replaces key 4, else adds a new key
  bool access_expiry = false;  // expire_after_access too (the heap keeps write deadlines)
  int fill = 16;               // entries put before
  std::size_t max_entries = 16;
};

// One put whose n-th allocation fails; checks the cache afterwards and returns what happened.
outcome put_failing_at(long n, const scenario& sc) {
  manual_clock clock;
  leakless::cache_options<int, std::string> opts;
  opts.max_entries = sc.max_entries;
  opts.shards = 1;
  opts.clock = clock.fn();
  opts.expire_after_write = 10s;
  if (sc.access_expiry) opts.expire_after_access = 5s;
  std::map<int, std::vector<std::string>> put_values;  // every value ever put per key
  std::vector<std::pair<int, leakless::removal_cause>> removals;
  removals.reserve(256);  // the listener must not throw: it may not allocate while armed
  opts.removal_listener = [&](const int& k, const std::string&, leakless::removal_cause cause) {
    removals.emplace_back(k, cause);
  };
  leakless::cache<int, std::string> c(opts);
  for (int k = 0; k < sc.fill; ++k) {
    c.put(k, value_for(k, 0));
    put_values[k].push_back(value_for(k, 0));
  }
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < sc.fill; k += 2) (void)c.get(k);
  }
  const std::size_t removals_before = removals.size();
  const std::size_t size_before = c.size();

  const int key = sc.replace ? 4 : 1000;
  const std::optional<std::string> old_value = c.get(key);
  std::string value = value_for(key, 1);
  put_values[key].push_back(value);
  outcome out;
  g_allocations_left = n;
  try {
    c.put(key, std::move(value));
  } catch (const std::bad_alloc&) {
    out.failed = true;
  }
  out.completed = !out.failed && g_allocations_left != -1;
  g_allocations_left = -1;
  out.notices_lost = c.stats().notices_lost;

  const std::string where = "n=" + std::to_string(n) + " fill=" + std::to_string(sc.fill);
  EXPECT_LE(c.size(), sc.max_entries) << where;
  if (out.failed) {  // nothing changed: the same entries, the key as it was
    EXPECT_EQ(c.size(), size_before) << where;
    EXPECT_EQ(c.get(key), old_value) << where;
    for (std::size_t i = removals_before; i < removals.size(); ++i) {
      EXPECT_NE(removals[i].first, key) << "a put that failed reported a removal, " << where;
    }
  }
  std::size_t found = 0;
  for (const auto& [k, values] : put_values) {
    if (std::optional<std::string> v = c.get(k)) {
      ++found;
      EXPECT_NE(std::find(values.begin(), values.end(), *v), values.end())
          << "key " << k << " holds a value never put for it, " << where;
    }
  }
  EXPECT_EQ(found, c.size()) << where;
  // Every entry has a deadline: past all of them, cleanup() must find and remove every one.
  clock.advance(60s);
  c.cleanup();
  EXPECT_EQ(c.size(), 0u) << "an entry outlived its deadline, " << where;
  return out;
}

struct totals {
  long failures = 0;  // puts that threw
  std::uint64_t notices_lost = 0;
};

// Fails the put's allocations one at a time, from the first, until the put needs no more.
totals fail_every_allocation_in_turn(const scenario& sc) {
  totals t;
  for (long n = 0;; ++n) {
    const outcome out = put_failing_at(n, sc);
    if (::testing::Test::HasFailure()) return t;
    if (out.failed) ++t.failures;
    t.notices_lost += out.notices_lost;
    if (out.completed) return t;
    if (n >= 1000) {
      ADD_FAILURE() << "the put never completed";
      return t;
    }
  }
}

TEST(CacheOutOfMemory, NewKeyPutFailsWholeOrEvictsWithoutTheListenersCopy) {
  // The cache is full: the put evicts, and copying the evicted entry for the listener allocates.
  const totals t = fail_every_allocation_in_turn({.replace = false});
  EXPECT_GT(t.failures, 0);
  EXPECT_GT(t.notices_lost, 0u);
}

TEST(CacheOutOfMemory, ReplacingPutFailsWhole) {
  EXPECT_GT(fail_every_allocation_in_turn({.replace = true}).failures, 0);
}

TEST(CacheOutOfMemory, PutsWithAccessExpiryFailWhole) {
  EXPECT_GT(fail_every_allocation_in_turn({.replace = false, .access_expiry = true}).failures, 0);
  EXPECT_GT(fail_every_allocation_in_turn({.replace = true, .access_expiry = true}).failures, 0);
}

// Puts into a cache that is not full, at every fill from empty to 40 entries: some of these puts
// grow the shard's hash table, node slab or deadline heap (most need no memory at all), and
// replaced arrays are retired under the lock.
TEST(CacheOutOfMemory, PutsThatGrowTheTablesFailWhole) {
  long failures = 0;
  for (int fill = 0; fill <= 40 && !HasFailure(); ++fill) {
    failures += fail_every_allocation_in_turn({.fill = fill, .max_entries = 1000}).failures;
  }
  EXPECT_GE(failures, 5);
}

}  // namespace
