// tests/threads/threads_core_test.cpp — the threads profile against threads whose stacks we know.
//
// How it works: a fixture starts N threads named "parked-<i>" that each call
// park_in_known_function(), which waits on a condition variable until the test ends (a blocking
// glibc call: unwinding must get from there back to our function). The profile must show that
// function with count N (pprof and debug=1), every thread by id and name (debug=2), and a thread
// that blocks the profile's signal as leakless::signal_blocked rather than hanging the request.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/syscall.h>

#include "pprof/profile.hpp"
#include "support/profile_query.hpp"
#include "threads/threads_profile.hpp"

namespace {

std::mutex g_mutex;
std::condition_variable g_parked_cv;   // a thread arrived
std::condition_variable g_release_cv;  // the test is over
bool g_release = false;
int g_parked = 0;

[[gnu::noinline]] void park_in_known_function() {
  std::unique_lock lock(g_mutex);
  ++g_parked;
  g_parked_cv.notify_all();
  g_release_cv.wait(lock, [] { return g_release; });
  asm volatile("" ::: "memory");  // no tail call: the frame stays on the stack
}

class ThreadsProfile : public ::testing::Test {
 protected:
  static constexpr int kThreads = 5;

  void SetUp() override {
    g_release = false;
    g_parked = 0;
    for (int i = 0; i < kThreads; ++i) {
      threads_.emplace_back([i] {
        const std::string name = "parked-" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        park_in_known_function();
      });
    }
    {
      std::unique_lock lock(g_mutex);
      g_parked_cv.wait(lock, [] { return g_parked == kThreads; });
    }
    // Then until each is asleep in the wait (not on its way in), so all have the same stack.
    for (int i = 0; i < 10000; ++i) {
      int asleep = 0;
      for (const auto& r : leakless::threads::capture_all()) {
        if (r.name.rfind("parked-", 0) == 0 && r.state == "sleeping") ++asleep;
      }
      if (asleep == kThreads) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void TearDown() override {
    {
      std::lock_guard lock(g_mutex);
      g_release = true;
    }
    g_release_cv.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  std::vector<std::thread> threads_;
};

TEST_F(ThreadsProfile, CaptureFindsEveryParkedThreadInItsFunction) {
  const auto records = leakless::threads::capture_all();
  int parked = 0;
  for (const auto& r : records) {
    if (r.name.rfind("parked-", 0) != 0) continue;
    ++parked;
    EXPECT_EQ(r.status, leakless::threads::capture_status::captured) << r.name;
    EXPECT_GE(r.addresses.size(), 3u) << r.name;
    // Parked, or on its way in or out of the wait: never stopped or a zombie.
    EXPECT_TRUE(r.state == "sleeping" || r.state == "running") << r.state;
  }
  EXPECT_EQ(parked, kThreads);
  // The calling thread is listed too, with its own stack.
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [&](const auto& r) {
    return r.tid == self && r.status == leakless::threads::capture_status::captured;
  }));
}

TEST_F(ThreadsProfile, PprofHasTheFunctionWithCountN) {
  const auto p = leakless::pprof::decode(leakless::threads::threads_profile_bytes());
  ASSERT_EQ(p.sample_types.size(), 1u);
  EXPECT_EQ(p.sample_types[0].type, "threads");
  EXPECT_EQ(p.sample_types[0].unit, "count");
  EXPECT_EQ(p.period_type.type, "threads");
  EXPECT_EQ(p.period, 1);
  std::int64_t total = 0;
  for (const auto& sample : p.samples) total += sample.values.at(0);
  EXPECT_EQ(leakless::test::samples_through(p, "park_in_known_function"), kThreads);
  EXPECT_GE(total, kThreads + 1);
}

TEST_F(ThreadsProfile, Debug1GroupsTheParkedThreads) {
  const std::string text = leakless::threads::threads_profile_text(1);
  ASSERT_EQ(text.rfind("threads profile: total ", 0), 0u) << text;
  const auto at = text.find(std::to_string(kThreads) + " @ 0x");
  ASSERT_NE(at, std::string::npos) << text;
  const auto record_end = text.find("\n\n", at);
  const std::string record = text.substr(at, record_end - at);
  EXPECT_NE(record.find("park_in_known_function"), std::string::npos) << record;
  EXPECT_NE(record.find("\n#\t0x"), std::string::npos) << record;
  EXPECT_NE(record.find("threads_core_test.cpp:"), std::string::npos) << record;
}

TEST_F(ThreadsProfile, Debug2ListsEveryThreadWithIdAndName) {
  const std::string text = leakless::threads::threads_profile_text(2);
  for (const auto& r : leakless::threads::capture_all()) {
    if (r.name.rfind("parked-", 0) != 0) continue;
    const std::string header = "thread " + std::to_string(r.tid) + " (" + r.name + ") [";
    const auto at = text.find(header);
    ASSERT_NE(at, std::string::npos) << header << "\n" << text;
    const std::string block = text.substr(at, text.find("\n\n", at) - at);
    EXPECT_NE(block.find("park_in_known_function()\n\t"), std::string::npos) << block;
  }
}

TEST(ThreadsProfileBlocked, AThreadBlockingTheSignalIsReportedNotWaitedFor) {
  std::mutex m;
  std::condition_variable cv;
  bool ready = false, done = false;
  pid_t tid = 0;
  std::thread blocker([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, leakless::threads::profile_signal());
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::unique_lock lock(m);
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    ready = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done; });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return ready; });
  }
  const auto records = leakless::threads::capture_all();
  const auto it =
      std::find_if(records.begin(), records.end(), [&](const auto& r) { return r.tid == tid; });
  ASSERT_NE(it, records.end());
  EXPECT_EQ(it->status, leakless::threads::capture_status::blocked);
  const std::string text = leakless::threads::threads_profile_text(1);
  EXPECT_NE(text.find("#\tleakless::signal_blocked"), std::string::npos) << text;
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  blocker.join();
}

}  // namespace
