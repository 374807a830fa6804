// bench/alloc_bench.cpp — the allocation workloads of the heap profiler benchmark
// (bench/run_heap_bench.sh runs them with no profiler, LD_PRELOADed libleakless.so, jemalloc's
// profiler, gperftools' HEAPPROFILE and heaptrack).
//
// How it works: one plain C++ program that does not link libleakless.so; a profiler is put under
// it from outside (LD_PRELOAD or a wrapper). The first argument picks the workload:
//   churn        an allocation-heavy mix typical of a C++ service: each thread keeps a working set
//                of live objects (std::string, std::vector grown by push_back, std::map, raw
//                new[] buffers; 16 B..4 KiB log-uniform, one allocation in 256 a 64 KiB buffer)
//                and replaces a random one per iteration, reading the old one into a checksum.
//   pair         a tight malloc(--size)+free loop: the cost a profiler adds to an allocation that
//                it does not sample (run with a sample rate so high that nothing is sampled).
//   sample-cost  the same loop at the bottom of ~--depth frames of recursion, over four distinct
//                call stacks: run with LEAKLESS_SAMPLE_RATE=1 (every allocation sampled) and with
//                no sampling, the difference per iteration is the cost of one sample (stack
//                capture, recording, and the free of a sampled block).
//   leak         allocates exactly 100 MiB (--leak-mib) in objects of 100 B..64 KiB (log-uniform,
//                fixed --seed), keeps them live and asks the profiler for its estimate.
// Every mode prints "key value" lines on stdout: a deterministic `checksum` (equal under every
// profiler, or the run is wrong), `seconds` of timed work, and mode-specific figures. When
// libleakless.so is preloaded, its leakless::heap_stats() is found with dlsym (the program is
// never linked to it) and its figures are printed as `stats.*` lines; heap_profile_stats comes
// from the public header, so its layout is the library's own.
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/mman.h>

#include <leakless/profile.hpp>

namespace {

// ---- small helpers ---------------------------------------------------------------------------

struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  // Log-uniform in [lo, hi]: as many objects of 16-32 B as of 2-4 KiB, like real heaps.
  std::size_t log_uniform(std::size_t lo, std::size_t hi) {
    const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
    const double v =
        std::exp(std::log(static_cast<double>(lo)) +
                 u * (std::log(static_cast<double>(hi)) - std::log(static_cast<double>(lo))));
    return std::clamp(static_cast<std::size_t>(v), lo, hi);
  }
};

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: unlike wall time, it leaves out time spent preempted by other
// processes, which on a shared machine is the larger noise in a nanosecond figure.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Keeps the compiler from removing a malloc/free pair whose block is never used.
inline void escape(void* p) { asm volatile("" : : "r"(p) : "memory"); }

using stats_function = leakless::heap_profile_stats (*)();

// leakless::heap_stats() when libleakless.so is loaded, else nullptr.
stats_function find_heap_stats() {
  return reinterpret_cast<stats_function>(dlsym(RTLD_DEFAULT, "_ZN8leakless10heap_statsEv"));
}

void print_stats(const char* prefix, const leakless::heap_profile_stats& s) {
  std::printf(
      "%s.inuse_bytes %zu\n%s.inuse_objects %zu\n%s.alloc_bytes %zu\n"
      "%s.alloc_objects %zu\n%s.samples %zu\n%s.live_samples %zu\n"
      "%s.profiler_bytes %zu\n%s.sample_rate %zu\n",
      prefix, s.inuse_bytes, prefix, s.inuse_objects, prefix, s.alloc_bytes, prefix,
      s.alloc_objects, prefix, s.samples, prefix, s.live_samples, prefix, s.profiler_bytes, prefix,
      s.sample_rate);
}

// Prints the profiler's figures if there is one; the caller's own figures are printed already.
void print_profiler_stats() {
  if (const stats_function f = find_heap_stats()) {
    std::printf("profiler leakless\n");
    print_stats("stats", f());
  } else {
    std::printf("profiler none\n");
  }
}

// VmRSS or VmHWM from /proc/self/status, in KiB (read with open/read: no allocation).
std::size_t status_kib(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::size_t kib = 0;
  const std::size_t key_length = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, key_length) == 0 && line[key_length] == ':') {
      kib = std::strtoull(line + key_length + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

struct options {
  std::string mode;
  std::uint64_t iters = 0;  // 0: the mode's default
  unsigned threads = 1;
  std::size_t size = 64;
  std::uint64_t seed = 1;
  int depth = 20;
  std::size_t slots = 32768;
  std::size_t leak_mib = 100;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: alloc_bench churn|pair|sample-cost|leak [--iters N] [--threads N]\n"
               "       [--size BYTES] [--seed N] [--depth N] [--slots N] [--leak-mib N]\n");
  std::exit(2);
}

options parse(int argc, char** argv) {
  if (argc < 2) usage();
  options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    const std::uint64_t v = std::strtoull(argv[++i], nullptr, 10);
    if (a == "--iters") {
      o.iters = v;
    } else if (a == "--threads") {
      o.threads = static_cast<unsigned>(std::max<std::uint64_t>(v, 1));
    } else if (a == "--size") {
      o.size = v;
    } else if (a == "--seed") {
      o.seed = v;
    } else if (a == "--depth") {
      o.depth = static_cast<int>(v);
    } else if (a == "--slots") {
      o.slots = std::max<std::size_t>(v, 1);
    } else if (a == "--leak-mib") {
      o.leak_mib = v;
    } else {
      usage();
    }
  }
  return o;
}

