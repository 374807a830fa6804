// cache_bench — hit ratio, throughput and memory per entry of leakless::cache.
//
// Subcommands (bench/run_cache_bench.sh drives them and puts Caffeine beside them):
//
//   trace PATTERN OUT     writes a request stream to OUT once, as raw little-endian uint64 keys,
//                         so that this program and the Java harness (bench/caffeine/HitRatio.java)
//                         replay exactly the same keys. PATTERN is one of
//                           zipf:KEYS:REQUESTS        Zipf(0.99) over KEYS keys
//                           loop:N:REQUESTS           keys 0..N-1 over and over
//                           scan:KEYS:REQUESTS:EVERY:LEN
//                                                     Zipf(0.99) over KEYS keys, and after every
//                                                     EVERY of those requests a scan of LEN keys
//                                                     never seen before
//                         The seed is fixed (--seed N changes it). Popular Zipf keys are scattered
//                         over the key space by a multiplication, so that no hash sees ranks.
//   hitratio TRACE WARMUP SIZE...
//                         replays TRACE against leakless::cache (get, put on a miss) with
//                         W-TinyLFU as configured by default, with W-TinyLFU on one shard and a
//                         fixed 1% window (Caffeine 2.6.2's policy), and with LRU, and computes the
//                         optimum (Belady: on a miss, the entry whose next use is farthest away —
//                         possibly the new one — goes), one line per size:
//                         "SIZE tinylfu tinylfu-1shard-fixed lru optimum", hit ratios over the
//                         requests after the first WARMUP.
//   throughput [--threads a,b] [--ops N]
//                         operations/s (N per thread, default 2*10^7) of "read-zipf" (100%-hit
//                         gets, Zipf(0.99) over 2^15 keys, all held by a cache bounded at 1.25 *
//                         2^15, as Caffeine's own GetPutBenchmark reads), "read-uniform" (100%-hit
//                         gets, uniform over 100,000 keys in a cache of 2^17: a working set far
//                         larger than the CPU's caches) and "mix-75/25" (75% get, 25% put,
//                         Zipf(0.99) over 10^6 keys in a cache of 10^5), for leakless::cache
//                         (tinylfu and lru) and for a std::list + std::unordered_map LRU behind one
//                         std::mutex; each thread replays its own precomputed operations, best of
//                         three runs.
//   memory N CACHE        the cache's own bytes per entry: mallinfo2's allocated bytes before and
//                         after putting N uint64 -> uint64 entries into a cache bounded at N,
//                         divided by N, minus the 16 bytes of each key and value. CACHE: tinylfu,
//                         lru, tinylfu+expiry, lru+expiry (expire_after_write set, so every entry
//                         has a deadline) or mutex-lru. Prints "CACHE BYTES".
//   streams [--requests N] [--entries N] [--threads a,b]
//                         (also what runs with no subcommand) the original mixed benchmark: each
//                         thread replays its own seeded stream, get then put on a miss, and the
//                         program prints requests/s and hit ratio for "zipf" (Zipf(0.99) over 10^6
//                         keys) and "recency" (half new keys, half re-reads of one of the last
//                         2,000 new keys).
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <leakless/cache.hpp>

namespace {

constexpr std::uint64_t kScatter = 0x9e3779b97f4a7c15ull;

struct zipf_stream {
  std::vector<double> cdf;
  explicit zipf_stream(std::size_t keys, double s) {
    double sum = 0;
    for (std::size_t i = 0; i < keys; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf.push_back(sum);
    }
    for (double& x : cdf) x /= sum;
  }
  std::uint64_t rank(std::mt19937_64& rng) const {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    return static_cast<std::uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  }
  std::uint64_t next(std::mt19937_64& rng) const {
    return rank(rng) * kScatter;  // scatter popular keys over the key space
  }
};

std::vector<std::size_t> parse_list(const char* text) {
  std::vector<std::size_t> out;
  for (const char* p = text; *p != '\0';) {
    char* end = nullptr;
    out.push_back(std::strtoull(p, &end, 10));
    if (end == p) break;
    p = (*end == ',' || *end == ':') ? end + 1 : end;
  }
  return out;
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s trace PATTERN OUT [--seed N] | hitratio TRACE WARMUP SIZE... |\n"
               "       throughput [--threads a,b] [--ops N] | memory N CACHE |\n"
               "       streams [--requests N] [--entries N] [--threads a,b]\n",
               argv0);
  std::exit(2);
}

