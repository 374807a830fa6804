// examples/example_common.hpp — what the leak examples share: their command line and pacing.
//
// How it works: every example accepts `--seconds N` (run for N seconds, then exit normally so the
// profiler writes its last profile) and otherwise runs until a signal ends it. run_for() calls a
// step function at a fixed tick rate until the time is up, sleeping between ticks so that the
// example behaves like a service under steady load instead of spinning a core. push_from_threads()
// is the concurrent part of the two lost-push examples.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace examples {

// The value of `--seconds N`; nullopt (run until killed) when absent. Exits with status 2 on
// anything else on the command line.
inline std::optional<double> seconds_option(int argc, char** argv) {
  std::optional<double> seconds;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const double v = std::strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(v > 0)) {
        std::fprintf(stderr, "%s: --seconds needs a positive number\n", argv[0]);
        std::exit(2);
      }
      seconds = v;
    } else {
      std::fprintf(stderr, "usage: %s [--seconds N]\n", argv[0]);
      std::exit(2);
    }
  }
  return seconds;
}

// Calls step(tick) every `tick_period` until `seconds` have passed (forever without a limit).
// Calls report(elapsed seconds) every `report_every` ticks.
inline void run_for(std::optional<double> seconds, std::chrono::milliseconds tick_period,
                    long report_every, const std::function<void(long)>& step,
                    const std::function<void(double)>& report) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto next = start;
  for (long tick = 0;; ++tick) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if (seconds && elapsed >= *seconds) break;
    step(tick);
    if (tick > 0 && tick % report_every == 0) report(elapsed);
    next += tick_period;
    std::this_thread::sleep_until(next);
  }
}

// The lost-push examples' load: 4 threads push 20,000 values each per round.
inline constexpr int kPushThreads = 4;
inline constexpr long kPushesPerThread = 20000;

// Starts kPushThreads threads that each call push(value) kPushesPerThread times (values
// t * kPushesPerThread + i, all distinct) and waits for them.
inline void push_from_threads(void (*push)(long)) {
  std::vector<std::thread> running;
  for (int t = 0; t < kPushThreads; ++t) {
    running.emplace_back([=] {
      for (long i = 0; i < kPushesPerThread; ++i) push(t * kPushesPerThread + i);
    });
  }
  for (std::thread& t : running) t.join();
}

}  // namespace examples
