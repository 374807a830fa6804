// tests/support/manual_clock.hpp — a clock that a test moves by hand, for leakless::cache's
// cache_options::clock.
//
// How it works: the time is an atomic count of nanoseconds (cache threads may read it while the
// test moves it); fn() gives the std::function the options take, reading that count and counting
// the reads, so that a test can check when the cache asks for the time. Header-only (tests/ is on
// the include path).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

namespace leakless::test {

struct manual_clock {
  std::atomic<std::int64_t> ns{1'000'000'000};
  std::atomic<int> reads{0};  // calls of fn()'s function
  std::function<std::chrono::nanoseconds()> fn() {
    return [this] {
      ++reads;
      return std::chrono::nanoseconds(ns.load());
    };
  }
  void advance(std::chrono::nanoseconds d) { ns += d.count(); }
};

}  // namespace leakless::test
