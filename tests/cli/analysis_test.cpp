// tests/cli/analysis_test.cpp — the leak analysis on simulated programs sampled like the profiler
// samples (synthetic_series.hpp), and its statistical pieces.
//
// How it works: each quality requirement is checked over many random seeds, since sampling noise
// differs from run to run: a 1 MiB/min leak under 100 MiB/s of churn found in 5 minutes; no
// suspect for a large steady heap (a full cache replaced constantly) nor for growth that reached a
// plateau; two leaks ranked by rate. Then the pieces: the Theil–Sen slope ignores spikes, the
// Mann–Kendall confidence tells trend from noise, suspects are named by the program's own frame,
// and snapshots load sorted by time with clear errors for bad files.
#include "analysis.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "cli/synthetic_series.hpp"

namespace leakless::cli {
namespace {

constexpr double MiB = 1024.0 * 1024.0;

std::vector<heap_snapshot> as_snapshots(const std::vector<pprof::profile>& profiles) {
  std::vector<heap_snapshot> out;
  for (std::size_t i = 0; i < profiles.size(); ++i) {
    out.push_back({"profile" + std::to_string(i), profiles[i].time_nanos, profiles[i]});
  }
  return out;
}

// 100 MiB/s of allocation, each object living ~2 s: ~200 MiB live that is replaced constantly.
std::vector<test::synthetic_site> heavy_churn() {
  return {test::churn("handle_request", 31, 100 * MiB), test::churn("parse_body", 77, 60 * MiB),
          test::churn("render_page", 12, 40 * MiB)};
}

const std::uint64_t kSeeds =
    std::getenv("SEEDS") ? std::strtoull(std::getenv("SEEDS"), nullptr, 10) : 20;

TEST(LeakAnalysis, FindsSlowLeakUnderHeavyChurnWithinFiveMinutes) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    test::synthetic_program program;
    program.sites = heavy_churn();
    program.sites.push_back(test::leak("add_user", 42, 1 * MiB));
    program.duration_seconds = 300;
    program.seed = seed;
    const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
    ASSERT_EQ(r.suspects.size(), 1u) << "seed " << seed;
    const suspect& s = r.suspects[0];
    EXPECT_EQ(s.function, "add_user") << "seed " << seed;
    EXPECT_EQ(s.file, "/src/app/add_user.cpp");
    EXPECT_EQ(s.line, 42);
    EXPECT_GT(s.growth_bytes_per_min, 0.3 * MiB) << "seed " << seed;
    EXPECT_LT(s.growth_bytes_per_min, 2.0 * MiB) << "seed " << seed;
    EXPECT_GE(s.confidence, 0.95);
    EXPECT_LE(s.confidence, 1.0);
    EXPECT_FALSE(s.released);
    EXPECT_NE(s.verdict.find("never released"), std::string::npos) << s.verdict;
    // The whole stack stays with the suspect: operator new, the vector, add_user, main.
    ASSERT_EQ(s.stack.size(), 4u);
    EXPECT_EQ(s.stack[0].function, "operator new(unsigned long)");
    EXPECT_EQ(s.stack[2].function, "add_user");
    EXPECT_EQ(s.stack[3].function, "main");
    EXPECT_EQ(s.inuse.size(), 61u);
  }
}

TEST(LeakAnalysis, NoSuspectForLargeSteadyHeap) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    test::synthetic_program program;
    program.sites = heavy_churn();
    // A full bounded cache of 1 GiB whose entries are replaced all the time.
    program.sites.push_back(test::churn("cache_put", 88, 1024 * MiB));
    program.seed = seed;
    const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
    EXPECT_TRUE(r.suspects.empty())
        << "seed " << seed << ": " << r.suspects[0].function << " " << r.suspects[0].verdict;
    EXPECT_EQ(r.snapshots, 61u);
    EXPECT_NEAR(r.duration_seconds, 300, 1e-6);
  }
}

// A small steady site: a window of ~9 request buffers of 64 KiB, replaced all the time, is only a
// few samples at a 128 KiB period, so its level jumps by whole samples from one profile to the
// next. Over a short series it sometimes rises by chance, with a rank test that looks confident;
// the rise is within the sampling noise of its start and end levels, so it is not a suspect.
TEST(LeakAnalysis, NoSuspectForASmallSteadySiteThatRoseByChance) {
  std::size_t named = 0;
  const std::uint64_t runs = 50 * kSeeds;
  for (std::uint64_t seed = 1; seed <= runs; ++seed) {
    test::synthetic_program program;
    program.sites = {{"handle_request", "/src/app/handle_request.cpp", 55, 64 * 1024,
                      [](double) { return 9 * 64 * 1024.0; }, false, false}};
    program.period = 128 * 1024;
    program.every_seconds = 1;
    program.duration_seconds = 12;
    program.seed = seed;
    named += analyze_leaks(as_snapshots(test::synthetic_series(program))).suspects.size();
  }
  EXPECT_EQ(named, 0u) << "of " << runs << " runs";
}

