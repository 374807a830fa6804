// tests/cli/flame_test.cpp — the flame graph: merged stacks, dropped allocation plumbing, the SVG
// it draws and the `leakless flame` command's output and errors.
//
// How it works: a small heap profile is built by hand (main calls add_user and handle_request;
// add_user allocates through std::make_unique, which the profile's drop_frames names, and one
// location holds an inlined frame). The tests check the tree build_flame_tree() makes from it,
// then parse the SVG render_flame_svg() writes (every frame's <title> and <rect> width) and check
// widths proportional to the values, escaping and the frames left out. The command tests run the
// command's callback through CLI11 and read the file it wrote.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "commands.hpp"
#include "flame_graph.hpp"
#include "pprof/profile.hpp"
#include "profile_files.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::cli::build_flame_tree;
using leakless::cli::flame_node;
using leakless::cli::render_flame_svg;
namespace pprof = leakless::pprof;

// main -> add_user -> std::make_unique<User>() (dropped): 3 MiB live
// main -> handle_request (with parse_header inlined into it) -> std::vector<char>::_M_realloc: 1
// MiB
pprof::profile sample_profile() {
  pprof::profile p;
  p.sample_types = {{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}};
  p.period_type = {"space", "bytes"};
  p.period = 524288;
  p.drop_frames = R"((.* )?(std|__gnu_cxx)::(make_unique|allocator)[<:].*)";
  p.functions = {{1, "main", "main", "/src/main.cpp", 1},
                 {2, "add_user(int, std::string const&)", "_Z8add_user", "/src/users.cpp", 20},
                 {3, "std::unique_ptr<User> std::make_unique<User>(int&)", "_ZSt11make_unique",
                  "/usr/include/c++/12/bits/unique_ptr.h", 1065},
                 {4, "handle_request(long)", "_Z14handle_request", "/src/server.cpp", 40},
                 {5, "parse_header(std::string_view)", "_Z12parse_header", "/src/server.cpp", 10},
                 {6, "std::vector<char>::_M_realloc_insert", "_ZNSt6vector",
                  "/usr/include/c++/12/bits/vector.tcc", 400}};
  p.locations = {{10, 0, 0x1000, {{1, 5}}, false},
                 {11, 0, 0x2000, {{2, 21}}, false},
                 {12, 0, 0x3000, {{3, 1070}}, false},
                 {13, 0, 0x4000, {{5, 12}, {4, 44}}, false},  // parse_header inlined
                 {14, 0, 0x5000, {{6, 450}}, false}};
  p.samples = {{{12, 11, 10}, {3, 3 << 20, 3, 3 << 20}, {}},
               {{14, 13, 10}, {8, 8 << 20, 1, 1 << 20}, {}},
               {{11, 10}, {0, 0, 0, 0}, {}}};
  return p;
}