// --- trace ---

int write_trace(const std::string& pattern, const char* out, std::uint64_t seed) {
  const auto colon = pattern.find(':');
  const std::string kind = pattern.substr(0, colon);
  const std::vector<std::size_t> args =
      colon == std::string::npos ? std::vector<std::size_t>{} : parse_list(&pattern[colon + 1]);
  std::vector<std::uint64_t> keys;
  std::mt19937_64 rng(seed);
  if (kind == "zipf" && args.size() == 2) {
    const zipf_stream zipf(args[0], 0.99);
    keys.reserve(args[1]);
    for (std::size_t i = 0; i < args[1]; ++i) keys.push_back(zipf.next(rng));
  } else if (kind == "loop" && args.size() == 2 && args[0] > 0) {
    keys.reserve(args[1]);
    for (std::size_t i = 0; i < args[1]; ++i) keys.push_back(i % args[0]);
  } else if (kind == "scan" && args.size() == 4 && args[2] > 0) {
    const zipf_stream zipf(args[0], 0.99);
    // Scan keys are ranks past the Zipf ones, scattered the same way: multiplying by an odd
    // number is a bijection, so they never collide with a Zipf key or with each other.
    std::uint64_t fresh = args[0];
    keys.reserve(args[1]);
    for (std::size_t since = 0; keys.size() < args[1];) {
      keys.push_back(zipf.next(rng));
      if (++since == args[2]) {
        since = 0;
        for (std::size_t j = 0; j < args[3] && keys.size() < args[1]; ++j)
          keys.push_back(fresh++ * kScatter);
      }
    }
  } else {
    std::fprintf(stderr, "cache_bench: bad pattern %s\n", pattern.c_str());
    return 2;
  }
  std::ofstream f(out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(keys.data()),
          static_cast<std::streamsize>(keys.size() * sizeof(std::uint64_t)));
  if (!f) {
    std::fprintf(stderr, "cache_bench: cannot write %s\n", out);
    return 1;
  }
  return 0;
}

std::vector<std::uint64_t> read_trace(const char* path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    std::fprintf(stderr, "cache_bench: cannot read %s\n", path);
    std::exit(1);
  }
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(f.tellg()) / sizeof(std::uint64_t));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(keys.data()),
         static_cast<std::streamsize>(keys.size() * sizeof(std::uint64_t)));
  return keys;
}

// --- hitratio ---

// shards 0: the cache's own choice. A fixed window of 1% on one shard is the policy of Caffeine
// 2.6.2 (its "eden" did not adapt yet).
double replay(const std::vector<std::uint64_t>& keys, std::size_t warmup, std::size_t size,
              leakless::eviction policy, std::size_t shards = 0, bool adaptive = true) {
  leakless::cache_options opts;
  opts.max_entries = size;
  opts.policy = policy;
  opts.shards = shards;
  opts.adaptive_window = adaptive;
  leakless::cache<std::uint64_t, std::uint64_t> c(opts);
  std::size_t hits = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (c.get(keys[i])) {
      hits += i >= warmup;
    } else {
      c.put(keys[i], keys[i]);
    }
  }
  return static_cast<double>(hits) / static_cast<double>(keys.size() - warmup);
}

// next[i]: the index of the next request for keys[i] (keys.size() + i when there is none, so
// that every "never again" is distinct and they still sort after every real reuse).
std::vector<std::size_t> next_uses(const std::vector<std::uint64_t>& keys) {
  std::vector<std::size_t> next(keys.size());
  std::unordered_map<std::uint64_t, std::size_t> seen;
  seen.reserve(keys.size() / 4);
  for (std::size_t i = keys.size(); i-- > 0;) {
    auto [it, inserted] = seen.try_emplace(keys[i], i);
    next[i] = inserted ? keys.size() + i : it->second;
    it->second = i;
  }
  return next;
}