TEST(LeakAnalysis, NoSuspectForGrowthThatReachedAPlateau) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    test::synthetic_program program;
    program.sites = heavy_churn();
    // Fills 40 MiB in the first two minutes, then stays for three.
    program.sites.push_back(test::plateau("warm_cache", 50, 20 * MiB, 120));
    program.seed = seed;
    const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
    EXPECT_TRUE(r.suspects.empty())
        << "seed " << seed << ": " << r.suspects[0].function << " " << r.suspects[0].verdict;
  }
}

TEST(LeakAnalysis, RanksTwoLeaksByRate) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    test::synthetic_program program;
    program.sites = heavy_churn();
    program.sites.push_back(test::leak("slow_leak", 10, 2 * MiB));
    program.sites.push_back(test::leak("fast_leak", 20, 6 * MiB));
    program.seed = seed;
    const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
    ASSERT_EQ(r.suspects.size(), 2u) << "seed " << seed;
    EXPECT_EQ(r.suspects[0].function, "fast_leak") << "seed " << seed;
    EXPECT_EQ(r.suspects[1].function, "slow_leak") << "seed " << seed;
    EXPECT_NEAR(r.suspects[0].growth_bytes_per_min / MiB, 6, 3.0) << "seed " << seed;
    EXPECT_NEAR(r.suspects[1].growth_bytes_per_min / MiB, 2, 1.6) << "seed " << seed;
    EXPECT_GT(r.suspects[0].share_of_growth, r.suspects[1].share_of_growth);
    EXPECT_LE(r.suspects[0].share_of_growth + r.suspects[1].share_of_growth, 1.0 + 1e-9);
  }
}

TEST(LeakAnalysis, TooFewSnapshotsNameNoSuspect) {
  test::synthetic_program program;
  program.sites = {test::leak("add_user", 42, 100 * MiB)};
  program.duration_seconds = 15;  // 4 snapshots
  const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
  EXPECT_EQ(r.snapshots, 4u);
  EXPECT_TRUE(r.suspects.empty());
}

TEST(LeakAnalysis, OneOffSpikeIsNotALeak) {
  test::synthetic_program program;
  program.sites = heavy_churn();
  // 300 MiB held for a moment around t=150 s, then freed.
  program.sites.push_back({"load_report", "/src/app/report.cpp", 9, 4096,
                           [](double t) { return std::abs(t - 150) < 3 ? 300 * MiB : 0.0; }, false,
                           false});
  const leak_analysis r = analyze_leaks(as_snapshots(test::synthetic_series(program)));
  EXPECT_TRUE(r.suspects.empty());
}

TEST(LeakAnalysis, HeapWithoutInuseSpaceIsAClearError) {
  pprof::profile p;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  const std::vector<heap_snapshot> series = {{"cpu.pb.gz", 1, p}};
  try {
    analyze_leaks(series);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu.pb.gz: not a heap profile"), std::string::npos)
        << e.what();
  }
}

TEST(Statistics, TheilSenIgnoresSpikes) {
  std::vector<double> x, y;
  for (int i = 0; i < 20; ++i) {
    x.push_back(i);
    y.push_back(3.0 * i + 7);
  }
  y[5] = 1e9;
  y[19] = -1e9;
  EXPECT_DOUBLE_EQ(theil_sen_slope(x, y), 3.0);
  EXPECT_DOUBLE_EQ(theil_sen_slope({1, 1}, {0, 5}), 0.0);  // no distinct x
}

TEST(Statistics, MannKendallTellsTrendFromNoise) {
  std::vector<double> rising, flat;
  for (int i = 0; i < 30; ++i) {
    rising.push_back(i + ((i % 3) - 1) * 0.5);  // rises with jitter
    flat.push_back(i % 2 == 0 ? 10 : 12);
  }
  EXPECT_GT(mann_kendall_confidence(rising), 0.999);
  EXPECT_NEAR(mann_kendall_confidence(flat), 0.5, 0.2);
  EXPECT_DOUBLE_EQ(mann_kendall_confidence(std::vector<double>(10, 4.0)), 0.5);
  std::vector<double> falling(rising.rbegin(), rising.rend());
  EXPECT_LT(mann_kendall_confidence(falling), 0.001);
}

