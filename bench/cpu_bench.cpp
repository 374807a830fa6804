// cpu_bench — the workloads of the CPU profiler benchmark (bench/run_cpu_bench.sh).
//
// It is plain C++ and knows nothing of any profiler: the profilers are put under it from outside
// (LD_PRELOAD of libleakless.so with LEAKLESS_CPU_PROFILE, or of gperftools' libprofiler.so with
// CPUPROFILE). Every mode prints what the driver compares the profile with. Modes:
//
//   burn THREADS ITERATIONS   THREADS threads each run the same fixed amount of arithmetic; prints
//                             "wall_s cpu_s" (cpu: user + system of the whole process), so a
//                             profiler's overhead shows as extra time for the same work.
//   split SECONDS             one thread alternates work_a (7 units of work) and work_b (3 units of
//                             the same work; the unit varies from round to round) until it has
//                             used SECONDS of CPU: a known 70/30 split.
//                             Prints "work_a SHARE" and "work_b SHARE", each function's share of
//                             the CPU time measured around its calls with the thread's CPU clock.
//   threads N SECONDS         N threads; thread i runs thread_work<i> (a function of its own, so
//                             the profile tells the threads apart by name) until its own CPU clock
//                             reads SECONDS * (0.75 + 0.25 * (i % 4)). Prints "i CPU_NS" for each.
//   dlopen SECONDS MODULE     two threads burn CPU while a third loads MODULE with dlopen, calls
//                             its function and unloads it with dlclose, over and over, for SECONDS
//                             of wall time; prints the number of dlopen/dlclose rounds. A profiler
//                             whose signal handler takes the loader's lock would deadlock here.
//
// How the work is made: spin() runs a dependent chain of multiply-xorshift steps that the compiler
// cannot fold or vectorize; its result is kept, so nothing is optimized away. The per-thread
// functions are one template instantiated N_MAX times, always inlining spin() so that every sample
// of the thread lands in its own function.
#include <dlfcn.h>
#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/resource.h>

namespace {

std::atomic<std::uint64_t> g_sink{0};

[[gnu::always_inline]] inline std::uint64_t spin(std::uint64_t x, std::uint64_t steps) {
  for (std::uint64_t i = 0; i < steps; ++i) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
  }
  return x;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// --- burn ---

int burn(int threads, std::uint64_t iterations) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(
        [t, iterations] { g_sink += spin(static_cast<std::uint64_t>(t) + 1, iterations); });
  }
  for (auto& th : pool) th.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  std::printf("%.6f %.6f\n", wall, cpu);
  return 0;
}

// --- split ---

constexpr std::uint64_t kUnit = 200'000;  // steps of spin() per unit of work (about 0.3 ms)

[[gnu::noinline]] std::uint64_t work_a(std::uint64_t x, std::uint64_t unit) {
  return spin(x, 7 * unit);
}
[[gnu::noinline]] std::uint64_t work_b(std::uint64_t x, std::uint64_t unit) {
  return spin(x, 3 * unit);
}

int split(double seconds) {
  double in_a = 0, in_b = 0;
  std::uint64_t x = 1;
  const double start = thread_cpu_seconds();
  std::uint64_t random = 0x9e3779b97f4a7c15ull;
  while (thread_cpu_seconds() - start < seconds) {
    // The unit varies from round to round: CPU timers fire on scheduler ticks, and work with a
    // fixed period could be sampled at the same phase again and again.
    random = random * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t unit = kUnit / 2 + (random >> 33) % kUnit;
    const double t0 = thread_cpu_seconds();
    x = work_a(x, unit);
    const double t1 = thread_cpu_seconds();
    x = work_b(x, unit);
    const double t2 = thread_cpu_seconds();
    in_a += t1 - t0;
    in_b += t2 - t1;
  }
  g_sink += x;
  std::printf("work_a %.6f\nwork_b %.6f\n", in_a / (in_a + in_b), in_b / (in_a + in_b));
  return 0;
}

// --- threads ---

constexpr int kMaxThreads = 256;
// Units of work between two reads of the thread's CPU clock: about 20 ms. The read is a system
// call, and a SIGPROF is often delivered on its way back, inside glibc's clock_gettime, which has
// no frame pointer: the walk from there skips thread_work<i>, and such a sample counts for no
// thread. Reading the clock less often keeps those samples rare; the thread still reports the CPU
// time it really used, which is what its samples are compared with.
constexpr std::uint64_t kCheckEvery = 32;

template <int I>
[[gnu::noinline]] double thread_work(double seconds) {
  std::uint64_t x = I + 1;
  const double start = thread_cpu_seconds();
  double used = 0;
  while ((used = thread_cpu_seconds() - start) < seconds) x = spin(x, kCheckEvery * kUnit);
  g_sink += x;
  return used;
}

template <std::size_t... I>
constexpr std::array<double (*)(double), sizeof...(I)> work_table(std::index_sequence<I...>) {
  return {&thread_work<static_cast<int>(I)>...};
}
constexpr auto kWork = work_table(std::make_index_sequence<kMaxThreads>());

int threads(int n, double seconds) {
  if (n < 1 || n > kMaxThreads) {
    std::fprintf(stderr, "cpu_bench: 1..%d threads\n", kMaxThreads);
    return 2;
  }
  std::vector<double> cpu(static_cast<std::size_t>(n));
  std::vector<std::thread> pool;
  for (int i = 0; i < n; ++i) {
    pool.emplace_back([i, seconds, &cpu] {
      const double target = seconds * (0.75 + 0.25 * (i % 4));
      const double start = thread_cpu_seconds();
      kWork[static_cast<std::size_t>(i)](target);
      cpu[static_cast<std::size_t>(i)] = thread_cpu_seconds() - start;  // the thread's whole time
    });
  }
  for (auto& th : pool) th.join();
  for (int i = 0; i < n; ++i) {
    std::printf("%d %.0f\n", i, cpu[static_cast<std::size_t>(i)] * 1e9);
  }
  return 0;
}

// --- dlopen ---

int dlopen_loop(double seconds, const char* module) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) {
    pool.emplace_back([&stop, t] {
      std::uint64_t x = static_cast<std::uint64_t>(t) + 1;
      while (!stop.load(std::memory_order_relaxed)) x = spin(x, kUnit);
      g_sink += x;
    });
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::uint64_t rounds = 0;
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    void* handle = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      std::fprintf(stderr, "cpu_bench: %s\n", dlerror());
      status = 1;
      break;
    }
    auto fn =
        reinterpret_cast<std::uint64_t (*)(std::uint64_t)>(dlsym(handle, "cpu_bench_module_work"));
    if (fn != nullptr) g_sink += fn(rounds);
    dlclose(handle);
    ++rounds;
  }
  stop = true;
  for (auto& th : pool) th.join();
  std::printf("%llu\n", static_cast<unsigned long long>(rounds));
  return status;
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s burn THREADS ITERATIONS | split SECONDS | threads N SECONDS |\n"
               "       dlopen SECONDS MODULE\n",
               argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "burn" && argc == 4) {
    return burn(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10));
  }
  if (mode == "split" && argc == 3) return split(std::strtod(argv[2], nullptr));
  if (mode == "threads" && argc == 4) {
    return threads(std::atoi(argv[2]), std::strtod(argv[3], nullptr));
  }
  if (mode == "dlopen" && argc == 4) return dlopen_loop(std::strtod(argv[2], nullptr), argv[3]);
  usage(argv[0]);
}
