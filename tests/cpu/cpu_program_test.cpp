// tests/cpu/cpu_program_test.cpp — LEAKLESS_CPU_PROFILE and LEAKLESS_CPU_HZ on a whole program
// under LD_PRELOAD=libleakless.so: the profile written at exit has Go's CPU profile shape, names
// the hot function as the top leaf, samples a thread the program started after the profiler; a
// forked child does not overwrite it; a bad rate is reported in one line and the default used.
//
// How it works: each test runs cpu_scenario (which knows nothing of leakless) as a child process
// in a fresh temporary directory, its stdout and stderr captured in files there, and decodes the
// profile with the project's own decoder (this test links the static core, not the library).
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "cpu_test_util.hpp"
#include "pprof/profile.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::pprof::profile;

using leakless::test::read_file;
using leakless::test::run_result;

class CpuProgramTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/leakless-cpu-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  run_result run(const std::vector<std::string>& args, std::map<std::string, std::string> env) {
    env["LD_PRELOAD"] = LEAKLESS_LIBRARY;
    std::vector<std::string> argv = {LEAKLESS_CPU_SCENARIO};
    argv.insert(argv.end(), args.begin(), args.end());
    const run_result r = leakless::test::run_program(argv, env, dir_);
    EXPECT_NE(r.exit_code, -1) << "could not start " << argv[0];
    return r;
  }

  profile read_profile(const char* name) const {
    return leakless::pprof::decode(read_file(dir_ / name));
  }

  fs::path dir_;
};

// The leaf function with the most samples.
std::string top_leaf(const profile& p) {
  const auto leaves = cpu_test::leaf_samples(p);
  return std::max_element(leaves.begin(), leaves.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

TEST_F(CpuProgramTest, WholeRunProfileHasGoShapeAndHotFunctionFirst) {
  const run_result r = run({"burn", "1.5"}, {{"LEAKLESS_CPU_PROFILE", "cpu.pb.gz"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "done\n");
  EXPECT_EQ(r.err, "");
  const profile p = read_profile("cpu.pb.gz");
  ASSERT_EQ(p.sample_types.size(), 2u);
  EXPECT_EQ(p.sample_types[0], (leakless::pprof::value_type{"samples", "count"}));
  EXPECT_EQ(p.sample_types[1], (leakless::pprof::value_type{"cpu", "nanoseconds"}));
  EXPECT_EQ(p.period_type, (leakless::pprof::value_type{"cpu", "nanoseconds"}));
  EXPECT_EQ(p.period, 10'000'000);
  EXPECT_GT(p.time_nanos, 0);
  EXPECT_GT(p.duration_nanos, 0);
  EXPECT_GT(cpu_test::total_samples(p), 100);
  EXPECT_NE(top_leaf(p).find("hot_function"), std::string::npos) << top_leaf(p);
  // The thread was created after the profiler started (at load): the wrapper armed its timer.
  EXPECT_GT(cpu_test::samples_through(p, "thread_function"), 10);
  // The frame-pointer walk reaches main from the hot function.
  EXPECT_GT(cpu_test::samples_through(p, "main"), 0);
}

TEST_F(CpuProgramTest, RateFromEnvironment) {
  const run_result r =
      run({"burn", "0.5"}, {{"LEAKLESS_CPU_PROFILE", "cpu.pb.gz"}, {"LEAKLESS_CPU_HZ", "500"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const profile p = read_profile("cpu.pb.gz");
  EXPECT_EQ(p.period, 2'000'000);
  EXPECT_GT(cpu_test::total_samples(p), 100);
}

TEST_F(CpuProgramTest, BadRateIsReportedOnceAndDefaultUsed) {
  const run_result r =
      run({"burn", "0.2"}, {{"LEAKLESS_CPU_PROFILE", "cpu.pb.gz"}, {"LEAKLESS_CPU_HZ", "fast"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.err.starts_with("leakless: LEAKLESS_CPU_HZ=fast ")) << r.err;
  EXPECT_EQ(read_profile("cpu.pb.gz").period, 10'000'000);
}

TEST_F(CpuProgramTest, ForkedChildDoesNotWriteTheProfile) {
  const run_result r = run({"fork", "0.5"}, {{"LEAKLESS_CPU_PROFILE", "cpu.pb.gz"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const profile p = read_profile("cpu.pb.gz");  // the parent's, intact
  EXPECT_GT(cpu_test::samples_through(p, "hot_function"), 10);
}

TEST_F(CpuProgramTest, NoVariableNoProfile) {
  const run_result r = run({"burn", "0.1"}, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_FALSE(fs::exists(dir_ / "cpu.pb.gz"));
}

}  // namespace
