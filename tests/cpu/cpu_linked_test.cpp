// tests/cpu/cpu_linked_test.cpp — the public CPU profiler API of libleakless.so, linked into a
// program: start_cpu_profile/stop_cpu_profile, the "already in use" error, threads started after
// start sampled through the pthread_create wrapper, and no deadlock while another thread loops on
// dlopen/dlclose (which libleakless.so also interposes).
//
// How it works: the test links libleakless.so, so its std::thread threads are created through
// the library's pthread_create; profiles go to a std::ostringstream and are decoded with the
// project's decoder (pprof::decode, linked from the static core; nothing else of the core is
// used, so the profiler under test is the library's own).
#include <dlfcn.h>

#include <atomic>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_test_util.hpp"
#include "pprof/profile.hpp"

#include <leakless/profile.hpp>

namespace {

using leakless::pprof::profile;

TEST(CpuLinked, ThreadsCreatedAfterStartAreSampled) {
  std::ostringstream out;
  leakless::start_cpu_profile(out);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([] { cpu_test::burn_split(0.5); });
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(leakless::stop_cpu_profile());
  const profile p = leakless::pprof::decode(out.str());
  EXPECT_GT(cpu_test::samples_through(p, "burn_seventy"), 30);
  EXPECT_GT(cpu_test::samples_through(p, "burn_thirty"), 10);
}

TEST(CpuLinked, SecondStartThrowsAndStopWithoutStartIsFalse) {
  EXPECT_FALSE(leakless::stop_cpu_profile());
  std::ostringstream a, b;
  leakless::start_cpu_profile(a);
  try {
    leakless::start_cpu_profile(b);
    ADD_FAILURE() << "a second start succeeded";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "cpu profiling already in use");
  }
  EXPECT_TRUE(leakless::stop_cpu_profile());
  EXPECT_FALSE(leakless::stop_cpu_profile());
  EXPECT_EQ(leakless::pprof::decode(a.str()).period, 10'000'000);
}

TEST(CpuLinked, NoDeadlockWithDlopenDlcloseLoop) {
  // A deadlock makes this test hang; CTest's TIMEOUT turns that into a failure.
  std::ostringstream out;
  leakless::start_cpu_profile(out);
  std::atomic<bool> done{false};
  std::atomic<long> loads{0};
  std::thread loader([&] {
    while (!done.load()) {
      void* h = dlopen(CPU_CHURN_MODULE, RTLD_NOW | RTLD_LOCAL);
      ASSERT_NE(h, nullptr) << dlerror();
      dlclose(h);
      loads.fetch_add(1);
    }
  });
  while (loads.load() < 3000) cpu_test::burn_thirty(10'000);
  done = true;
  loader.join();
  ASSERT_TRUE(leakless::stop_cpu_profile());
  EXPECT_GE(loads.load(), 3000);
  EXPECT_GT(cpu_test::total_samples(leakless::pprof::decode(out.str())), 0);
}

}  // namespace
