// bench/hmap_bench.cpp — times leakless::hmap against std::unordered_map, absl::flat_hash_map and
// boost::unordered_flat_map on the same workloads as bench/go/main.go runs over Go 1.19's map.
//
// How it works: one process measures one implementation (--impl=hmap|std|absl|boost), so that a
// crash or a fragmented heap of one map cannot spoil the others; bench/compare.py runs it once
// per implementation. Every workload is a template over the map type. Keys come from splitmix64
// with a fixed seed: the first N outputs are the present keys, the next N the miss keys (the
// generator is a bijection of its counter, so the sets are disjoint and duplicate-free); shuffles
// use a second splitmix64 stream and Fisher-Yates with a multiply-high bound. Go uses the very same
// code, so both programs see identical keys in identical order. Values are the key's index, so
// lookups and iteration can check their sums (a wrong sum prints an "error" line). Each timed
// workload runs in repetitions of at least --min-time-ms of timed work, and the median repetition
// is reported (N >= 5M: one single run). Only the operation is timed: building the map an erase
// runs on, and destroying maps, are outside the clock. Memory is counted by a counting allocator
// (live bytes requested by the container) for every map, plus glibc's mallinfo2() as a cross-check
// that includes malloc's own overhead, plus hmap's memory_bytes(). Output: TSV lines
// "impl<TAB>N<TAB>metric<TAB>value" on stdout; progress on stderr.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/version.hpp>
#include <sys/mman.h>

#if __has_include(<leakless/hmap.hpp>)
#include <leakless/hmap.hpp>
#define LEAKLESS_BENCH_HAVE_HMAP 1
#else
#define LEAKLESS_BENCH_HAVE_HMAP 0
#endif

