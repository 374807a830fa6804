// Exhaustive exception-safety sweeps for leakless::hmap (complementing the random fault injection
// in hmap_differential_test.cpp). For each map state — quiet, exactly at the growth threshold (the
// next insert starts a growth), in mid-growth, in mid-shrink — and each operation — insert of a new
// key, assignment to an existing key, operator[] (copying the key, default-constructing the value),
// try_emplace (copying the value), erase hit and miss, lookup/get/contains, copy construction,
// reserve, shrink_to_fit — the sweep rebuilds the map, arms the fault injector to throw on the Nth
// instrumented call (hash, key equality, key copy, value construction, allocation) for
// N = 1, 2, 3, ..., 128 and then in growing strides, until the operation completes without
// reaching the fault, and after every exception checks that the map still equals the reference
// (strong guarantee: same size, every entry, iteration) and that nothing leaked. Run for key/value
// types with noexcept moves, with throwing moves (relocation must copy and roll back), and with
// indirectly stored values.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include <gtest/gtest.h>

#include "hmap_test_util.hpp"

namespace {

using hmap_test::AllocCounters;
using hmap_test::CountingAllocator;
using hmap_test::describe_stats;
using hmap_test::EquivalentT;
using hmap_test::FaultInjector;
using hmap_test::InjectedFault;
using hmap_test::LiveCounts;
using hmap_test::TKeyEq;
using hmap_test::TKeyHash;

using Ref = std::unordered_map<std::uint64_t, std::uint64_t>;

constexpr std::uint64_t kNew = 1'000'000;  // a key none of the built maps holds

enum class State { kQuiet, kAtThreshold, kGrowing, kShrinking };

const char* state_name(State s) {
  switch (s) {
    case State::kQuiet:
      return "quiet";
    case State::kAtThreshold:
      return "at-growth-threshold";
    case State::kGrowing:
      return "growing";
    case State::kShrinking:
      return "shrinking";
  }
  return "?";
}

template <class Key, class Val>
struct Sweeper {
  using Map =
      leakless::hmap<Key, Val, TKeyHash, TKeyEq, CountingAllocator<std::pair<const Key, Val>>>;
  using Op = std::function<void(Map&, Ref&)>;

  // Builds `m` (faults disarmed) in the requested state; keys are 0..n-1 minus erased ones.
  static void build(State state, Map& m, Ref& ref) {
    hmap_test::Disarmed guard;
    auto put = [&](std::uint64_t k) {
      m.insert_or_assign(Key(k), Val(k * 3 + 1));
      ref[k] = k * 3 + 1;
    };
    std::uint64_t k = 0;
    switch (state) {
      case State::kQuiet:
        for (; k < 200; ++k) put(k);
        while (hmap_test::migrating(m.stats())) {  // finish the last growth
          put(k);
          ++k;
        }
        break;
      case State::kAtThreshold:
        // 208 = 6.5 * 32: one more entry starts a growth to 64 buckets.
        for (; k < 208; ++k) put(k);
        break;
      case State::kGrowing:
        while (!(m.stats().growing && m.stats().old_bucket_count >= 32)) {
          put(k);
          ++k;
        }
        break;
      case State::kShrinking:
        for (; k < 600; ++k) put(k);
        for (std::uint64_t e = 0; !m.stats().shrinking; ++e) {
          ASSERT_LT(e, 600u) << "never started shrinking";
          m.erase(Key(e));
          ref.erase(e);
        }
        break;
    }
  }

  static void sweep(State state, const char* what, const Op& op) {
    SCOPED_TRACE(std::string(state_name(state)) + " / " + what);
    const std::int64_t keys_before = LiveCounts::keys;
    const std::int64_t vals_before = LiveCounts::values;
    const std::int64_t allocs_before = AllocCounters::live_allocations;
    {
      Map probe;
      Ref probe_ref;
      build(state, probe, probe_ref);
      if (state == State::kAtThreshold) {
        ASSERT_EQ(probe.stats().bucket_count, 32u) << describe_stats(probe.stats());
        ASSERT_FALSE(probe.stats().growing);
      }
      if (state == State::kGrowing) {
        ASSERT_TRUE(probe.stats().growing);
      }
      if (state == State::kShrinking) {
        ASSERT_TRUE(probe.stats().shrinking);
      }
    }
    // Every call for the first 128, then a stride that grows with n (~3% of the calls of long,
    // uniform operations such as copy or reserve), until the operation completes.
    long n = 1;
    for (;; n += n <= 128 ? 1 : 1 + n / 32) {
      ASSERT_LT(n, 50000) << "operation never completed";
      bool threw = false;
      {
        Map m;
        Ref ref;
        build(state, m, ref);
        if (::testing::Test::HasFatalFailure()) return;
        FaultInjector::arm(n, hmap_test::kFaultAll);
        try {
          op(m, ref);
        } catch (const InjectedFault& e) {
          threw = true;
          FaultInjector::disarm();
          ASSERT_TRUE(EquivalentT(m, ref))
              << "fault #" << n << " at site 0x" << std::hex << e.site << std::dec
              << " broke the map: " << describe_stats(m.stats());
        }
        FaultInjector::disarm();
        if (!threw) {
          ASSERT_TRUE(EquivalentT(m, ref)) << "after the successful operation";
        }
      }
      ASSERT_EQ(LiveCounts::keys, keys_before) << "keys leaked after fault #" << n;
      ASSERT_EQ(LiveCounts::values, vals_before) << "values leaked after fault #" << n;
      ASSERT_EQ(AllocCounters::live_allocations, allocs_before)
          << "allocations leaked after fault #" << n;
      if (!threw) break;
    }
    EXPECT_GT(n, 1) << "the operation never reached an instrumented call";
  }

