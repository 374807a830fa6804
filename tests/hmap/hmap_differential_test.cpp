// Randomised differential test of leakless::hmap against std::unordered_map: 10.25 million mixed
// operations in total across the test cases below (kCases, static_assert >= 10M;
// LEAKLESS_DIFF_OPS_SCALE scales them, default 1.0). Each case uses std::mt19937_64 with a fixed,
// printed seed (decisions taken while iterating depend on keys, not on the map's random iteration
// order, so a seed replays the same operations; in the fault-injection cases the fault positions
// also depend on the per-map hash seed, so those replay only approximately) and drives the map
// through phases — grow (insert-heavy), churn at high load (where overflow buckets pile up and
// same-size growth can happen), shrink (erase-heavy down to ~1-10% of the peak), churn at low
// occupancy (the shrink proceeds), and sometimes clear() — while mixing every operation:
// insert_or_assign, operator[] (write and read), try_emplace, lookup hit/miss (const and mutable,
// writing through the pointer), get, contains, erase hit/miss, and rarely clear, reserve,
// shrink_to_fit, iterate-with-erase, iterate-with-insert, copy (construct/assign) and move. Every
// operation's result is compared with the reference at once; full equivalence (size, every key via
// lookup, iteration visiting exactly the reference set) is checked every 50k operations and at the
// end. Key/value types: uint64_t->uint64_t, std::string->std::string, int->Big (200 bytes, stored
// indirectly). The fault-injection cases use a key whose hash / equality / copy constructor, a
// value whose constructors, and an allocator that throw on a global countdown: after every caught
// exception the map must still equal the reference (strong guarantee), and nothing may leak; the
// same with key/value types whose moves may throw too (the map must copy and roll back), and with
// values large enough to be stored indirectly (allocated through the throwing allocator).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hmap_test_util.hpp"

