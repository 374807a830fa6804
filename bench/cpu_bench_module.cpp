// cpu_bench_module — the shared object that `cpu_bench dlopen` loads and unloads over and over
// while a CPU profile runs (bench/run_cpu_bench.sh), so that the loader's lock is taken and
// released all the time under the profiler's signals.
//
// How it works: one exported C function doing a little arithmetic, so that dlsym has something to
// find and the call does some work inside the module's own code.
#include <cstdint>

extern "C" [[gnu::visibility("default")]] std::uint64_t cpu_bench_module_work(std::uint64_t x) {
  for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}
