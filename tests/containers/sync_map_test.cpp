// leakless::sync_map, single thread: each operation behaves as Go's sync.Map documents (Load,
// Store, LoadOrStore, LoadAndDelete, Delete, Range), including across the map's internal phases
// — keys only in the dirty map, promotion after enough misses, deleted keys expunged when the
// dirty map is rebuilt and brought back by a later store — and a long random sequence of
// operations over a small key set is checked step by step against std::unordered_map.
#include "leakless/sync_map.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace {

using IntMap = leakless::sync_map<int, int>;

std::map<int, int> contents(IntMap& m) {
  std::map<int, int> out;
  m.range([&](const int& k, const int& v) {
    EXPECT_TRUE(out.emplace(k, v).second) << "key " << k << " visited twice";
    return true;
  });
  return out;
}

TEST(SyncMap, EmptyMap) {
  IntMap m;
  EXPECT_EQ(m.load(1), std::nullopt);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(m.erase(1));
  EXPECT_EQ(m.load_and_delete(1), std::nullopt);
  int calls = 0;
  m.range([&](const int&, const int&) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
}

TEST(SyncMap, StoreThenLoadAndOverwrite) {
  IntMap m;
  m.store(1, 10);
  m.store(2, 20);
  EXPECT_EQ(m.load(1), 10);
  EXPECT_EQ(m.load(2), 20);
  EXPECT_EQ(m.load(3), std::nullopt);
  m.store(1, 11);  // overwrite, size unchanged
  EXPECT_EQ(m.load(1), 11);
  EXPECT_EQ(m.size(), 2u);
  for (int i = 0; i < 10; ++i) m.load(99);  // misses promote the dirty map
  m.store(2, 21);                           // now an overwrite through the read snapshot
  EXPECT_EQ(m.load(2), 21);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(contents(m), (std::map<int, int>{{1, 11}, {2, 21}}));
}

TEST(SyncMap, LoadOrStoreReturnsExistingValueAndLoadedFlag) {
  IntMap m;
  EXPECT_EQ(m.load_or_store(1, 10), std::make_pair(10, false));  // stored
  EXPECT_EQ(m.load_or_store(1, 99), std::make_pair(10, true));   // loaded, not replaced
  EXPECT_EQ(m.load(1), 10);
  for (int i = 0; i < 5; ++i) m.load(42);  // promote
  EXPECT_EQ(m.load_or_store(1, 98), std::make_pair(10, true));
  EXPECT_TRUE(m.erase(1));
  EXPECT_EQ(m.load_or_store(1, 12), std::make_pair(12, false));  // deleted entry reused
  EXPECT_EQ(m.load(1), 12);
  EXPECT_EQ(m.size(), 1u);
}

TEST(SyncMap, LoadAndDeleteAndErase) {
  IntMap m;
  m.store(1, 10);
  m.store(2, 20);
  EXPECT_EQ(m.load_and_delete(1), 10);  // key only in the dirty map
  EXPECT_EQ(m.load_and_delete(1), std::nullopt);
  EXPECT_EQ(m.load(1), std::nullopt);
  for (int i = 0; i < 5; ++i) m.load(42);  // promote
  EXPECT_TRUE(m.erase(2));                 // key in the read snapshot
  EXPECT_FALSE(m.erase(2));
  EXPECT_EQ(m.load(2), std::nullopt);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(contents(m).empty());
}

TEST(SyncMap, DeletedKeysAreExpungedAndComeBack) {
  IntMap m;
  for (int k = 0; k < 100; ++k) m.store(k, k);
  EXPECT_EQ(contents(m).size(), 100u);  // range promotes: everything in the read snapshot
  for (int k = 0; k < 100; k += 2) EXPECT_TRUE(m.erase(k));
  m.store(1000, 1000);  // rebuilds the dirty map: the 50 deleted entries are expunged
  for (int k = 0; k < 100; k += 4) m.store(k, -k);  // un-expunged by store
  for (int k = 2; k < 100; k += 4) {
    EXPECT_EQ(m.load_or_store(k, -k), std::make_pair(-k, false));  // ... and by load_or_store
  }
  std::map<int, int> want;
  for (int k = 0; k < 100; ++k) want[k] = k % 2 == 0 ? -k : k;
  want[1000] = 1000;
  EXPECT_EQ(contents(m), want);  // promotes again; nothing lost across the phases
  EXPECT_EQ(m.size(), want.size());
  for (const auto& [k, v] : want) EXPECT_EQ(m.load(k), v) << k;
}

TEST(SyncMap, RangeStopsWhenFunctionReturnsFalse) {
  IntMap m;
  for (int k = 0; k < 10; ++k) m.store(k, k);
  int calls = 0;
  m.range([&](const int&, const int&) { return ++calls < 3; });
  EXPECT_EQ(calls, 3);
  int all = 0;
  m.range([&](const int&, const int&) { ++all; });  // a void function visits everything
  EXPECT_EQ(all, 10);
}

TEST(SyncMap, RangeMayCallTheMap) {
  IntMap m;
  for (int k = 0; k < 10; ++k) m.store(k, k);
  m.range([&](const int& k, const int& v) {
    m.store(k, v + 100);
    m.store(k + 100, v);  // new keys: may or may not be visited, must not deadlock
    return true;
  });
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(m.load(k), k + 100);
    EXPECT_EQ(m.load(k + 100), k);
  }
}

