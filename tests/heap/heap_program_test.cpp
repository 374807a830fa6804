// tests/heap/heap_program_test.cpp — whole programs under LD_PRELOAD=libleakless.so: profile files
// at exit, on the dump signal and by interval; fork, posix_spawn and exec; unchanged output and
// exit codes; bad configuration reported once and ignored; an unwritable directory reported, not
// fatal; a fixed seed reproducing a run; a profile of addresses when libdw cannot be loaded.
//
// How it works: each test runs heap_scenario (which knows nothing of leakless) as a child process
// with a chosen environment, its stdout and stderr captured in files of a fresh temporary
// directory that also receives the profiles; the profiles are decoded with the project's own pprof
// decoder (this test links the static core, not the preload library) and checked for Go's heap
// profile shape and for the leaking function.
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "pprof/profile.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;

using leakless::test::read_file;
using leakless::test::run_result;

class ProgramTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/leakless-heap-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs heap_scenario with `args`, preloaded, with `env` added to this process's environment.
  run_result run(const std::vector<std::string>& args, std::map<std::string, std::string> env = {},
                 bool preload = true) {
    if (preload) env["LD_PRELOAD"] = LEAKLESS_LIBRARY;
    std::vector<std::string> argv = {program_};
    argv.insert(argv.end(), args.begin(), args.end());
    const run_result r = leakless::test::run_program(argv, env, dir_);
    EXPECT_NE(r.exit_code, -1) << "could not start " << argv[0];
    pid_ = r.pid;
    return r;
  }

  std::string program_ = LEAKLESS_SCENARIO;  // what run() starts

  // Profile files in the directory, sorted by name.
  std::vector<std::string> profiles() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 11 && name.ends_with(".heap.pb.gz")) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string prefix() const { return (dir_ / "p").string(); }

  fs::path dir_;
  pid_t pid_ = 0;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// inuse_space of samples whose stack names `function` (any frame).
std::int64_t inuse_space_of(const leakless::pprof::profile& p, const std::string& function) {
  std::map<std::uint64_t, bool> named;  // function id -> matches
  for (const auto& f : p.functions) named[f.id] = f.name.find(function) != std::string::npos;
  std::map<std::uint64_t, bool> location_named;
  for (const auto& l : p.locations) {
    bool any = false;
    for (const auto& line : l.lines) any = any || named[line.function_id];
    location_named[l.id] = any;
  }
  std::int64_t total = 0;
  for (const auto& s : p.samples) {
    const bool any = std::any_of(s.location_ids.begin(), s.location_ids.end(),
                                 [&](std::uint64_t id) { return location_named[id]; });
    if (any) total += s.values.at(3);
  }
  return total;
}

