// tests/cpu/cpu_core_test.cpp — the CPU profiler's core, linked statically (no pthread_create
// wrapper), in every preset: the profile's shape (sample types, period, times, the lost-samples
// pseudo-function), the API's rules (a second start fails, stop without start is harmless, twenty
// start/stop cycles work, bad rates are refused), a 70/30 CPU split sampled within +-10 points,
// the process-wide timer fallback, errno preserved across the handler, per-thread timers deleted
// as threads exit, the CPU time of a thread's tail counted when its timer ends (at its exit or at
// stop, only since the profile started), no deadlock with a thread looping on dlopen/dlclose, and a
// forked child that does not inherit the running profile.
//
// How it works: profiles are written to a std::ostringstream and read back with the project's
// decoder. Tests that need samples to arrive are skipped under ThreadSanitizer, whose runtime
// defers asynchronous signals until the thread calls into it (a pure CPU loop never does).
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "cpu/profiler.hpp"
#include "cpu_test_util.hpp"
#include "pprof/profile.hpp"

#if defined(__SANITIZE_THREAD__)
#define SKIP_WITHOUT_ASYNC_SIGNALS() GTEST_SKIP() << "ThreadSanitizer defers SIGPROF in CPU loops"
#else
#define SKIP_WITHOUT_ASYNC_SIGNALS() (void)0
#endif

namespace {

using leakless::pprof::profile;
namespace cpu = leakless::cpu;

profile stop_and_decode(std::ostringstream& out) {
  EXPECT_TRUE(cpu::stop());
  return leakless::pprof::decode(out.str());
}

TEST(CpuProfile, ShapeIsGoCpuProfile) {
  std::ostringstream out;
  cpu::start(out);
  cpu_test::burn_split(0.05);
  const profile p = stop_and_decode(out);
  ASSERT_EQ(p.sample_types.size(), 2u);
  EXPECT_EQ(p.sample_types[0], (leakless::pprof::value_type{"samples", "count"}));
  EXPECT_EQ(p.sample_types[1], (leakless::pprof::value_type{"cpu", "nanoseconds"}));
  EXPECT_EQ(p.period_type, (leakless::pprof::value_type{"cpu", "nanoseconds"}));
  EXPECT_EQ(p.period, 10'000'000);
  EXPECT_GT(p.time_nanos, 1'600'000'000'000'000'000);  // a wall-clock time (after 2020)
  EXPECT_GT(p.duration_nanos, 0);
  for (const auto& s : p.samples) {
    ASSERT_EQ(s.values.size(), 2u);
    EXPECT_EQ(s.values[1], s.values[0] * 10'000'000);
  }
}

TEST(CpuProfile, PeriodFollowsRate) {
  std::ostringstream out;
  cpu::start(out, cpu::options{250, false});
  const profile p = stop_and_decode(out);
  EXPECT_EQ(p.period, 4'000'000);
}

TEST(CpuProfile, DroppedSamplesBecomeLostSamplesPseudoFunction) {
  cpu::stack_counts counts;
  counts[{0x1234}] = 3;
  const profile p = cpu::build_profile(counts, 5, 100, 1, 2);
  EXPECT_EQ(p.time_nanos, 1);
  EXPECT_EQ(p.duration_nanos, 2);
  const auto leaves = cpu_test::leaf_samples(p);
  ASSERT_TRUE(leaves.contains(cpu::kLostSamplesFunction));
  EXPECT_EQ(leaves.at(cpu::kLostSamplesFunction), 5);
  EXPECT_EQ(cpu_test::total_samples(p), 8);
  for (const auto& s : p.samples) {
    if (s.values[0] == 5) {
      EXPECT_EQ(s.values[1], 50'000'000);
    }
  }
  // No lost samples: no pseudo-function.
  const auto clean = cpu_test::leaf_samples(cpu::build_profile(counts, 0, 100, 1, 2));
  EXPECT_FALSE(clean.contains(cpu::kLostSamplesFunction));
}

TEST(CpuProfile, SecondStartFailsWithClearError) {
  std::ostringstream first, second;
  cpu::start(first);
  try {
    cpu::start(second);
    ADD_FAILURE() << "a second start succeeded";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "cpu profiling already in use");
  }
  EXPECT_TRUE(cpu::running());
  EXPECT_TRUE(cpu::stop());
  EXPECT_FALSE(first.str().empty());
  EXPECT_TRUE(second.str().empty());
}

