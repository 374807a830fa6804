// tests/cli/synthetic_series.hpp — series of heap profiles from simulated programs, sampled the
// way the profiler samples, for the leak analysis tests.
//
// How it works: a simulated program is a set of call sites, each with an object size and a live
// byte curve: a leak (live bytes grow at a rate, nothing is freed), churn (a steady number of live
// bytes that are replaced between snapshots, e.g. a full cache or request buffers) or a plateau
// (grows, then stops and stays). Each snapshot is a pprof heap profile built as the profiler
// builds it: every object is sampled with probability 1-exp(-size/period) (Poisson sampling at
// the period, 512 KiB by default), and a sampled object counts as 1/(1-exp(-size/period)) objects
// in the four Go sample types. A leak's sampled objects stay sampled (they are never freed), so
// its series is a noisy staircase; churn is sampled afresh at every snapshot, so its series
// jitters by about sqrt(live/period) periods. Stacks have the frames a C++ allocation really has
// (operator new in libstdc++, std::vector internals in /usr/include/c++) under the site's own
// function, and main at the root. Deterministic for a given seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "pprof/profile.hpp"

namespace leakless::test {

struct synthetic_site {
  std::string function;  // the program's own function
  std::string file;
  std::int64_t line = 0;
  double object_size = 256;
  // Live bytes at time t (seconds); `kept` says whether objects live since the previous snapshot
  // are the same ones (leak, plateau) or were replaced (churn).
  std::function<double(double)> live_bytes;
  bool kept = true;
  bool through_vector = true;  // allocated through std::vector's internals
};

inline synthetic_site leak(std::string function, std::int64_t line, double bytes_per_min) {
  return {function,
          "/src/app/" + function + ".cpp",
          line,
          256,
          [bytes_per_min](double t) { return bytes_per_min * t / 60; },
          true,
          true};
}

inline synthetic_site churn(std::string function, std::int64_t line, double live) {
  return {function, "/src/app/" + function + ".cpp", line,
          4096,     [live](double) { return live; }, false,
          false};
}

inline synthetic_site plateau(std::string function, std::int64_t line, double bytes_per_min,
                              double stop_seconds) {
  return {function,
          "/src/app/" + function + ".cpp",
          line,
          256,
          [=](double t) { return bytes_per_min * std::min(t, stop_seconds) / 60; },
          true,
          true};
}

struct synthetic_program {
  std::vector<synthetic_site> sites;
  double period = 524288;
  double every_seconds = 5;
  double duration_seconds = 300;
  std::uint64_t seed = 1;
  std::int64_t start_nanos = 1'700'000'000'000'000'000;
};

// An empty heap profile as the profiler writes one: Go's four sample types, inuse_space the
// default, the sampling period, the time.
inline pprof::profile empty_heap_profile(std::int64_t period, std::int64_t time_nanos) {
  pprof::profile p;
  p.sample_types = {{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}};
  p.default_sample_type = "inuse_space";
  p.period_type = {"space", "bytes"};
  p.period = period;
  p.time_nanos = time_nanos;
  return p;
}

// The profiles a preloaded run of `program` would write, oldest first.
inline std::vector<pprof::profile> synthetic_series(const synthetic_program& program) {
  std::mt19937_64 rng(program.seed);
  const std::size_t n_sites = program.sites.size();
  std::vector<std::int64_t> kept_samples(n_sites, 0);  // sampled live objects of `kept` sites
  std::vector<double> previous_live(n_sites, 0);
  std::vector<pprof::profile> out;
  for (double t = 0; t <= program.duration_seconds + 1e-9; t += program.every_seconds) {
    pprof::profile p = empty_heap_profile(static_cast<std::int64_t>(program.period),
                                          program.start_nanos + static_cast<std::int64_t>(t * 1e9));
    p.mappings = {{1, 0x400000, 0x800000, 0, "/srv/app/bin/app", "", true, true, true, false},
                  {2, 0x7f0000000000, 0x7f0000200000, 0, "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                   "", true, true, true, false}};
    p.functions = {{1, "operator new(unsigned long)", "_Znwm", "", 0},
                   {2, "std::vector<char, std::allocator<char> >::_M_default_append(unsigned long)",
                    "", "/usr/include/c++/12/bits/vector.tcc", 0},
                   {3, "main", "main", "/src/app/main.cpp", 0}};
    p.locations = {{1, 2, 0x7f0000001000, {{1, 0}}, false},
                   {2, 1, 0x401000, {{2, 650}}, false},
                   {3, 1, 0x402000, {{3, 20}}, false}};
    for (std::size_t i = 0; i < n_sites; ++i) {
      const synthetic_site& site = program.sites[i];
      const double q = 1 - std::exp(-site.object_size / program.period);  // P(sampled)
      const double live = site.live_bytes(t);
      std::int64_t sampled = 0;
      if (site.kept) {
        const double added = std::max(0.0, live - previous_live[i]);
        std::binomial_distribution<std::int64_t> draw(
            static_cast<std::int64_t>(std::llround(added / site.object_size)), q);
        kept_samples[i] += draw(rng);
        sampled = kept_samples[i];
      } else {
        std::binomial_distribution<std::int64_t> draw(
            static_cast<std::int64_t>(std::llround(live / site.object_size)), q);
        sampled = draw(rng);
      }
      previous_live[i] = live;
      const std::uint64_t fn = 10 + i;
      const std::uint64_t loc = 10 + i;
      p.functions.push_back({fn, site.function, site.function, site.file, site.line - 2});
      p.locations.push_back({loc, 1, 0x500000 + 0x100 * i, {{fn, site.line}}, false});
      if (sampled == 0) continue;
      const double objects = static_cast<double>(sampled) / q;
      const auto count = static_cast<std::int64_t>(std::llround(objects));
      const auto bytes = static_cast<std::int64_t>(std::llround(objects * site.object_size));
      std::vector<std::uint64_t> stack = {1};
      if (site.through_vector) stack.push_back(2);
      stack.push_back(loc);
      stack.push_back(3);
      p.samples.push_back({stack,
                           {count, bytes, count, bytes},
                           {{"bytes", "", static_cast<std::int64_t>(site.object_size), ""}}});
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace leakless::test