TEST_F(ProgramTest, LeakProgramWritesAGoHeapProfileAtExit) {
  const run_result r = run({"leak", "20"}, {{"LEAKLESS_HEAP_PROFILE", prefix()},
                                            {"LEAKLESS_SAMPLE_RATE", "64k"},
                                            {"LEAKLESS_SAMPLE_SEED", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "leaked 20 MiB\n");
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> files = profiles();
  ASSERT_EQ(files, std::vector<std::string>{"p." + std::to_string(pid_) + ".0.heap.pb.gz"});

  const leakless::pprof::profile p = leakless::pprof::decode(read_file(dir_ / files[0]));
  const std::vector<leakless::pprof::value_type> expected_types = {{"alloc_objects", "count"},
                                                                   {"alloc_space", "bytes"},
                                                                   {"inuse_objects", "count"},
                                                                   {"inuse_space", "bytes"}};
  EXPECT_EQ(p.sample_types, expected_types);
  EXPECT_EQ(p.period_type, (leakless::pprof::value_type{"space", "bytes"}));
  EXPECT_EQ(p.period, 64 * 1024);
  EXPECT_EQ(p.default_sample_type, "");
  ASSERT_FALSE(p.samples.empty());
  for (const auto& s : p.samples) {
    ASSERT_EQ(s.labels.size(), 1u);
    EXPECT_EQ(s.labels[0].key, "bytes");
  }
  ASSERT_FALSE(p.mappings.empty());
  EXPECT_TRUE(p.mappings[0].filename.ends_with("heap_scenario")) << p.mappings[0].filename;
  EXPECT_FALSE(p.mappings[0].build_id.empty());
  EXPECT_TRUE(p.mappings[0].has_functions);
  // 20 MiB held by grow_cache (and freed nowhere): the estimate is within 10%.
  const double held = static_cast<double>(inuse_space_of(p, "grow_cache"));
  EXPECT_NEAR(held / (20 << 20), 1.0, 0.10) << held;
}

TEST_F(ProgramTest, ASeedReproducesTheProfile) {
  const std::map<std::string, std::string> env = {{"LEAKLESS_HEAP_PROFILE", prefix()},
                                                  {"LEAKLESS_SAMPLE_SEED", "42"}};
  ASSERT_EQ(run({"leak", "8"}, env).exit_code, 0);
  const auto first = leakless::pprof::decode(read_file(dir_ / profiles().at(0)));
  fs::remove(dir_ / profiles().at(0));
  ASSERT_EQ(run({"leak", "8"}, env).exit_code, 0);
  const auto second = leakless::pprof::decode(read_file(dir_ / profiles().at(0)));
  EXPECT_EQ(inuse_space_of(first, "grow_cache"), inuse_space_of(second, "grow_cache"));
  EXPECT_GT(inuse_space_of(first, "grow_cache"), 0);
}

TEST_F(ProgramTest, OutputAndExitCodeAreUnchanged) {
  const run_result plain = run({"exit", "3"}, {}, false);
  const run_result profiled = run({"exit", "3"}, {{"LEAKLESS_HEAP_PROFILE", prefix()}});
  EXPECT_EQ(plain.exit_code, 3);
  EXPECT_EQ(profiled.exit_code, 3);
  EXPECT_EQ(profiled.out, plain.out);
  EXPECT_EQ(profiled.err, "");
  EXPECT_EQ(profiles().size(), 1u);  // exit() with a status still writes the final profile
}

TEST_F(ProgramTest, AProgramLinkedWithAnotherAllocatorKeepsWorking) {
  program_ = LEAKLESS_OTHER_ALLOCATOR;
  const run_result r =
      run({}, {{"LEAKLESS_HEAP_PROFILE", prefix()}, {"LEAKLESS_SAMPLE_RATE", "4096"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  ASSERT_EQ(profiles().size(), 1u);
  EXPECT_FALSE(leakless::pprof::decode(read_file(dir_ / profiles()[0])).samples.empty());
}

TEST_F(ProgramTest, ForkedChildWritesItsOwnProfile) {
  const run_result r = run({"fork"}, {{"LEAKLESS_HEAP_PROFILE", prefix()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  int child = 0, parent = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "child %d ok\nparent %d ok", &child, &parent), 2) << r.out;
  EXPECT_EQ(parent, pid_);
  const std::vector<std::string> expected = {"p." + std::to_string(child) + ".0.heap.pb.gz",
                                             "p." + std::to_string(parent) + ".0.heap.pb.gz"};
  std::vector<std::string> got = profiles();
  std::vector<std::string> want = expected;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  for (const std::string& f : got) {
    EXPECT_NO_THROW(leakless::pprof::decode(read_file(dir_ / f))) << f;
  }
  // The parent forked with two other threads that had captured stacks: the child counts at most
  // the forking thread's unwinder cache (the comment is "leakless UnwindingThreads = N").
  const leakless::pprof::profile child_profile =
      leakless::pprof::decode(read_file(dir_ / expected[0]));
  const auto threads = std::find_if(
      child_profile.comments.begin(), child_profile.comments.end(),
      [](const std::string& c) { return c.starts_with("leakless UnwindingThreads = "); });
  ASSERT_NE(threads, child_profile.comments.end());
  EXPECT_LE(std::stoul(threads->substr(threads->rfind(' ') + 1)), 1u) << *threads;
}

TEST_F(ProgramTest, PosixSpawnAndExecRunUnderThePreload) {
  const run_result r = run({"spawn"}, {{"LEAKLESS_HEAP_PROFILE", prefix()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "spawned\nexecd\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(ProgramTest, DumpSignalWritesAProfile) {
  const run_result r = run({"signal", "12", dir_.string()}, {{"LEAKLESS_HEAP_PROFILE", prefix()}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "dumped\n");
  EXPECT_EQ(profiles().size(), 2u);  // the signal's, then the one at exit
  const std::string pid = std::to_string(pid_);
  EXPECT_EQ(profiles(),
            (std::vector<std::string>{"p." + pid + ".0.heap.pb.gz", "p." + pid + ".1.heap.pb.gz"}));
}

TEST_F(ProgramTest, DumpSignalIsConfigurable) {
  const run_result r = run({"signal", "10", dir_.string()},
                           {{"LEAKLESS_HEAP_PROFILE", prefix()}, {"LEAKLESS_DUMP_SIGNAL", "USR1"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(profiles().size(), 2u);
}

TEST_F(ProgramTest, IntervalDumpsArePeriodic) {
  const run_result r = run(
      {"sleep", "2"}, {{"LEAKLESS_HEAP_PROFILE", prefix()}, {"LEAKLESS_HEAP_INTERVAL", "0.25"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // At least one periodic dump besides the one at exit (a loaded machine may delay some).
  EXPECT_GE(profiles().size(), 2u);
}

TEST_F(ProgramTest, BadConfigurationIsReportedOnceAndIgnored) {
  const run_result plain = run({"leak", "1"}, {}, false);
  const run_result r = run({"leak", "1"}, {{"LEAKLESS_SAMPLE_RATE", "many"},
                                           {"LEAKLESS_SAMPLE_SEED", "-4"},
                                           {"LEAKLESS_DUMP_SIGNAL", "NOPE"},
                                           {"LEAKLESS_HEAP_INTERVAL", "soon"},
                                           {"LEAKLESS_HEAP_PROFILE", prefix()}});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, plain.out);
  EXPECT_EQ(count(r.err, "leakless: "), 4u) << r.err;
  EXPECT_EQ(count(r.err, "LEAKLESS_SAMPLE_RATE=many"), 1u);
  EXPECT_EQ(count(r.err, "LEAKLESS_SAMPLE_SEED=-4"), 1u);
  EXPECT_EQ(count(r.err, "LEAKLESS_DUMP_SIGNAL=NOPE"), 1u);
  EXPECT_EQ(count(r.err, "LEAKLESS_HEAP_INTERVAL=soon"), 1u);
  EXPECT_EQ(profiles().size(), 1u);  // defaults used: the profile at exit is still written
}

// libdw is loaded when the first profile is symbolized; a libdw.so.1 that cannot be used (here
// one without its functions, found first on LD_LIBRARY_PATH) costs the names, not the profile.
TEST_F(ProgramTest, WithoutAUsableLibdwTheProfileHasAddressesAndStderrSaysSo) {
  const run_result r = run({"leak", "4"}, {{"LEAKLESS_HEAP_PROFILE", prefix()},
                                           {"LEAKLESS_SAMPLE_RATE", "64k"},
                                           {"LD_LIBRARY_PATH", LEAKLESS_UNUSABLE_LIBDW_DIR}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "leaked 4 MiB\n");
  EXPECT_EQ(count(r.err, "leakless: "), 1u) << r.err;
  EXPECT_EQ(count(r.err, "leakless: cannot use libdw.so.1 (dwarf_attr)"), 1u) << r.err;
  const std::vector<std::string> files = profiles();
  ASSERT_EQ(files.size(), 1u);
  const leakless::pprof::profile p = leakless::pprof::decode(read_file(dir_ / files[0]));
  ASSERT_FALSE(p.samples.empty());
  EXPECT_FALSE(p.locations.empty());
  EXPECT_TRUE(p.functions.empty());
  for (const auto& l : p.locations) {
    EXPECT_NE(l.address, 0u);
    EXPECT_TRUE(l.lines.empty());
  }
  ASSERT_FALSE(p.mappings.empty());
  EXPECT_TRUE(p.mappings[0].filename.ends_with("heap_scenario")) << p.mappings[0].filename;
}

TEST_F(ProgramTest, UnwritableDirectoryIsReportedOnceAndNotFatal) {
  const run_result r = run({"sleep", "1"}, {{"LEAKLESS_HEAP_PROFILE", "/nonexistent-dir/x/p"},
                                            {"LEAKLESS_HEAP_INTERVAL", "0.2"}});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "slept\n");
  EXPECT_EQ(count(r.err, "leakless: cannot create /nonexistent-dir/x/p."), 1u) << r.err;
}

}  // namespace
