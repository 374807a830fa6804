// Basic behaviour of leakless::hmap, checked one property at a time against the contract:
// Go's map semantics from the seed (make / make with hint, map literal, comma-ok lookup, zero value
// on a missing key, delete of an absent key, m[k] inserting V{}), insert_or_assign / try_emplace
// return values (try_emplace must not touch its arguments when the key exists: a move/copy
// tracking value type), copy and move semantics, size/empty, stats() consistency, growth (load
// factor 6.5, doubling, incremental: `growing` observed after the triggering insert and cleared
// only after further writes, lookups never migrate), same-size growth when overflow buckets pile up
// (groups of keys sharing one hash, inserted and erased bucket by bucket), a degenerate constant
// hash (long overflow chains), reserve, shrink_to_fit, indirect storage of large keys/values,
// transparent std::string lookup (std::string_view and const char*, counted with a replacement
// operator new: no allocation), a smoke test of leakless::hash quality (distinct, low and top 8
// bits well spread), stability of pointers from lookup() across reads and across writes to keys
// that already exist (no insert happens), and value categories a C++ container must take:
// move-only values, values without a default constructor, over-aligned keys and values; and the
// pages of large tables: huge-page advice, and old pages given back while a migration sweeps.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <sys/mman.h>

#include "hmap_test_util.hpp"

// ---------------------------------------------------------------------------------------------
// Replacement global operator new that counts calls (used to prove transparent lookups do not
// construct a std::string).
namespace {
std::atomic<std::uint64_t> g_operator_new_calls{0};

// noinline keeps GCC from pairing an inlined free() with a builtin new (-Wmismatched-new-delete).
[[gnu::noinline]] void* counted_allocate(std::size_t n) {
  g_operator_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void counted_release(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) { return counted_allocate(n); }
void* operator new[](std::size_t n) { return counted_allocate(n); }
void operator delete(void* p) noexcept { counted_release(p); }
void operator delete[](void* p) noexcept { counted_release(p); }
void operator delete(void* p, std::size_t) noexcept { counted_release(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_release(p); }

// The over-aligned forms, counting the allocations aligned to a huge page (2 MiB): large tables.
namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
std::atomic<std::uint64_t> g_huge_aligned_news{0};
std::atomic<std::uint64_t> g_huge_aligned_deletes{0};
}  // namespace
void* operator new(std::size_t n, std::align_val_t alignment) {
  const auto align = static_cast<std::size_t>(alignment);
  if (align == kHugePage) g_huge_aligned_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p =
          std::aligned_alloc(align, (std::max<std::size_t>(n, 1) + align - 1) / align * align)) {
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p, std::align_val_t alignment) noexcept {
  if (p != nullptr && static_cast<std::size_t>(alignment) == kHugePage) {
    g_huge_aligned_deletes.fetch_add(1, std::memory_order_relaxed);
  }
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t alignment) noexcept {
  operator delete(p, alignment);
}

namespace {

using hmap_test::Big;
using hmap_test::describe_stats;
using hmap_test::Equivalent;
using hmap_test::expected_buckets_for;
using hmap_test::Key160;
using hmap_test::Key160Hash;
using hmap_test::mix64;
using hmap_test::over_load;
using hmap_test::StatsConsistent;

using U64Map = leakless::hmap<std::uint64_t, std::uint64_t>;

// ---------------------------------------------------------------------------------------------
// Go semantics from the seed.

TEST(HmapGoSemantics, MakeCreatesEmptyMapWithOneBucket) {
  leakless::hmap<std::string, int> m;  // make(map[string]int)
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.lookup("Alice"), nullptr);
  EXPECT_FALSE(m.contains("Alice"));
  EXPECT_EQ(m.get("Alice"), 0);
  const auto s = m.stats();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.bucket_count, 1u);
  EXPECT_EQ(s.old_bucket_count, 0u);
  EXPECT_EQ(s.overflow_buckets, 0u);
  EXPECT_FALSE(s.growing);
  EXPECT_FALSE(s.shrinking);
  EXPECT_TRUE(StatsConsistent(m));

  m["Alice"] = 30;  // ageMap["Alice"] = 30
  EXPECT_EQ(m.size(), 1u);
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(m.get("Alice"), 30);
}

TEST(HmapGoSemantics, MakeWithHintPicksSmallestPowerOfTwoHoldingHint) {
  // Hints 7 and 8 (where Go's "count > 8" rule lets one bucket do) are checked separately in
  // OneBucketHoldsEightEntries.
  for (std::size_t hint : {0u, 1u, 6u, 13u, 14u, 26u, 27u, 52u, 53u, 100u, 1000u, 4096u, 100000u}) {
    SCOPED_TRACE(hint);
    U64Map m(hint);
    const auto s = m.stats();
    EXPECT_EQ(s.bucket_count, expected_buckets_for(hint)) << describe_stats(s);
    EXPECT_FALSE(s.growing);
    EXPECT_FALSE(s.shrinking);
    EXPECT_EQ(s.old_bucket_count, 0u);
    EXPECT_TRUE(m.empty());
    // Filling up to the hint never grows.
    for (std::uint64_t i = 0; i < hint; ++i) {
      m.insert_or_assign(i, i);
      const auto t = m.stats();
      ASSERT_EQ(t.bucket_count, expected_buckets_for(hint)) << "after " << i + 1 << " inserts";
      ASSERT_FALSE(t.growing) << "after " << i + 1 << " inserts";
    }
    EXPECT_EQ(m.size(), hint);
  }
}

TEST(HmapGoSemantics, OneBucketHoldsEightEntries) {
  // Go's overLoadFactor(count, B) is `count > 8 && count > 6.5 * 2^B`: a map of one bucket
  // fills all 8 slots before it grows, and make(map, 8) needs no more than one bucket.
  for (std::size_t hint : {7u, 8u}) {
    U64Map m(hint);
    EXPECT_EQ(m.stats().bucket_count, 1u) << "hmap(" << hint << ")";
  }
  EXPECT_EQ(U64Map(9).stats().bucket_count, 2u);
  U64Map m;
  for (std::uint64_t i = 0; i < 8; ++i) m.insert_or_assign(i, i);
  EXPECT_EQ(m.stats().bucket_count, 1u) << describe_stats(m.stats());
  m.insert_or_assign(8, 8);  // count 9 > 8
  EXPECT_EQ(m.stats().bucket_count, 2u)
      << "the 9th insert must grow: " << describe_stats(m.stats());
}

TEST(HmapGoSemantics, MapLiteral) {
  leakless::hmap<std::string, int> score{{"Math", 95}, {"English", 82}};
  EXPECT_EQ(score.size(), 2u);
  EXPECT_EQ(score.get("Math"), 95);
  EXPECT_EQ(score.get("English"), 82);
  EXPECT_EQ(score.lookup("Science"), nullptr);

  const leakless::hmap<int, std::string> empty_literal{};
  EXPECT_TRUE(empty_literal.empty());
}

TEST(HmapGoSemantics, CommaOkLookup) {
  leakless::hmap<std::string, int> score{{"Math", 95}};
  // if value, ok := scoreMap["Math"]; ok { ... }
  if (int* value = score.lookup("Math")) {
    EXPECT_EQ(*value, 95);
    *value = 96;  // the pointer refers to the stored value
  } else {
    ADD_FAILURE() << "Math not found";
  }
  EXPECT_EQ(score.get("Math"), 96);
  EXPECT_EQ(score.lookup("Science"), nullptr);  // ok == false
  EXPECT_EQ(score.size(), 1u);                  // a failed lookup inserts nothing

  const auto& cscore = score;
  static_assert(std::is_same_v<decltype(cscore.lookup(std::string("Math"))), const int*>);
  static_assert(std::is_same_v<decltype(score.lookup(std::string("Math"))), int*>);
  ASSERT_NE(cscore.lookup("Math"), nullptr);
  EXPECT_EQ(*cscore.lookup("Math"), 96);
  EXPECT_EQ(cscore.lookup("Math"), score.lookup("Math"));
}

TEST(HmapGoSemantics, GetReturnsZeroValueWithoutInserting) {
  leakless::hmap<std::string, int> a;
  EXPECT_EQ(a.get("missing"), 0);
  leakless::hmap<int, std::string> b;
  EXPECT_EQ(b.get(7), "");
  leakless::hmap<int, std::vector<int>> c;
  EXPECT_TRUE(c.get(7).empty());
  leakless::hmap<int, double> d;
  EXPECT_EQ(d.get(1), 0.0);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(c.empty());
  EXPECT_TRUE(d.empty());

  b.insert_or_assign(7, "seven");
  EXPECT_EQ(b.get(7), "seven");
  EXPECT_EQ(b.get(8), "");
  EXPECT_EQ(b.size(), 1u);
}

TEST(HmapGoSemantics, DeleteOfAbsentKeyIsANoOp) {
  leakless::hmap<std::string, int> m;
  EXPECT_EQ(m.erase("nothing"), 0u);  // delete on an empty map
  m["a"] = 1;
  m["b"] = 2;
  EXPECT_EQ(m.erase("c"), 0u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.erase("a"), 1u);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.lookup("a"), nullptr);
  EXPECT_EQ(m.erase("a"), 0u);  // second delete
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.get("b"), 2);
  EXPECT_TRUE(StatsConsistent(m));
}