const flame_node* child(const flame_node& n, const std::string& name) {
  for (const flame_node& c : n.children) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(FlameTree, MergesStacksAndDropsTheAllocationPlumbing) {
  const flame_node root = build_flame_tree(sample_profile(), 3);  // inuse_space
  EXPECT_EQ(root.name, "all");
  EXPECT_EQ(root.value, 4 << 20);
  ASSERT_EQ(root.children.size(), 1u);
  const flame_node& main_node = root.children[0];
  EXPECT_EQ(main_node.name, "main");
  EXPECT_EQ(main_node.value, 4 << 20);
  const flame_node* add_user = child(main_node, "add_user(int, std::string const&)");
  ASSERT_NE(add_user, nullptr);
  EXPECT_EQ(add_user->value, 3 << 20);
  EXPECT_TRUE(add_user->children.empty()) << "std::make_unique is allocation plumbing";
  const flame_node* handler = child(main_node, "handle_request(long)");
  ASSERT_NE(handler, nullptr);
  const flame_node* inlined = child(*handler, "parse_header(std::string_view)");
  ASSERT_NE(inlined, nullptr) << "an inlined frame sits above the function it was inlined into";
  ASSERT_EQ(inlined->children.size(), 1u);
  EXPECT_EQ(inlined->children[0].name, "std::vector<char>::_M_realloc_insert");
}

TEST(FlameTree, UsesTheChosenSampleType) {
  const flame_node root = build_flame_tree(sample_profile(), 1);  // alloc_space
  EXPECT_EQ(root.value, 11 << 20);
  const flame_node* handler = child(root.children.at(0), "handle_request(long)");
  ASSERT_NE(handler, nullptr);
  EXPECT_EQ(handler->value, 8 << 20);
}

struct svg_frame {
  std::string title;
  double width;
};

// Every frame's title and rect width, from the SVG text (each frame is one
// <g class="frame"><title>T</title><rect x=".." y=".." width="W" ...> run).
std::map<std::string, svg_frame> frames_of(const std::string& svg) {
  std::map<std::string, svg_frame> out;
  const std::string open = "<g class=\"frame\"><title>";
  for (std::size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const std::size_t title_begin = at + open.size();
    const std::size_t title_end = svg.find("</title>", title_begin);
    const std::size_t width_at = svg.find(" width=\"", title_end);
    if (title_end == std::string::npos || width_at == std::string::npos) break;
    const std::string title = svg.substr(title_begin, title_end - title_begin);
    const std::string name = title.substr(0, title.find(" — "));
    out[name] = {title, std::stod(svg.substr(width_at + 8))};
  }
  return out;
}

TEST(FlameSvg, DrawsEveryFrameWithAWidthProportionalToItsValue) {
  leakless::cli::flame_options options;
  options.width = 1020;  // 1000 px for the frames after 10 px of padding on each side
  const std::string svg = render_flame_svg(sample_profile(), 3, options);
  ASSERT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("inuse_space — total 4.0 MiB"), std::string::npos);

  const auto frames = frames_of(svg);
  ASSERT_EQ(frames.size(), 6u) << svg;  // all, main, add_user, handle_request, parse_header, vector
  EXPECT_DOUBLE_EQ(frames.at("all").width, 1000.0);
  EXPECT_DOUBLE_EQ(frames.at("add_user(int, std::string const&amp;)").width, 750.0);
  EXPECT_DOUBLE_EQ(frames.at("handle_request(long)").width, 250.0);
  EXPECT_EQ(frames.at("add_user(int, std::string const&amp;)").title,
            "add_user(int, std::string const&amp;) — 3.0 MiB (75.00%)");
  EXPECT_EQ(frames.count("std::unique_ptr&lt;User&gt; std::make_unique&lt;User&gt;(int&amp;)"), 0u);
  EXPECT_EQ(svg.find("make_unique"), std::string::npos);
}

TEST(FlameSvg, SaysSoWhenThereAreNoSamples) {
  pprof::profile p = sample_profile();
  p.samples.clear();
  const std::string svg = render_flame_svg(p, 3);
  EXPECT_NE(svg.find("no samples"), std::string::npos);
  EXPECT_EQ(svg.find("class=\"frame\""), std::string::npos);
}

class FlameCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("leakless-flame-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "heap.pb.gz", std::ios::binary) << pprof::encode_gzipped(sample_profile());
    std::ofstream(dir_ / "garbage.pb.gz", std::ios::binary) << "this is not a profile";
  }
  void TearDown() override { fs::remove_all(dir_); }

  int run(std::vector<std::string> args) {
    CLI::App app;
    int status = leakless::cli::exit_ok;
    leakless::cli::add_flame_command(app, status);
    args.insert(args.begin(), "flame");
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return status;
  }
  fs::path dir_;
};

TEST_F(FlameCommand, WritesTheSvgOfTheDefaultOrChosenSampleType) {
  ASSERT_EQ(run({(dir_ / "heap.pb.gz").string(), "-o", (dir_ / "in.svg").string()}), 0);
  const std::string inuse = leakless::test::read_file(dir_ / "in.svg");
  EXPECT_NE(inuse.find("inuse_space — total 4.0 MiB"), std::string::npos);
  EXPECT_EQ(frames_of(inuse).size(), 6u);

  ASSERT_EQ(run({(dir_ / "heap.pb.gz").string(), "--sample-index", "alloc_space", "-o",
                 (dir_ / "alloc.svg").string()}),
            0);
  EXPECT_NE(leakless::test::read_file(dir_ / "alloc.svg").find("alloc_space — total 11.0 MiB"),
            std::string::npos);
  ASSERT_EQ(run({(dir_ / "heap.pb.gz").string(), "--sample-index", "0", "-o",
                 (dir_ / "objects.svg").string()}),
            0);
  EXPECT_NE(leakless::test::read_file(dir_ / "objects.svg").find("alloc_objects — total 11"),
            std::string::npos);
}

TEST_F(FlameCommand, FailsOnAMalformedProfileOrAnUnknownSampleType) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(run({(dir_ / "garbage.pb.gz").string(), "-o", (dir_ / "x.svg").string()}), 1);
  EXPECT_EQ(run({(dir_ / "heap.pb.gz").string(), "--sample-index", "cpu", "-o",
                 (dir_ / "y.svg").string()}),
            2);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("garbage.pb.gz: not a valid pprof profile"), std::string::npos) << err;
  EXPECT_NE(err.find("no sample type 'cpu'"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ / "x.svg"));
}

}  // namespace
