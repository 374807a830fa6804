// Shared helpers for the leakless::hmap tests: size arithmetic from the contract (8-slot buckets,
// load factor 6.5), stats consistency and full-equivalence checks against a reference
// std::unordered_map (size, every key via lookup, and iteration visiting exactly the reference
// set), value types that count live instances or are large enough to be stored indirectly, and a
// fault injector (hash / key-equal / key copy / value construction / allocation throwing on a
// global countdown) used by the exception-safety tests.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <gtest/gtest.h>

#include <leakless/hmap.hpp>

namespace hmap_test {

// The bucket count Go's makemap picks for n entries: 1 while n <= 8 (one bucket's slots), else
// the smallest power of two B with n <= 6.5 * B.
constexpr std::size_t expected_buckets_for(std::size_t n) {
  std::size_t b = 1;
  while (n > 8 && 2 * n > 13 * b) b *= 2;
  return b;
}
static_assert(expected_buckets_for(0) == 1);
static_assert(expected_buckets_for(8) == 1);
static_assert(expected_buckets_for(9) == 2);
static_assert(expected_buckets_for(13) == 2);
static_assert(expected_buckets_for(14) == 4);
static_assert(expected_buckets_for(100000) == 16384);

// Go's overLoadFactor: count exceeds the maximum load 6.5 * buckets, and one bucket's 8 slots.
constexpr bool over_load(std::size_t count, std::size_t buckets) {
  return count > 8 && 2 * count > 13 * buckets;
}

inline bool migrating(const leakless::hmap_stats& s) { return s.growing || s.shrinking; }

inline std::string describe_stats(const leakless::hmap_stats& s) {
  std::ostringstream os;
  os << "{count=" << s.count << " bucket_count=" << s.bucket_count
     << " old_bucket_count=" << s.old_bucket_count << " overflow_buckets=" << s.overflow_buckets
     << " growing=" << s.growing << " shrinking=" << s.shrinking
     << " memory_bytes=" << s.memory_bytes << "}";
  return os.str();
}

template <class T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};

template <class T>
std::string describe(const T& t) {
  if constexpr (Streamable<T>) {
    std::ostringstream os;
    os << t;
    return os.str();
  } else {
    return "<unprintable>";
  }
}

// Checks the invariants that tie stats() to the rest of the interface.
template <class Map>
::testing::AssertionResult StatsConsistent(const Map& m) {
  const leakless::hmap_stats s = m.stats();
  auto fail = [&](const char* what) {
    return ::testing::AssertionFailure()
           << what << "; size()=" << m.size() << " memory_bytes()=" << m.memory_bytes()
           << " stats=" << describe_stats(s);
  };
  if (s.count != m.size()) return fail("stats().count != size()");
  if (m.empty() != (m.size() == 0)) return fail("empty() disagrees with size()");
  if (!std::has_single_bit(s.bucket_count)) return fail("bucket_count is not a power of two");
  if (s.growing && s.shrinking) return fail("growing and shrinking at once");
  if (migrating(s)) {
    if (!std::has_single_bit(s.old_bucket_count)) {
      return fail("migrating but old_bucket_count is not a power of two");
    }
    if (s.growing && s.bucket_count < s.old_bucket_count) return fail("growing to fewer buckets");
    if (s.shrinking && s.bucket_count >= s.old_bucket_count) {
      return fail("shrinking without fewer buckets");
    }
  } else if (s.old_bucket_count != 0) {
    return fail("old_bucket_count != 0 while not migrating");
  }
  if (s.memory_bytes != m.memory_bytes()) return fail("stats().memory_bytes != memory_bytes()");
  return ::testing::AssertionSuccess();
}