// Belady's optimum: on a miss, the key whose next use is farthest away — possibly the new one —
// is left out.
double optimum(const std::vector<std::uint64_t>& keys, const std::vector<std::size_t>& next,
               std::size_t warmup, std::size_t size) {
  // The cached keys by their next use: a max-heap with lazy deletion (an entry is current when
  // its next use is the one recorded for its key).
  std::priority_queue<std::pair<std::size_t, std::uint64_t>> heap;
  std::unordered_map<std::uint64_t, std::size_t> cached;  // key -> next use
  cached.reserve(size * 2);
  std::size_t hits = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto it = cached.find(keys[i]);
    if (it != cached.end()) hits += i >= warmup;
    cached[keys[i]] = next[i];
    heap.emplace(next[i], keys[i]);
    while (cached.size() > size) {
      const auto [use, key] = heap.top();
      heap.pop();
      auto victim = cached.find(key);
      if (victim != cached.end() && victim->second == use) cached.erase(victim);
    }
    if (heap.size() > 4 * size + 1024) {  // drop the stale entries now and then
      std::priority_queue<std::pair<std::size_t, std::uint64_t>> fresh;
      for (const auto& [key, use] : cached) fresh.emplace(use, key);
      heap.swap(fresh);
    }
  }
  return static_cast<double>(hits) / static_cast<double>(keys.size() - warmup);
}

int hit_ratio(const char* path, std::size_t warmup, const std::vector<std::size_t>& sizes) {
  const std::vector<std::uint64_t> keys = read_trace(path);
  if (warmup >= keys.size()) {
    std::fprintf(stderr, "cache_bench: warm-up longer than the trace\n");
    return 2;
  }
  const std::vector<std::size_t> next = next_uses(keys);
  for (std::size_t size : sizes) {
    std::printf(
        "%zu %.6f %.6f %.6f %.6f\n", size, replay(keys, warmup, size, leakless::eviction::tinylfu),
        replay(keys, warmup, size, leakless::eviction::tinylfu, 1, false),
        replay(keys, warmup, size, leakless::eviction::lru), optimum(keys, next, warmup, size));
    std::fflush(stdout);
  }
  return 0;
}

// --- throughput ---

// The baseline: the textbook LRU, a list in recency order and a map into it, under one mutex.
class locked_lru {
 public:
  explicit locked_lru(std::size_t capacity) : capacity_(capacity) { map_.reserve(capacity); }
  std::optional<std::uint64_t> get(std::uint64_t key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    order_.splice(order_.end(), order_, it->second);
    return it->second->second;
  }
  void put(std::uint64_t key, std::uint64_t value) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second->second = value;
      order_.splice(order_.end(), order_, it->second);
      return;
    }
    order_.emplace_back(key, value);
    map_.emplace(key, std::prev(order_.end()));
    if (map_.size() > capacity_) {
      map_.erase(order_.front().first);
      order_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  std::size_t capacity_;
  std::list<std::pair<std::uint64_t, std::uint64_t>> order_;
  std::unordered_map<std::uint64_t, std::list<std::pair<std::uint64_t, std::uint64_t>>::iterator>
      map_;
};

// One operation: a key, and whether it is a put (else a get).
struct op {
  std::uint64_t key;
  bool write;
};

