// tests/cpu/cpu_scenario.cpp — a program that knows nothing of leakless, run preloaded with
// LEAKLESS_CPU_PROFILE by cpu_program_test and go_pprof_check.sh.
//
// How it works: `cpu_scenario burn <seconds>` spends its CPU time in rounds of 8 units of work in
// hot_function and 2 in cold_function (split by iteration counts) on the main thread, while a
// thread it starts (after the profiler started, at load, and with every signal blocked) runs
// thread_function for a quarter of the time. `cpu_scenario fork <seconds>` does the same after
// forking a child that burns briefly and exits (the child must not write the parent's profile). It
// prints "done".
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <sys/wait.h>

namespace {

volatile std::uint64_t sink = 0;

// The same loop in each function, written out (not a shared inlined helper, which the debug
// information would name as the innermost frame of every sample).
#define SPIN(n, extra)                                         \
  do {                                                         \
    std::uint64_t x = sink;                                    \
    for (std::uint64_t i = 0; i < (n); ++i) {                  \
      x = x * 6364136223846793005ull + 1442695040888963407ull; \
      asm volatile("" : "+r"(x));                              \
    }                                                          \
    sink = x + (extra);                                        \
  } while (false)

[[gnu::noinline]] void hot_function(std::uint64_t n) { SPIN(n, 0); }
[[gnu::noinline]] void cold_function(std::uint64_t n) { SPIN(n, 1); }
[[gnu::noinline]] void thread_function(std::uint64_t n) { SPIN(n, 2); }

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

void burn(double seconds) {
  // The helper starts with every signal blocked, as liblzma starts its workers.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread helper([seconds] {
    const double end = thread_cpu_seconds() + seconds / 4;
    while (thread_cpu_seconds() < end) thread_function(500'000);
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  const double end = thread_cpu_seconds() + seconds;
  while (thread_cpu_seconds() < end) {
    hot_function(800'000);
    cold_function(200'000);
  }
  helper.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cpu_scenario burn|fork <seconds>\n");
    return 2;
  }
  const double seconds = std::atof(argv[2]);
  if (std::strcmp(argv[1], "fork") == 0) {
    const pid_t child = fork();
    if (child == 0) {
      const double end = thread_cpu_seconds() + 0.2;
      while (thread_cpu_seconds() < end) cold_function(100'000);
      std::exit(0);  // exit(), not _exit(): library destructors run in the child too
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
  } else if (std::strcmp(argv[1], "burn") != 0) {
    return 2;
  }
  burn(seconds);
  std::puts("done");
  return 0;
}