namespace {

using u64 = std::uint64_t;
using Entry = std::pair<const u64, u64>;

constexpr u64 kKeySeed = 0x1eaf1e55c0ffee01ull;
constexpr u64 kShuffleSeed = 0x5eed5eed12345678ull;
constexpr std::size_t kBigN = 5'000'000;

// ---- options ------------------------------------------------------------------------------------

struct Options {
  std::string impl;
  std::vector<std::size_t> sizes{1'000, 1'000'000, 10'000'000};
  std::size_t grow = 10'000'000;
  std::vector<std::size_t> mem_sizes{1'000'000, 10'000'000};
  std::size_t erase99 = 1'000'000;
  std::int64_t min_time_ns = 200'000'000;
  int reps = 3;
  int grow_runs = 3;
};

Options g_opt;
bool g_failed = false;
u64 g_sink = 0;

// ---- keys ---------------------------------------------------------------------------------------

struct SplitMix64 {
  u64 state;
  u64 next() noexcept {
    state += 0x9e3779b97f4a7c15ull;
    u64 z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

struct Keys {
  std::vector<u64> hit;
  std::vector<u64> miss;
};

Keys make_keys(std::size_t n) {
  SplitMix64 g{kKeySeed};
  Keys keys;
  keys.hit.resize(n);
  keys.miss.resize(n);
  for (auto& k : keys.hit) k = g.next();
  for (auto& k : keys.miss) k = g.next();
  return keys;
}

std::vector<u64> shuffled(const std::vector<u64>& keys, u64 salt) {
  std::vector<u64> out = keys;
  SplitMix64 g{kShuffleSeed ^ salt};
  for (std::size_t i = out.size(); i-- > 1;) {
    __extension__ using u128 = unsigned __int128;
    const auto j = static_cast<std::size_t>((static_cast<u128>(g.next()) * (i + 1)) >> 64);
    std::swap(out[i], out[j]);
  }
  return out;
}

// ---- measurement helpers ------------------------------------------------------------------------

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

void emit(std::size_t n, std::string_view metric, double value) {
  std::printf("%s\t%zu\t%.*s\t%.10g\n", g_opt.impl.c_str(), n, static_cast<int>(metric.size()),
              metric.data(), value);
  std::fflush(stdout);
}

void fail(std::size_t n, const std::string& message) {
  std::printf("%s\t%zu\terror\t%s\n", g_opt.impl.c_str(), n, message.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "%s N=%zu ERROR: %s\n", g_opt.impl.c_str(), n, message.c_str());
  g_failed = true;
}

struct Timed {
  std::int64_t ns;
  std::size_t ops;
};

// Runs body (returning timed ns and operation count) until min_time of timed work has
// accumulated, per repetition; returns the median ns/op over the repetitions.
template <class Body>
double measure(std::size_t n, Body&& body) {
  const int reps = n >= kBigN ? 1 : g_opt.reps;
  std::vector<double> results;
  for (int r = 0; r < reps; ++r) {
    std::int64_t ns = 0;
    std::size_t ops = 0;
    do {
      const Timed t = body();
      ns += t.ns;
      ops += t.ops;
    } while (ns < g_opt.min_time_ns && n < kBigN);
    results.push_back(static_cast<double>(ns) / static_cast<double>(ops));
  }
  std::sort(results.begin(), results.end());
  return results[results.size() / 2];
}

// ---- memory accounting --------------------------------------------------------------------------

std::int64_t g_live_bytes = 0;  // bytes currently handed out by counting_allocator

template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() noexcept = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}  // NOLINT: implicit by design
  T* allocate(std::size_t n) {
    g_live_bytes += static_cast<std::int64_t>(n * sizeof(T));
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    g_live_bytes -= static_cast<std::int64_t>(n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
};
template <class T, class U>
bool operator==(const counting_allocator<T>&, const counting_allocator<U>&) noexcept {
  return true;
}

// Bytes malloc has handed out and not taken back, including its chunk headers and rounding.
std::int64_t malloc_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<std::int64_t>(info.uordblks + info.hblkhd);
}

// ---- the implementations ------------------------------------------------------------------------

struct StdImpl {
  template <class A>
  using map = std::unordered_map<u64, u64, std::hash<u64>, std::equal_to<u64>, A>;
};
struct AbslImpl {
  template <class A>
  using map = absl::flat_hash_map<u64, u64, absl::Hash<u64>, std::equal_to<u64>, A>;
};
struct BoostImpl {
  template <class A>
  using map = boost::unordered_flat_map<u64, u64, boost::hash<u64>, std::equal_to<u64>, A>;
};
#if LEAKLESS_BENCH_HAVE_HMAP
struct HmapImpl {
  template <class A>
  using map = leakless::hmap<u64, u64, leakless::hash<u64>, std::equal_to<u64>, A>;
};
#endif

template <class M>
inline const u64* find_value(M& m, u64 key) {
  if constexpr (requires { m.lookup(key); }) {
    return m.lookup(key);
  } else {
    const auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
}

template <class M>
constexpr bool kIsHmap = requires(const M& m) {
  m.memory_bytes();
};

template <class M>
void fill(M& m, const std::vector<u64>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i) m[keys[i]] = i;
}

// ---- workloads ----------------------------------------------------------------------------------

template <class M>
void timed_workloads(std::size_t n) {
  const Keys keys = make_keys(n);
  const std::vector<u64> hit_order = shuffled(keys.hit, 1);
  const std::vector<u64> erase_order = shuffled(keys.hit, 2);
  const std::vector<u64> miss_order = shuffled(keys.miss, 3);
  const u64 want = static_cast<u64>(n) * static_cast<u64>(n - 1) / 2;  // sum of values 0..n-1

  emit(n, "insert", measure(n, [&] {
         std::unique_ptr<M> m;
         const std::int64_t t0 = now_ns();
         m = std::make_unique<M>();
         fill(*m, keys.hit);
         const std::int64_t t = now_ns() - t0;
         if (m->size() != n) fail(n, "insert: size " + std::to_string(m->size()));
         return Timed{t, n};
       }));
  emit(n, "insert_reserve", measure(n, [&] {
         std::unique_ptr<M> m;
         const std::int64_t t0 = now_ns();
         m = std::make_unique<M>();
         m->reserve(n);
         fill(*m, keys.hit);
         const std::int64_t t = now_ns() - t0;
         if (m->size() != n) fail(n, "insert_reserve: size " + std::to_string(m->size()));
         return Timed{t, n};
       }));

  {
    M m;
    fill(m, keys.hit);
    emit(n, "hit", measure(n, [&] {
           u64 sum = 0;
           const std::int64_t t0 = now_ns();
           for (const u64 k : hit_order) {
             if (const u64* v = find_value(m, k)) sum += *v;
           }
           const std::int64_t t = now_ns() - t0;
           do_not_optimize(sum);
           if (sum != want)
             fail(n, "hit: sum " + std::to_string(sum) + " want " + std::to_string(want));
           g_sink += sum;
           return Timed{t, n};
         }));
    emit(n, "miss", measure(n, [&] {
           u64 found = 0;
           const std::int64_t t0 = now_ns();
           for (const u64 k : miss_order) {
             if (find_value(m, k) != nullptr) ++found;
           }
           const std::int64_t t = now_ns() - t0;
           do_not_optimize(found);
           if (found != 0) fail(n, "miss: " + std::to_string(found) + " miss keys found");
           g_sink += found;
           return Timed{t, n};
         }));
    emit(n, "iterate", measure(n, [&] {
           u64 sum = 0;
           std::size_t count = 0;
           const std::int64_t t0 = now_ns();
           for ([[maybe_unused]] auto&& [key, value] : m) {
             sum += value;
             ++count;
           }
           const std::int64_t t = now_ns() - t0;
           do_not_optimize(sum);
           if (sum != want || count != n) {
             fail(n, "iterate: sum " + std::to_string(sum) + " count " + std::to_string(count));
           }
           g_sink += sum;
           return Timed{t, n};
         }));
  }

  emit(n, "erase", measure(n, [&] {
         M m;
         fill(m, keys.hit);
         std::size_t erased = 0;
         const std::int64_t t0 = now_ns();
         for (const u64 k : erase_order) erased += m.erase(k);
         const std::int64_t t = now_ns() - t0;
         if (erased != n || m.size() != 0) {
           fail(n, "erase: erased " + std::to_string(erased) + " size " + std::to_string(m.size()));
         }
         return Timed{t, n};
       }));
}

// Grows a map from empty to n entries, timing every insert on its own; repeated --grow-runs
// times (the median run is reported, and the worst maximum). The noise floor is the same loop
// with nothing between the two clock reads: what the machine alone adds to a single "insert".
struct GrowRun {
  double max, p9999, p999, mean;
};

GrowRun summarize(std::vector<std::int64_t>& lat, std::int64_t total) {
  const std::size_t n = lat.size();
  std::sort(lat.begin(), lat.end());
  const auto at = [&](double q) {
    return static_cast<double>(lat[static_cast<std::size_t>(static_cast<double>(n) * q)]);
  };
  return {static_cast<double>(lat.back()), at(0.9999), at(0.999),
          static_cast<double>(total) / static_cast<double>(n)};
}

// The page-fault floor: the first touch of each page of fresh memory, as much as a map of n
// 16-byte entries needs at 32 bytes an entry, each timed on its own. Growing a map has to fault
// that many pages in, so the slowest single fault the machine shows here bounds the longest
// insert from below.
void page_fault_floor(std::size_t n) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t bytes = n * 32 / page * page;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) fail(n, "page-fault floor: mmap failed");
  auto* bytes_of = static_cast<volatile unsigned char*>(mem);
  std::vector<std::int64_t> lat(bytes / page, 1);
  const std::int64_t start = now_ns();
  for (std::size_t i = 0; i < lat.size(); ++i) {
    const std::int64_t t0 = now_ns();
    bytes_of[i * page] = 1;
    lat[i] = now_ns() - t0;
  }
  const GrowRun faults = summarize(lat, now_ns() - start);
  munmap(mem, bytes);
  emit(n, "grow_fault_max_ns", faults.max);
  emit(n, "grow_fault_p9999_ns", faults.p9999);
}

template <class M>
void longest_insert(std::size_t n) {
  const Keys keys = make_keys(n);
  std::vector<std::int64_t> lat(n, 1);  // touched up front so no page faults land in the loop
  {
    const std::int64_t start = now_ns();
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t t0 = now_ns();
      do_not_optimize(i);
      lat[i] = now_ns() - t0;
    }
    const GrowRun floor = summarize(lat, now_ns() - start);
    emit(n, "grow_floor_max_ns", floor.max);
    emit(n, "grow_floor_p9999_ns", floor.p9999);
  }
  page_fault_floor(n);
  std::vector<GrowRun> runs;
  for (int r = 0; r < g_opt.grow_runs; ++r) {
    M m;
    const std::int64_t start = now_ns();
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t t0 = now_ns();
      m[keys.hit[i]] = i;
      lat[i] = now_ns() - t0;
    }
    const std::int64_t total = now_ns() - start;
    if (m.size() != n) fail(n, "grow: size " + std::to_string(m.size()));
    runs.push_back(summarize(lat, total));
  }
  const auto median = [&](double GrowRun::*field) {
    std::vector<double> v;
    for (const GrowRun& run : runs) v.push_back(run.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double worst = 0;
  for (const GrowRun& run : runs) worst = std::max(worst, run.max);
  emit(n, "grow_max_insert_ns", median(&GrowRun::max));
  emit(n, "grow_worst_max_insert_ns", worst);
  emit(n, "grow_p9999_insert_ns", median(&GrowRun::p9999));
  emit(n, "grow_p999_insert_ns", median(&GrowRun::p999));
  emit(n, "grow_total_ns_per_op", median(&GrowRun::mean));
}

template <class M>
void bytes_per_entry(std::size_t n) {
  const Keys keys = make_keys(n);
  const std::int64_t live0 = g_live_bytes;
  const std::int64_t malloc0 = malloc_bytes();
  auto m = std::make_unique<M>();
  fill(*m, keys.hit);
  const auto per = [&](std::int64_t bytes) {
    return static_cast<double>(bytes) / static_cast<double>(n);
  };
  emit(n, "bytes_per_entry", per(g_live_bytes - live0));
  emit(n, "bytes_per_entry_malloc", per(malloc_bytes() - malloc0));
  if constexpr (kIsHmap<M>) {
    emit(n, "bytes_per_entry_self", per(static_cast<std::int64_t>(m->memory_bytes())));
  }
}

// Erases 99% of n entries in random order; compares the memory held with a fresh map of the
// survivors. For hmap also after survivors-many insert+erase write pairs and shrink_to_fit().
template <class M>
void erase99_memory(std::size_t n) {
  const Keys keys = make_keys(n);
  const std::vector<u64> order = shuffled(keys.hit, 4);
  const std::size_t survivors = n / 100;
  const std::size_t doomed = n - survivors;

  const auto report = [&](std::string_view what, const M& m, std::int64_t live0) {
    emit(n, std::string("erase99_") + std::string(what) + "_bytes",
         static_cast<double>(g_live_bytes - live0));
    if constexpr (kIsHmap<M>) {
      emit(n, std::string("erase99_") + std::string(what) + "_self_bytes",
           static_cast<double>(m.memory_bytes()));
    }
  };

  {
    const std::int64_t live0 = g_live_bytes;
    auto m = std::make_unique<M>();
    fill(*m, keys.hit);
    report("full", *m, live0);
    for (std::size_t i = 0; i < doomed; ++i) m->erase(order[i]);
    report("after", *m, live0);
    if (m->size() != survivors) fail(n, "erase99: size " + std::to_string(m->size()));
    for (std::size_t i = doomed; i < n; ++i) {
      if (find_value(*m, order[i]) == nullptr) {
        fail(n, "erase99: a survivor is missing");
        break;
      }
    }
    for (std::size_t i = 0; i < doomed; i += 97) {
      if (find_value(*m, order[i]) != nullptr) {
        fail(n, "erase99: an erased key is still found");
        break;
      }
    }
    for (std::size_t i = 0; i < survivors; ++i) {
      (*m)[keys.miss[i]] = 1;
      m->erase(keys.miss[i]);
    }
    report("pairs", *m, live0);
    if constexpr (kIsHmap<M>) {
      m->shrink_to_fit();
      report("shrink", *m, live0);
      u64 sum = 0;
      for (std::size_t i = doomed; i < n; ++i) {
        if (const u64* v = find_value(*m, order[i])) sum += *v + 1;
      }
      if (m->size() != survivors || sum == 0) fail(n, "erase99: survivors lost by shrink_to_fit");
    }
  }
  {
    const std::int64_t live0 = g_live_bytes;
    auto fresh = std::make_unique<M>();
    for (std::size_t i = doomed; i < n; ++i) (*fresh)[order[i]] = i;
    report("fresh", *fresh, live0);
  }
}

template <class Impl>
void run_all() {
  using Plain = typename Impl::template map<std::allocator<Entry>>;
  using Counted = typename Impl::template map<counting_allocator<Entry>>;
  for (const std::size_t n : g_opt.sizes) {
    std::fprintf(stderr, "%s: timed workloads N=%zu\n", g_opt.impl.c_str(), n);
    timed_workloads<Plain>(n);
  }
  if (g_opt.grow > 0) {
    std::fprintf(stderr, "%s: longest insert N=%zu\n", g_opt.impl.c_str(), g_opt.grow);
    longest_insert<Plain>(g_opt.grow);
  }
  for (const std::size_t n : g_opt.mem_sizes) {
    std::fprintf(stderr, "%s: bytes per entry N=%zu\n", g_opt.impl.c_str(), n);
    bytes_per_entry<Counted>(n);
  }
  if (g_opt.erase99 > 0) {
    std::fprintf(stderr, "%s: erase 99%% N=%zu\n", g_opt.impl.c_str(), g_opt.erase99);
    erase99_memory<Counted>(g_opt.erase99);
  }
}

// ---- command line -------------------------------------------------------------------------------

[[noreturn]] void usage(const char* bad) {
  std::fprintf(stderr,
               "bad argument '%s'\nusage: hmap_bench --impl=hmap|std|absl|boost [--sizes=1000,...] "
               "[--grow=N] [--grow-runs=3] [--mem-sizes=N,...] [--erase99=N] [--min-time-ms=200] "
               "[--reps=3]\n"
               "(--grow=0, --erase99=0 or an empty list skips a measurement)\n",
               bad);
  std::exit(2);
}

std::size_t parse_size(std::string_view text, const char* arg) {
  if (text.empty()) usage(arg);
  std::size_t value = 0;
  for (const char c : text) {
    if (c == '_') continue;
    if (c < '0' || c > '9') usage(arg);
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  return value;
}

std::vector<std::size_t> parse_list(std::string_view text, const char* arg) {
  std::vector<std::size_t> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (!item.empty()) {
      const std::size_t v = parse_size(item, arg);
      if (v == 0) usage(arg);
      out.push_back(v);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

void parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::size_t eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string_view::npos) usage(argv[i]);
    const std::string_view key = arg.substr(2, eq - 2);
    const std::string_view value = arg.substr(eq + 1);
    if (key == "impl") {
      g_opt.impl = std::string(value);
    } else if (key == "sizes") {
      g_opt.sizes = parse_list(value, argv[i]);
    } else if (key == "grow") {
      g_opt.grow = parse_size(value, argv[i]);
    } else if (key == "mem-sizes") {
      g_opt.mem_sizes = parse_list(value, argv[i]);
    } else if (key == "erase99") {
      g_opt.erase99 = parse_size(value, argv[i]);
    } else if (key == "min-time-ms") {
      g_opt.min_time_ns = static_cast<std::int64_t>(parse_size(value, argv[i])) * 1'000'000;
    } else if (key == "grow-runs") {
      g_opt.grow_runs = static_cast<int>(parse_size(value, argv[i]));
      if (g_opt.grow_runs < 1) usage(argv[i]);
    } else if (key == "reps") {
      g_opt.reps = static_cast<int>(parse_size(value, argv[i]));
      if (g_opt.reps < 1) usage(argv[i]);
    } else {
      usage(argv[i]);
    }
  }
  if (g_opt.erase99 != 0 && g_opt.erase99 < 100) usage("--erase99 (needs N >= 100)");
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);
  // Lines starting with '#' describe the build; bench/compare.py prints them with the results.
  std::printf("#meta\tcompiler\tg++ %s\n", __VERSION__);
  std::printf("#meta\tabsl\t%d\n", ABSL_LTS_RELEASE_VERSION);
  std::printf("#meta\tboost\t%s\n", BOOST_LIB_VERSION);
#ifdef __OPTIMIZE__
  std::printf("#meta\toptimized\tyes\n");
#else
  std::printf("#meta\toptimized\tNO (unoptimized build: figures are meaningless)\n");
#endif
#ifdef NDEBUG
  std::printf("#meta\tndebug\tyes\n");
#else
  std::printf("#meta\tndebug\tNO (assertions enabled)\n");
#endif
  if (g_opt.impl == "std") {
    run_all<StdImpl>();
  } else if (g_opt.impl == "absl") {
    run_all<AbslImpl>();
  } else if (g_opt.impl == "boost") {
    run_all<BoostImpl>();
  } else if (g_opt.impl == "hmap") {
#if LEAKLESS_BENCH_HAVE_HMAP
    run_all<HmapImpl>();
#else
    std::fprintf(stderr, "hmap_bench was built without <leakless/hmap.hpp>\n");
    return 3;
#endif
  } else {
    usage(g_opt.impl.c_str());
  }
  std::fprintf(stderr, "%s: done (sink %llu)\n", g_opt.impl.c_str(),
               static_cast<unsigned long long>(g_sink));
  return g_failed ? 1 : 0;
}