template <class Cache>
double run_ops(Cache& c, const std::vector<std::vector<op>>& per_thread, std::size_t ops) {
  std::atomic<std::uint64_t> sink{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  std::vector<double> seconds(per_thread.size());
  for (std::size_t t = 0; t < per_thread.size(); ++t) {
    pool.emplace_back([&, t] {
      const std::vector<op>& mine = per_thread[t];
      std::uint64_t local = 0;
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto start = std::chrono::steady_clock::now();
      for (std::size_t i = 0, j = 0; i < ops; ++i, j = j + 1 == mine.size() ? 0 : j + 1) {
        if (mine[j].write) {
          c.put(mine[j].key, mine[j].key);
        } else if (auto v = c.get(mine[j].key)) {
          local += *v;
        }
      }
      seconds[t] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      sink += local;
    });
  }
  while (ready.load() != static_cast<int>(per_thread.size())) {
  }
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  // All threads did the same number of operations: the rate is total / the slowest thread's time.
  return static_cast<double>(ops * per_thread.size()) /
         *std::max_element(seconds.begin(), seconds.end());
}

// The workloads: how many keys the cache holds (all of them, filled before the run, for the read
// workloads), its bound, the keys requested and the share of puts.
struct workload {
  const char* name;
  std::size_t keys, capacity;
  bool zipf;            // Zipf(0.99) over the keys (rank 0 the most popular), else uniform
  unsigned write_in_4;  // puts among every 4 operations
};

int throughput(const std::vector<std::size_t>& threads, std::size_t ops) {
  constexpr std::size_t kStream = 1 << 20;
  constexpr workload workloads[] = {
      // The read workloads' bounds leave room: a sharded cache gives each shard an equal share of
      // the bound, and the keys do not split exactly evenly, so at a bound equal to the key count
      // a few reads would miss.
      {"read-zipf", 1 << 15, (1 << 15) + (1 << 13), true, 0},
      {"read-uniform", 100'000, 1 << 17, false, 0},
      {"mix-75/25", 1'000'000, 100'000, true, 1},
  };
  std::printf("%-13s %-10s %8s %14s %16s\n", "workload", "cache", "threads", "ops/s",
              "ops/s per thread");
  for (const workload& w : workloads) {
    const zipf_stream zipf(w.zipf ? w.keys : 1, 0.99);
    const bool read_only = w.write_in_4 == 0;
    for (std::size_t n : threads) {
      std::vector<std::vector<op>> per_thread(n);
      for (std::size_t t = 0; t < n; ++t) {
        std::mt19937_64 rng(t + 1);
        per_thread[t].reserve(kStream);
        for (std::size_t i = 0; i < kStream; ++i) {
          const std::uint64_t key = w.zipf ? zipf.next(rng) : (rng() % w.keys) * kScatter;
          per_thread[t].push_back({key, rng() % 4 < w.write_in_4});
        }
      }
      for (const char* name : {"tinylfu", "lru", "mutex-lru"}) {
        double best = 0;
        for (int round = 0; round < 3; ++round) {
          auto fill = [&](auto& c) {
            if (read_only) {  // every key, so that every read hits
              for (std::uint64_t k = 0; k < w.keys; ++k) c.put(k * kScatter, k);
            } else {  // warm the cache with the workload's own keys
              for (const op& o : per_thread[0]) c.put(o.key, 0);
            }
          };
          if (std::strcmp(name, "mutex-lru") == 0) {
            locked_lru c(w.capacity);
            fill(c);
            best = std::max(best, run_ops(c, per_thread, ops));
          } else {
            leakless::cache_options opts;
            opts.max_entries = w.capacity;
            opts.policy = std::strcmp(name, "lru") == 0 ? leakless::eviction::lru
                                                        : leakless::eviction::tinylfu;
            leakless::cache<std::uint64_t, std::uint64_t> c(opts);
            fill(c);
            best = std::max(best, run_ops(c, per_thread, ops));
          }
        }
        std::printf("%-13s %-10s %8zu %14.0f %16.0f\n", w.name, name, n, best,
                    best / static_cast<double>(n));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

// --- memory ---

// Bytes allocated by malloc: in the heap's arenas, and in blocks of their own (large ones, such as
// a hash table's buckets or the deadline heap, are mmapped).
std::size_t allocated() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

template <class Fill>
double bytes_per_entry(std::size_t n, Fill fill) {
  malloc_trim(0);
  const std::size_t before = allocated();
  const std::size_t after = fill();
  const double per =
      (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(n);
  return per - 2 * sizeof(std::uint64_t);  // minus the key and the value themselves
}

// One cache per process (the driver runs each variant alone), so that no earlier cache's freed
// memory is counted or reused.
int memory(std::size_t n, const std::string& variant) {
  double per = 0;
  if (variant == "mutex-lru") {
    per = bytes_per_entry(n, [&] {
      locked_lru c(n);
      for (std::uint64_t k = 0; k < n; ++k) c.put(k * kScatter, k);
      return allocated();
    });
  } else if (variant.rfind("tinylfu", 0) == 0 || variant.rfind("lru", 0) == 0) {
    per = bytes_per_entry(n, [&] {
      leakless::cache_options opts;
      opts.max_entries = n;
      opts.policy = variant[0] == 'l' ? leakless::eviction::lru : leakless::eviction::tinylfu;
      if (variant.ends_with("+expiry")) opts.expire_after_write = std::chrono::hours(1);
      leakless::cache<std::uint64_t, std::uint64_t> c(opts);
      for (std::uint64_t k = 0; k < n; ++k) c.put(k * kScatter, k);
      return allocated();
    });
  } else {
    std::fprintf(stderr, "cache_bench: unknown cache %s\n", variant.c_str());
    return 2;
  }
  std::printf("%s %.1f\n", variant.c_str(), per);
  return 0;
}

// --- streams (the original benchmark) ---

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

int streams(int argc, char** argv, int first) {
  std::size_t requests = 4'000'000;
  std::size_t entries = 10'000;
  std::vector<std::size_t> threads{1, 2, 4};
  for (int i = first; i < argc; i += 2) {
    if (i + 1 >= argc) usage(argv[0]);
    if (std::strcmp(argv[i], "--requests") == 0) {
      requests = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--entries") == 0) {
      entries = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--threads") == 0) {
      threads = parse_list(argv[i + 1]);
    } else {
      usage(argv[0]);
    }
  }
  std::printf("%-8s %-8s %8s %14s %10s\n", "stream", "policy", "threads", "requests/s",
              "hit ratio");
  for (const char* stream : {"zipf", "recency"}) {
    for (auto policy : {leakless::eviction::tinylfu, leakless::eviction::lru}) {
      for (std::size_t t : threads) {
        const result r = run(stream, policy, entries, static_cast<int>(t), requests);
        std::printf("%-8s %-8s %8zu %14.0f %10.4f\n", stream,
                    policy == leakless::eviction::lru ? "lru" : "tinylfu", t, r.requests_per_second,
                    r.hit_ratio);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "streams";
  if (cmd == "trace") {
    if (argc != 4 && !(argc == 6 && std::strcmp(argv[4], "--seed") == 0)) usage(argv[0]);
    return write_trace(argv[2], argv[3], argc == 6 ? std::strtoull(argv[5], nullptr, 10) : 42);
  }
  if (cmd == "hitratio") {
    if (argc < 5) usage(argv[0]);
    std::vector<std::size_t> sizes;
    for (int i = 4; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
    return hit_ratio(argv[2], std::strtoull(argv[3], nullptr, 10), sizes);
  }
  if (cmd == "throughput") {
    std::vector<std::size_t> threads{1, 2};
    std::size_t ops = 20'000'000;
    for (int i = 2; i < argc; i += 2) {
      if (i + 1 >= argc) usage(argv[0]);
      if (std::strcmp(argv[i], "--threads") == 0) {
        threads = parse_list(argv[i + 1]);
      } else if (std::strcmp(argv[i], "--ops") == 0) {
        ops = std::strtoull(argv[i + 1], nullptr, 10);
      } else {
        usage(argv[0]);
      }
    }
    return throughput(threads, ops);
  }
  if (cmd == "memory") {
    if (argc != 4) usage(argv[0]);
    return memory(std::strtoull(argv[2], nullptr, 10), argv[3]);
  }
  if (cmd == "streams") return streams(argc, argv, 2);
  if (cmd.rfind("--", 0) == 0) return streams(argc, argv, 1);
  usage(argv[0]);
}