// ---- churn -----------------------------------------------------------------------------------

// One live object of the working set: exactly one of the members is in use.
struct object {
  int kind = -1;
  std::string text;
  std::vector<std::uint32_t> numbers;
  std::map<std::uint32_t, std::uint32_t> index;
  std::unique_ptr<char[]> buffer;
  std::size_t buffer_size = 0;
};

// Reads an object (what a service would do with it) into a hash, then releases its memory.
std::uint64_t consume(object& o) {
  std::uint64_t h = static_cast<std::uint64_t>(o.kind + 1);
  switch (o.kind) {
    case 0:
      h = mix(h, o.text.size());
      h = mix(h, static_cast<unsigned char>(o.text.back()));
      o.text = std::string();
      break;
    case 1: {
      std::uint64_t sum = 0;
      for (const std::uint32_t x : o.numbers) sum += x;
      h = mix(h, sum);
      std::vector<std::uint32_t>().swap(o.numbers);
      break;
    }
    case 2:
      h = mix(h, o.index.size());
      h = mix(h, o.index.begin()->first + o.index.rbegin()->second);
      o.index.clear();
      break;
    case 3:
      h = mix(h, o.buffer_size);
      h = mix(h, static_cast<unsigned char>(o.buffer[o.buffer_size / 2]));
      o.buffer.reset();
      break;
    default:
      break;
  }
  o.kind = -1;
  return h;
}

void produce(object& o, splitmix64& rng) {
  if (rng.below(256) == 0) {  // the occasional large I/O buffer
    o.kind = 3;
    o.buffer_size = 64 * 1024;
    o.buffer.reset(new char[o.buffer_size]);
    std::memset(o.buffer.get(), static_cast<int>(rng.below(256)), o.buffer_size);
    return;
  }
  const std::size_t bytes = rng.log_uniform(16, 4096);
  o.kind = static_cast<int>(rng.below(4));
  switch (o.kind) {
    case 0:
      o.text.assign(bytes, static_cast<char>('a' + rng.below(26)));
      break;
    case 1: {  // grown one element at a time: the reallocations are part of the workload
      const std::size_t n = bytes / sizeof(std::uint32_t);
      for (std::size_t i = 0; i < n; ++i) o.numbers.push_back(static_cast<std::uint32_t>(i));
      break;
    }
    case 2: {  // one 48-byte node per entry
      const std::size_t n = std::max<std::size_t>(bytes / 64, 1);
      for (std::size_t i = 0; i < n; ++i) {
        o.index.emplace(static_cast<std::uint32_t>(rng.below(1u << 20)),
                        static_cast<std::uint32_t>(i));
      }
      break;
    }
    default:
      o.buffer_size = bytes;
      o.buffer.reset(new char[bytes]);
      std::memset(o.buffer.get(), static_cast<int>(bytes & 0xff), bytes);
      break;
  }
}

std::uint64_t churn_thread(std::uint64_t seed, std::size_t slots, std::uint64_t iters) {
  splitmix64 rng{seed};
  std::vector<object> live(slots);
  for (object& o : live) produce(o, rng);
  std::uint64_t h = 0;
  for (std::uint64_t i = 0; i < iters; ++i) {
    object& o = live[rng.below(slots)];
    h = mix(h, consume(o));
    produce(o, rng);
  }
  for (object& o : live) h = mix(h, consume(o));
  return h;
}

int run_churn(const options& o) {
  const std::uint64_t iters = o.iters != 0 ? o.iters : 2'000'000;
  std::vector<std::uint64_t> sums(o.threads);
  const double start = now_seconds();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] { sums[t] = churn_thread(o.seed + t, o.slots, iters); });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = now_seconds() - start;
  std::uint64_t h = 0;
  for (const std::uint64_t s : sums) h = mix(h, s);
  std::printf("mode churn\nthreads %u\niters %" PRIu64 "\nchecksum %016" PRIx64
              "\nseconds %.6f\nrss_kib %zu\nhwm_kib %zu\n",
              o.threads, iters, h, seconds, status_kib("VmRSS"), status_kib("VmHWM"));
  print_profiler_stats();
  return 0;
}

// ---- pair and sample-cost --------------------------------------------------------------------

[[gnu::noinline]] void pairs(std::size_t size, std::uint64_t iters) {
  for (std::uint64_t i = 0; i < iters; ++i) {
    void* p = std::malloc(size);
    escape(p);
    std::free(p);
  }
}