  static void all_operations(State state) {
    sweep(state, "insert_or_assign new key", [](Map& m, Ref& ref) {
      EXPECT_TRUE(m.insert_or_assign(Key(kNew), Val(7)));
      ref[kNew] = 7;
    });
    sweep(state, "several inserts", [](Map& m, Ref& ref) {
      for (std::uint64_t i = 0; i < 40; ++i) {
        m.insert_or_assign(Key(kNew + i), Val(i));
        ref[kNew + i] = i;
      }
    });
    sweep(state, "insert_or_assign existing key", [](Map& m, Ref& ref) {
      const std::uint64_t k = ref.begin()->first;
      EXPECT_FALSE(m.insert_or_assign(Key(k), Val(9)));
      ref[k] = 9;
    });
    sweep(state, "operator[](const K&) new key", [](Map& m, Ref& ref) {
      const Key k(kNew);
      m[k].v = 5;
      ref[kNew] = 5;
    });
    sweep(state, "try_emplace(K, const V&) new key", [](Map& m, Ref& ref) {
      const Val v(11);
      auto [p, inserted] = m.try_emplace(Key(kNew), v);
      EXPECT_TRUE(inserted);
      EXPECT_EQ(p->v, 11u);
      ref[kNew] = 11;
    });
    sweep(state, "erase existing key", [](Map& m, Ref& ref) {
      const std::uint64_t k = ref.begin()->first;
      EXPECT_EQ(m.erase(Key(k)), 1u);
      ref.erase(k);
    });
    sweep(state, "several erases", [](Map& m, Ref& ref) {
      for (int i = 0; i < 40 && !ref.empty(); ++i) {
        const std::uint64_t k = ref.begin()->first;
        m.erase(Key(k));
        ref.erase(k);
      }
    });
    sweep(state, "erase missing key", [](Map& m, Ref&) { EXPECT_EQ(m.erase(Key(kNew)), 0u); });
    sweep(state, "lookup / get / contains", [](Map& m, Ref& ref) {
      const std::uint64_t k = ref.begin()->first;
      const auto& cm = m;
      EXPECT_NE(cm.lookup(Key(k)), nullptr);
      EXPECT_EQ(cm.get(Key(k)).v, ref[k]);
      EXPECT_EQ(cm.get(Key(kNew)).v, 0u);
      EXPECT_FALSE(cm.contains(Key(kNew)));
    });
    sweep(state, "copy construction", [](Map& m, Ref& ref) {
      Map copy(m);
      hmap_test::Disarmed guard;
      EXPECT_TRUE(EquivalentT(copy, ref));
    });
    sweep(state, "copy assignment", [](Map& m, Ref& ref) {
      Map other;
      {
        hmap_test::Disarmed guard;
        other.insert_or_assign(Key(kNew), Val(1));
      }
      m = other;
      ref.clear();
      ref[kNew] = 1;
    });
    sweep(state, "reserve", [](Map& m, Ref&) { m.reserve(4 * m.size() + 100); });
    sweep(state, "shrink_to_fit", [](Map& m, Ref&) { m.shrink_to_fit(); });
  }
};

using Plain = Sweeper<hmap_test::TKey, hmap_test::TVal>;
using ThrowingMoves = Sweeper<hmap_test::TKeyThrowingMove, hmap_test::TValThrowingMove>;
using Indirect = Sweeper<hmap_test::TKey, hmap_test::TValIndirect>;

TEST(HmapExceptionSafety, QuietMap) { Plain::all_operations(State::kQuiet); }
TEST(HmapExceptionSafety, AtGrowthThreshold) { Plain::all_operations(State::kAtThreshold); }
TEST(HmapExceptionSafety, Growing) { Plain::all_operations(State::kGrowing); }
TEST(HmapExceptionSafety, Shrinking) { Plain::all_operations(State::kShrinking); }

TEST(HmapExceptionSafetyThrowingMoves, QuietMap) { ThrowingMoves::all_operations(State::kQuiet); }
TEST(HmapExceptionSafetyThrowingMoves, AtGrowthThreshold) {
  ThrowingMoves::all_operations(State::kAtThreshold);
}
TEST(HmapExceptionSafetyThrowingMoves, Growing) { ThrowingMoves::all_operations(State::kGrowing); }
TEST(HmapExceptionSafetyThrowingMoves, Shrinking) {
  ThrowingMoves::all_operations(State::kShrinking);
}

TEST(HmapExceptionSafetyIndirect, AtGrowthThreshold) {
  Indirect::all_operations(State::kAtThreshold);
}
TEST(HmapExceptionSafetyIndirect, Growing) { Indirect::all_operations(State::kGrowing); }
TEST(HmapExceptionSafetyIndirect, Shrinking) { Indirect::all_operations(State::kShrinking); }

}  // namespace
