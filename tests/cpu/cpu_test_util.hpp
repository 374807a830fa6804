// tests/cpu/cpu_test_util.hpp — what the CPU profiler tests share: CPU-burning functions whose
// work is split by iteration counts, a thread CPU clock, and sample counts per leaf function read
// back from a decoded profile.
#pragma once

#include <time.h>

#include <cstdint>
#include <map>
#include <string>

#include "pprof/profile.hpp"
#include "support/profile_query.hpp"

namespace cpu_test {

// The same loop body in each, so an iteration costs the same wherever it runs. noinline and a
// volatile sink keep them distinct functions that really run.
inline thread_local volatile std::uint64_t sink = 0;  // per thread: no data race

[[gnu::noinline]] inline void burn_seventy(std::uint64_t iterations) {
  std::uint64_t x = sink;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  sink = x;
}

[[gnu::noinline]] inline void burn_thirty(std::uint64_t iterations) {
  std::uint64_t x = sink;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  sink = x;
}

inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Runs rounds of 7 units in burn_seventy and 3 in burn_thirty until this thread has used
// `seconds` of CPU (the split is by iteration counts; the time only bounds the length). A unit's
// size varies from round to round: CPU timers fire on scheduler ticks, and a workload with a fixed
// period could otherwise alias with them and be sampled at the same phase again and again.
inline void burn_split(double seconds) {
  const double end = thread_cpu_seconds() + seconds;
  std::uint64_t random = 0x9E3779B97F4A7C15ull;
  while (thread_cpu_seconds() < end) {
    random = random * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t unit = 50'000 + (random >> 33) % 100'000;
    burn_seventy(7 * unit);
    burn_thirty(3 * unit);
  }
}

// Samples ("samples" values) per leaf function name (the innermost frame of the leaf location).
inline std::map<std::string, std::int64_t> leaf_samples(const leakless::pprof::profile& p) {
  std::map<std::uint64_t, const leakless::pprof::location*> locations;
  for (const auto& l : p.locations) locations[l.id] = &l;
  std::map<std::uint64_t, std::string> functions;
  for (const auto& f : p.functions) functions[f.id] = f.name;
  std::map<std::string, std::int64_t> out;
  for (const auto& s : p.samples) {
    std::string name = "?";
    if (!s.location_ids.empty()) {
      const auto* l = locations[s.location_ids.front()];
      if (l != nullptr && !l->lines.empty()) name = functions[l->lines.front().function_id];
    }
    out[name] += s.values.at(0);
  }
  return out;
}

using leakless::test::samples_through;

inline std::int64_t total_samples(const leakless::pprof::profile& p) {
  std::int64_t total = 0;
  for (const auto& s : p.samples) total += s.values.at(0);
  return total;
}

}  // namespace cpu_test