// Full equivalence: same size, every reference key found with the same value through the const
// lookup, and a const iteration that visits exactly the reference set, each key once.
template <class Map, class Ref>
::testing::AssertionResult Equivalent(const Map& m, const Ref& ref) {
  using K = typename Ref::key_type;
  if (m.size() != ref.size()) {
    return ::testing::AssertionFailure() << "size " << m.size() << " != reference " << ref.size();
  }
  for (const auto& [k, v] : ref) {
    const auto* p = m.lookup(k);
    if (p == nullptr) {
      return ::testing::AssertionFailure() << "key " << describe(k) << " missing from lookup";
    }
    if (!(*p == v)) {
      return ::testing::AssertionFailure()
             << "key " << describe(k) << ": value " << describe(*p) << " != " << describe(v);
    }
  }
  std::unordered_set<K, typename Ref::hasher, typename Ref::key_equal> seen;
  seen.reserve(ref.size());
  std::size_t visits = 0;
  for (auto&& [k, v] : m) {
    ++visits;
    auto it = ref.find(k);
    if (it == ref.end()) {
      return ::testing::AssertionFailure() << "iteration visited unknown key " << describe(k);
    }
    if (!(it->second == v)) {
      return ::testing::AssertionFailure() << "iteration: key " << describe(k) << " has value "
                                           << describe(v) << " != " << describe(it->second);
    }
    if (!seen.insert(k).second) {
      return ::testing::AssertionFailure() << "iteration visited key " << describe(k) << " twice";
    }
  }
  if (visits != ref.size()) {
    return ::testing::AssertionFailure()
           << "iteration visited " << visits << " entries, reference has " << ref.size();
  }
  return StatsConsistent(m);
}

// splitmix64 finaliser: a good 64-bit mixer for test hash functors.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A 200-byte value type (stored indirectly: > 128 bytes) that counts live instances.
struct Big {
  static inline std::int64_t live = 0;
  std::array<std::uint64_t, 25> w{};

  Big() noexcept { ++live; }
  explicit Big(std::uint64_t seed) noexcept {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = mix64(seed + i);
    ++live;
  }
  Big(const Big& o) noexcept : w(o.w) { ++live; }
  Big(Big&& o) noexcept : w(o.w) { ++live; }
  Big& operator=(const Big&) noexcept = default;
  Big& operator=(Big&&) noexcept = default;
  ~Big() { --live; }
  friend bool operator==(const Big& a, const Big& b) { return a.w == b.w; }
  friend std::ostream& operator<<(std::ostream& os, const Big& b) {
    return os << "Big{" << b.w[0] << ",...}";
  }
};
static_assert(sizeof(Big) == 200);

// A 160-byte key type (stored indirectly) that counts live instances.
struct Key160 {
  static inline std::int64_t live = 0;
  std::array<std::uint64_t, 20> w{};

  Key160() noexcept { ++live; }
  explicit Key160(std::uint64_t id) noexcept {
    w[0] = id;
    for (std::size_t i = 1; i < w.size(); ++i) w[i] = mix64(id * 31 + i);
    ++live;
  }
  Key160(const Key160& o) noexcept : w(o.w) { ++live; }
  Key160(Key160&& o) noexcept : w(o.w) { ++live; }
  Key160& operator=(const Key160&) noexcept = default;
  Key160& operator=(Key160&&) noexcept = default;
  ~Key160() { --live; }
  friend bool operator==(const Key160& a, const Key160& b) { return a.w == b.w; }
  friend std::ostream& operator<<(std::ostream& os, const Key160& k) {
    return os << "Key160{" << k.w[0] << "}";
  }
};
static_assert(sizeof(Key160) == 160);

struct Key160Hash {
  std::size_t operator()(const Key160& k) const noexcept {
    std::uint64_t h = 0;
    for (std::uint64_t x : k.w) h = mix64(h ^ x);
    return static_cast<std::size_t>(h);
  }
};

// ---------------------------------------------------------------------------------------------
// Fault injection: every instrumented operation calls FaultInjector::tick(site); when the site is
// armed, the countdown is decremented and the Nth call throws InjectedFault (then disarms).