TEST(HmapGoSemantics, SubscriptInsertsZeroValue) {
  leakless::hmap<std::string, int> counts;
  EXPECT_EQ(counts["x"], 0);  // reading through [] inserts V{}
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_TRUE(counts.contains("x"));
  ++counts["x"];  // m[k]++
  ++counts["x"];
  ++counts["y"];
  EXPECT_EQ(counts.get("x"), 2);
  EXPECT_EQ(counts.get("y"), 1);
  EXPECT_EQ(counts.size(), 2u);

  leakless::hmap<int, std::string> names;
  names[1] += "one";
  EXPECT_EQ(names.get(1), "one");
  EXPECT_EQ(names[2], "");
  EXPECT_EQ(names.size(), 2u);
}

TEST(HmapGoSemantics, InsertOrAssignReportsInsertion) {
  leakless::hmap<std::string, std::string> m;
  EXPECT_TRUE(m.insert_or_assign("k", "v1"));
  EXPECT_EQ(m.get("k"), "v1");
  EXPECT_FALSE(m.insert_or_assign("k", "v2"));
  EXPECT_EQ(m.get("k"), "v2");
  EXPECT_EQ(m.size(), 1u);
  EXPECT_TRUE(m.insert_or_assign("k2", "v3"));
  EXPECT_EQ(m.size(), 2u);
}

struct Tracer {
  static inline int constructions = 0;
  static inline int copies = 0;
  static inline int moves = 0;
  static void reset() { constructions = copies = moves = 0; }

  std::string s;
  bool moved_from = false;

  Tracer() { ++constructions; }
  explicit Tracer(std::string x) : s(std::move(x)) { ++constructions; }
  Tracer(std::string x, int repeat) {
    for (int i = 0; i < repeat; ++i) s += x;
    ++constructions;
  }
  Tracer(const Tracer& o) : s(o.s) { ++copies; }
  Tracer(Tracer&& o) noexcept : s(std::move(o.s)) {
    o.moved_from = true;
    ++moves;
  }
  Tracer& operator=(const Tracer& o) {
    s = o.s;
    ++copies;
    return *this;
  }
  Tracer& operator=(Tracer&& o) noexcept {
    s = std::move(o.s);
    o.moved_from = true;
    ++moves;
    return *this;
  }
  ~Tracer() = default;
};

