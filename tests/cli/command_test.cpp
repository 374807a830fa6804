// tests/cli/command_test.cpp — the `leakless` profile-reading commands run as a user runs them:
// --help of every command, clear one-line errors and exit status 1 for bad profiles, the shape of
// `leaks --json`, `leaks --url` and `snapshot URL` against a small HTTP server, `list` and `diff`,
// `top` against `go tool pprof -top` on the same file, and profiles written by a Go program.
//
// How it works: series are simulated (synthetic_series.hpp) and written as .pb.gz files into a
// scratch directory; the CLI binary runs through tests/support/run_program.hpp and its stdout is
// parsed (JSON with nlohmann-json). The HTTP server is cpp-httplib's, on a free local port, in a
// thread of the test; it hands out the files of a series one per request. Go's pprof runs through
// tests/support/go_pprof.sh (scratch HOME and cache, no network), and the Go program through
// `go run` with the same setup.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/report_text.hpp"
#include "cli/synthetic_series.hpp"
#include "pprof/profile.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::test::run_result;
constexpr double MiB = 1024.0 * 1024.0;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("leakless_cli_command_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  run_result cli(std::vector<std::string> args) {
    args.insert(args.begin(), LEAKLESS_CLI);
    return leakless::test::run_program(args, {}, dir_);
  }

  std::string write(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

  // Writes a simulated series into dir_/name, one file per snapshot.
  std::string write_series(const std::string& name, const leakless::test::synthetic_program& p) {
    const std::vector<leakless::pprof::profile> series = leakless::test::synthetic_series(p);
    for (std::size_t i = 0; i < series.size(); ++i) {
      char file[64];
      std::snprintf(file, sizeof file, "/app.%03zu.heap.pb.gz", i);
      write(name + file, leakless::pprof::encode_gzipped(series[i]));
    }
    return (dir_ / name).string();
  }

  // `go tool pprof ARGS` through tests/support/go_pprof.sh; its stdout.
  std::string go_pprof(const std::string& args) {
    const std::string script = "source '" LEAKLESS_SOURCE_DIR
                               "/tests/support/go_pprof.sh' && go_pprof_setup '" +
                               (dir_ / "go_pprof").string() + "' && go_pprof out " + args;
    const run_result r = leakless::test::run_program({"/bin/bash", "-c", script}, {}, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return leakless::test::read_file(dir_ / "go_pprof" / "out.out");
  }

  fs::path dir_;
};

using leakless::test::lines_of;
using leakless::test::top_table;

leakless::test::synthetic_program two_leaks() {
  leakless::test::synthetic_program p;
  p.sites = {leakless::test::churn("handle_request", 31, 100 * MiB),
             leakless::test::leak("slow_leak", 10, 2 * MiB),
             leakless::test::leak("fast_leak", 20, 6 * MiB)};
  p.duration_seconds = 120;
  return p;
}

TEST_F(Cli, HelpOfEveryCommand) {
  const std::map<std::string, std::string> commands = {{"leaks", "keeps growing"},
                                                       {"top", "go tool pprof -top"},
                                                       {"diff", "BASE"},
                                                       {"list", "source lines"},
                                                       {"snapshot", "heap profile"}};
  const run_result top_level = cli({"--help"});
  EXPECT_EQ(top_level.exit_code, 0);
  for (const auto& [command, words] : commands) {
    EXPECT_NE(top_level.out.find(command), std::string::npos) << command;
    const run_result r = cli({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << command << ": " << r.out;
    EXPECT_NE(r.out.find("Exit status"), std::string::npos) << command << ": " << r.out;
    EXPECT_NE(r.out.find(words), std::string::npos) << command << ": " << r.out;
    EXPECT_EQ(r.err, "") << command;
  }
}

TEST_F(Cli, BadProfilesAreOneLineErrorsWithStatusOne) {
  leakless::pprof::profile p;
  p.sample_types = {{"inuse_space", "bytes"}};
  p.functions = {{1, "f", "f", "/src/f.cpp", 1}};
  p.locations = {{1, 0, 0x1000, {{1, 3}}, false}};
  p.samples = {{{1}, {100}, {}}};
  const std::string good = leakless::pprof::encode_gzipped(p);
  std::string hostile = leakless::pprof::encode(p);
  hostile[hostile.size() / 2] = '\xff';  // a length or varint gone wrong
  const std::vector<std::string> bad = {
      write("empty.pb.gz", ""),
      write("truncated.pb.gz", good.substr(0, good.size() - 9)),
      write("text.pb.gz", "# this is a text file, not a profile\nhello\n"),
      write("gzip_of_text.pb.gz", leakless::pprof::gzip("definitely not protobuf")),
      write("hostile.pb", hostile + std::string(64, '\xff')),
      (dir_ / "missing.pb.gz").string(),
  };
  for (const std::string& file : bad) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"top", file},
                                                 {"list", file, "f"},
                                                 {"diff", file, file},
                                                 {"leaks", file},
                                                 {"leaks", "--json", file}}) {
      const run_result r = cli(args);
      const std::string what = args[0] + " " + file;
      EXPECT_EQ(r.exit_code, 1) << what << "\n" << r.err;
      EXPECT_EQ(r.out, "") << what;
      ASSERT_EQ(lines_of(r.err).size(), 1u) << what << ": " << r.err;
      EXPECT_TRUE(r.err.starts_with("leakless: error: " + file + ": ")) << r.err;
    }
  }
  // A directory without profiles.
  fs::create_directories(dir_ / "nothing");
  const run_result r = cli({"leaks", (dir_ / "nothing").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no profiles"), std::string::npos) << r.err;
  // A usage error is status 2.
  EXPECT_EQ(cli({"top"}).exit_code, 2);
  EXPECT_EQ(cli({"leaks"}).exit_code, 2);
  EXPECT_EQ(cli({"list", write("good.pb.gz", good), "(unclosed"}).exit_code, 2);
}

TEST_F(Cli, HostileRegularExpressionsNeitherHangNorCrash) {
  // Patterns that take exponential time in a backtracking matcher, against long names.
  leakless::pprof::profile p = leakless::test::empty_heap_profile(524288, 1);
  p.drop_frames = "(a|aa)*c";
  const std::string name(3000, 'a');
  p.functions = {{1, name, "", "/src/a.cpp", 1}, {2, "main", "", "/src/main.cpp", 1}};
  p.locations = {{1, 0, 0x1000, {{1, 2}}, false}, {2, 0, 0x2000, {{2, 3}}, false}};
  p.samples = {{{1, 2}, {1, 4096, 1, 4096}, {}}};
  const std::string file = write("hostile.pb.gz", leakless::pprof::encode_gzipped(p));
  const run_result top = cli({"top", file});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find(name), std::string::npos);
  const run_result list = cli({"list", file, "(a+a+)+b"});
  EXPECT_EQ(list.exit_code, 1);
  EXPECT_NE(list.err.find("no function"), std::string::npos) << list.err;
  const run_result backref = cli({"list", file, "(a)\\1"});
  EXPECT_EQ(backref.exit_code, 2) << backref.err;
}