enum FaultSite : unsigned {
  kFaultHash = 1u << 0,
  kFaultEq = 1u << 1,
  kFaultKeyCopy = 1u << 2,
  kFaultValCtor = 1u << 3,
  kFaultAlloc = 1u << 4,
  kFaultAll = 0x1fu,
};

struct InjectedFault : std::runtime_error {
  explicit InjectedFault(unsigned s) : std::runtime_error("injected fault"), site(s) {}
  unsigned site;
};

struct FaultInjector {
  static inline long countdown = 0;  // calls left until the throw; 0 = disarmed
  static inline unsigned sites = 0;
  static inline std::uint64_t fired = 0;

  static void arm(long n, unsigned which) {
    countdown = n;
    sites = which;
  }
  static void disarm() {
    countdown = 0;
    sites = 0;
  }
  static void tick(unsigned site) {
    if ((sites & site) != 0 && countdown > 0 && --countdown == 0) {
      sites = 0;
      ++fired;
      throw InjectedFault(site);
    }
  }
};

// Disarms the injector for the lifetime of the guard (used around verification).
struct Disarmed {
  long saved_countdown = FaultInjector::countdown;
  unsigned saved_sites = FaultInjector::sites;
  Disarmed() { FaultInjector::disarm(); }
  ~Disarmed() { FaultInjector::arm(saved_countdown, saved_sites); }
  Disarmed(const Disarmed&) = delete;
  Disarmed& operator=(const Disarmed&) = delete;
};

// Live-instance counters shared by all fault-injection key / value instantiations.
struct LiveCounts {
  static inline std::int64_t keys = 0;
  static inline std::int64_t values = 0;
};

// Key whose copy constructor / copy assignment may throw. With NoexceptMove the moves never throw
// (the map then relocates by moving); otherwise the moves may throw too (the map must copy and roll
// back, and a move into a slot may fail).
template <bool NoexceptMove>
struct BasicTKey {
  std::uint64_t v = 0;

  explicit BasicTKey(std::uint64_t x) noexcept : v(x) { ++LiveCounts::keys; }
  BasicTKey(const BasicTKey& o) : v(o.v) {
    FaultInjector::tick(kFaultKeyCopy);
    ++LiveCounts::keys;
  }
  BasicTKey(BasicTKey&& o) noexcept(NoexceptMove) : v(o.v) {
    if constexpr (!NoexceptMove) FaultInjector::tick(kFaultKeyCopy);
    ++LiveCounts::keys;
  }
  BasicTKey& operator=(const BasicTKey& o) {
    FaultInjector::tick(kFaultKeyCopy);
    v = o.v;
    return *this;
  }
  BasicTKey& operator=(BasicTKey&& o) noexcept(NoexceptMove) {
    if constexpr (!NoexceptMove) FaultInjector::tick(kFaultKeyCopy);
    v = o.v;
    return *this;
  }
  ~BasicTKey() { --LiveCounts::keys; }
  friend std::ostream& operator<<(std::ostream& os, const BasicTKey& k) {
    return os << "TKey" << k.v;
  }
};
using TKey = BasicTKey<true>;
using TKeyThrowingMove = BasicTKey<false>;

// Hash whose every call may throw.
struct TKeyHash {
  template <bool M>
  std::size_t operator()(const BasicTKey<M>& k) const {
    FaultInjector::tick(kFaultHash);
    return static_cast<std::size_t>(mix64(k.v));
  }
};

// Key equality whose every call may throw.
struct TKeyEq {
  template <bool M>
  bool operator()(const BasicTKey<M>& a, const BasicTKey<M>& b) const {
    FaultInjector::tick(kFaultEq);
    return a.v == b.v;
  }
};

// Value whose default and copy constructors (and copy assignment) may throw; moves as for keys.
// PadBytes makes it large enough to be stored indirectly (> 128 bytes).
template <bool NoexceptMove, std::size_t PadBytes = 0>
struct BasicTVal {
  std::uint64_t v = 0;
  std::array<unsigned char, PadBytes> pad{};

