// bench/bloom_bench.cpp — throughput and measured false-positive rate of leakless::bloom_filter
// at 10 bits per key.
//
// How it works: keys are the outputs of splitmix64 with a fixed seed; the first N are inserted,
// the next N (a bijection of the counter, so disjoint from the first) are the absent keys. The
// filter is sized for N keys at the fpr whose Parquet size is 10 bits per key,
// fpr = (1 - e^(-8/10))^8 ≈ 0.85%. Three workloads are timed, each repeated --reps times on the
// same key arrays (insert into a cleared filter; look up every present key; look up every absent
// key) and the median repetition is reported as operations per second. The absent lookups also
// give the measured false-positive rate, printed next to the exact design rate of the chosen size
// (bloom_filter::expected_false_positive_rate) and the requested one. A present key that is not
// found prints an "error" line. Output: TSV lines "bloom<TAB>N<TAB>metric<TAB>value" on stdout.
// Usage: bloom_bench [--n=10000000] [--reps=5]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "leakless/bloom.hpp"

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <class F>
double median_seconds(int reps, F&& run) {
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void print(std::size_t n, const char* metric, double value) {
  std::printf("bloom\t%zu\t%s\t%.6g\n", n, metric, value);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 10'000'000;
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--n=", 4) == 0) {
      n = std::strtoull(argv[i] + 4, nullptr, 10);
    } else if (std::strncmp(argv[i], "--reps=", 7) == 0) {
      reps = std::atoi(argv[i] + 7);
    } else {
      std::fprintf(stderr, "usage: bloom_bench [--n=N] [--reps=R]\n");
      return 2;
    }
  }
  if (n == 0 || reps <= 0) {
    std::fprintf(stderr, "bloom_bench: --n and --reps must be positive\n");
    return 2;
  }

  std::vector<std::uint64_t> present(n), absent(n);
  for (std::size_t i = 0; i < n; ++i) {
    present[i] = splitmix64(i);
    absent[i] = splitmix64(n + i);
  }
  const double fpr = std::pow(1.0 - std::exp(-0.8), 8.0);
  leakless::bloom_filter filter(n, fpr);

  const double insert_s = median_seconds(reps, [&] {
    filter.clear();
    for (const std::uint64_t k : present) filter.insert(k);
  });
  std::size_t found = 0;
  const double hit_s = median_seconds(reps, [&] {
    found = 0;
    for (const std::uint64_t k : present) found += filter.may_contain(k);
  });
  std::size_t positives = 0;
  const double miss_s = median_seconds(reps, [&] {
    positives = 0;
    for (const std::uint64_t k : absent) positives += filter.may_contain(k);
  });
  if (found != n) std::printf("error\tfalse negatives: %zu of %zu\n", n - found, n);

  const double dn = static_cast<double>(n);
  print(n, "bits_per_key", static_cast<double>(filter.memory_bytes()) * 8.0 / dn);
  print(n, "memory_bytes", static_cast<double>(filter.memory_bytes()));
  print(n, "inserts_per_s", dn / insert_s);
  print(n, "hit_lookups_per_s", dn / hit_s);
  print(n, "miss_lookups_per_s", dn / miss_s);
  print(n, "fpr_requested", fpr);
  print(n, "fpr_design_exact", filter.expected_false_positive_rate(n));
  print(n, "fpr_measured", static_cast<double>(positives) / dn);
  return 0;
}