TEST(HmapGoSemantics, TryEmplaceLeavesArgumentsAloneWhenKeyExists) {
  leakless::hmap<int, Tracer> m;
  auto [p1, inserted1] = m.try_emplace(1, std::string("ab"), 3);
  ASSERT_TRUE(inserted1);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->s, "ababab");
  EXPECT_EQ(m.lookup(1), p1);

  Tracer t("new");
  Tracer::reset();
  auto [p2, inserted2] = m.try_emplace(1, std::move(t));
  EXPECT_FALSE(inserted2);
  EXPECT_EQ(p2, m.lookup(1));
  EXPECT_EQ(p2->s, "ababab");  // existing value untouched
  EXPECT_FALSE(t.moved_from);  // the argument was not moved from
  EXPECT_EQ(t.s, "new");
  EXPECT_EQ(Tracer::constructions, 0);
  EXPECT_EQ(Tracer::copies, 0);
  EXPECT_EQ(Tracer::moves, 0);

  const Tracer c("copy-me");
  Tracer::reset();
  auto [p3, inserted3] = m.try_emplace(1, c);
  EXPECT_FALSE(inserted3);
  EXPECT_EQ(p3->s, "ababab");
  EXPECT_EQ(Tracer::constructions + Tracer::copies + Tracer::moves, 0);

  Tracer::reset();
  auto [p4, inserted4] = m.try_emplace(2, std::move(t));
  EXPECT_TRUE(inserted4);
  EXPECT_EQ(p4->s, "new");
  EXPECT_TRUE(t.moved_from);
  EXPECT_EQ(Tracer::copies, 0);  // forwarded, not copied
  EXPECT_EQ(m.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Copy, move, size.

TEST(HmapValueSemantics, CopyIsIndependent) {
  leakless::hmap<std::string, std::string> a;
  for (int i = 0; i < 1000; ++i) a["k" + std::to_string(i)] = "v" + std::to_string(i);
  leakless::hmap<std::string, std::string> b = a;
  EXPECT_EQ(b.size(), 1000u);
  b["k1"] = "changed";
  b.erase("k2");
  b["extra"] = "x";
  EXPECT_EQ(a.get("k1"), "v1");
  EXPECT_TRUE(a.contains("k2"));
  EXPECT_FALSE(a.contains("extra"));
  EXPECT_EQ(a.size(), 1000u);
  a["k3"] = "changed-in-a";
  EXPECT_EQ(b.get("k3"), "v3");

  leakless::hmap<std::string, std::string> c;
  c["old"] = "entry";
  c = a;  // copy assignment replaces the contents
  EXPECT_FALSE(c.contains("old"));
  EXPECT_EQ(c.size(), a.size());
  EXPECT_EQ(c.get("k3"), "changed-in-a");
  c.clear();
  EXPECT_EQ(a.size(), 1000u);

  auto& alias = a;
  a = alias;  // self copy-assignment keeps everything
  EXPECT_EQ(a.size(), 1000u);
  EXPECT_EQ(a.get("k999"), "v999");
  EXPECT_TRUE(StatsConsistent(a));
}

TEST(HmapValueSemantics, CopyOfMapInMidGrowthIsEquivalent) {
  U64Map m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  std::uint64_t i = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 64)) {
    m.insert_or_assign(i, i * 7);
    ref[i] = i * 7;
    ++i;
    ASSERT_LT(i, 100000u) << "never observed a growth from >= 64 buckets";
  }
  U64Map copy = m;
  EXPECT_TRUE(Equivalent(copy, ref));
  EXPECT_TRUE(Equivalent(m, ref));
  // Both keep working independently (and finish their migrations).
  for (std::uint64_t j = 0; j < 2000; ++j) {
    copy.insert_or_assign(1000000 + j, j);
    m.erase(j);
  }
  auto ref_copy = ref;
  for (std::uint64_t j = 0; j < 2000; ++j) {
    ref_copy[1000000 + j] = j;
    ref.erase(j);
  }
  EXPECT_TRUE(Equivalent(copy, ref_copy));
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapValueSemantics, MovedFromIsEmptyAndReusable) {
  leakless::hmap<std::string, int> a;
  for (int i = 0; i < 500; ++i) a["k" + std::to_string(i)] = i;
  leakless::hmap<std::string, int> b = std::move(a);
  EXPECT_EQ(b.size(), 500u);
  EXPECT_EQ(b.get("k42"), 42);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): contract says moved-from is empty
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.lookup("k42"), nullptr);
  EXPECT_TRUE(StatsConsistent(a));
  int visits = 0;
  for (auto&& kv : a) {
    (void)kv;
    ++visits;
  }
  EXPECT_EQ(visits, 0);
  a["fresh"] = 1;  // reusable
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(a.get("fresh"), 1);
  for (int i = 0; i < 100; ++i) a["r" + std::to_string(i)] = i;
  EXPECT_EQ(a.size(), 101u);

  leakless::hmap<std::string, int> c;
  c["gone"] = 5;
  c = std::move(b);
  EXPECT_EQ(c.size(), 500u);
  EXPECT_FALSE(c.contains("gone"));
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  b["again"] = 2;
  EXPECT_EQ(b.size(), 1u);
  EXPECT_TRUE(StatsConsistent(b));
  EXPECT_TRUE(StatsConsistent(c));
}

TEST(HmapValueSemantics, MoveOfMapInMidGrowth) {
  U64Map m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  std::uint64_t i = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 64)) {
    m.insert_or_assign(i, i);
    ref[i] = i;
    ++i;
    ASSERT_LT(i, 100000u);
  }
  U64Map moved = std::move(m);
  EXPECT_TRUE(Equivalent(moved, ref));
  EXPECT_TRUE(m.empty());  // NOLINT(bugprone-use-after-move)
  m.insert_or_assign(1, 2);
  EXPECT_EQ(m.get(1), 2u);
  EXPECT_EQ(m.size(), 1u);
}

TEST(HmapValueSemantics, SizeAndEmptyTrackEveryOperation) {
  leakless::hmap<int, int> m;
  std::size_t expected = 0;
  for (int i = 0; i < 100; ++i) {
    m[i] = i;
    ++expected;
    ASSERT_EQ(m.size(), expected);
  }
  m.insert_or_assign(5, 0);  // assignment: no size change
  m.try_emplace(6, 0);       // existing: no size change
  (void)m[7];                // existing: no size change
  EXPECT_EQ(m.size(), expected);
  for (int i = 0; i < 100; i += 2) {
    m.erase(i);
    --expected;
    ASSERT_EQ(m.size(), expected);
  }
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.lookup(1), nullptr);
}

// ---------------------------------------------------------------------------------------------
// stats()

TEST(HmapStats, ConsistentUnderRandomWorkload) {
  leakless::hmap<std::uint64_t, std::uint64_t> m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  std::mt19937_64 rng(12345);
  for (int op = 0; op < 60000; ++op) {
    const std::uint64_t k = rng() % 5000;
    switch (rng() % 4) {
      case 0:
      case 1:
        m.insert_or_assign(k, k + 1);
        ref[k] = k + 1;
        break;
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(k));
        break;
      default:
        ASSERT_EQ(m.contains(k), ref.count(k) == 1);
        break;
    }
    ASSERT_TRUE(StatsConsistent(m)) << "op " << op;
  }
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapStats, MemoryGrowsWithEntries) {
  U64Map m;
  std::size_t last = m.memory_bytes();
  EXPECT_EQ(last, m.stats().memory_bytes);
  for (std::uint64_t n : {1000u, 10000u, 100000u}) {
    for (std::uint64_t i = m.size(); i < n; ++i) m.insert_or_assign(i, i);
    const std::size_t now = m.memory_bytes();
    EXPECT_GT(now, last) << "at " << n << " entries";
    // The entries themselves live inside the map.
    EXPECT_GE(now, n * (sizeof(std::uint64_t) * 2)) << "at " << n << " entries";
    EXPECT_EQ(now, m.stats().memory_bytes);
    last = now;
  }
}

// memory_bytes() is exactly what the map holds through its allocator, overflow chunks included,
// and overflow buckets come from chunks: a map with thousands of them made a few dozen
// allocations. The chunks of a finished old array are freed by the writes after it, and nothing
// is left behind once the map is gone.
TEST(HmapStats, MemoryBytesIsWhatTheAllocatorHolds) {
  using Counters = hmap_test::AllocCounters;
  using Map =
      leakless::hmap<std::uint64_t, std::uint64_t, leakless::hash<std::uint64_t>,
                     std::equal_to<std::uint64_t>,
                     hmap_test::CountingAllocator<std::pair<const std::uint64_t, std::uint64_t>>>;
  const std::int64_t live_before = Counters::live_allocations;
  const std::int64_t bytes_before = Counters::live_bytes;
  {
    Map m;
    const auto held = [&] { return static_cast<std::size_t>(Counters::live_bytes - bytes_before); };
    const std::uint64_t allocations_before = Counters::total_allocations;
    std::size_t most_overflow = 0;
    for (std::uint64_t i = 0; i < 300000; ++i) {
      m.insert_or_assign(mix64(i), i);
      most_overflow = std::max(most_overflow, m.stats().overflow_buckets);
      ASSERT_EQ(m.memory_bytes(), held()) << "after " << i + 1 << " inserts";
    }
    const std::uint64_t allocations = Counters::total_allocations - allocations_before;
    EXPECT_GT(most_overflow, 1000u);
    EXPECT_LT(allocations, most_overflow / 8) << "overflow buckets are not pooled";
    for (std::uint64_t i = 0; i < 297000; ++i) {
      ASSERT_EQ(m.erase(mix64(i)), 1u);
      ASSERT_EQ(m.memory_bytes(), held()) << "after " << i + 1 << " erases";
    }
    // More writes finish the shrink and free the old arrays' chunks: what is left is one table
    // of the fresh size and the chunks of its own overflow buckets.
    for (std::uint64_t i = 0; i < 1000; ++i) m.insert_or_assign(mix64(1000000 + i), i);
    for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(m.erase(mix64(1000000 + i)), 1u);
    EXPECT_FALSE(m.stats().shrinking) << describe_stats(m.stats());
    EXPECT_EQ(m.memory_bytes(), held());
    EXPECT_LT(m.memory_bytes(), 3000u * 64u) << describe_stats(m.stats());
    m.clear();
    EXPECT_EQ(m.memory_bytes(), held());
    EXPECT_EQ(m.stats().overflow_buckets, 0u);
  }
  EXPECT_EQ(Counters::live_allocations, live_before);
  EXPECT_EQ(Counters::live_bytes, bytes_before);
}