  BasicTVal() : v(0) {
    FaultInjector::tick(kFaultValCtor);
    ++LiveCounts::values;
  }
  explicit BasicTVal(std::uint64_t x) noexcept : v(x) { ++LiveCounts::values; }
  BasicTVal(const BasicTVal& o) : v(o.v), pad(o.pad) {
    FaultInjector::tick(kFaultValCtor);
    ++LiveCounts::values;
  }
  BasicTVal(BasicTVal&& o) noexcept(NoexceptMove) : v(o.v), pad(o.pad) {
    if constexpr (!NoexceptMove) FaultInjector::tick(kFaultValCtor);
    ++LiveCounts::values;
  }
  BasicTVal& operator=(const BasicTVal& o) {
    FaultInjector::tick(kFaultValCtor);
    v = o.v;
    return *this;
  }
  BasicTVal& operator=(BasicTVal&& o) noexcept(NoexceptMove) {
    if constexpr (!NoexceptMove) FaultInjector::tick(kFaultValCtor);
    v = o.v;
    return *this;
  }
  ~BasicTVal() { --LiveCounts::values; }
  friend bool operator==(const BasicTVal& a, const BasicTVal& b) { return a.v == b.v; }
  friend std::ostream& operator<<(std::ostream& os, const BasicTVal& x) {
    return os << "TVal" << x.v;
  }
};
using TVal = BasicTVal<true>;
using TValThrowingMove = BasicTVal<false>;
using TValIndirect = BasicTVal<true, 192>;
static_assert(sizeof(TValIndirect) > 128);

// Stateless allocator that may throw on allocate() and counts live allocations.
struct AllocCounters {
  static inline std::int64_t live_allocations = 0;
  static inline std::int64_t live_bytes = 0;
  static inline std::uint64_t total_allocations = 0;
};

template <class T>
struct CountingAllocator {
  using value_type = T;

  CountingAllocator() noexcept = default;
  template <class U>
  CountingAllocator(const CountingAllocator<U>&) noexcept {}  // NOLINT: rebinding conversion

  T* allocate(std::size_t n) {
    FaultInjector::tick(kFaultAlloc);
    T* p = std::allocator<T>{}.allocate(n);
    ++AllocCounters::live_allocations;
    ++AllocCounters::total_allocations;
    AllocCounters::live_bytes += static_cast<std::int64_t>(n * sizeof(T));
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept {
    --AllocCounters::live_allocations;
    AllocCounters::live_bytes -= static_cast<std::int64_t>(n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  friend bool operator==(const CountingAllocator&, const CountingAllocator&) noexcept {
    return true;
  }
};

// Equivalence of a TKey/TVal map with a reference keyed by the raw integers; runs disarmed.
template <class Map>
::testing::AssertionResult EquivalentT(
    const Map& m, const std::unordered_map<std::uint64_t, std::uint64_t>& ref) {
  Disarmed guard;
  if (m.size() != ref.size()) {
    return ::testing::AssertionFailure() << "size " << m.size() << " != reference " << ref.size();
  }
  for (const auto& [k, v] : ref) {
    const auto* p = m.lookup(typename Map::key_type(k));
    if (p == nullptr) return ::testing::AssertionFailure() << "key " << k << " missing";
    if (p->v != v) {
      return ::testing::AssertionFailure() << "key " << k << ": value " << p->v << " != " << v;
    }
  }
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(ref.size());
  for (auto&& [k, v] : m) {
    auto it = ref.find(k.v);
    if (it == ref.end()) return ::testing::AssertionFailure() << "visited unknown key " << k.v;
    if (it->second != v.v)
      return ::testing::AssertionFailure() << "visited wrong value for " << k.v;
    if (!seen.insert(k.v).second) return ::testing::AssertionFailure() << "visited twice " << k.v;
  }
  if (seen.size() != ref.size()) {
    return ::testing::AssertionFailure()
           << "iteration visited " << seen.size() << " of " << ref.size();
  }
  return StatsConsistent(m);
}

}  // namespace hmap_test
