// tests/cli/run_test.cpp — `leakless run`: the environment it gives the program, the profiles it
// collects, signal forwarding, exit statuses and its errors.
//
// How it works: each test runs the real `leakless` executable (path from the build) with
// run_program() in a fresh temporary directory and checks its exit status, its messages and the
// files it left. Programs are /bin/sh scripts or the fixed_user_cache example. The signal test
// starts `leakless run` in the background, waits until the script has installed its trap (it
// creates a file), sends the signal to leakless and checks that the script's trap decided the exit
// status — so the signal went through leakless to the program.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "analysis.hpp"
#include "profile_files.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::test::run_program;

class RunCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("leakless-run-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  leakless::test::run_result leakless(std::vector<std::string> args,
                                      const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), LEAKLESS_CLI);
    return run_program(args, env, dir_);
  }
  fs::path dir_;
};

TEST_F(RunCommand, GivesTheProgramThePreloadLibraryAndTheProfilerSettings) {
  const auto r = leakless({"run", "--every", "1500ms", "--out", "out", "--http", "127.0.0.1:0",
                           "--", "/bin/sh", "-c",
                           "echo \"$LD_PRELOAD|$LEAKLESS_HEAP_PROFILE|$LEAKLESS_HEAP_INTERVAL|"
                           "$LEAKLESS_HTTP\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string expected_profile = (fs::canonical(dir_ / "out") / "heap").string();
  EXPECT_NE(r.out.find("libleakless.so|" + expected_profile + "|1.5|127.0.0.1:0\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("sh exited with status 0"), std::string::npos) << r.err;
}

TEST_F(RunCommand, ForwardsTheExitStatus) {
  const auto r = leakless({"run", "--out", "out", "--", "/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("exited with status 7"), std::string::npos) << r.err;
}

TEST_F(RunCommand, ReportsDeathBySignalAs128PlusTheSignal) {
  const auto r = leakless({"run", "--out", "out", "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_NE(r.err.find("killed by signal 9"), std::string::npos) << r.err;
}

TEST_F(RunCommand, ForwardsSignalsToTheProgram) {
  for (const int sig : {SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGQUIT}) {
    const fs::path ready = dir_ / ("ready-" + std::to_string(sig));
    const std::string script = "trap 'exit " + std::to_string(40 + sig) + "' " +
                               std::to_string(sig) + "; touch " + ready.string() +
                               "; while :; do sleep 0.05; done";
    const pid_t started = leakless::test::start_program(
        {LEAKLESS_CLI, "run", "--out", "out", "--", "/bin/sh", "-c", script}, {}, dir_);
    ASSERT_NE(started, 0);
    while (!fs::exists(ready)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(::kill(started, sig), 0);
    const auto r = leakless::test::finish_program(started, dir_);
    EXPECT_EQ(r.exit_code, 40 + sig) << "signal " << sig << ": " << r.err;
  }
}

TEST_F(RunCommand, WritesAProfileEveryIntervalAndOneAtExit) {
  // The rest of the environment reaches the program: a finer sampling rate, so that the cache's
  // 1 MiB shows in every profile.
  const auto r = leakless({"run", "--every", "250ms", "--out", "profiles", "--",
                           LEAKLESS_FIXED_USER_CACHE, "--seconds", "2"},
                          {{"LEAKLESS_SAMPLE_RATE", "65536"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto files = leakless::cli::list_heap_profiles(dir_ / "profiles");
  // 2 s at 250 ms: up to 8 interval profiles and the one at exit; a busy machine may delay some.
  ASSERT_GE(files.size(), 3u);
  EXPECT_LE(files.size(), 10u);
  std::string pid;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string name = files[i].filename().string();  // heap.<pid>.<seq>.heap.pb.gz
    const std::string this_pid = name.substr(5, name.find('.', 5) - 5);
    if (i == 0) pid = this_pid;
    EXPECT_EQ(this_pid, pid);
    EXPECT_EQ(name, "heap." + pid + "." + std::to_string(i) + ".heap.pb.gz");
    const auto p = leakless::cli::load_profile(files[i].string());
    ASSERT_EQ(p.sample_types.size(), 4u);
    EXPECT_EQ(p.sample_types[3].type, "inuse_space");
    EXPECT_EQ(p.period, 65536);
  }
  EXPECT_NE(r.err.find(std::to_string(files.size()) + " heap profiles in"), std::string::npos)
      << r.err;
  // The cache is never destroyed: the profile taken at exit still holds its memory.
  EXPECT_GT(leakless::cli::inuse_bytes_of(files.back()).value_or(0), 0u);
}

TEST_F(RunCommand, DrawsAStatusLineOnlyOnATerminal) {
  // `script` gives leakless a terminal for stderr; without one (the other tests) no line is drawn.
  if (!fs::exists("/usr/bin/script")) GTEST_SKIP() << "util-linux's script is not installed";
  const std::string command = std::string(LEAKLESS_CLI) + " run --every 250ms --out profiles -- " +
                              LEAKLESS_FIXED_USER_CACHE + " --seconds 2";
  const auto r = run_program({"/usr/bin/script", "-qec", command, "/dev/null"}, {}, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\r\033[Kleakless run: 0:0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" elapsed | RSS "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" MiB | sampled heap "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" snapshot"), std::string::npos) << r.out;

  const auto plain = leakless({"run", "--every", "250ms", "--out", "plain", "--",
                               LEAKLESS_FIXED_USER_CACHE, "--seconds", "1"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.err.find("elapsed"), std::string::npos) << plain.err;
}

TEST_F(RunCommand, NamesItsOutputDirectoryAfterTheProgramByDefault) {
  const auto r = leakless({"run", "--", "/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int found = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("leakless-true-", 0) == 0 && entry.is_directory()) ++found;
  }
  EXPECT_EQ(found, 1);
}

TEST_F(RunCommand, ProgramNotFoundExits127) {
  const auto r = leakless({"run", "--out", "out", "--", "no-such-program-leakless-test"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("leakless: error: run: program not found or not executable: "
                       "no-such-program-leakless-test"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out")) << "nothing is created for a program that cannot run";
}

TEST_F(RunCommand, BadIntervalIsAUsageError) {
  for (const char* every : {"fast", "10x", "-1s", "0"}) {
    const auto r = leakless({"run", "--every", every, "--", "/bin/true"});
    EXPECT_EQ(r.exit_code, 2) << every;
    EXPECT_NE(r.err.find("leakless: error: --every: '" + std::string(every) + "'"),
              std::string::npos)
        << r.err;
  }
}

TEST_F(RunCommand, MissingProgramIsAUsageError) {
  const auto r = leakless({"run", "--every", "1s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("leakless: error:"), std::string::npos) << r.err;
}

}  // namespace
