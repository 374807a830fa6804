// examples/fragment_service.hpp — the bursty page service the two expiring-cache examples share.
//
// How it works: render_fragment() makes a 1000-byte report fragment; serve_bursts() is the load:
// in each 5 s cycle, 3 s of traffic (5 fragments every 10 ms, keyed by the second and a user
// number, so old keys are never asked for again) and 2 s of quiet. The examples differ only in
// the cache their cache_fragment(minute, user) writes to.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "example_common.hpp"

namespace examples {

inline std::string render_fragment(long user) {
  return std::string(1000, static_cast<char>('a' + user % 26));
}

// Runs the bursts for `seconds` (until killed without a limit), calling
// cache_fragment(second, user) for every fragment and report(elapsed seconds) every second.
inline void serve_bursts(std::optional<double> seconds,
                         const std::function<void(long, long)>& cache_fragment,
                         const std::function<void(double)>& report) {
  long written = 0;
  run_for(
      seconds, std::chrono::milliseconds(10), 100,
      [&](long tick) {
        if (tick % 500 >= 300) return;  // the quiet part of each 5 s cycle
        for (int i = 0; i < 5; ++i) cache_fragment(tick / 100, written++ % 100000);
      },
      report);
}

}  // namespace examples
