// cache_bench — throughput and hit ratio of leakless::cache on synthetic request streams.
//
// How it works: each thread replays its own seeded stream of keys, get() then put() on a miss
// (the usual cache-aside pattern), for a fixed number of requests; the program prints requests
// per second over all threads and the hit ratio, for each policy and thread count. Streams:
// "zipf" (Zipf(0.99) over 10^6 keys, popular keys scattered over the key space) and "recency"
// (half new keys, half re-reads of one of the last 2,000 new keys). The cache holds 10^4 entries
// unless --entries says otherwise. Usage: cache_bench [--requests N] [--entries N] [--threads a,b]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <leakless/cache.hpp>

namespace {

struct zipf_stream {
  std::vector<double> cdf;
  explicit zipf_stream(int keys, double s) {
    double sum = 0;
    for (int i = 0; i < keys; ++i) {
      sum += 1.0 / std::pow(i + 1, s);
      cdf.push_back(sum);
    }
    for (double& x : cdf) x /= sum;
  }
  std::uint64_t next(std::mt19937_64& rng) const {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const auto rank =
        static_cast<std::uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    return rank * 0x9e3779b97f4a7c15ull;  // scatter popular keys over the key space
  }
};

struct result {
  double requests_per_second;
  double hit_ratio;
};

result run(const std::string& stream, leakless::eviction policy, std::size_t entries, int threads,
           std::size_t requests) {
  leakless::cache_options opts;
  opts.max_entries = entries;
  opts.policy = policy;
  leakless::cache<std::uint64_t, std::uint64_t> c(opts);
  static const zipf_stream zipf(1'000'000, 0.99);
  std::atomic<std::uint64_t> hits{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      std::uint64_t newest = static_cast<std::uint64_t>(t) << 48;
      std::uint64_t local_hits = 0;
      const std::size_t mine = requests / static_cast<std::size_t>(threads);
      for (std::size_t i = 0; i < mine; ++i) {
        std::uint64_t key;
        if (stream == "zipf") {
          key = zipf.next(rng);
        } else if (rng() % 2 == 0) {
          key = ++newest;
        } else {
          key = newest - rng() % 2000;
        }
        if (c.get(key)) {
          ++local_hits;
        } else {
          c.put(key, key);
        }
      }
      hits += local_hits;
    });
  }
  for (auto& th : pool) th.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {static_cast<double>(requests) / seconds,
          static_cast<double>(hits.load()) / static_cast<double>(requests)};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t requests = 4'000'000;
  std::size_t entries = 10'000;
  std::vector<int> threads{1, 2, 4};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--requests") == 0) {
      requests = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--entries") == 0) {
      entries = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--threads") == 0) {
      threads.clear();
      for (const char* p = argv[i + 1]; *p != '\0';) {
        char* end = nullptr;
        threads.push_back(static_cast<int>(std::strtol(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--requests N] [--entries N] [--threads a,b,...]\n", argv[0]);
      return 2;
    }
  }
  std::printf("%-8s %-8s %8s %14s %10s\n", "stream", "policy", "threads", "requests/s",
              "hit ratio");
  for (const char* stream : {"zipf", "recency"}) {
    for (auto policy : {leakless::eviction::tinylfu, leakless::eviction::lru}) {
      for (int t : threads) {
        const result r = run(stream, policy, entries, t, requests);
        std::printf("%-8s %-8s %8d %14.0f %10.4f\n", stream,
                    policy == leakless::eviction::lru ? "lru" : "tinylfu", t, r.requests_per_second,
                    r.hit_ratio);
      }
    }
  }
  return 0;
}