TEST(CpuProfile, StopWithoutStartIsHarmless) {
  EXPECT_FALSE(cpu::stop());
  EXPECT_FALSE(cpu::running());
  EXPECT_FALSE(cpu::stop());
}

TEST(CpuProfile, BadRateIsRefused) {
  std::ostringstream out;
  EXPECT_THROW(cpu::start(out, cpu::options{0, false}), std::invalid_argument);
  EXPECT_THROW(cpu::start(out, cpu::options{cpu::kMaxHz + 1, false}), std::invalid_argument);
  EXPECT_FALSE(cpu::running());
}

TEST(CpuProfile, StartStopTwentyTimes) {
  for (int i = 0; i < 20; ++i) {
    std::ostringstream out;
    cpu::start(out);
    EXPECT_TRUE(cpu::running());
    cpu_test::burn_split(0.005);
    EXPECT_TRUE(cpu::stop());
    const profile p = leakless::pprof::decode(out.str());
    EXPECT_EQ(p.period, 10'000'000);
    EXPECT_EQ(cpu::timer_count(), 0u);
  }
  EXPECT_FALSE(cpu::running());
}

TEST(CpuProfile, SampledSplitMatchesWork) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  std::ostringstream out;
  cpu::start(out);
  EXPECT_TRUE(cpu::per_thread_timers());
  cpu_test::burn_split(2.0);
  const profile p = stop_and_decode(out);
  const auto leaves = cpu_test::leaf_samples(p);
  const auto count = [&](const char* part) {
    std::int64_t n = 0;
    for (const auto& [name, samples] : leaves) {
      if (name.find(part) != std::string::npos) n += samples;
    }
    return n;
  };
  const std::int64_t seventy = count("burn_seventy"), thirty = count("burn_thirty");
  ASSERT_GT(seventy + thirty, 100) << "samples: " << cpu_test::total_samples(p);
  const double share = 100.0 * static_cast<double>(seventy) / static_cast<double>(seventy + thirty);
  std::string all;
  for (const auto& [name, samples] : leaves) all += name + "=" + std::to_string(samples) + " ";
  EXPECT_NEAR(share, 70.0, 10.0) << seventy << " vs " << thirty << "; leaves: " << all;
  std::printf("sampled split: %lld/%lld samples = %.1f%%\n", static_cast<long long>(seventy),
              static_cast<long long>(thirty), share);
}

// While SIGPROF is blocked, the thread's timer keeps expiring: one signal stays pending and the
// other expiries become overruns, which the sample delivered at the unblock must count.
TEST(CpuProfile, TimerOverrunsCountAsSamples) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  std::ostringstream out;
  cpu::start(out);
  if (!cpu::per_thread_timers()) GTEST_SKIP() << "no per-thread CPU timers here";
  sigset_t prof, old;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &prof, &old), 0);
  const double start = cpu_test::thread_cpu_seconds();
  cpu_test::burn_split(0.5);  // 50 periods at 100 Hz
  const double used = cpu_test::thread_cpu_seconds() - start;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);  // the pending signal lands here
  const profile p = stop_and_decode(out);
  const double periods = used * cpu::kDefaultHz;
  // One signal for the whole blocked stretch, standing for every period that passed in it (the
  // last period may not have ended yet, and other threads add none: there are none).
  EXPECT_GE(static_cast<double>(cpu_test::total_samples(p)), periods - 2) << "CPU s: " << used;
  EXPECT_LE(static_cast<double>(cpu_test::total_samples(p)), periods + 2) << "CPU s: " << used;
}

TEST(CpuProfile, ProcessTimerFallbackSamples) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  std::ostringstream out;
  cpu::start(out, cpu::options{100, true});
  EXPECT_FALSE(cpu::per_thread_timers());
  EXPECT_EQ(cpu::timer_count(), 0u);
  cpu_test::burn_split(1.0);
  const profile p = stop_and_decode(out);
  EXPECT_GT(cpu_test::samples_through(p, "burn_"), 30);
}