TEST(Naming, FirstFrameOfTheProgramsOwnCode) {
  const std::vector<frame> stack = {
      {"operator new(unsigned long)", "", 0, "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"},
      {"malloc", "/src/heap/interpose/malloc.cpp", 10, "/opt/lib/libleakless.so"},
      {"leakless::heap::sample", "/src/heap/sampler.cpp", 3, "/srv/app/bin/app"},
      {"void std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>(int const&)",
       "/usr/include/c++/12/bits/vector.tcc", 512, "/srv/app/bin/app"},
      {"__gnu_cxx::new_allocator<int>::allocate(unsigned long, void const*)",
       "/usr/include/c++/12/ext/new_allocator.h", 137, "/srv/app/bin/app"},
      {"users::add_user(int)", "/src/app/users.cpp", 42, "/srv/app/bin/app"},
      {"main", "/src/app/main.cpp", 7, "/srv/app/bin/app"}};
  EXPECT_EQ(naming_frame(stack), 5u);
  EXPECT_FALSE(is_own_code({"strdup", "", 0, ""}));
  EXPECT_FALSE(is_own_code({"runtime.mallocgc", "/usr/lib/go/src/runtime/malloc.go", 1, ""}));
  EXPECT_TRUE(is_own_code({"main.leak", "/src/leak/main.go", 1, ""}));
  EXPECT_TRUE(is_own_code({"operator_table::lookup()", "/src/app/ops.cpp", 1, ""}));
  // Nothing of the program's own: the leaf names it.
  EXPECT_EQ(naming_frame({stack[0], stack[1]}), 0u);
}

TEST(Format, HumanBytes) {
  EXPECT_EQ(human_bytes(12), "12 B");
  EXPECT_EQ(human_bytes(512 * 1024), "512.0 KiB");
  EXPECT_EQ(human_bytes(4.1 * MiB), "4.1 MiB");
  EXPECT_EQ(human_bytes(-2 * MiB), "-2.0 MiB");
}

class SnapshotFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("leakless_cli_analysis_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::filesystem::path dir_;
};

TEST_F(SnapshotFiles, DirectoryLoadsSortedByProfileTime) {
  test::synthetic_program program;
  program.sites = {test::leak("add_user", 42, 1 * MiB)};
  program.duration_seconds = 20;
  const std::vector<pprof::profile> series = test::synthetic_series(program);
  ASSERT_EQ(series.size(), 5u);
  // Names sort in the opposite order to the profiles' times.
  for (std::size_t i = 0; i < series.size(); ++i) {
    write("p." + std::to_string(9 - i) + ".heap.pb.gz", pprof::encode_gzipped(series[i]));
  }
  write("notes.txt", "not a profile, and not named like one");
  write("p.10.heap.pb.gz.tmp", "half-written");  // the profiler renames it when complete
  const std::vector<heap_snapshot> loaded = load_snapshots({dir_.string()});
  ASSERT_EQ(loaded.size(), 5u);
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(loaded[i].time_nanos, series[i].time_nanos);
    EXPECT_EQ(loaded[i].profile, series[i]);
  }
  EXPECT_EQ(loaded[0].source, (dir_ / "p.9.heap.pb.gz").string());
}

TEST_F(SnapshotFiles, BadFilesAreErrorsNamingTheFile) {
  const auto message = [&](const std::string& path) -> std::string {
    try {
      load_snapshots({path});
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  };
  write("empty.pb.gz", "");
  EXPECT_EQ(message((dir_ / "empty.pb.gz").string()),
            (dir_ / "empty.pb.gz").string() + ": empty, not a pprof profile");
  write("text.pb.gz", "this is plain text, not a profile\n");
  EXPECT_NE(message((dir_ / "text.pb.gz").string()).find((dir_ / "text.pb.gz").string() + ": not"),
            std::string::npos);
  pprof::profile p;
  p.sample_types = {{"inuse_space", "bytes"}};
  p.samples = {{{}, {1}, {}}};
  const std::string good = pprof::encode_gzipped(p);
  write("truncated.pb.gz", good.substr(0, good.size() / 2));
  EXPECT_NE(message((dir_ / "truncated.pb.gz").string())
                .find((dir_ / "truncated.pb.gz").string() + ": not a valid pprof profile"),
            std::string::npos);
  EXPECT_EQ(message((dir_ / "missing.pb.gz").string()),
            (dir_ / "missing.pb.gz").string() + ": no such file or directory");
  std::filesystem::create_directories(dir_ / "nothing");
  EXPECT_NE(message((dir_ / "nothing").string()).find("no profiles"), std::string::npos);
}

}  // namespace
}  // namespace leakless::cli