// ---------------------------------------------------------------------------------------------
// Growth

TEST(HmapGrowth, DoublesAtLoadFactorAndMigratesIncrementally) {
  U64Map m;
  ASSERT_EQ(m.stats().bucket_count, 1u);
  std::size_t doublings = 0;
  std::size_t writes_in_growth = 0;
  std::size_t growth_old = 0;
  std::size_t checked_growths = 0;
  for (std::uint64_t i = 0; i < 250000; ++i) {
    const auto before = m.stats();
    ASSERT_TRUE(m.insert_or_assign(i, i * 3));
    const auto after = m.stats();
    ASSERT_EQ(after.count, i + 1);
    ASSERT_FALSE(after.shrinking) << describe_stats(after);
    if (before.bucket_count == 1) {
      // The 1-bucket edge (Go's "count > 8") is OneBucketHoldsEightEntries's business.
      ASSERT_LE(after.bucket_count, 2u);
      ASSERT_LE(after.count, 9u) << "a 1-bucket map must have grown by now";
    } else if (!before.growing) {
      if (over_load(after.count, before.bucket_count)) {
        // This insert pushed count above 6.5 * bucket_count: a doubling must start.
        ++doublings;
        ASSERT_EQ(after.bucket_count, 2 * before.bucket_count)
            << "insert #" << i + 1 << " before=" << describe_stats(before)
            << " after=" << describe_stats(after);
        if (before.bucket_count >= 4) {
          // At most a couple of old buckets move per write: still migrating.
          ASSERT_TRUE(after.growing) << "insert #" << i + 1 << " " << describe_stats(after);
          ASSERT_EQ(after.old_bucket_count, before.bucket_count);
          writes_in_growth = 1;
          growth_old = before.bucket_count;
        }
      } else {
        ASSERT_EQ(after.bucket_count, before.bucket_count)
            << "grew before the load factor was exceeded at insert #" << i + 1
            << " before=" << describe_stats(before) << " after=" << describe_stats(after);
        if (after.growing) {
          EXPECT_EQ(after.old_bucket_count, after.bucket_count) << "only same-size growth here";
        }
      }
    } else {
      ++writes_in_growth;
      ASSERT_EQ(after.bucket_count, before.bucket_count) << "bucket array changed mid-migration";
      if (!after.growing && growth_old != 0) {
        // Each write migrates at least one and at most a couple of old buckets (generous: 4).
        EXPECT_GE(writes_in_growth * 4, growth_old)
            << "migration of " << growth_old << " buckets finished after only " << writes_in_growth
            << " writes";
        EXPECT_LE(writes_in_growth, growth_old + 1)
            << "migration of " << growth_old << " buckets took " << writes_in_growth << " writes";
        ++checked_growths;
        growth_old = 0;
      }
    }
  }
  EXPECT_GE(doublings, 15u);  // 1 -> 65536 buckets for 250k entries
  EXPECT_GE(checked_growths, 12u);
  EXPECT_EQ(m.stats().bucket_count, expected_buckets_for(250000));
  for (std::uint64_t i = 0; i < 250000; i += 97) ASSERT_EQ(m.get(i), i * 3);
}

TEST(HmapGrowth, LookupsNeverMigrate) {
  U64Map m;
  std::uint64_t next = 0;
  // Insert until a growth from 1024 buckets starts.
  while (!(m.stats().growing && m.stats().old_bucket_count == 1024)) {
    m.insert_or_assign(next, ~next);
    ++next;
    ASSERT_LT(next, 20000u);
  }
  const auto s0 = m.stats();
  const U64Map& cm = m;
  for (int round = 0; round < 20; ++round) {
    for (std::uint64_t k = 0; k < next + 100; ++k) {
      const bool present = k < next;
      ASSERT_EQ(cm.contains(k), present);
      ASSERT_EQ(cm.get(k), present ? ~k : 0u);
      const auto* p = cm.lookup(k);
      ASSERT_EQ(p != nullptr, present);
      auto* q = m.lookup(k);  // non-const lookup does not migrate either
      ASSERT_EQ(q != nullptr, present);
    }
  }
  std::size_t visited = 0;
  for (auto&& kv : cm) {
    ASSERT_EQ(kv.second, ~kv.first);
    ++visited;
  }
  EXPECT_EQ(visited, next);
  const auto s1 = m.stats();
  EXPECT_TRUE(s1.growing) << "lookups/iteration finished the migration: " << describe_stats(s1);
  EXPECT_EQ(s1.bucket_count, s0.bucket_count);
  EXPECT_EQ(s1.old_bucket_count, 1024u);

  // Writes finish the migration (insert + erase pairs keep the count constant).
  std::size_t writes = 0;
  while (m.stats().growing) {
    m.insert_or_assign(next, 0);
    m.erase(next);
    writes += 2;
    ++next;
    ASSERT_LE(writes, 4096u) << describe_stats(m.stats());
  }
  EXPECT_GE(writes * 4, 1024u);
  EXPECT_EQ(m.stats().old_bucket_count, 0u);
}

// A key whose hash is shared by a whole group: keys of one group always land in one bucket,
// whatever seed/mixing the map applies to the hash.
struct GroupKey {
  std::uint64_t group;
  std::uint32_t id;
  friend bool operator==(const GroupKey&, const GroupKey&) = default;
};
struct GroupHash {
  std::size_t operator()(const GroupKey& k) const noexcept {
    return static_cast<std::size_t>(mix64(k.group));
  }
};