TEST_F(Cli, LeaksJsonListsSuspectsMostLikelyFirst) {
  const std::string series = write_series("series", two_leaks());
  const run_result r = cli({"leaks", "--json", series});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["suspects"].is_array());
  ASSERT_EQ(j["suspects"].size(), 2u) << r.out;
  const nlohmann::json& first = j["suspects"][0];
  EXPECT_EQ(first["function"], "fast_leak");
  EXPECT_EQ(first["file"], "/src/app/fast_leak.cpp");
  EXPECT_EQ(first["line"], 20);
  EXPECT_EQ(j["suspects"][1]["function"], "slow_leak");
  for (const nlohmann::json& s : j["suspects"]) {
    EXPECT_TRUE(s["growth_bytes_per_min"].is_number());
    EXPECT_GT(s["growth_bytes_per_min"].get<double>(), 0);
    EXPECT_GE(s["confidence"].get<double>(), 0.95);
    EXPECT_LE(s["confidence"].get<double>(), 1.0);
    EXPECT_TRUE(s["verdict"].get<std::string>().starts_with("grows "));
    EXPECT_EQ(s["stack"].size(), 4u);
    EXPECT_EQ(s["inuse"].size(), 25u);
  }
  EXPECT_GT(first["growth_bytes_per_min"].get<double>(),
            j["suspects"][1]["growth_bytes_per_min"].get<double>());
  EXPECT_EQ(j["snapshots"], 25);

  // The same in text: the verdict and the stack under each suspect.
  const run_result text = cli({"leaks", series});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("#1 fast_leak  /src/app/fast_leak.cpp:20"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("never released"), std::string::npos);
  EXPECT_NE(text.out.find("/src/app/fast_leak.cpp is not available"), std::string::npos);
}