int run_pair(const options& o) {
  const std::uint64_t iters = o.iters != 0 ? o.iters : 50'000'000;
  pairs(o.size, iters / 100);  // warm up: glibc's thread cache, the profiler's thread state
  const double start = now_seconds(), cpu_start = thread_cpu_seconds();
  pairs(o.size, iters);
  const double cpu = thread_cpu_seconds() - cpu_start;
  const double seconds = now_seconds() - start;
  std::printf("mode pair\nsize %zu\niters %" PRIu64 "\nchecksum %016" PRIx64
              "\nseconds %.6f\ncpu_seconds %.6f\nns_per_pair %.4f\nns_per_pair_wall %.4f\n",
              o.size, iters, iters, seconds, cpu, cpu * 1e9 / static_cast<double>(iters),
              seconds * 1e9 / static_cast<double>(iters));
  print_profiler_stats();
  return 0;
}

// Recurses `depth` frames, then runs the pair loop; V makes four distinct call stacks.
template <int V>
[[gnu::noinline]] std::uint64_t descend(int depth, std::size_t size, std::uint64_t iters) {
  if (depth <= 0) {
    pairs(size + V, iters);
    return iters;
  }
  std::uint64_t r = descend<V>(depth - 1, size, iters);
  asm volatile("" : "+r"(r));  // work after the call: no tail call, every frame stays
  return r;
}

int run_sample_cost(const options& o) {
  const std::uint64_t iters = o.iters != 0 ? o.iters : 400'000;
  const std::uint64_t each = iters / 4;
  descend<0>(o.depth, o.size, each / 100);  // warm up (libunwind's caches, the tables)
  const double start = now_seconds(), cpu_start = thread_cpu_seconds();
  std::uint64_t done = 0;
  done += descend<0>(o.depth, o.size, each);
  done += descend<1>(o.depth, o.size, each);
  done += descend<2>(o.depth, o.size, each);
  done += descend<3>(o.depth, o.size, each);
  const double cpu = thread_cpu_seconds() - cpu_start;
  const double seconds = now_seconds() - start;
  std::printf("mode sample-cost\nsize %zu\ndepth %d\niters %" PRIu64 "\nchecksum %016" PRIx64
              "\nseconds %.6f\ncpu_seconds %.6f\nns_per_pair %.4f\nns_per_pair_wall %.4f\n",
              o.size, o.depth, done, done, seconds, cpu, cpu * 1e9 / static_cast<double>(done),
              seconds * 1e9 / static_cast<double>(done));
  print_profiler_stats();
  return 0;
}

// ---- leak ------------------------------------------------------------------------------------

int run_leak(const options& o) {
  const std::size_t truth = o.leak_mib << 20;
  constexpr std::size_t kMin = 100, kMax = 64 * 1024;
  // The pointer array comes from mmap, so that the only malloc'd bytes are the leak itself.
  const std::size_t capacity = truth / kMin + 1;
  void* map = mmap(nullptr, capacity * sizeof(char*), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  char** blocks = static_cast<char**>(map);
  const stats_function stats = find_heap_stats();
  const leakless::heap_profile_stats before = stats ? stats() : leakless::heap_profile_stats{};

  splitmix64 rng{o.seed};
  std::size_t count = 0, remaining = truth;
  std::uint64_t h = 0;
  const double start = now_seconds();
  while (remaining > 0) {
    std::size_t n = rng.log_uniform(kMin, kMax);
    if (n >= remaining || remaining - n < kMin) n = remaining;  // end on exactly `truth`
    char* p = static_cast<char*>(std::malloc(n));
    if (p == nullptr) {
      std::perror("malloc");
      return 1;
    }
    std::memset(p, static_cast<int>(count & 0xff), n);  // resident, as a real leak would be
    blocks[count++] = p;
    remaining -= n;
    h = mix(h, n);
  }
  const double seconds = now_seconds() - start;
  const leakless::heap_profile_stats after = stats ? stats() : leakless::heap_profile_stats{};
  const std::size_t rss = status_kib("VmRSS");

  std::printf("mode leak\ntruth_bytes %zu\nobjects %zu\nchecksum %016" PRIx64
              "\nseconds %.6f\nrss_kib %zu\nhwm_kib %zu\n",
              truth, count, h, seconds, rss, status_kib("VmHWM"));
  if (stats != nullptr) {
    std::printf("profiler leakless\n");
    print_stats("before", before);
    print_stats("stats", after);
    // What the profiler says the leak is: the change of its estimate across the leak. The
    // difference removes the few runtime allocations made before main (libstdc++'s emergency
    // pool, stdio), which the profiler rightly counts but which are not part of the leak.
    std::printf("estimate_bytes %lld\n", static_cast<long long>(after.inuse_bytes) -
                                             static_cast<long long>(before.inuse_bytes));
  } else {
    std::printf("profiler none\n");
  }
  for (std::size_t i = 0; i < count; ++i) std::free(blocks[i]);
  munmap(map, capacity * sizeof(char*));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::printf("compiler %s %s\n",
#if defined(__clang__)
              "clang",
#else
              "gcc",
#endif
              __VERSION__);
  if (o.mode == "churn") return run_churn(o);
  if (o.mode == "pair") return run_pair(o);
  if (o.mode == "sample-cost") return run_sample_cost(o);
  if (o.mode == "leak") return run_leak(o);
  usage();
}