TEST(HmapGrowth, SameSizeGrowthWhenOverflowBucketsPileUp) {
  // 17 keys of one group need a bucket plus two overflow buckets; erasing them leaves the
  // overflow buckets behind (as in Go). Repeating this group after group over all buckets piles
  // up overflow buckets while the count stays tiny: Go answers with a same-size growth that
  // compacts. The hint floor keeps the map from shrinking meanwhile.
  leakless::hmap<GroupKey, int, GroupHash> m(104);
  ASSERT_EQ(m.stats().bucket_count, 16u);
  bool same_size_growth = false;
  std::size_t max_overflow = 0;
  for (std::uint64_t g = 0; g < 5000; ++g) {
    for (std::uint32_t id = 0; id < 17; ++id) {
      ASSERT_TRUE(m.insert_or_assign(GroupKey{g, id}, static_cast<int>(id)));
      const auto s = m.stats();
      if (s.growing && s.bucket_count == s.old_bucket_count) same_size_growth = true;
      max_overflow = std::max(max_overflow, s.overflow_buckets);
      ASSERT_EQ(s.bucket_count, 16u) << describe_stats(s);
    }
    for (std::uint32_t id = 0; id < 17; ++id) {
      ASSERT_NE(m.lookup(GroupKey{g, id}), nullptr);
      ASSERT_EQ(*m.lookup(GroupKey{g, id}), static_cast<int>(id));
    }
    for (std::uint32_t id = 0; id < 17; ++id) {
      ASSERT_EQ(m.erase(GroupKey{g, id}), 1u);
      const auto s = m.stats();
      if (s.growing && s.bucket_count == s.old_bucket_count) same_size_growth = true;
      ASSERT_FALSE(s.shrinking) << "shrank below the hint floor: " << describe_stats(s);
    }
    ASSERT_TRUE(m.empty());
  }
  EXPECT_TRUE(same_size_growth) << "no same-size growth observed; max overflow_buckets="
                                << max_overflow << " with 16 buckets";
  EXPECT_TRUE(StatsConsistent(m));
  // Compaction keeps the overflow chains bounded (without it: 2 per bucket forever).
  EXPECT_LE(m.stats().overflow_buckets, 64u) << describe_stats(m.stats());
}

struct ConstantHash {
  std::size_t operator()(std::uint64_t) const noexcept { return 0x5bd1e9955bd1e995ULL; }
};

TEST(HmapGrowth, DegenerateConstantHashStillCorrect) {
  leakless::hmap<std::uint64_t, std::uint64_t, ConstantHash> m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  constexpr std::uint64_t kN = 2000;
  for (std::uint64_t i = 0; i < kN; ++i) {
    ASSERT_TRUE(m.insert_or_assign(i, i + 10));
    ref[i] = i + 10;
  }
  EXPECT_TRUE(Equivalent(m, ref));
  for (std::uint64_t i = kN; i < kN + 200; ++i) ASSERT_EQ(m.lookup(i), nullptr);
  if (!hmap_test::migrating(m.stats())) {
    // Everything hashes to one bucket: one chain of at least kN / 8 buckets.
    EXPECT_GE(m.stats().overflow_buckets, kN / 8 - 1) << describe_stats(m.stats());
  }
  for (std::uint64_t i = 0; i < kN; i += 2) {
    ASSERT_EQ(m.erase(i), 1u);
    ref.erase(i);
  }
  EXPECT_TRUE(Equivalent(m, ref));
  for (std::uint64_t i = 0; i < kN; i += 4) {
    ASSERT_TRUE(m.insert_or_assign(i, i));
    ref[i] = i;
  }
  for (std::uint64_t i = 1; i < kN; i += 4) {
    ASSERT_FALSE(m.insert_or_assign(i, 1));
    ref[i] = 1;
  }
  EXPECT_TRUE(Equivalent(m, ref));
  auto copy = m;
  EXPECT_TRUE(Equivalent(copy, ref));
  m.shrink_to_fit();
  EXPECT_TRUE(Equivalent(m, ref));
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.lookup(1), nullptr);
  EXPECT_TRUE(Equivalent(copy, ref));
}

// ---------------------------------------------------------------------------------------------
// Pages of large tables (std::allocator only): a table of 4 MiB or more is placed on a huge-page
// boundary and asks for huge pages; one of 32 MiB or more gives its pages back, whole huge pages
// at a time, as the sweep leaves them.
namespace {
// The VmFlags line of the mapping that holds p, from /proc/self/smaps ("" when not found).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t low = 0;
    std::uintptr_t high = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &low, &high) == 2) {  // a mapping
      inside = low <= address && address < high;
    } else if (inside && line.starts_with("VmFlags:")) {
      return line;
    }
  }
  return "";
}
bool page_resident(const void* p) {
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  unsigned char state = 0;
  void* start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~(page - 1));
  EXPECT_EQ(mincore(start, 1, &state), 0);
  return (state & 1) != 0;
}
}  // namespace

TEST(HmapPages, LargeTablesAskForHugePagesAndGiveOldPagesBackAsTheSweepLeaves) {
  constexpr std::size_t kBuckets = std::size_t{1} << 18;  // 2^18 * 144 bytes: 36 MiB
  constexpr std::size_t kFull = kBuckets * 13 / 2;        // the most it holds before doubling
  // Other tests in this process grow large maps too: count from here.
  const std::uint64_t news_before = g_huge_aligned_news.load();
  const std::uint64_t deletes_before = g_huge_aligned_deletes.load();
  {
    U64Map small;  // its largest table, 256 buckets, is far below 4 MiB
    for (std::uint64_t i = 0; i < 1000; ++i) small.insert_or_assign(i, i);
    EXPECT_EQ(g_huge_aligned_news.load() - news_before, 0u);
  }
  U64Map m;
  m.reserve(kFull);
  ASSERT_EQ(m.stats().bucket_count, kBuckets);
  EXPECT_EQ(g_huge_aligned_news.load() - news_before, 1u)
      << "the table is placed on a huge-page boundary";
  for (std::uint64_t i = 0; i < kFull; ++i) m.insert_or_assign(i, i + 1);
  ASSERT_EQ(m.stats().bucket_count, kBuckets);
  ASSERT_FALSE(m.stats().growing);

  // Where a sample of the values sit now: in the table that the next insert makes the old one
  // (about 5% are in overflow buckets, which live elsewhere).
  std::vector<const std::uint64_t*> old_places;
  for (std::uint64_t i = 0; i < kFull; i += 61) old_places.push_back(m.lookup(i));
  std::size_t resident = 0;
  for (const std::uint64_t* p : old_places) resident += page_resident(p) ? 1u : 0u;
  EXPECT_EQ(resident, old_places.size()) << "every value was just written";
  const bool kernel_has_huge_pages =
      std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
  // Of 20 sampled values, those in the table (not in an overflow bucket) are in advised memory.
  std::size_t advised = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    const std::string flags = vm_flags_of(old_places[i * old_places.size() / 20]);
    ASSERT_FALSE(flags.empty());
    advised += flags.find(" hg") != std::string::npos ? 1u : 0u;
  }
  if (kernel_has_huge_pages) {
    EXPECT_GE(advised, 15u);
  } else {
    EXPECT_EQ(advised, 0u);
  }

  // The next insert starts a doubling; each write then moves two of the 2^18 units, so 120,000
  // writes move 92% of them. Their old pages go back as the sweep passes, 2 MiB at a time.
  std::uint64_t next = kFull;
  m.insert_or_assign(next, next + 1);
  ++next;
  ASSERT_TRUE(m.stats().growing);
  ASSERT_EQ(m.stats().old_bucket_count, kBuckets);
  for (int i = 0; i < 120000; ++i, ++next) m.insert_or_assign(next, next + 1);
  ASSERT_TRUE(m.stats().growing) << "the sweep must still be under way";
  std::size_t released = 0;
  for (const std::uint64_t* p : old_places) released += page_resident(p) ? 0u : 1u;
  EXPECT_GE(released * 10, old_places.size() * 7)
      << released << " of " << old_places.size() << " sampled old slots were given back";

  // Nothing was lost: in the new table, in the old one's unmoved part, and after the sweep.
  for (std::uint64_t i = 0; i < next; i += 7) ASSERT_EQ(m.get(i), i + 1) << i;
  while (m.stats().growing) {
    m.insert_or_assign(next, next + 1);
    ++next;
  }
  for (std::uint64_t i = 0; i < next; i += 7) ASSERT_EQ(m.get(i), i + 1) << i;
  EXPECT_EQ(m.size(), next);
  // Both large tables came and went through the aligned forms of operator new and delete.
  m = U64Map();
  EXPECT_EQ(g_huge_aligned_news.load() - news_before, 2u);
  EXPECT_EQ(g_huge_aligned_deletes.load() - deletes_before, 2u);
}

