// tests/cli/report_test.cpp — `leakless report`: the data in the page and what a real browser
// renders from it.
//
// How it works: a simulated program (synthetic_series.hpp) with two leaks (add_user, grow_index)
// and a call site with steady churn (handle_request) is written as a directory of heap profiles,
// as `leakless run` would leave it. The report command runs through its CLI11 callback. The first
// test reads the JSON object the page carries and the inline flame graph; the second opens the
// page in headless Chromium (`--dump-dom`, which prints the DOM after the page's script ran) and
// checks what was drawn: the suspects' names and verdicts, the number of line series in the SVG
// charts, the flame graph's frames and the top table's rows. It is skipped, saying so, when
// Chromium is not installed.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "support/run_program.hpp"
#include "synthetic_series.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::test::synthetic_program;

class ReportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("leakless-report-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "run");
    synthetic_program program;
    program.sites = {leakless::test::leak("add_user", 31, 8.0 * (1 << 20)),
                     leakless::test::leak("grow_index", 77, 3.0 * (1 << 20)),
                     leakless::test::churn("handle_request", 12, 6.0 * (1 << 20))};
    program.every_seconds = 10;
    program.duration_seconds = 300;
    const auto series = leakless::test::synthetic_series(program);
    snapshots_ = series.size();
    for (std::size_t i = 0; i < series.size(); ++i) {
      std::ofstream(dir_ / "run" / ("heap.4242." + std::to_string(i) + ".heap.pb.gz"),
                    std::ios::binary)
          << leakless::pprof::encode_gzipped(series[i]);
    }
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  int report(std::vector<std::string> args) {
    CLI::App app;
    int status = leakless::cli::exit_ok;
    leakless::cli::add_report_command(app, status);
    args.insert(args.begin(), "report");
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return status;
  }

  fs::path dir_;
  std::size_t snapshots_ = 0;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++n;
  return n;
}

// The JSON object inside <script id="report-data">.
nlohmann::json page_data(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"report-data\">";
  const std::size_t begin = page.find(open);
  if (begin == std::string::npos) return nullptr;
  const std::size_t end = page.find("</script>", begin);
  return nlohmann::json::parse(page.substr(begin + open.size(), end - begin - open.size()));
}

TEST_F(ReportCommand, PutsTheAnalysisTheFlameGraphAndTheTopTableIntoOnePage) {
  ASSERT_EQ(report({(dir_ / "run").string(), "-o", (dir_ / "report.html").string()}), 0);
  const std::string page = leakless::test::read_file(dir_ / "report.html");
  ASSERT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  // Self-contained: nothing is fetched from anywhere.
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("href="), std::string::npos);
  EXPECT_EQ(count(page, "http://"), count(page, "http://www.w3.org/2000/svg"));  // namespaces only
  EXPECT_EQ(page.find("https://"), std::string::npos);

  const nlohmann::json data = page_data(page);
  ASSERT_TRUE(data.is_object());
  EXPECT_EQ(data["snapshots"], snapshots_);
  EXPECT_EQ(data["total"].size(), snapshots_);
  ASSERT_EQ(data["suspects"].size(), 2u);
  EXPECT_EQ(data["suspects"][0]["function"], "add_user");
  EXPECT_EQ(data["suspects"][0]["line"], 31);
  EXPECT_EQ(data["suspects"][1]["function"], "grow_index");
  EXPECT_EQ(data["suspects"][0]["inuse"].size(), snapshots_);
  EXPECT_NE(data["suspects"][0]["verdict"].get<std::string>().find("grows"), std::string::npos);
  EXPECT_FALSE(data["suspects"][0]["stack"].empty());
  // The last profile holds the two leaks and, most likely, some churn: the top table lists them by
  // live bytes, largest first, and the shares add up to at most 1.
  const nlohmann::json& top = data["top"];
  ASSERT_GE(top.size(), 2u);
  EXPECT_EQ(top[0]["function"], "add_user");
  double share = 0;
  for (std::size_t i = 0; i < top.size(); ++i) {
    share += top[i]["share"].get<double>();
    if (i > 0) {
      EXPECT_GE(top[i - 1]["bytes"].get<double>(), top[i]["bytes"].get<double>());
    }
  }
  EXPECT_LE(share, 1.0 + 1e-9);

  // The flame graph of the last profile, inline.
  EXPECT_EQ(count(page, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flame-graph\""), 1u);
  EXPECT_NE(page.find("<g class=\"frame\"><title>add_user — "), std::string::npos);
}