TEST_F(Cli, LeaksJsonHasAnEmptyArrayWhenNothingGrows) {
  leakless::test::synthetic_program p;
  p.sites = {leakless::test::churn("cache_put", 88, 512 * MiB),
             leakless::test::churn("handle_request", 31, 100 * MiB)};
  p.duration_seconds = 120;
  const run_result r = cli({"leaks", "--json", write_series("series", p)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["suspects"].is_array());
  EXPECT_TRUE(j["suspects"].empty());
  const run_result text = cli({"leaks", (dir_ / "series").string()});
  EXPECT_NE(text.out.find("No leak suspects"), std::string::npos) << text.out;
}

// Serves the given files, the next one on every request (the last one again at the end).
class profile_server {
 public:
  explicit profile_server(std::vector<std::string> bodies) : bodies_(std::move(bodies)) {
    server_.Get("/debug/pprof/heap", [this](const httplib::Request&, httplib::Response& res) {
      const std::size_t i = std::min(next_.fetch_add(1), bodies_.size() - 1);
      res.set_content(bodies_[i], "application/octet-stream");
    });
    server_.Get("/other", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html>not a profile</html>", "text/html");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~profile_server() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path = "/debug/pprof/heap") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::size_t requests() const { return next_.load(); }

 private:
  std::vector<std::string> bodies_;
  std::atomic<std::size_t> next_{0};
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(Cli, LeaksCollectsFromAUrl) {
  leakless::test::synthetic_program p = two_leaks();
  p.duration_seconds = 100;  // 21 profiles, 5 s apart by their own clocks
  std::vector<std::string> bodies;
  for (const auto& profile : leakless::test::synthetic_series(p)) {
    bodies.push_back(leakless::pprof::encode_gzipped(profile));
  }
  ASSERT_EQ(bodies.size(), 21u);
  profile_server server(bodies);
  const run_result r = cli({"leaks", "--json", "--url", server.url(), "--every", "20ms", "--for",
                            "400ms", "--keep", (dir_ / "kept").string(), "--progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.requests(), 21u);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["snapshots"], 21);
  ASSERT_EQ(j["suspects"].size(), 2u) << r.out;
  EXPECT_EQ(j["suspects"][0]["function"], "fast_leak");
  EXPECT_NEAR(j["duration_seconds"].get<double>(), 100, 1e-6);  // the profiles' own times
  EXPECT_NE(r.err.find("collected 21 snapshots"), std::string::npos) << r.err;
  // The progress bar, redrawn in place, ends full.
  EXPECT_NE(r.err.find("\r[" + std::string(30, '#') + "] 21/21 snapshots"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("] 1/21 snapshots"), std::string::npos) << r.err;
  // Every fetched profile was kept, byte for byte.
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(dir_ / "kept")) kept.push_back(e.path().string());
  std::sort(kept.begin(), kept.end());
  ASSERT_EQ(kept.size(), 21u);
  EXPECT_EQ(leakless::test::read_file(kept[3]), bodies[3]);
  // The kept directory is a series `leaks` reads again.
  const run_result again = cli({"leaks", "--json", (dir_ / "kept").string()});
  EXPECT_EQ(nlohmann::json::parse(again.out)["suspects"], j["suspects"]);
}

TEST_F(Cli, UrlErrorsAreClear) {
  profile_server server({"x"});
  const run_result html = cli({"snapshot", server.url("/other"), "-o", "out.pb.gz"});
  EXPECT_EQ(html.exit_code, 1);
  EXPECT_TRUE(html.err.starts_with("leakless: error: " + server.url("/other") +
                                   ": not a valid pprof profile"))
      << html.err;
  const run_result missing = cli({"snapshot", server.url("/nothing/here")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("HTTP 404"), std::string::npos) << missing.err;
  const run_result refused =
      cli({"leaks", "--url", "127.0.0.1:1", "--every", "10ms", "--for", "10ms"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("http://127.0.0.1:1/debug/pprof/heap: cannot connect"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(cli({"leaks", "--url", "127.0.0.1:1", "--every", "soon"}).exit_code, 2);
}

TEST_F(Cli, SnapshotFromAUrlWritesTheProfile) {
  leakless::test::synthetic_program p = two_leaks();
  const std::string body = leakless::pprof::encode_gzipped(leakless::test::synthetic_series(p)[3]);
  profile_server server({body});
  // host:port means the heap endpoint.
  const std::string host_port = server.url("").substr(std::string("http://").size());
  const run_result r = cli({"snapshot", host_port, "-o", "heap.pb.gz"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(leakless::test::read_file(dir_ / "heap.pb.gz"), body);
  EXPECT_NE(r.err.find("wrote heap.pb.gz"), std::string::npos) << r.err;
}

TEST_F(Cli, TopListAndDiffMatchGoPprof) {
  // A profile with inlined frames, drop_frames plumbing and many small functions (some dropped
  // under pprof's 0.5% node cutoff).
  leakless::pprof::profile p =
      leakless::test::empty_heap_profile(524288, 1'700'000'000'000'000'000);
  p.drop_frames = "(.* )?(std|__gnu_cxx)::(allocator|new_allocator)[<:].*";
  p.mappings = {{1, 0x400000, 0x900000, 0, "/srv/app/bin/app", "abcd", true, true, true, true}};
  p.functions = {{1, "std::allocator<char>::allocate(unsigned long)", "", "/usr/include/a.h", 1},
                 {2, "cache::put(int)", "", "/src/app/cache.cpp", 10},
                 {3, "cache::grow()", "", "/src/app/cache.cpp", 30},
                 {4, "main", "", "/src/app/main.cpp", 1},
                 // Names pprof simplifies when it reads them: one equal to its system name (an
                 // inlined template without a linkage name) and one only mangled.
                 {5, "std::make_unique<cache::entry>()", "std::make_unique<cache::entry>()",
                  "/usr/include/c++/12/bits/unique_ptr.h", 1064},
                 {6, "", "_ZN5cache5evictEv", "/src/app/cache.cpp", 50}};
  p.locations = {{1, 1, 0x401000, {{1, 5}}, false},
                 {2, 1, 0x402000, {{3, 33}, {2, 14}}, false},  // grow() inlined into put()
                 {3, 1, 0x403000, {{2, 16}}, false},
                 {4, 1, 0x404000, {{4, 7}}, false},
                 {5, 1, 0x405000, {{5, 1065}, {6, 52}}, false},
                 {6, 2, 0x7f0000001234, {}, false}};  // unsymbolized, in libstdc++
  std::uint64_t next_id = 7;
  for (int i = 0; i < 60; ++i) {  // small helpers, each called from main
    const std::uint64_t fn = 100 + static_cast<std::uint64_t>(i);
    p.functions.push_back({fn, "helper" + std::to_string(i), "", "/src/app/helpers.cpp", i * 3});
    p.locations.push_back({next_id, 1, 0x500000 + fn, {{fn, i * 3 + 1}}, false});
    const std::int64_t v = 1000 + i * 37;
    p.samples.push_back({{next_id, 4}, {1, v, 1, v}, {}});
    ++next_id;
  }
  p.samples.push_back({{1, 2, 4}, {10, 50 << 20, 8, 40 << 20}, {}});
  p.samples.push_back({{1, 3, 4}, {4, 9 << 20, 2, 3 << 20}, {}});
  p.samples.push_back({{2, 3, 4}, {1, 123456, 1, 12345}, {}});
  p.samples.push_back({{5, 4}, {3, 3 << 20, 3, 3 << 20}, {}});
  p.samples.push_back({{6, 4}, {2, 2 << 20, 2, 2 << 20}, {}});
  p.mappings.push_back({2, 0x7f0000000000, 0x7f0000200000, 0,
                        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "", false, false, false,
                        false});
  const std::string file = write("app.heap.pb.gz", leakless::pprof::encode_gzipped(p));
  leakless::pprof::profile base = p;
  base.time_nanos -= 60'000'000'000;
  for (auto& s : base.samples) {
    for (auto& v : s.values) v = v / 3;
  }
  const std::string base_file = write("base.heap.pb.gz", leakless::pprof::encode_gzipped(base));

  for (const std::string index : {"inuse_space", "alloc_space", "alloc_objects", "2"}) {
    const run_result ours = cli({"top", "--sample_index", index, file});
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    const std::string theirs = go_pprof("-top -sample_index=" + index + " " + file);
    EXPECT_EQ(top_table(ours.out), top_table(theirs)) << index;
    if (index.ends_with("space")) {  // the helpers' bytes are under 0.5% of the total
      EXPECT_NE(ours.out.find("Dropped 60 nodes"), std::string::npos) << ours.out;
    }
    EXPECT_NE(ours.out.find("  std::make_unique\n"), std::string::npos) << ours.out;
    EXPECT_NE(ours.out.find("  cache::evict\n"), std::string::npos) << ours.out;
    EXPECT_NE(ours.out.find("  [libstdc++.so.6]\n"), std::string::npos) << ours.out;
  }
  const run_result diff = cli({"diff", base_file, file});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(top_table(diff.out), top_table(go_pprof("-top -diff_base " + base_file + " " + file)));

  // list: the routine headers and the sampled lines carry pprof's numbers; the source itself is
  // not on this machine.
  const run_result list = cli({"list", file, "cache::"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const std::string theirs = go_pprof("-list 'cache::' " + file);
  for (const std::string& line : lines_of(theirs)) {
    if (line.starts_with("ROUTINE") || line.find("(flat, cum)") != std::string::npos ||
        line.starts_with("Total:")) {
      EXPECT_NE(list.out.find(line), std::string::npos) << line << "\n" << list.out;
    }
  }
  // grow() is inlined into put() at line 14: its line has the flat, put's line the cum.
  EXPECT_NE(list.out.find("   40.01MB    40.01MB     33:"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("         .    40.01MB     14:"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("Source not available"), std::string::npos);
  const run_result none = cli({"list", file, "^nothing$"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no function"), std::string::npos);
}

TEST_F(Cli, ReadsProfilesWrittenByGo) {
  fs::create_directories(dir_ / "go_profiles");
  const std::string script = "export HOME='" + (dir_ / "gohome").string() + "' GOCACHE='" +
                             (dir_ / "gohome/cache").string() +
                             "' GOPROXY=off GOFLAGS=-mod=mod && cd '" LEAKLESS_SOURCE_DIR
                             "/tests/cli/go_leak' && go run . '" +
                             (dir_ / "go_profiles").string() + "'";
  const run_result go = leakless::test::run_program({"/bin/bash", "-c", script}, {}, dir_);
  ASSERT_EQ(go.exit_code, 0) << "go run failed (scripts/setup installs golang-go): " << go.err;

  const std::string last = (dir_ / "go_profiles" / "go.11.heap.pb.gz").string();
  const run_result top = cli({"top", last});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(top_table(top.out), top_table(go_pprof("-top " + last)));
  EXPECT_NE(top.out.find("main.leakFast"), std::string::npos);

  const run_result leaks = cli({"leaks", "--json", (dir_ / "go_profiles").string()});
  ASSERT_EQ(leaks.exit_code, 0) << leaks.err;
  const nlohmann::json j = nlohmann::json::parse(leaks.out);
  ASSERT_EQ(j["suspects"].size(), 2u) << leaks.out;
  EXPECT_EQ(j["suspects"][0]["function"], "main.leakFast");
  EXPECT_EQ(j["suspects"][1]["function"], "main.leakSlow");
  EXPECT_TRUE(j["suspects"][0]["file"].get<std::string>().ends_with("go_leak/main.go"));
  EXPECT_EQ(j["suspects"][0]["line"], 24);
  EXPECT_EQ(j["suspects"][1]["line"], 27);
}

}  // namespace
