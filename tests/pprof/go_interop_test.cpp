// tests/pprof/go_interop_test.cpp — profiles pass through Go's own pprof package both ways.
//
// How it works: a profile we encode is handed to Go 1.19's `go tool pprof -proto`, which parses
// it with github.com/google/pprof/profile and writes it back with Go's encoder; our decoder then
// reads Go's bytes. Every sample must come back with the same values and the same stack of
// function names, files and lines, and mappings keep their files and build IDs: Go reads what we
// write, and we read what Go writes. Go's cache and home go to a scratch directory; no network.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "pprof/profile.hpp"

namespace leakless::pprof {
namespace {

profile sample_profile() {
  profile p;
  p.sample_types = {{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}};
  p.period_type = {"space", "bytes"};
  p.period = 524288;
  p.time_nanos = 1'700'000'000'000'000'000;
  p.mappings = {{1, 0x400000, 0x500000, 0, "/usr/bin/server", "0123abcd", true, true, true, true}};
  p.functions = {{1, "cache::add_user(int)", "_ZN5cache8add_userEi", "/src/cache.cpp", 10},
                 {2, "main", "main", "/src/main.cpp", 1}};
  p.locations = {{1, 1, 0x401000, {{1, 14}}, false}, {2, 1, 0x400800, {{2, 7}}, false}};
  p.samples = {{{1, 2}, {10, 10240, 4, 4096}, {{"bytes", "", 1024, ""}}},
               {{2}, {1, 64, 1, 64}, {{"bytes", "", 64, ""}}}};
  return p;
}

// One sample as text: values, then each frame's function, file and line, leaf first.
std::vector<std::string> describe(const profile& p) {
  std::vector<std::string> out;
  for (const sample& s : p.samples) {
    std::ostringstream text;
    for (std::int64_t v : s.values) text << v << ' ';
    for (std::uint64_t id : s.location_ids) {
      const auto loc = std::find_if(p.locations.begin(), p.locations.end(),
                                    [&](const location& l) { return l.id == id; });
      for (const line& l : loc->lines) {
        const auto fn = std::find_if(p.functions.begin(), p.functions.end(),
                                     [&](const function& f) { return f.id == l.function_id; });
        text << '|' << fn->name << '@' << fn->filename << ':' << l.line;
      }
    }
    out.push_back(text.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GoInterop, GoReadsOurProfilesAndWeReadGos) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("leakless_go_interop_" + std::to_string(::getpid()));
  fs::create_directories(dir / "home");
  const profile ours = sample_profile();
  { std::ofstream(dir / "ours.pb.gz", std::ios::binary) << encode_gzipped(ours); }
  const std::string home = (dir / "home").string();
  const std::string command = "cd '" + dir.string() + "' && HOME='" + home + "' GOCACHE='" + home +
                              "/cache' GOPROXY=off PPROF_TMPDIR='" + home +
                              "' go tool pprof -proto ours.pb.gz > go.pb.gz 2> go.err";
  const int status = std::system(command.c_str());
  std::ifstream err(dir / "go.err");
  const std::string err_text((std::istreambuf_iterator<char>(err)), {});
  ASSERT_EQ(status, 0) << "go tool pprof failed (scripts/setup installs golang-go): " << err_text;

  std::ifstream in(dir / "go.pb.gz", std::ios::binary);
  const std::string go_bytes((std::istreambuf_iterator<char>(in)), {});
  const profile theirs = decode(go_bytes);
  fs::remove_all(dir);

  EXPECT_EQ(theirs.sample_types, ours.sample_types);
  EXPECT_EQ(theirs.period_type, ours.period_type);
  EXPECT_EQ(theirs.period, ours.period);
  EXPECT_EQ(describe(theirs), describe(ours));
  ASSERT_EQ(theirs.mappings.size(), 1u);
  EXPECT_EQ(theirs.mappings[0].filename, "/usr/bin/server");
  EXPECT_EQ(theirs.mappings[0].build_id, "0123abcd");
  EXPECT_TRUE(theirs.mappings[0].has_functions);
  for (const sample& s : theirs.samples) {
    ASSERT_EQ(s.labels.size(), 1u);
    EXPECT_EQ(s.labels[0].key, "bytes");
  }
}

}  // namespace
}  // namespace leakless::pprof