// ---------------------------------------------------------------------------------------------
// reserve / shrink_to_fit

TEST(HmapCapacity, ReserveAvoidsGrowth) {
  U64Map m;
  m.reserve(50000);
  auto s = m.stats();
  EXPECT_GE(s.bucket_count, expected_buckets_for(50000));
  EXPECT_FALSE(s.growing);
  EXPECT_FALSE(s.shrinking);
  const std::size_t buckets = s.bucket_count;
  for (std::uint64_t i = 0; i < 50000; ++i) {
    m.insert_or_assign(i, i);
    ASSERT_EQ(m.stats().bucket_count, buckets) << "grew after reserve at " << i;
    ASSERT_FALSE(m.stats().growing);
  }
}

TEST(HmapCapacity, ReserveFinishesMigrationAtOnce) {
  U64Map m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  std::uint64_t i = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 256)) {
    m.insert_or_assign(i, i);
    ref[i] = i;
    ++i;
  }
  m.reserve(m.size());
  auto s = m.stats();
  EXPECT_FALSE(s.growing) << describe_stats(s);
  EXPECT_FALSE(s.shrinking);
  EXPECT_EQ(s.old_bucket_count, 0u);
  EXPECT_TRUE(Equivalent(m, ref));

  // Reserving more than the current size doubles as often as needed, at once.
  m.reserve(200000);
  s = m.stats();
  EXPECT_GE(s.bucket_count, expected_buckets_for(200000));
  EXPECT_FALSE(hmap_test::migrating(s));
  EXPECT_TRUE(Equivalent(m, ref));

  // Reserving less than what the map has never loses entries.
  m.reserve(1);
  EXPECT_TRUE(Equivalent(m, ref));
}

TEST(HmapCapacity, ShrinkToFitPicksSmallestSizeAndFinishes) {
  U64Map m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  for (std::uint64_t i = 0; i < 100000; ++i) {
    m.insert_or_assign(i, i);
    ref[i] = i;
  }
  const std::size_t big = m.memory_bytes();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    if (i % 50 != 0) {
      m.erase(i);
      ref.erase(i);
    }
  }
  m.shrink_to_fit();
  auto s = m.stats();
  EXPECT_EQ(s.bucket_count, expected_buckets_for(ref.size())) << describe_stats(s);
  EXPECT_FALSE(s.growing);
  EXPECT_FALSE(s.shrinking);
  EXPECT_LT(m.memory_bytes(), big / 10);
  EXPECT_TRUE(Equivalent(m, ref));

  m.clear();
  m.shrink_to_fit();
  EXPECT_EQ(m.stats().bucket_count, 1u);
  EXPECT_TRUE(m.empty());
  m.insert_or_assign(5, 6);
  EXPECT_EQ(m.get(5), 6u);
}

// ---------------------------------------------------------------------------------------------
// Large keys and values (stored indirectly, > 128 bytes).

TEST(HmapLargeTypes, KeyOf160AndValueOf200Bytes) {
  const std::int64_t keys_before = Key160::live;
  const std::int64_t vals_before = Big::live;
  {
    leakless::hmap<Key160, Big, Key160Hash> m;
    std::unordered_map<std::uint64_t, std::uint64_t> ids;  // key id -> value seed
    for (std::uint64_t i = 0; i < 5000; ++i) {
      ASSERT_TRUE(m.insert_or_assign(Key160(i), Big(i * 11)));
      ids[i] = i * 11;
    }
    EXPECT_EQ(m.size(), 5000u);
    EXPECT_GE(m.memory_bytes(), m.size() * (sizeof(Key160) + sizeof(Big)))
        << "memory_bytes() must include indirectly stored keys and values";
    for (std::uint64_t i = 0; i < 5000; ++i) {
      const Big* p = m.lookup(Key160(i));
      ASSERT_NE(p, nullptr) << i;
      ASSERT_EQ(*p, Big(i * 11)) << i;
    }
    EXPECT_EQ(m.lookup(Key160(99999)), nullptr);
    EXPECT_EQ(m.get(Key160(99999)), Big());
    for (std::uint64_t i = 0; i < 5000; i += 3) {
      ASSERT_EQ(m.erase(Key160(i)), 1u);
      ids.erase(i);
    }
    m[Key160(1)] = Big(77);
    ids[1] = 77;
    auto [p, inserted] = m.try_emplace(Key160(123456), 5u);
    EXPECT_TRUE(inserted);
    EXPECT_EQ(*p, Big(5));
    ids[123456] = 5;
    std::unordered_set<std::uint64_t> seen;
    for (auto&& [k, v] : m) {
      ASSERT_TRUE(seen.insert(k.w[0]).second);
      ASSERT_EQ(v, Big(ids.at(k.w[0])));
      v.w[24] ^= 1;  // mutate through the iteration
    }
    EXPECT_EQ(seen.size(), ids.size());
    for (const auto& [id, seed] : ids) {
      Big expect(seed);
      expect.w[24] ^= 1;
      ASSERT_EQ(m.get(Key160(id)), expect);
    }
    auto copy = m;
    EXPECT_EQ(copy.size(), m.size());
    m.shrink_to_fit();
    auto moved = std::move(copy);
    EXPECT_EQ(moved.size(), m.size());
    for (const auto& [id, seed] : ids) ASSERT_TRUE(moved.contains(Key160(id)));
    if (!hmap_test::migrating(m.stats())) {
      EXPECT_EQ(Key160::live - keys_before, static_cast<std::int64_t>(2 * ids.size()));
      EXPECT_EQ(Big::live - vals_before, static_cast<std::int64_t>(2 * ids.size()));
    }
  }
  EXPECT_EQ(Key160::live, keys_before) << "keys leaked or destroyed twice";
  EXPECT_EQ(Big::live, vals_before) << "values leaked or destroyed twice";
}