TEST_F(ReportCommand, KeepsNamesThatLookLikeMarkupInsideTheData) {
  synthetic_program program;
  program.sites = {leakless::test::leak("f</script><b>x", 5, 8.0 * (1 << 20))};
  program.every_seconds = 10;
  program.duration_seconds = 120;
  fs::create_directories(dir_ / "odd");
  const auto series = leakless::test::synthetic_series(program);
  for (std::size_t i = 0; i < series.size(); ++i) {
    std::ofstream(dir_ / "odd" / ("heap.7." + std::to_string(i) + ".heap.pb.gz"), std::ios::binary)
        << leakless::pprof::encode_gzipped(series[i]);
  }
  ASSERT_EQ(report({(dir_ / "odd").string(), "-o", (dir_ / "odd.html").string()}), 0);
  const std::string page = leakless::test::read_file(dir_ / "odd.html");
  EXPECT_EQ(page.find("</script><b>"), std::string::npos);
  const nlohmann::json data = page_data(page);
  ASSERT_TRUE(data.is_object());
  ASSERT_EQ(data["suspects"].size(), 1u);
  EXPECT_EQ(data["suspects"][0]["function"], "f</script><b>x");
}

TEST_F(ReportCommand, FailsClearlyOnADirectoryWithoutProfiles) {
  fs::create_directories(dir_ / "empty");
  testing::internal::CaptureStderr();
  EXPECT_EQ(report({(dir_ / "empty").string(), "-o", (dir_ / "x.html").string()}), 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("leakless: error: "), std::string::npos) << err;
  EXPECT_NE(err.find("empty"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ / "x.html"));
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
      const fs::path p = fs::path(dir) / name;
      if (fs::exists(p)) return p.string();
    }
  }
  return {};
}

TEST_F(ReportCommand, RendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium)";
  ASSERT_EQ(report({(dir_ / "run").string(), "-o", (dir_ / "report.html").string()}), 0);
  const auto r = leakless::test::run_program(
      {chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--user-data-dir=" + (dir_ / "chromium-profile").string(), "--dump-dom",
       "file://" + (dir_ / "report.html").string()},
      {}, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;

  // The script ran: the suspects' headings, verdicts and the title are in the DOM.
  EXPECT_NE(dom.find("<h3>#1 add_user  /src/app/add_user.cpp:31</h3>"), std::string::npos) << dom;
  EXPECT_NE(dom.find("<h3>#2 grow_index  /src/app/grow_index.cpp:77</h3>"), std::string::npos);
  EXPECT_EQ(count(dom, "<p class=\"verdict\">grows "), 2u);
  EXPECT_NE(dom.find("<title>leakless: 2 suspects, add_user</title>"), std::string::npos);
  // Charts: the memory chart has the whole heap and one line per suspect (3 series); each suspect
  // has its own chart with its line and a dashed trend line.
  EXPECT_EQ(count(dom, "<svg class=\"chart\""), 3u);
  EXPECT_EQ(count(dom, "class=\"series\""), 3u + 2u);
  EXPECT_EQ(count(dom, "class=\"trend\""), 2u);
  EXPECT_EQ(count(dom, "data-name=\"add_user\""), 2u);
  // The flame graph's frames and the top table's rows.
  EXPECT_GE(count(dom, "<g class=\"frame\">"), 4u);  // all, main, the leaks
  EXPECT_NE(dom.find("<title>add_user — "), std::string::npos);
  const std::string row = "<tr class=\"top-row\"><td class=\"num\">";
  std::vector<std::string> rows;  // the function column of every row
  for (std::size_t at = dom.find(row); at != std::string::npos; at = dom.find(row, at + 1)) {
    const std::size_t cell = dom.find("</td><td>", at) + 9;
    rows.push_back(dom.substr(cell, dom.find("</td>", cell) - cell));
  }
  ASSERT_GE(rows.size(), 2u) << dom;
  EXPECT_EQ(rows[0], "add_user");
  EXPECT_NE(std::find(rows.begin(), rows.end(), "grow_index"), rows.end());
}

}  // namespace