TEST(SyncMap, StringKeysAndValues) {
  leakless::sync_map<std::string, std::string> m;
  m.store("alpha", "one");
  EXPECT_EQ(m.load_or_store("beta", "two"), std::make_pair(std::string("two"), false));
  EXPECT_EQ(m.load_or_store("alpha", "x"), std::make_pair(std::string("one"), true));
  EXPECT_EQ(m.load("alpha"), "one");
  EXPECT_EQ(m.load_and_delete("beta"), "two");
  EXPECT_EQ(m.load("beta"), std::nullopt);
  const std::string long_value(1000, 'v');
  m.store("gamma", long_value);
  EXPECT_EQ(m.load("gamma"), long_value);
  EXPECT_EQ(m.size(), 2u);
}

TEST(SyncMap, RandomOperationsMatchUnorderedMap) {
  IntMap m;
  std::unordered_map<int, int> ref;
  std::mt19937_64 rng(12345);
  constexpr int kKeys = 64;  // small, so keys go through every phase many times
  for (int step = 0; step < 200'000; ++step) {
    const int key = static_cast<int>(rng() % kKeys);
    const int value = static_cast<int>(rng() % 1'000'000);
    const auto op = rng() % 7;
    SCOPED_TRACE("step " + std::to_string(step) + " op " + std::to_string(op) + " key " +
                 std::to_string(key));
    switch (op) {
      case 0:
        m.store(key, value);
        ref[key] = value;
        break;
      case 1: {
        const auto got = m.load_or_store(key, value);
        const auto [it, inserted] = ref.emplace(key, value);
        const std::pair<int, bool> want(it->second, !inserted);
        ASSERT_EQ(got, want);
        break;
      }
      case 2: {
        const auto it = ref.find(key);
        ASSERT_EQ(m.load_and_delete(key),
                  it == ref.end() ? std::nullopt : std::optional<int>(it->second));
        if (it != ref.end()) ref.erase(it);
        break;
      }
      case 3:
        ASSERT_EQ(m.erase(key), ref.erase(key) == 1);
        break;
      case 4:
        if (step % 97 == 0) {  // range is O(n): now and then
          const std::map<int, int> want(ref.begin(), ref.end());
          ASSERT_EQ(contents(m), want);
        }
        break;
      default: {
        const auto it = ref.find(key);
        ASSERT_EQ(m.load(key), it == ref.end() ? std::nullopt : std::optional<int>(it->second));
        break;
      }
    }
    ASSERT_EQ(m.size(), ref.size());
  }
}

}  // namespace