TEST(HmapLargeTypes, LiveObjectsMatchSizeAfterEveryQuiescentPoint) {
  const std::int64_t before = Big::live;
  {
    leakless::hmap<int, Big> m;
    std::mt19937_64 rng(7);
    for (int op = 0; op < 30000; ++op) {
      const int k = static_cast<int>(rng() % 3000);
      if (rng() % 3 == 0) {
        m.erase(k);
      } else {
        m.insert_or_assign(k, Big(static_cast<std::uint64_t>(k)));
      }
      if (!hmap_test::migrating(m.stats())) {
        ASSERT_EQ(Big::live - before, static_cast<std::int64_t>(m.size())) << "op " << op;
      }
    }
    m.clear();
    EXPECT_EQ(Big::live, before);
  }
  EXPECT_EQ(Big::live, before);
}

// ---------------------------------------------------------------------------------------------
// Transparent std::string lookup.

TEST(HmapHeterogeneous, StringViewAndCharPointerLookupsDoNotAllocate) {
  leakless::hmap<std::string, int> m;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    // Long keys: a std::string temporary would have to allocate.
    keys.push_back("a-long-key-that-defeats-small-string-optimisation-" + std::to_string(i));
    m.insert_or_assign(keys.back(), i);
  }
  const auto& cm = m;
  const std::uint64_t before = g_operator_new_calls.load();
  int found = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string_view sv = keys[static_cast<std::size_t>(i)];
    const char* cs = keys[static_cast<std::size_t>(i)].c_str();
    int* p = m.lookup(sv);
    const int* cp = cm.lookup(cs);
    if (p != nullptr && *p == i && cp == p && m.contains(sv) && m.contains(cs)) ++found;
  }
  const bool miss = m.contains(std::string_view("a-long-key-that-defeats-small-string-absent"));
  const bool miss2 = cm.lookup("a-long-key-that-defeats-small-string-also-absent") != nullptr;
  const std::uint64_t after = g_operator_new_calls.load();
  EXPECT_EQ(found, 200);
  EXPECT_FALSE(miss);
  EXPECT_FALSE(miss2);
  EXPECT_EQ(after - before, 0u) << "heterogeneous lookups constructed std::string temporaries";

  const std::uint64_t before_erase = g_operator_new_calls.load();
  const std::size_t erased_sv = m.erase(std::string_view(keys[0]));
  const std::size_t erased_cs = m.erase(keys[1].c_str());
  const std::size_t erased_absent = m.erase(std::string_view("nope-nope-nope-nope-nope-nope"));
  const std::uint64_t after_erase = g_operator_new_calls.load();
  EXPECT_EQ(erased_sv, 1u);
  EXPECT_EQ(erased_cs, 1u);
  EXPECT_EQ(erased_absent, 0u);
  EXPECT_EQ(after_erase - before_erase, 0u) << "heterogeneous erase constructed std::string";
  EXPECT_EQ(m.size(), 198u);
  EXPECT_FALSE(m.contains(std::string_view(keys[0])));
  EXPECT_FALSE(m.contains(keys[1].c_str()));
  EXPECT_TRUE(m.contains(std::string_view(keys[2])));
}

TEST(HmapHeterogeneous, StringHashAgreesAcrossRepresentations) {
  const leakless::hash<std::string> h;
  for (const char* s : {"", "a", "hello", "a-long-key-that-defeats-small-string-optimisation"}) {
    const std::string str(s);
    EXPECT_EQ(h(str), h(std::string_view(str))) << s;
  }
}

// ---------------------------------------------------------------------------------------------
// leakless::hash quality smoke test.

// Chi-square statistic of 256 bucket counts against a uniform expectation.
double chi_square_256(const std::vector<std::size_t>& counts, std::size_t n) {
  const double expected = static_cast<double>(n) / 256.0;
  double chi = 0;
  for (std::size_t c : counts) {
    const double d = static_cast<double>(c) - expected;
    chi += d * d / expected;
  }
  return chi;
}

template <class K, class Gen>
void check_hash_spread(const char* what, Gen gen) {
  const leakless::hash<K> h;
  constexpr std::size_t kN = 100001;
  std::unordered_set<std::uint64_t> distinct;
  distinct.reserve(kN);
  std::vector<std::size_t> low(256, 0);
  std::vector<std::size_t> top(256, 0);
  for (std::size_t i = 0; i < kN; ++i) {
    const auto x = static_cast<std::uint64_t>(h(gen(i)));
    distinct.insert(x);
    ++low[x & 0xff];
    ++top[x >> 56];
  }
  EXPECT_EQ(distinct.size(), kN) << what << ": hash collisions among " << kN << " keys";
  // 255 degrees of freedom: mean 255, sd ~22.6. 600 is a very generous bound (an identity hash
  // on 0..1e5 scores ~0 on the low bits but ~25 million on the top bits).
  const double chi_low = chi_square_256(low, kN);
  const double chi_top = chi_square_256(top, kN);
  EXPECT_LT(chi_low, 600.0) << what << ": low 8 bits poorly spread";
  EXPECT_LT(chi_top, 600.0) << what << ": top 8 bits poorly spread";
}

TEST(HmapHash, WellSpreadInLowAndTopBits) {
  check_hash_spread<int>("int 0..1e5", [](std::size_t i) { return static_cast<int>(i); });
  check_hash_spread<std::uint64_t>("uint64 0..1e5",
                                   [](std::size_t i) { return static_cast<std::uint64_t>(i); });
  check_hash_spread<std::uint64_t>("uint64 multiples of 2^32", [](std::size_t i) {
    return static_cast<std::uint64_t>(i) << 32;
  });
  check_hash_spread<std::string>("decimal strings",
                                 [](std::size_t i) { return std::to_string(i); });
}

// A seeded hash that ignores the seed and puts the key in the top byte: every key lands in bucket
// 0 and its tophash is the key, raised to 5 below 5.
struct TopByteHash {
  std::size_t operator()(std::uint64_t key, std::uint64_t /*seed*/) const noexcept {
    return static_cast<std::size_t>(key << 56);
  }
};

TEST(HmapHash, KeysWhoseTopBytesShareATophashStayApart) {
  // Top bytes 0 to 5 all give tophash 5, and 256 + k has key k's hash: one chain holds 512 keys,
  // with up to 12 of them on one tophash, and a probe must tell them apart by key alone.
  leakless::hmap<std::uint64_t, std::uint64_t, TopByteHash> m;
  constexpr std::uint64_t kKeys = 512;
  for (std::uint64_t k = 0; k < kKeys; ++k) ASSERT_TRUE(m.insert_or_assign(k, k * 3));
  for (std::uint64_t k = 0; k < kKeys; ++k) {
    const std::uint64_t* v = m.lookup(k);
    ASSERT_NE(v, nullptr) << k;
    EXPECT_EQ(*v, k * 3) << k;
  }
  for (std::uint64_t k = kKeys; k < kKeys + 256; ++k) EXPECT_EQ(m.lookup(k), nullptr) << k;
  for (std::uint64_t k = 0; k < 6; ++k) ASSERT_EQ(m.erase(k), 1u) << k;
  for (std::uint64_t k = 0; k < 6; ++k) EXPECT_FALSE(m.contains(k)) << k;
  for (std::uint64_t k = 6; k < kKeys; ++k) EXPECT_EQ(m.get(k), k * 3) << k;
  EXPECT_EQ(m.size(), kKeys - 6);
}