TEST(CpuProfile, ErrnoIsPreservedAcrossTheHandler) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  std::ostringstream out;
  cpu::start(out, cpu::options{1000, false});
  std::atomic<long> mismatches{0};
  std::thread checker([&] {
    cpu::thread_started();  // what libleakless.so's pthread_create wrapper does
    const double end = cpu_test::thread_cpu_seconds() + 0.5;
    long wrong = 0;
    int round = 0;
    while (cpu_test::thread_cpu_seconds() < end) {
      const int value = 1000 + (round++ % 50);
      errno = value;
      cpu_test::burn_thirty(2000);
      if (errno != value) ++wrong;
    }
    mismatches = wrong;
    cpu::thread_exiting();
  });
  checker.join();
  const profile p = stop_and_decode(out);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(cpu_test::total_samples(p), 50);  // the handler did run during the loop
}

// What libleakless.so's pthread_create wrapper does, done by hand (the core has no wrapper).
void* wrapped_worker(void* seconds) {
  cpu::thread_started();
  cpu_test::burn_split(*static_cast<double*>(seconds));
  cpu::thread_exiting();
  return nullptr;
}

TEST(CpuProfile, ThreadsStartedLaterArmAndDeleteTheirTimers) {
  std::ostringstream out;
  cpu::start(out);
  const std::size_t before = cpu::timer_count();
  EXPECT_GE(before, 1u);
  double seconds = 0.3;
  std::vector<pthread_t> threads(3);
  for (pthread_t& t : threads) ASSERT_EQ(pthread_create(&t, nullptr, wrapped_worker, &seconds), 0);
  for (pthread_t& t : threads) pthread_join(t, nullptr);
  EXPECT_EQ(cpu::timer_count(), before);  // each exiting thread deleted its own timer
  const profile p = stop_and_decode(out);
#if !defined(__SANITIZE_THREAD__)
  EXPECT_GT(cpu_test::samples_through(p, "burn_"), 20);
#endif
  EXPECT_EQ(cpu::timer_count(), 0u);
}

// The tail of a thread: when its timer ends, the CPU time its samples did not cover (expiries not
// noticed yet, a pending signal, the unfinished period) is counted, in whole periods, so a thread's
// total is its CPU time since its timer was armed, rounded to the nearest period (or one more when
// every expiry was delivered). Bounds: at least floor(worker CPU / period) - 1, at most 15% above
// the CPU of the worker and the main thread together (+2) — no run can miss them.
constexpr double kPeriodSeconds = 1.0 / cpu::kDefaultHz;

// Every sample's cpu/nanoseconds is samples/count x period (added tails included), as in Go.
void expect_cpu_is_samples_times_period(const profile& p) {
  for (const auto& s : p.samples) {
    ASSERT_EQ(s.values.size(), 2u);
    EXPECT_EQ(s.values[1], s.values[0] * p.period);
  }
}

void expect_total_covers(const profile& p, double worker_cpu, double all_cpu) {
  const auto total = static_cast<double>(cpu_test::total_samples(p));
  EXPECT_GE(total, std::floor(worker_cpu / kPeriodSeconds) - 1) << "worker CPU s: " << worker_cpu;
  EXPECT_LE(total, all_cpu / kPeriodSeconds * 1.15 + 2) << "CPU s of all threads: " << all_cpu;
  expect_cpu_is_samples_times_period(p);
}

// A worker started during the profile burns 0.35 s (35 periods at 100 Hz) and exits before
// stop() (its tail is counted at its exit) or after it (stop() counts it; the exit adds nothing).
void check_worker_tail(bool exits_before_stop) {
  std::ostringstream out;
  const double main_start = cpu_test::thread_cpu_seconds();
  cpu::start(out);
  const bool per_thread = cpu::per_thread_timers();
  std::atomic<int> phase{0};  // 1: the worker burned its share, 2: it may exit
  double worker_cpu = 0;
  std::thread worker([&] {
    cpu::thread_started();  // what libleakless.so's pthread_create wrapper does
    cpu_test::burn_split(0.35);
    worker_cpu = cpu_test::thread_cpu_seconds();
    phase = 1;
    phase.notify_all();
    phase.wait(1);
    cpu::thread_exiting();
  });
  phase.wait(0);
  if (exits_before_stop) {
    phase = 2;
    phase.notify_all();
    worker.join();
  }
  const profile p = stop_and_decode(out);
  const double main_cpu = cpu_test::thread_cpu_seconds() - main_start;
  if (!exits_before_stop) {
    phase = 2;
    phase.notify_all();
    worker.join();
  }
  if (!per_thread) GTEST_SKIP() << "no per-thread CPU timers here";
  expect_total_covers(p, worker_cpu, worker_cpu + main_cpu);
  std::printf("0.35 s thread: %.1f ms of CPU, %lld samples\n", worker_cpu * 1e3,
              static_cast<long long>(cpu_test::total_samples(p)));
}

