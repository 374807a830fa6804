// Iteration guarantees of leakless::hmap (Go's `for range`): every key present for the whole
// iteration is visited exactly once and no key is ever visited twice — on a quiet map, while it is
// growing, while it is shrinking, while keys are erased (the current one, or any other one: those
// erased before being reached are never produced) and while keys are inserted (new keys may or may
// not appear, at most once). Also: random start bucket/slot on every new iteration (several orders
// among 20 iterations), empty maps, const iteration yields const values, values are mutable
// through `for (auto&& [k, v] : m)`, iterator copies are independent, and migration pauses while an
// iterator is live and resumes (growing becomes false after more writes) once it is gone.
// Each mutating scenario tracks the start set, the visits and the erasures in std containers and
// checks the map against a std::unordered_map reference afterwards.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hmap_test_util.hpp"

namespace {

using hmap_test::Big;
using hmap_test::describe_stats;
using hmap_test::Equivalent;
using hmap_test::StatsConsistent;

using U64Map = leakless::hmap<std::uint64_t, std::uint64_t>;
using Ref = std::unordered_map<std::uint64_t, std::uint64_t>;

constexpr std::uint64_t value_for(std::uint64_t k) { return k * 2654435761u + 1; }

// Keys present in the reference, with O(1) random choice.
class KeyPool {
 public:
  void add(std::uint64_t k) {
    if (index_.emplace(k, keys_.size()).second) keys_.push_back(k);
  }
  void remove(std::uint64_t k) {
    auto it = index_.find(k);
    if (it == index_.end()) return;
    const std::size_t i = it->second;
    index_.erase(it);
    if (i + 1 != keys_.size()) {
      keys_[i] = keys_.back();
      index_[keys_[i]] = i;
    }
    keys_.pop_back();
  }
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }
  std::uint64_t pick(std::mt19937_64& rng) const { return keys_[rng() % keys_.size()]; }

 private:
  std::vector<std::uint64_t> keys_;
  std::unordered_map<std::uint64_t, std::size_t> index_;
};

struct Fixture {
  U64Map m;
  Ref ref;
  KeyPool pool;
  std::uint64_t next_key = 0;

  void insert_new() {
    const std::uint64_t k = next_key++;
    ASSERT_TRUE(m.insert_or_assign(k, value_for(k)));
    ref[k] = value_for(k);
    pool.add(k);
  }
  void erase(std::uint64_t k) {
    ASSERT_EQ(m.erase(k), 1u) << k;
    ref.erase(k);
    pool.remove(k);
  }
  void fill(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) insert_new();
  }
  // Inserts until a growth from at least `min_old` buckets is in progress.
  void fill_until_growing(std::size_t min_old) {
    while (!(m.stats().growing && m.stats().old_bucket_count >= min_old)) {
      insert_new();
      ASSERT_LT(next_key, 10'000'000u) << "never started growing";
    }
  }
  // Fills n entries, then erases in random order until a shrink is in progress.
  void fill_then_erase_until_shrinking(std::size_t n, std::mt19937_64& rng) {
    fill(n);
    while (!m.stats().shrinking) {
      ASSERT_FALSE(pool.empty()) << "erased everything without ever shrinking";
      erase(pool.pick(rng));
    }
  }
};

struct MutationPlan {
  unsigned erase_current_pct = 0;  // per visit
  unsigned erase_other_pct = 0;    // per visit
  unsigned insert_pct = 0;         // per visit
  std::size_t max_inserts = 0;
};