namespace {

using hmap_test::AllocCounters;
using hmap_test::Big;
using hmap_test::CountingAllocator;
using hmap_test::describe_stats;
using hmap_test::Equivalent;
using hmap_test::EquivalentT;
using hmap_test::FaultInjector;
using hmap_test::InjectedFault;
using hmap_test::LiveCounts;
using hmap_test::TKey;
using hmap_test::TKeyEq;
using hmap_test::TKeyHash;
using hmap_test::TKeyThrowingMove;
using hmap_test::TVal;
using hmap_test::TValIndirect;
using hmap_test::TValThrowingMove;

// ---------------------------------------------------------------------------------------------
// Operation budget.

enum class Kind { kU64, kString, kBig, kThrowing, kThrowingMoves, kThrowingIndirect };

struct CaseSpec {
  const char* name;
  Kind kind;
  std::uint64_t seed;
  std::uint64_t ops;
  std::size_t max_size;  // peak entries of the grow phases
  unsigned fault_sites;  // only for kThrowing: which operations may throw
  long countdown_max;    // only for kThrowing: a fault fires within 1..countdown_max calls
};

constexpr CaseSpec kCases[] = {
    {"U64Small", Kind::kU64, 0x1001, 1'250'000, 20'000, 0, 0},
    {"U64Medium", Kind::kU64, 0x1002, 1'250'000, 50'000, 0, 0},
    {"U64Large", Kind::kU64, 0x1003, 1'000'000, 100'000, 0, 0},
    {"U64Huge", Kind::kU64, 0x1004, 750'000, 150'000, 0, 0},
    {"StringSmall", Kind::kString, 0x2001, 1'250'000, 10'000, 0, 0},
    {"StringMedium", Kind::kString, 0x2002, 750'000, 25'000, 0, 0},
    {"StringLarge", Kind::kString, 0x2003, 500'000, 40'000, 0, 0},
    {"BigSmall", Kind::kBig, 0x3001, 1'000'000, 5'000, 0, 0},
    {"BigLarge", Kind::kBig, 0x3002, 750'000, 25'000, 0, 0},
    {"ThrowingEverything", Kind::kThrowing, 0x4001, 250'000, 3'000, hmap_test::kFaultAll, 400},
    {"ThrowingEverythingSmall", Kind::kThrowing, 0x4007, 250'000, 800, hmap_test::kFaultAll, 400},
    {"ThrowingAllocator", Kind::kThrowing, 0x4002, 250'000, 3'000, hmap_test::kFaultAlloc, 4},
    {"ThrowingHashAndEq", Kind::kThrowing, 0x4003, 250'000, 3'000,
     hmap_test::kFaultHash | hmap_test::kFaultEq, 400},
    {"ThrowingCopy", Kind::kThrowing, 0x4004, 250'000, 3'000,
     hmap_test::kFaultKeyCopy | hmap_test::kFaultValCtor, 100},
    {"ThrowingMoves", Kind::kThrowingMoves, 0x4005, 250'000, 3'000, hmap_test::kFaultAll, 400},
    {"ThrowingIndirectValues", Kind::kThrowingIndirect, 0x4006, 250'000, 3'000,
     hmap_test::kFaultAll, 400},
};

constexpr std::uint64_t total_ops() {
  std::uint64_t t = 0;
  for (const CaseSpec& c : kCases) t += c.ops;
  return t;
}
static_assert(total_ops() >= 10'000'000, "the differential test must run >= 10M operations");

const CaseSpec& spec(const char* name) {
  for (const CaseSpec& c : kCases) {
    if (std::string(c.name) == name) return c;
  }
  std::abort();
}

double ops_scale() {
  const char* env = std::getenv("LEAKLESS_DIFF_OPS_SCALE");
  if (env == nullptr || *env == '\0') return 1.0;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  return (end != env && v > 0) ? v : 1.0;
}

std::uint64_t scaled(std::uint64_t ops) {
  const double s = static_cast<double>(ops) * ops_scale();
  return std::max<std::uint64_t>(1000, static_cast<std::uint64_t>(s));
}

constexpr std::uint64_t kFullCheckEvery = 50'000;

// ---------------------------------------------------------------------------------------------
// Keys present in the reference, with O(1) random choice.
template <class T>
class Pool {
 public:
  void add(const T& k) {
    if (index_.emplace(k, items_.size()).second) items_.push_back(k);
  }
  void remove(const T& k) {
    auto it = index_.find(k);
    if (it == index_.end()) return;
    const std::size_t i = it->second;
    index_.erase(it);
    if (i + 1 != items_.size()) {
      items_[i] = std::move(items_.back());
      index_[items_[i]] = i;
    }
    items_.pop_back();
  }
  void clear() {
    items_.clear();
    index_.clear();
  }
  bool empty() const { return items_.empty(); }
  const T& pick(std::mt19937_64& rng) const { return items_[rng() % items_.size()]; }

 private:
  std::vector<T> items_;
  std::unordered_map<T, std::size_t> index_;
};

// Phases of the workload, shared by both harnesses.
enum class Phase { kGrow, kChurnHigh, kShrink, kChurnLow };

struct PhasePlan {
  Phase phase = Phase::kGrow;
  std::size_t hi = 0;
  std::size_t lo = 0;
  std::uint64_t churn_left = 0;
  std::uint64_t id_space = 1;

  void start_cycle(std::mt19937_64& rng, std::size_t max_size) {
    phase = Phase::kGrow;
    hi = max_size / 4 + static_cast<std::size_t>(rng() % (max_size - max_size / 4 + 1));
    const std::size_t lo_div = rng() % 2 == 0 ? 100 : 10;
    lo = hi / lo_div;
    id_space = 4 * static_cast<std::uint64_t>(hi) + 16;
  }
  // Advances the phase; returns true when a whole cycle ended (then the caller may clear()).
  bool advance(std::size_t size, std::mt19937_64& rng) {
    switch (phase) {
      case Phase::kGrow:
        if (size >= hi) {
          phase = Phase::kChurnHigh;
          churn_left = hi;
        }
        return false;
      case Phase::kChurnHigh:
        if (--churn_left == 0) phase = Phase::kShrink;
        return false;
      case Phase::kShrink:
        if (size <= lo) {
          phase = Phase::kChurnLow;
          churn_left =
              std::max<std::uint64_t>(20'000, 4 * static_cast<std::uint64_t>(lo)) + rng() % 10'000;
        }
        return false;
      case Phase::kChurnLow:
        return --churn_left == 0;
    }
    return false;
  }
  // Per-mille probability that the next "structural" write inserts (vs erases).
  unsigned insert_permille(std::size_t size) const {
    switch (phase) {
      case Phase::kGrow:
        return 800;
      case Phase::kShrink:
        return 150;
      case Phase::kChurnHigh:
        return size < hi ? 550 : 450;
      case Phase::kChurnLow:
        return size < lo ? 550 : 450;
    }
    return 500;
  }
};

struct RunStats {
  std::uint64_t growths = 0;
  std::uint64_t same_size_growths = 0;
  std::uint64_t shrinks = 0;
  std::uint64_t clears = 0;
  std::uint64_t full_checks = 0;
  std::uint64_t iterations = 0;
  std::uint64_t copies = 0;
  std::uint64_t exceptions = 0;
  std::uint64_t cycles = 0;
  std::size_t peak_size = 0;
  bool was_growing = false;
  bool was_shrinking = false;

  void observe(const leakless::hmap_stats& s) {
    if (s.growing && !was_growing) {
      if (s.bucket_count == s.old_bucket_count) {
        ++same_size_growths;
      } else {
        ++growths;
      }
    }
    if (s.shrinking && !was_shrinking) ++shrinks;
    was_growing = s.growing;
    was_shrinking = s.shrinking;
    peak_size = std::max(peak_size, s.count);
  }
  void print(const CaseSpec& c, std::uint64_t ops) const {
    std::printf(
        "[%s] seed=0x%llx ops=%llu growths=%llu same_size_growths=%llu shrinks=%llu clears=%llu "
        "full_checks=%llu iterations=%llu copies=%llu exceptions=%llu cycles=%llu peak_size=%zu\n",
        c.name, static_cast<unsigned long long>(c.seed), static_cast<unsigned long long>(ops),
        static_cast<unsigned long long>(growths),
        static_cast<unsigned long long>(same_size_growths),
        static_cast<unsigned long long>(shrinks), static_cast<unsigned long long>(clears),
        static_cast<unsigned long long>(full_checks), static_cast<unsigned long long>(iterations),
        static_cast<unsigned long long>(copies), static_cast<unsigned long long>(exceptions),
        static_cast<unsigned long long>(cycles), peak_size);
  }
};

// ---------------------------------------------------------------------------------------------
// Harness for ordinary key/value types.

struct U64Traits {
  using K = std::uint64_t;
  using V = std::uint64_t;
  static K key(std::uint64_t id) { return hmap_test::mix64(id) | 1; }  // scattered, never 0
  static V value(std::uint64_t x) { return x; }
};

struct StringTraits {
  using K = std::string;
  using V = std::string;
  static K key(std::uint64_t id) {
    // Mix of short (SSO) and long (heap) keys.
    if (id % 3 == 0) return "a-long-string-key-living-on-the-heap/" + std::to_string(id);
    return "k" + std::to_string(id);
  }
  static V value(std::uint64_t x) {
    if (x % 4 == 0) return "value-" + std::to_string(x) + "-padded-out-to-live-on-the-heap";
    return std::to_string(x % 100000);
  }
};

struct BigTraits {
  using K = int;
  using V = Big;
  static K key(std::uint64_t id) { return static_cast<int>(id) ^ 0x5a5a5a; }
  static V value(std::uint64_t x) { return Big(x); }
};

template <class Traits>
class Differential {
  using K = typename Traits::K;
  using V = typename Traits::V;
  using Map = leakless::hmap<K, V>;
  using Ref = std::unordered_map<K, V>;

 public:
  explicit Differential(const CaseSpec& c) : spec_(c), rng_(c.seed) {}

  void run(std::uint64_t total) {
    std::printf("[%s] seed=0x%llx, %llu operations\n", spec_.name,
                static_cast<unsigned long long>(spec_.seed),
                static_cast<unsigned long long>(total));
    plan_.start_cycle(rng_, spec_.max_size);
    for (op_ = 0; op_ < total; ++op_) {
      if (!step()) return;
      stats_.observe(m_.stats());
      if (plan_.advance(ref_.size(), rng_)) {
        ++stats_.cycles;
        if (stats_.cycles % 2 == 0) {  // every other cycle ends with clear()
          m_.clear();
          ref_.clear();
          pool_.clear();
          ++stats_.clears;
        }
        plan_.start_cycle(rng_, spec_.max_size);
      }
      if ((op_ + 1) % kFullCheckEvery == 0) {
        ++stats_.full_checks;
        ASSERT_TRUE(Equivalent(m_, ref_))
            << "seed 0x" << std::hex << spec_.seed << std::dec << " after op " << op_ << " "
            << describe_stats(m_.stats());
      }
    }
    ++stats_.full_checks;
    ASSERT_TRUE(Equivalent(m_, ref_)) << "final check, seed 0x" << std::hex << spec_.seed;
    stats_.print(spec_, total);
    EXPECT_GT(stats_.growths, 0u);
    if (stats_.cycles > 0) {
      EXPECT_GT(stats_.shrinks, 0u) << "the erase-heavy phases never shrank the map";
    }
    if (stats_.cycles >= 2) {
      EXPECT_GT(stats_.clears, 0u);
    }
  }

 private:
#define DIFF_REQUIRE(cond)                                                                       \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      ADD_FAILURE() << spec_.name << " seed 0x" << std::hex << spec_.seed << std::dec << " op #" \
                    << op_ << " (" << what << "): " #cond "; map " << describe_stats(m_.stats()) \
                    << " reference size " << ref_.size();                                        \
      return false;                                                                              \
    }                                                                                            \
  } while (0)

  K fresh_key() { return Traits::key(rng_() % plan_.id_space); }
  K missing_key() {
    for (;;) {
      K k = Traits::key(plan_.id_space + rng_() % (1u << 30));
      if (ref_.count(k) == 0) return k;
    }
  }
  K present_key() { return pool_.empty() ? missing_key() : pool_.pick(rng_); }
  K any_key() { return (!pool_.empty() && rng_() % 2 == 0) ? pool_.pick(rng_) : fresh_key(); }

  bool step() {
    const unsigned r = static_cast<unsigned>(rng_() % 100000);
    // Rare operations first (per 100k); clear() is rarer still (it resets a grow phase).
    if (r < 1 && rng_() % 5 == 0) return op_clear();
    if (r < 3) return op_reserve();
    if (r < 5) return op_shrink_to_fit();
    if (r < 7) return op_iterate_erase();
    if (r < 9) return op_iterate_insert();
    if (r < 11) return op_copy();
    if (r < 31) return op_move();
    // Structural writes driven by the phase (~45%).
    const unsigned s = r % 1000;
    if (s < 450) {
      if (rng_() % 1000 < plan_.insert_permille(ref_.size()) || pool_.empty()) {
        switch (rng_() % 4) {
          case 0:
            return op_insert_or_assign(fresh_key());
          case 1:
            return op_subscript_write(fresh_key());
          case 2:
            return op_try_emplace(fresh_key());
          default:
            return op_subscript_read(fresh_key());
        }
      }
      return op_erase(present_key());
    }
    if (s < 520) return op_insert_or_assign(any_key());
    if (s < 560) return op_try_emplace(any_key());
    if (s < 600) return op_erase(missing_key());
    if (s < 750) return op_lookup(present_key());
    if (s < 830) return op_lookup(missing_key());
    if (s < 900) return op_get(any_key());
    return op_contains(rng_() % 2 == 0 ? any_key() : missing_key());
  }

  bool op_insert_or_assign(const K& k) {
    const char* what = "insert_or_assign";
    const V v = Traits::value(rng_());
    const bool inserted = m_.insert_or_assign(k, v);
    const bool ref_inserted = ref_.insert_or_assign(k, v).second;
    DIFF_REQUIRE(inserted == ref_inserted);
    pool_.add(k);
    return true;
  }
  bool op_subscript_write(const K& k) {
    const char* what = "operator[] write";
    const V v = Traits::value(rng_());
    const std::size_t before = m_.size();
    const bool had = ref_.count(k) != 0;
    m_[k] = v;
    ref_[k] = v;
    DIFF_REQUIRE(m_.size() == before + (had ? 0 : 1));
    pool_.add(k);
    return true;
  }
  bool op_subscript_read(const K& k) {
    const char* what = "operator[] read";
    const V got = m_[k];
    const V& expected = ref_[k];
    DIFF_REQUIRE(got == expected);
    DIFF_REQUIRE(m_.size() == ref_.size());
    pool_.add(k);
    return true;
  }
  bool op_try_emplace(const K& k) {
    const char* what = "try_emplace";
    const V v = Traits::value(rng_());
    auto [p, inserted] = m_.try_emplace(k, v);
    auto [it, ref_inserted] = ref_.try_emplace(k, v);
    DIFF_REQUIRE(inserted == ref_inserted);
    DIFF_REQUIRE(p != nullptr && *p == it->second);
    pool_.add(k);
    return true;
  }
  bool op_erase(const K& k) {
    const char* what = "erase";
    const std::size_t n = m_.erase(k);
    const std::size_t ref_n = ref_.erase(k);
    DIFF_REQUIRE(n == ref_n);
    pool_.remove(k);
    return true;
  }
  bool op_lookup(const K& k) {
    const char* what = "lookup";
    auto it = ref_.find(k);
    if (rng_() % 2 == 0) {
      const V* p = std::as_const(m_).lookup(k);
      DIFF_REQUIRE((p != nullptr) == (it != ref_.end()));
      if (p != nullptr) DIFF_REQUIRE(*p == it->second);
    } else {
      V* p = m_.lookup(k);
      DIFF_REQUIRE((p != nullptr) == (it != ref_.end()));
      if (p != nullptr) {
        DIFF_REQUIRE(*p == it->second);
        if (rng_() % 4 == 0) {  // write through the comma-ok pointer
          V v = Traits::value(rng_());
          *p = v;
          it->second = std::move(v);
        }
      }
    }
    return true;
  }
  bool op_get(const K& k) {
    const char* what = "get";
    auto it = ref_.find(k);
    const V got = m_.get(k);
    DIFF_REQUIRE(got == (it != ref_.end() ? it->second : V{}));
    return true;
  }
  bool op_contains(const K& k) {
    const char* what = "contains";
    DIFF_REQUIRE(m_.contains(k) == (ref_.count(k) != 0));
    return true;
  }
  bool op_clear() {
    const char* what = "clear";
    m_.clear();
    ref_.clear();
    pool_.clear();
    ++stats_.clears;
    DIFF_REQUIRE(m_.empty());
    return true;
  }
  bool op_reserve() {
    const char* what = "reserve";
    // Small reservations only: reserve() also sets a floor for automatic shrinking.
    const std::size_t n = ref_.size() / 4 + static_cast<std::size_t>(rng_() % 64);
    m_.reserve(n);
    const auto s = m_.stats();
    DIFF_REQUIRE(!s.growing && !s.shrinking);
    DIFF_REQUIRE(!hmap_test::over_load(std::max(n, m_.size()), s.bucket_count));
    DIFF_REQUIRE(m_.size() == ref_.size());
    return true;
  }
  bool op_shrink_to_fit() {
    const char* what = "shrink_to_fit";
    m_.shrink_to_fit();
    const auto s = m_.stats();
    DIFF_REQUIRE(!s.growing && !s.shrinking);
    DIFF_REQUIRE(s.bucket_count == hmap_test::expected_buckets_for(m_.size()));
    DIFF_REQUIRE(m_.size() == ref_.size());
    return true;
  }
  // The iteration order is random (per map and per iteration), so the decisions made while
  // iterating must not depend on it, or a seed would not reproduce a run: whether the current key
  // is erased depends on the key only, the other keys to erase and the keys to insert are drawn
  // before the loop, and the id pool is updated afterwards in sorted order.
  bool op_iterate_erase() {
    const char* what = "iterate-with-erase";
    ++stats_.iterations;
    const std::uint64_t salt = rng_();
    std::vector<K> others;  // erased at visits 0, 1, 2, ... (whatever is visited then)
    for (std::size_t i = 0; i < ref_.size() / 16 && !pool_.empty(); ++i) {
      others.push_back(pool_.pick(rng_));
    }
    std::unordered_set<K> visited;
    std::unordered_set<K> erased;
    const std::size_t start_size = ref_.size();
    std::size_t visit = 0;
    for (auto it = m_.begin(); it != m_.end(); ++it, ++visit) {
      const K k = it->first;
      auto rit = ref_.find(k);
      DIFF_REQUIRE(rit != ref_.end());  // never an erased or unknown key
      DIFF_REQUIRE(it->second == rit->second);
      DIFF_REQUIRE(visited.insert(k).second);
      if (hmap_test::mix64(std::hash<K>{}(k) ^ salt) % 4 == 0) {  // erase the current key
        DIFF_REQUIRE(m_.erase(k) == 1);
        ref_.erase(rit);
        erased.insert(k);
      }
      if (visit < others.size()) {  // erase some other key (maybe visited, maybe not yet)
        const K& other = others[visit];
        DIFF_REQUIRE(m_.erase(other) == ref_.erase(other));
        erased.insert(other);
      }
    }
    // Every key not erased was visited; visits + erased-before-visit == start.
    std::size_t accounted = visited.size();
    for (const K& k : erased) {
      if (!visited.count(k)) ++accounted;
    }
    DIFF_REQUIRE(accounted == start_size);
    std::vector<K> sorted(erased.begin(), erased.end());
    std::sort(sorted.begin(), sorted.end());
    for (const K& k : sorted) pool_.remove(k);
    return true;
  }
  bool op_iterate_insert() {
    const char* what = "iterate-with-insert";
    ++stats_.iterations;
    std::unordered_set<K> at_start;
    for (const auto& kv : ref_) at_start.insert(kv.first);
    // Fewer new keys than there are entries, so that all of them get inserted.
    std::vector<std::pair<K, V>> fresh;
    const std::size_t n_new = std::min<std::size_t>(ref_.size() / 2, 4096);
    for (std::size_t i = 0; i < n_new; ++i) {
      K nk = missing_key();
      if (std::any_of(fresh.begin(), fresh.end(), [&](const auto& e) { return e.first == nk; })) {
        continue;
      }
      fresh.emplace_back(std::move(nk), Traits::value(rng_()));
    }
    std::unordered_set<K> visited;
    std::unordered_set<K> inserted;
    std::size_t visit = 0;
    for (auto it = m_.begin(); it != m_.end(); ++it, ++visit) {
      const K k = it->first;
      DIFF_REQUIRE(visited.insert(k).second);
      DIFF_REQUIRE(at_start.count(k) || inserted.count(k));
      DIFF_REQUIRE(it->second == ref_.at(k));
      if (visit < fresh.size()) {
        const auto& [nk, v] = fresh[visit];
        DIFF_REQUIRE(m_.insert_or_assign(nk, v));
        ref_.emplace(nk, v);
        inserted.insert(nk);
      }
    }
    DIFF_REQUIRE(inserted.size() == fresh.size());
    for (const K& k : at_start) DIFF_REQUIRE(visited.count(k));
    for (const auto& e : fresh) pool_.add(e.first);
    return true;
  }
  bool op_copy() {
    const char* what = "copy";
    ++stats_.copies;
    Map c = m_;
    DIFF_REQUIRE(c.size() == ref_.size());
    for (int i = 0; i < 32 && !pool_.empty(); ++i) {
      const K& k = pool_.pick(rng_);
      const V* p = c.lookup(k);
      DIFF_REQUIRE(p != nullptr && *p == ref_.at(k));
    }
    switch (rng_() % 3) {
      case 0:
        m_ = c;  // copy assignment
        break;
      case 1:
        m_ = std::move(c);  // move assignment from the copy
        break;
      default:
        break;  // the copy is dropped
    }
    DIFF_REQUIRE(m_.size() == ref_.size());
    return true;
  }
  bool op_move() {
    const char* what = "move";
    Map tmp(std::move(m_));
    DIFF_REQUIRE(m_.empty());  // NOLINT(bugprone-use-after-move)
    DIFF_REQUIRE(tmp.size() == ref_.size());
    m_ = std::move(tmp);
    DIFF_REQUIRE(m_.size() == ref_.size());
    return true;
  }
#undef DIFF_REQUIRE

  const CaseSpec& spec_;
  std::mt19937_64 rng_;
  Map m_;
  Ref ref_;
  Pool<K> pool_;
  PhasePlan plan_;
  RunStats stats_;
  std::uint64_t op_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Harness for the fault-injection types.

template <class Key, class Val>
class ThrowingDifferential {
  using Map =
      leakless::hmap<Key, Val, TKeyHash, TKeyEq, CountingAllocator<std::pair<const Key, Val>>>;
  using Ref = std::unordered_map<std::uint64_t, std::uint64_t>;

 public:
  explicit ThrowingDifferential(const CaseSpec& c) : spec_(c), rng_(c.seed) {}

  void run(std::uint64_t total) {
    std::printf("[%s] seed=0x%llx, %llu operations, fault sites 0x%x\n", spec_.name,
                static_cast<unsigned long long>(spec_.seed), static_cast<unsigned long long>(total),
                spec_.fault_sites);
    const std::int64_t keys_before = LiveCounts::keys;
    const std::int64_t vals_before = LiveCounts::values;
    const std::int64_t allocs_before = AllocCounters::live_allocations;
    {
      Map m;
      plan_.start_cycle(rng_, spec_.max_size);
      for (op_ = 0; op_ < total; ++op_) {
        if (FaultInjector::countdown == 0 && rng_() % 64 == 0) {
          FaultInjector::arm(
              1 + static_cast<long>(rng_() % static_cast<std::uint64_t>(spec_.countdown_max)),
              spec_.fault_sites);
        }
        try {
          if (!step(m)) break;
        } catch (const InjectedFault& e) {
          ++stats_.exceptions;
          FaultInjector::disarm();
          ASSERT_TRUE(EquivalentT(m, ref_))
              << spec_.name << " seed 0x" << std::hex << spec_.seed << std::dec << " op #" << op_
              << " (" << what_ << "): map differs from the reference after a fault at site 0x"
              << std::hex << e.site << std::dec << " " << describe_stats(m.stats());
          resync_pool();
        }
        {
          hmap_test::Disarmed guard;
          stats_.observe(m.stats());
          if (plan_.advance(ref_.size(), rng_)) {
            ++stats_.cycles;
            plan_.start_cycle(rng_, spec_.max_size);
          }
          if ((op_ + 1) % kFullCheckEvery == 0) {
            ++stats_.full_checks;
            ASSERT_TRUE(EquivalentT(m, ref_)) << spec_.name << " after op " << op_;
          }
        }
        if (::testing::Test::HasFailure()) break;
      }
      FaultInjector::disarm();
      ++stats_.full_checks;
      ASSERT_TRUE(EquivalentT(m, ref_)) << spec_.name << " final check";
      stats_.print(spec_, total);
      EXPECT_GT(stats_.exceptions, 20u) << "too few injected faults to mean anything";
    }
    EXPECT_EQ(LiveCounts::keys, keys_before) << "keys leaked or double-destroyed";
    EXPECT_EQ(LiveCounts::values, vals_before) << "values leaked or double-destroyed";
    EXPECT_EQ(AllocCounters::live_allocations, allocs_before) << "allocations leaked";
  }

 private:
#define T_REQUIRE(cond)                                                                          \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      hmap_test::Disarmed guard_;                                                                \
      ADD_FAILURE() << spec_.name << " seed 0x" << std::hex << spec_.seed << std::dec << " op #" \
                    << op_ << " (" << what_ << "): " #cond "; map " << describe_stats(m.stats()) \
                    << " reference size " << ref_.size();                                        \
      return false;                                                                              \
    }                                                                                            \
  } while (0)

  std::uint64_t fresh_id() { return rng_() % plan_.id_space; }
  std::uint64_t missing_id() {
    for (;;) {
      const std::uint64_t id = plan_.id_space + rng_() % (1u << 30);
      if (ref_.count(id) == 0) return id;
    }
  }
  std::uint64_t pick_present() { return pool_.empty() ? fresh_id() : pool_.pick(rng_); }

  // The reference is updated only after the map operation returned (strong guarantee).
  bool step(Map& m) {
    const unsigned r = static_cast<unsigned>(rng_() % 100000);
    if (r < 2) {
      what_ = "clear";
      m.clear();
      ref_.clear();
      pool_.clear();
      ++stats_.clears;
      return true;
    }
    if (r < 40) {
      what_ = "copy";
      ++stats_.copies;
      Map c(m);  // may throw: m must be untouched, nothing leaks
      {
        hmap_test::Disarmed guard;
        T_REQUIRE(c.size() == ref_.size());
      }
      if (rng_() % 2 == 0) m = std::move(c);
      return true;
    }
    if (r < 80) {
      what_ = "shrink_to_fit";
      m.shrink_to_fit();
      return true;
    }
    if (r < 120) {
      what_ = "reserve";
      m.reserve(ref_.size() / 4 + static_cast<std::size_t>(rng_() % 64));  // also a shrink floor
      return true;
    }
    if (r < 180) return iterate_erase(m);
    if (r < 580) {
      what_ = "move";
      Map tmp(std::move(m));
      m = std::move(tmp);
      return true;
    }
    const unsigned s = r % 100;
    if (s < 45) {
      if (rng_() % 1000 < plan_.insert_permille(ref_.size()) || pool_.empty()) {
        const std::uint64_t id = fresh_id();
        const std::uint64_t v = rng_();
        switch (rng_() % 4) {
          case 0: {
            what_ = "insert_or_assign";
            const bool inserted = m.insert_or_assign(Key(id), Val(v));
            T_REQUIRE(inserted == (ref_.count(id) == 0));
            ref_[id] = v;
            break;
          }
          case 1: {
            what_ = "operator[](const K&)";  // copies the key, default-constructs the value
            const Key k(id);
            Val& slot = m[k];
            hmap_test::Disarmed guard;  // the test's own assignment below must not throw
            const bool existed = ref_.count(id) != 0;
            T_REQUIRE(slot.v == (existed ? ref_[id] : 0));
            slot = Val(v);
            ref_[id] = v;
            break;
          }
          case 2: {
            what_ = "try_emplace(K, const V&)";  // copies the value
            const Val val(v);
            auto [p, inserted] = m.try_emplace(Key(id), val);
            T_REQUIRE(inserted == (ref_.count(id) == 0));
            if (inserted) ref_[id] = v;
            T_REQUIRE(p->v == ref_[id]);
            break;
          }
          default: {
            what_ = "operator[](K&&)";
            Val& slot = m[Key(id)];
            slot.v = v;
            ref_[id] = v;
            break;
          }
        }
        pool_.add(id);
        return true;
      }
      what_ = "erase";
      const std::uint64_t id = pool_.pick(rng_);
      T_REQUIRE(m.erase(Key(id)) == 1);
      ref_.erase(id);
      pool_.remove(id);
      return true;
    }
    if (s < 55) {
      what_ = "erase miss";
      T_REQUIRE(m.erase(Key(missing_id())) == 0);
      return true;
    }
    if (s < 75) {
      what_ = "lookup";
      const std::uint64_t id = rng_() % 2 == 0 ? pick_present() : missing_id();
      const Val* p = std::as_const(m).lookup(Key(id));
      auto it = ref_.find(id);
      T_REQUIRE((p != nullptr) == (it != ref_.end()));
      if (p != nullptr) T_REQUIRE(p->v == it->second);
      return true;
    }
    if (s < 85) {
      what_ = "get";  // copies or default-constructs a value
      const std::uint64_t id = rng_() % 2 == 0 ? pick_present() : missing_id();
      const Val got = m.get(Key(id));
      auto it = ref_.find(id);
      T_REQUIRE(got.v == (it != ref_.end() ? it->second : 0));
      return true;
    }
    what_ = "contains";
    const std::uint64_t id = rng_() % 2 == 0 ? pick_present() : missing_id();
    T_REQUIRE(m.contains(Key(id)) == (ref_.count(id) != 0));
    return true;
  }

  bool iterate_erase(Map& m) {
    what_ = "iterate-with-erase";
    ++stats_.iterations;
    const std::uint64_t salt = rng_();
    std::unordered_set<std::uint64_t> visited;
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::uint64_t k = it->first.v;
      {
        hmap_test::Disarmed guard;
        T_REQUIRE(ref_.count(k) == 1);
        T_REQUIRE(visited.insert(k).second);
      }
      if (hmap_test::mix64(k ^ salt) % 3 == 0) {  // by key, not by (random) visiting order
        T_REQUIRE(m.erase(Key(k)) == 1);          // may throw: the iterator unwinds
        ref_.erase(k);
      }
    }
    resync_pool();
    return true;
  }

  void resync_pool() {  // canonical (sorted) order, whatever order the map produced
    std::vector<std::uint64_t> ids;
    ids.reserve(ref_.size());
    for (const auto& kv : ref_) ids.push_back(kv.first);
    std::sort(ids.begin(), ids.end());
    Pool<std::uint64_t> rebuilt;
    for (std::uint64_t id : ids) rebuilt.add(id);
    pool_ = std::move(rebuilt);
  }
#undef T_REQUIRE

  const CaseSpec& spec_;
  std::mt19937_64 rng_;
  Ref ref_;
  Pool<std::uint64_t> pool_;
  PhasePlan plan_;
  RunStats stats_;
  std::uint64_t op_ = 0;
  const char* what_ = "";
};

void run_case(const char* name) {
  const CaseSpec& c = spec(name);
  const std::uint64_t ops = scaled(c.ops);
  switch (c.kind) {
    case Kind::kU64: {
      Differential<U64Traits> d(c);
      d.run(ops);
      break;
    }
    case Kind::kString: {
      Differential<StringTraits> d(c);
      d.run(ops);
      break;
    }
    case Kind::kBig: {
      const std::int64_t live = Big::live;
      {
        Differential<BigTraits> d(c);
        d.run(ops);
      }
      EXPECT_EQ(Big::live, live) << "Big values leaked or double-destroyed";
      break;
    }
    case Kind::kThrowing: {
      ThrowingDifferential<TKey, TVal> d(c);
      d.run(ops);
      break;
    }
    case Kind::kThrowingMoves: {
      ThrowingDifferential<TKeyThrowingMove, TValThrowingMove> d(c);
      d.run(ops);
      break;
    }
    case Kind::kThrowingIndirect: {
      ThrowingDifferential<TKey, TValIndirect> d(c);
      d.run(ops);
      break;
    }
  }
}

TEST(HmapDifferential, U64Small) { run_case("U64Small"); }
TEST(HmapDifferential, U64Medium) { run_case("U64Medium"); }
TEST(HmapDifferential, U64Large) { run_case("U64Large"); }
TEST(HmapDifferential, U64Huge) { run_case("U64Huge"); }
TEST(HmapDifferential, StringSmall) { run_case("StringSmall"); }
TEST(HmapDifferential, StringMedium) { run_case("StringMedium"); }
TEST(HmapDifferential, StringLarge) { run_case("StringLarge"); }
TEST(HmapDifferential, BigSmall) { run_case("BigSmall"); }
TEST(HmapDifferential, BigLarge) { run_case("BigLarge"); }
TEST(HmapDifferential, ThrowingEverything) { run_case("ThrowingEverything"); }
TEST(HmapDifferential, ThrowingEverythingSmall) { run_case("ThrowingEverythingSmall"); }
TEST(HmapDifferential, ThrowingAllocator) { run_case("ThrowingAllocator"); }
TEST(HmapDifferential, ThrowingHashAndEq) { run_case("ThrowingHashAndEq"); }
TEST(HmapDifferential, ThrowingCopy) { run_case("ThrowingCopy"); }
TEST(HmapDifferential, ThrowingMoves) { run_case("ThrowingMoves"); }
TEST(HmapDifferential, ThrowingIndirectValues) { run_case("ThrowingIndirectValues"); }

}  // namespace