// ---------------------------------------------------------------------------------------------
// References stay valid until the next write.

// Builds a map of n -> to_string(n) that is in mid-growth from >= 256 buckets.
int fill_until_growing(leakless::hmap<int, std::string>& m) {
  int n = 0;
  while (!(m.stats().growing && m.stats().old_bucket_count >= 256)) {
    m[n] = std::to_string(n);
    ++n;
  }
  return n;
}

TEST(HmapReferences, StableAcrossReads) {
  leakless::hmap<int, std::string> m;
  // Mid-growth: lookups then read old buckets as well as new ones.
  const int n = fill_until_growing(m);
  std::vector<std::string*> ptrs;
  for (int i = 0; i < n; ++i) ptrs.push_back(m.lookup(i));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < n + 500; ++i) (void)m.contains(i);
    for (int i = 0; i < n + 500; ++i) (void)m.lookup(i);
    for (int i = 0; i < n + 500; ++i) (void)m.get(i);
    std::size_t total = 0;
    for (auto&& kv : std::as_const(m)) total += kv.second.size();
    EXPECT_GT(total, 0u);
  }
  EXPECT_TRUE(m.stats().growing);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(ptrs[static_cast<std::size_t>(i)], m.lookup(i)) << "key " << i;
    ASSERT_EQ(*ptrs[static_cast<std::size_t>(i)], std::to_string(i));
  }
  *ptrs[7] = "seven";
  EXPECT_EQ(m.get(7), "seven");
}

TEST(HmapReferences, StableAcrossAccessToExistingKeys) {
  // The contract lists insert, erase, clear and shrink as the operations that end a reference's
  // life. operator[], insert_or_assign and try_emplace on a key that is already present insert
  // nothing, so `auto& a = m[x]; m[y] += a;` (x, y present) must not leave `a` dangling — also
  // in mid-growth.
  struct Case {
    const char* what;
    void (*write)(leakless::hmap<int, std::string>&);
  };
  const Case cases[] = {
      {"operator[] on an existing key", [](leakless::hmap<int, std::string>& m) { m[5] += "!"; }},
      {"insert_or_assign on an existing key",
       [](leakless::hmap<int, std::string>& m) { m.insert_or_assign(5, "five"); }},
      {"try_emplace on an existing key",
       [](leakless::hmap<int, std::string>& m) { m.try_emplace(5, "ignored"); }},
  };
  for (const Case& c : cases) {
    leakless::hmap<int, std::string> m;
    const int n = fill_until_growing(m);
    std::vector<std::string*> ptrs;
    for (int i = 0; i < n; ++i) ptrs.push_back(m.lookup(i));
    c.write(m);
    EXPECT_EQ(m.size(), static_cast<std::size_t>(n));
    int moved = 0;
    for (int i = 0; i < n; ++i) moved += ptrs[static_cast<std::size_t>(i)] != m.lookup(i) ? 1 : 0;
    EXPECT_EQ(moved, 0) << c.what << " (no insert) moved " << moved << " of " << n
                        << " entries: references obtained before it now dangle; "
                        << describe_stats(m.stats());
  }
}

// ---------------------------------------------------------------------------------------------
// Value categories a C++ container must support.

TEST(HmapTypes, MoveOnlyValuesThroughGrowthAndShrink) {
  leakless::hmap<int, std::unique_ptr<int>> m;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(m.insert_or_assign(i, std::make_unique<int>(i)));
  }
  auto [p, inserted] = m.try_emplace(20000, new int(20000));
  EXPECT_TRUE(inserted);
  ASSERT_NE(p->get(), nullptr);
  for (int i = 0; i < 20000; i += 100) {
    ASSERT_NE(m.lookup(i), nullptr);
    ASSERT_EQ(**m.lookup(i), i);
  }
  for (int i = 0; i < 20000; ++i) {
    if (i % 100 != 0) {
      ASSERT_EQ(m.erase(i), 1u);
    }
  }
  for (int j = 0; j < 300; ++j) {  // writes let the shrink proceed
    m.insert_or_assign(100000 + j, nullptr);
    m.erase(100000 + j);
  }
  m.shrink_to_fit();
  for (auto&& [k, v] : m) ASSERT_EQ(*v, k);
  EXPECT_EQ(m.size(), 201u);
  auto moved = std::move(m);
  EXPECT_EQ(moved.size(), 201u);
  ASSERT_NE(moved.lookup(0), nullptr);
  EXPECT_EQ(**moved.lookup(0), 0);
}

struct NoDefault {
  explicit NoDefault(int x) : v(x) {}
  int v;
};

TEST(HmapTypes, ValuesWithoutDefaultConstructor) {
  // get() and operator[] need V{}; everything else must not.
  leakless::hmap<int, NoDefault> m;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(m.insert_or_assign(i, NoDefault(i)));
  auto [p, inserted] = m.try_emplace(5000, 5000);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(p->v, 5000);
  EXPECT_FALSE(m.try_emplace(1, 77).second);
  EXPECT_EQ(m.lookup(1)->v, 1);
  EXPECT_EQ(m.erase(2), 1u);
  int visits = 0;
  for (auto&& [k, v] : m) {
    EXPECT_EQ(k, v.v);
    ++visits;
  }
  EXPECT_EQ(visits, 1000);
  auto copy = m;
  EXPECT_EQ(copy.size(), m.size());
}

struct alignas(64) Aligned64 {
  std::uint64_t v = 0;
};
struct alignas(32) AlignedKey {
  std::uint64_t v = 0;
  friend bool operator==(const AlignedKey&, const AlignedKey&) = default;
};
struct AlignedKeyHash {
  std::size_t operator()(const AlignedKey& k) const noexcept {
    return static_cast<std::size_t>(mix64(k.v));
  }
};

TEST(HmapTypes, OverAlignedKeysAndValues) {
  leakless::hmap<AlignedKey, Aligned64, AlignedKeyHash> m;
  for (std::uint64_t i = 0; i < 5000; ++i) m.insert_or_assign(AlignedKey{i}, Aligned64{i * 2});
  for (std::uint64_t i = 0; i < 5000; i += 3) m.erase(AlignedKey{i});
  std::size_t misaligned = 0;
  std::size_t visits = 0;
  for (auto&& [k, v] : m) {
    ++visits;
    if (reinterpret_cast<std::uintptr_t>(&k) % alignof(AlignedKey) != 0) ++misaligned;
    if (reinterpret_cast<std::uintptr_t>(&v) % alignof(Aligned64) != 0) ++misaligned;
    EXPECT_EQ(v.v, k.v * 2);
  }
  EXPECT_EQ(misaligned, 0u);
  EXPECT_EQ(visits, m.size());
  for (std::uint64_t i = 0; i < 5000; ++i) {
    const Aligned64* p = m.lookup(AlignedKey{i});
    ASSERT_EQ(p != nullptr, i % 3 != 0);
    if (p != nullptr) {
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
    }
  }
}

}  // namespace