// Iterates f.m once while mutating it according to plan, and checks Go's guarantees.
void iterate_with_mutations(Fixture& f, std::mt19937_64& rng, const MutationPlan& plan) {
  std::unordered_set<std::uint64_t> at_start;
  for (const auto& kv : f.ref) at_start.insert(kv.first);
  std::unordered_set<std::uint64_t> visited;
  std::unordered_set<std::uint64_t> erased;
  std::unordered_set<std::uint64_t> inserted;
  std::size_t inserts = 0;
  for (auto it = f.m.begin(); it != f.m.end(); ++it) {
    const std::uint64_t k = it->first;
    ASSERT_EQ(it->second, value_for(k)) << "wrong value for key " << k;
    ASSERT_TRUE(visited.insert(k).second) << "key " << k << " visited twice";
    ASSERT_FALSE(erased.count(k)) << "key " << k << " visited after it was erased";
    ASSERT_TRUE(at_start.count(k) || inserted.count(k)) << "visited unknown key " << k;
    if (rng() % 100 < plan.erase_current_pct) {
      f.erase(k);
      erased.insert(k);
    }
    if (rng() % 100 < plan.erase_other_pct && !f.pool.empty()) {
      const std::uint64_t other = f.pool.pick(rng);
      f.erase(other);
      erased.insert(other);
    }
    if (rng() % 100 < plan.insert_pct && inserts < plan.max_inserts) {
      inserted.insert(f.next_key);
      f.insert_new();
      ++inserts;
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (std::uint64_t k : at_start) {
    if (!erased.count(k)) {
      ASSERT_TRUE(visited.count(k)) << "key " << k << " was never visited";
    }
  }
  ASSERT_TRUE(Equivalent(f.m, f.ref));
}

template <class Map>
std::vector<typename Map::key_type> order_of(const Map& m) {
  std::vector<typename Map::key_type> keys;
  for (auto&& kv : m) keys.push_back(kv.first);
  return keys;
}

// ---------------------------------------------------------------------------------------------

TEST(HmapIteration, EmptyMaps) {
  U64Map fresh;
  EXPECT_TRUE(fresh.begin() == fresh.end());
  int n = 0;
  for (auto&& kv : fresh) {
    (void)kv;
    ++n;
  }
  const U64Map& cfresh = fresh;
  for (auto&& kv : cfresh) {
    (void)kv;
    ++n;
  }
  EXPECT_EQ(n, 0);

  U64Map cleared;
  for (std::uint64_t i = 0; i < 10000; ++i) cleared.insert_or_assign(i, i);
  cleared.clear();
  EXPECT_TRUE(cleared.begin() == cleared.end());

  U64Map drained;
  for (std::uint64_t i = 0; i < 10000; ++i) drained.insert_or_assign(i, i);
  for (std::uint64_t i = 0; i < 10000; ++i) drained.erase(i);
  for (auto&& kv : drained) {
    (void)kv;
    ++n;
  }
  EXPECT_EQ(n, 0);

  U64Map hinted(5000);
  EXPECT_TRUE(hinted.begin() == hinted.end());
}

TEST(HmapIteration, VisitsEveryEntryExactlyOnce) {
  for (std::size_t n : {1u, 5u, 6u, 7u, 8u, 9u, 13u, 14u, 100u, 1000u, 50000u}) {
    SCOPED_TRACE(n);
    Fixture f;
    f.fill(n);
    ASSERT_TRUE(Equivalent(f.m, f.ref));  // const iteration inside
    std::unordered_set<std::uint64_t> seen;
    for (auto&& [k, v] : f.m) {
      ASSERT_EQ(v, value_for(k));
      ASSERT_TRUE(seen.insert(k).second);
    }
    EXPECT_EQ(seen.size(), n);
  }
}

TEST(HmapIteration, ValuesAreMutableKeysAreConst) {
  leakless::hmap<int, std::string> m;
  for (int i = 0; i < 300; ++i) m[i] = "x";
  for (auto&& [k, v] : m) {
    static_assert(std::is_const_v<std::remove_reference_t<decltype((k))>>, "keys must be const");
    static_assert(!std::is_const_v<std::remove_reference_t<decltype((v))>>, "values mutable");
    v = std::to_string(k * 2);
  }
  for (int i = 0; i < 300; ++i) ASSERT_EQ(m.get(i), std::to_string(i * 2));

  auto it = m.begin();
  ASSERT_TRUE(it != m.end());
  const int first_key = it->first;
  EXPECT_EQ((*it).first, first_key);
  it->second = "arrow";
  EXPECT_EQ(m.get(first_key), "arrow");
  (*it).second += "!";
  EXPECT_EQ(m.get(first_key), "arrow!");
}

TEST(HmapIteration, ConstMapsYieldConstValues) {
  leakless::hmap<int, int> m;
  for (int i = 0; i < 100; ++i) m[i] = i + 1;
  const auto& cm = m;
  long sum = 0;
  for (auto&& [k, v] : cm) {
    static_assert(std::is_const_v<std::remove_reference_t<decltype((k))>>);
    static_assert(std::is_const_v<std::remove_reference_t<decltype((v))>>,
                  "const map must iterate with const V");
    EXPECT_EQ(v, k + 1);
    sum += v;
  }
  EXPECT_EQ(sum, 5050);
  auto it = cm.begin();
  static_assert(std::is_const_v<std::remove_reference_t<decltype(it->second)>>);
}

TEST(HmapIteration, OrderIsRandomisedPerIteration) {
  for (std::size_t n : {6u, 100u, 1000u}) {
    SCOPED_TRACE(n);
    Fixture f;
    f.fill(n);
    std::set<std::vector<std::uint64_t>> orders;
    std::set<std::uint64_t> first_keys;
    for (int i = 0; i < 20; ++i) {
      auto order = order_of(f.m);
      ASSERT_EQ(order.size(), n);
      first_keys.insert(order.front());
      orders.insert(std::move(order));
    }
    EXPECT_GE(orders.size(), 2u) << "20 iterations produced one order";
    EXPECT_GE(first_keys.size(), 2u) << "20 iterations always started at the same entry";
  }
}

TEST(HmapIteration, EraseEveryKeyThroughTheBindingDuringIteration) {
  for (std::size_t n : {10u, 1000u, 100000u}) {
    SCOPED_TRACE(n);
    Fixture f;
    f.fill(n);
    std::unordered_set<std::uint64_t> seen;
    for (auto&& [k, v] : f.m) {
      ASSERT_EQ(v, value_for(k));
      ASSERT_TRUE(seen.insert(k).second) << "visited twice: " << k;
      f.m.erase(k);  // `for k := range m { delete(m, k) }`, passing the map's own key
    }
    EXPECT_EQ(seen.size(), n);
    EXPECT_TRUE(f.m.empty());
    EXPECT_TRUE(StatsConsistent(f.m));
    EXPECT_TRUE(f.m.begin() == f.m.end());
    // Still usable.
    f.m.insert_or_assign(1, 2);
    EXPECT_EQ(f.m.get(1), 2u);
  }
}

TEST(HmapIteration, EraseRandomKeysDuringIteration) {
  std::mt19937_64 rng(2024);
  for (std::size_t n : {50u, 3000u, 60000u}) {
    SCOPED_TRACE(n);
    Fixture f;
    f.fill(n);
    iterate_with_mutations(f, rng, MutationPlan{30, 30, 0, 0});
    EXPECT_LT(f.m.size(), n);
    iterate_with_mutations(f, rng, MutationPlan{0, 60, 0, 0});
    iterate_with_mutations(f, rng, MutationPlan{100, 0, 0, 0});
    EXPECT_TRUE(f.m.empty());
  }
}

TEST(HmapIteration, InsertDuringIteration) {
  std::mt19937_64 rng(99);
  for (std::size_t n : {5u, 100u, 5000u}) {
    SCOPED_TRACE(n);
    Fixture f;
    f.fill(n);
    iterate_with_mutations(f, rng, MutationPlan{0, 0, 50, 4 * n});
    iterate_with_mutations(f, rng, MutationPlan{0, 0, 100, 2 * n});
    iterate_with_mutations(f, rng, MutationPlan{20, 20, 60, 2 * n});
  }
}

TEST(HmapIteration, InsertDuringIterationPastTheGrowthThreshold) {
  // 6656 = 6.5 * 1024: the next insert starts a growth, in the middle of the iteration.
  std::mt19937_64 rng(7);
  Fixture f;
  f.fill(6656);
  ASSERT_FALSE(f.m.stats().growing) << describe_stats(f.m.stats());
  ASSERT_EQ(f.m.stats().bucket_count, 1024u);
  iterate_with_mutations(f, rng, MutationPlan{0, 0, 100, 20000});
  EXPECT_GT(f.m.size(), 6656u + 5000u);
  EXPECT_TRUE(Equivalent(f.m, f.ref));
}

TEST(HmapIteration, WhileGrowing) {
  std::mt19937_64 rng(31337);
  for (std::size_t min_old : {4u, 64u, 1024u, 16384u}) {
    SCOPED_TRACE(min_old);
    {
      Fixture f;
      f.fill_until_growing(min_old);
      ASSERT_TRUE(f.m.stats().growing);
      iterate_with_mutations(f, rng, MutationPlan{0, 0, 0, 0});  // plain, still growing
      ASSERT_TRUE(f.m.stats().growing) << "iteration migrated buckets";
      iterate_with_mutations(f, rng, MutationPlan{25, 25, 0, 0});
    }
    {
      Fixture f;
      f.fill_until_growing(min_old);
      iterate_with_mutations(f, rng, MutationPlan{0, 0, 50, 1u << 20});
    }
    {
      Fixture f;
      f.fill_until_growing(min_old);
      iterate_with_mutations(f, rng, MutationPlan{20, 20, 40, 1u << 20});
      // Erase everything during one iteration of a growing map.
      f.fill_until_growing(min_old);
      iterate_with_mutations(f, rng, MutationPlan{100, 0, 0, 0});
      EXPECT_TRUE(f.m.empty());
    }
  }
}

TEST(HmapIteration, WhileShrinking) {
  std::mt19937_64 rng(4242);
  for (std::size_t n : {20000u, 120000u}) {
    SCOPED_TRACE(n);
    {
      Fixture f;
      f.fill_then_erase_until_shrinking(n, rng);
      ASSERT_TRUE(f.m.stats().shrinking);
      iterate_with_mutations(f, rng, MutationPlan{0, 0, 0, 0});
      ASSERT_TRUE(f.m.stats().shrinking) << "iteration migrated buckets";
      iterate_with_mutations(f, rng, MutationPlan{30, 30, 0, 0});
    }
    {
      Fixture f;
      f.fill_then_erase_until_shrinking(n, rng);
      iterate_with_mutations(f, rng, MutationPlan{0, 0, 50, n});
    }
    {
      Fixture f;
      f.fill_then_erase_until_shrinking(n, rng);
      iterate_with_mutations(f, rng, MutationPlan{25, 25, 50, n});
      iterate_with_mutations(f, rng, MutationPlan{100, 0, 0, 0});
      EXPECT_TRUE(f.m.empty());
    }
  }
}

TEST(HmapIteration, MigrationPausesWhileAnIteratorIsLiveAndResumesAfterwards) {
  Fixture f;
  f.fill_until_growing(1024);
  const std::size_t old_buckets = f.m.stats().old_bucket_count;
  std::unordered_set<std::uint64_t> visited;
  {
    auto it = f.m.begin();
    ASSERT_TRUE(it != f.m.end());
    ASSERT_TRUE(visited.insert(it->first).second);
    // Many writes (insert + erase pairs of fresh keys) while the iterator is live.
    for (std::size_t j = 0; j < 8 * old_buckets; ++j) {
      f.insert_new();
      f.erase(f.next_key - 1);
    }
    EXPECT_TRUE(f.m.stats().growing) << "migration continued under a live iterator";
    ASSERT_TRUE(Equivalent(f.m, f.ref));  // the map stays correct meanwhile
    for (++it; it != f.m.end(); ++it) {
      ASSERT_TRUE(visited.insert(it->first).second) << "visited twice: " << it->first;
      ASSERT_EQ(it->second, value_for(it->first));
    }
  }
  EXPECT_EQ(visited.size(), f.ref.size());
  for (const auto& kv : f.ref) ASSERT_TRUE(visited.count(kv.first));
  // The iterator is gone: writes finish the migration again.
  std::size_t writes = 0;
  while (f.m.stats().growing) {
    f.insert_new();
    f.erase(f.next_key - 1);
    writes += 2;
    ASSERT_LE(writes, 2 * old_buckets + 8) << describe_stats(f.m.stats());
  }
  EXPECT_TRUE(Equivalent(f.m, f.ref));
}

TEST(HmapIteration, MigrationResumesAfterAnAbandonedIteration) {
  Fixture f;
  f.fill_until_growing(512);
  const std::size_t old_buckets = f.m.stats().old_bucket_count;
  int n = 0;
  for (auto&& kv : f.m) {
    (void)kv;
    if (++n == 10) break;  // iteration abandoned half-way
  }
  std::size_t writes = 0;
  while (f.m.stats().growing) {
    f.insert_new();
    ++writes;
    ASSERT_LE(writes, old_buckets + 8)
        << "migration did not resume: " << describe_stats(f.m.stats());
  }
  EXPECT_TRUE(Equivalent(f.m, f.ref));
}

TEST(HmapIteration, MigrationResumesAfterIterationWithInserts) {
  std::mt19937_64 rng(5);
  Fixture f;
  f.fill_until_growing(2048);
  iterate_with_mutations(f, rng, MutationPlan{10, 10, 30, 5000});
  const std::size_t old_buckets = f.m.stats().old_bucket_count;
  std::size_t writes = 0;
  while (hmap_test::migrating(f.m.stats())) {
    f.erase(f.pool.pick(rng));
    f.insert_new();
    writes += 2;
    ASSERT_LE(writes, 4 * (old_buckets + 8)) << describe_stats(f.m.stats());
  }
  EXPECT_TRUE(Equivalent(f.m, f.ref));
}

TEST(HmapIteration, IteratorCopiesAreIndependent) {
  Fixture f;
  f.fill(500);
  auto it = f.m.begin();
  for (int i = 0; i < 10; ++i) ++it;
  const std::uint64_t at10 = it->first;
  auto copy = it;
  EXPECT_TRUE(copy == it);
  EXPECT_EQ(copy->first, at10);
  ++copy;
  EXPECT_EQ(it->first, at10) << "advancing a copy moved the original";
  EXPECT_FALSE(copy == it);
  EXPECT_NE(copy->first, at10);

  auto again = it;  // a copy at the same position continues with the same sequence
  std::vector<std::uint64_t> rest_a;
  std::vector<std::uint64_t> rest_b;
  for (; it != f.m.end(); ++it) rest_a.push_back(it->first);
  for (; again != f.m.end(); ++again) rest_b.push_back(again->first);
  EXPECT_EQ(rest_a, rest_b);
  EXPECT_EQ(rest_a.size(), 490u);

  auto assigned = f.m.begin();
  auto other = f.m.begin();
  ++other;
  ++other;
  assigned = other;
  EXPECT_TRUE(assigned == other);
  EXPECT_EQ(assigned->first, other->first);

  const auto& cm = f.m;
  auto cit = cm.begin();
  auto ccopy = cit;
  EXPECT_EQ(cit->first, ccopy->first);
}

TEST(HmapIteration, InterleavedIteratorsEachVisitEverything) {
  Fixture f;
  f.fill_until_growing(256);
  auto a = f.m.begin();
  auto b = f.m.begin();
  std::unordered_set<std::uint64_t> sa;
  std::unordered_set<std::uint64_t> sb;
  while (a != f.m.end() || b != f.m.end()) {
    if (a != f.m.end()) {
      ASSERT_TRUE(sa.insert(a->first).second);
      ++a;
    }
    if (b != f.m.end()) {
      ASSERT_TRUE(sb.insert(b->first).second);
      ++b;
    }
  }
  EXPECT_EQ(sa.size(), f.ref.size());
  EXPECT_EQ(sb.size(), f.ref.size());
}

TEST(HmapIteration, LargeValuesWhileGrowingAndErasing) {
  const std::int64_t live_before = Big::live;
  {
    leakless::hmap<std::uint64_t, Big> m;
    std::uint64_t k = 0;
    while (!(m.stats().growing && m.stats().old_bucket_count >= 128)) {
      m.insert_or_assign(k, Big(k));
      ++k;
    }
    std::unordered_set<std::uint64_t> seen;
    std::size_t erased = 0;
    for (auto&& [key, v] : m) {
      ASSERT_EQ(v, Big(key));
      ASSERT_TRUE(seen.insert(key).second);
      if (key % 2 == 0) {
        const std::uint64_t copy = key;
        m.erase(copy);
        ++erased;
      }
    }
    EXPECT_EQ(seen.size(), k);
    EXPECT_EQ(m.size(), k - erased);
    for (std::uint64_t i = 0; i < k; ++i) ASSERT_EQ(m.contains(i), i % 2 == 1);
  }
  EXPECT_EQ(Big::live, live_before);
}

}  // namespace