TEST(CpuProfile, ExitingThreadTailIsCounted) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  check_worker_tail(true);
}

TEST(CpuProfile, LiveThreadTailIsCountedAtStop) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  check_worker_tail(false);
}

// A thread that exists when the profile starts: only its CPU time since then is counted.
TEST(CpuProfile, ThreadsCpuBeforeStartIsNotCounted) {
  SKIP_WITHOUT_ASYNC_SIGNALS();
  std::atomic<int> phase{0};  // 1: burned before the profile, 2: the profile runs
  double before_cpu = 0, end_cpu = 0, after_cpu = 0;
  std::thread worker([&] {
    cpu_test::burn_split(0.3);
    before_cpu = cpu_test::thread_cpu_seconds();
    phase = 1;
    phase.notify_all();
    phase.wait(1);
    const double resumed = cpu_test::thread_cpu_seconds();
    cpu_test::burn_split(0.2);
    end_cpu = cpu_test::thread_cpu_seconds();
    after_cpu = end_cpu - resumed;
    cpu::thread_exiting();
  });
  phase.wait(0);
  std::ostringstream out;
  const double main_start = cpu_test::thread_cpu_seconds();
  cpu::start(out);
  const bool per_thread = cpu::per_thread_timers();
  phase = 2;
  phase.notify_all();
  worker.join();
  const profile p = stop_and_decode(out);
  if (!per_thread) GTEST_SKIP() << "no per-thread CPU timers here";
  const double main_cpu = cpu_test::thread_cpu_seconds() - main_start;
  // The 0.3 s before the start would add 30 samples: far above the bound.
  expect_total_covers(p, after_cpu, end_cpu - before_cpu + main_cpu);
}

TEST(CpuProfile, NoDeadlockWithDlopenDlcloseLoop) {
  // A deadlock makes this test hang; CTest's TIMEOUT turns that into a failure.
  std::ostringstream out;
  cpu::start(out, cpu::options{1000, false});
  std::atomic<bool> done{false};
  std::atomic<long> loads{0};
  std::thread loader([&] {
    cpu::thread_started();  // sampled too, often inside the loader's lock
    while (!done.load()) {
      void* h = dlopen(CPU_CHURN_MODULE, RTLD_NOW | RTLD_LOCAL);
      ASSERT_NE(h, nullptr) << dlerror();
      auto* f = reinterpret_cast<int (*)()>(dlsym(h, "churn_module_value"));
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f(), 42);
      dlclose(h);
      loads.fetch_add(1);
    }
    cpu::thread_exiting();
  });
  while (loads.load() < 2000) cpu_test::burn_thirty(10'000);
  done = true;
  loader.join();
  const profile p = stop_and_decode(out);
  EXPECT_GE(loads.load(), 2000);
  EXPECT_EQ(p.period, 1'000'000);
}

TEST(CpuProfile, ForkedChildDoesNotInheritTheProfile) {
  std::ostringstream out;
  cpu::start(out);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // In the child: nothing runs, stop is harmless, and a new profile can start and stop.
    int code = 0;
    if (cpu::running()) code |= 1;
    if (cpu::stop()) code |= 2;
#if !defined(__SANITIZE_THREAD__)  // ThreadSanitizer forbids new threads after a threaded fork
    std::ostringstream mine;
    try {
      cpu::start(mine);
      if (!cpu::stop() || mine.str().empty()) code |= 4;
    } catch (...) {
      code |= 8;
    }
#endif
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(cpu::running());
  EXPECT_TRUE(cpu::stop());
}

}  // namespace
