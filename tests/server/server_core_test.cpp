// tests/server/server_core_test.cpp — the debug server's parts that need no HTTP: request
// parsing, the metrics registry and exposition (checked by promtool), profile subtraction, and the
// /debug/pprof handlers called directly (statuses, headers, bodies, Go's errors).
//
// How it works: plain GoogleTest cases against the static core, so they also run under the
// sanitizers. Handlers are given a sleep function that returns at once, so CPU and delta
// profiles take no wall time; nothing here depends on timing.
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "cpu/profiler.hpp"
#include "pprof/delta.hpp"
#include "pprof/profile.hpp"
#include "server/handlers.hpp"
#include "server/metrics.hpp"
#include "server/request.hpp"

#include <leakless/cache.hpp>

namespace {

using leakless::server::http_request;
using leakless::server::http_response;

std::string header(const http_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

leakless::server::handler_options instant() {
  leakless::server::handler_options o;
  o.sleep = [](std::chrono::seconds) { return true; };
  return o;
}

http_response get(const std::string& name, std::multimap<std::string, std::string> params = {}) {
  http_request r;
  r.name = name;
  r.params = std::move(params);
  return leakless::server::handle_pprof(r, instant());
}

void expect_go_error(const http_response& r, int status, const std::string& message) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(header(r, "X-Go-Pprof"), "1");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.body, message + "\n");
}

TEST(ListenAddress, ParsesAndDefaultsToLoopback) {
  using leakless::server::parse_listen_address;
  std::string why;
  auto a = parse_listen_address("0.0.0.0:6060", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 6060);
  a = parse_listen_address(":6061", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6061);
  a = parse_listen_address("7000", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  a = parse_listen_address("[::1]:0", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  a = parse_listen_address("localhost:80", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "localhost");
  for (const char* bad : {"", "host:", "host:65536", "host:-1", "::1:80", "[::1]80", "[::1",
                          "a b:80", "host:80x", "[]:80"}) {
    why.clear();
    EXPECT_FALSE(parse_listen_address(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(GoParsing, IntAndSymbolRequests) {
  using leakless::server::parse_go_int;
  EXPECT_EQ(parse_go_int("30"), 30);
  EXPECT_EQ(parse_go_int("-5"), -5);
  EXPECT_EQ(parse_go_int("+7"), 7);
  EXPECT_EQ(parse_go_int("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(parse_go_int("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(parse_go_int("9223372036854775808"));
  EXPECT_FALSE(parse_go_int(""));
  EXPECT_FALSE(parse_go_int(" 1"));
  EXPECT_FALSE(parse_go_int("1s"));
  EXPECT_FALSE(parse_go_int("-"));
  const auto words = leakless::server::parse_symbol_request("0x10+017+9+0b11+0o7+junk+0+0x");
  EXPECT_EQ(words, (std::vector<std::uint64_t>{0x10, 017, 9, 3, 7}));
  EXPECT_TRUE(leakless::server::parse_symbol_request("").empty());
  EXPECT_EQ(leakless::server::parse_symbol_request("0xffffffffffffffff"),
            std::vector<std::uint64_t>{UINT64_MAX});
  EXPECT_TRUE(leakless::server::parse_symbol_request("0x10000000000000000").empty());
}

TEST(Exposition, GroupsByNameAndEscapes) {
  using leakless::server::metric_sample;
  const std::vector<metric_sample> samples = {
      {"a_total", "first \\ help\nline", "counter", {{"cache", "x\"y\\z\n"}}, 1},
      {"b", "b help", "gauge", {}, 0.5},
      {"a_total", "ignored", "counter", {{"cache", "two"}}, 2e20},
  };
  EXPECT_EQ(leakless::server::format_exposition(samples),
            "# HELP a_total first \\\\ help\\nline\n"
            "# TYPE a_total counter\n"
            "a_total{cache=\"x\\\"y\\\\z\\n\"} 1\n"
            "a_total{cache=\"two\"} 2e+20\n"
            "# HELP b b help\n"
            "# TYPE b gauge\n"
            "b 0.5\n");
  EXPECT_TRUE(leakless::server::valid_metric_name("leakless:x_1"));
  EXPECT_FALSE(leakless::server::valid_metric_name("1x"));
  EXPECT_FALSE(leakless::server::valid_label_name("__name"));
  EXPECT_FALSE(leakless::server::valid_label_name("a:b"));
}

void odd_collector(void*, leakless_metrics_emit_fn emit, void* context) {
  const leakless::metrics_emitter e(emit, context);
  e.gauge("core_test_entries", "Entries \"quoted\" \\ and\nnewline.", 3,
          {{"cache", "we\"ird\\name\n"}});
  e.counter("core_test_hits_total", "Hits.", 1e6, {{"cache", "a"}});
  e.gauge("bad name", "dropped", 1);
  e.gauge("core_test_nan", "Not a number.", std::nan(""));
}

TEST(Registry, ScrapeHasProcessMetricsAndCollectorsAndPassesPromtool) {
  const std::uint64_t id = leakless::server::register_collector(odd_collector, nullptr);
  ASSERT_NE(id, 0u);
  const std::string page = leakless::server::scrape();
  leakless::server::unregister_collector(id);
  for (const char* name :
       {"process_resident_memory_bytes ", "process_virtual_memory_bytes ",
        "process_cpu_seconds_total ", "process_open_fds ", "process_threads ",
        "process_start_time_seconds ", "core_test_hits_total{cache=\"a\"} 1e+06\n",
        "core_test_entries{cache=\"we\\\"ird\\\\name\\n\"} 3\n", "core_test_nan NaN\n",
        "leakless_metrics_invalid_samples_total "}) {
    EXPECT_NE(page.find(name), std::string::npos) << name << "\n" << page;
  }
  EXPECT_EQ(page.find("bad name"), std::string::npos);
  EXPECT_EQ(leakless::server::scrape().find("core_test_entries"), std::string::npos);

  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("server_core_metrics." + std::to_string(getpid()));
  std::ofstream(file) << page;
  const std::string command = "promtool check metrics < " + file.string() + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, p) != nullptr) output += buffer;
  const int status = pclose(p);
  std::filesystem::remove(file);
  // promtool only lints (help text style, counters' _total): it fails only on parse errors.
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
}

TEST(Registry, UnregisterWaitsForACollectInProgress) {
  struct state {
    std::mutex m;
    std::condition_variable cv;
    bool entered = false, unregistering = false;
    std::atomic<bool> unregistered{false};
    bool unregistered_during_collect = true;
  } s;
  const auto collect = [](void* context, leakless_metrics_emit_fn, void*) {
    auto* st = static_cast<state*>(context);
    std::unique_lock lock(st->m);
    st->entered = true;
    st->cv.notify_all();
    st->cv.wait(lock, [st] { return st->unregistering; });
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let unregister try
    st->unregistered_during_collect = st->unregistered.load();
  };
  const std::uint64_t id = leakless::server::register_collector(collect, &s);
  std::thread scraper([] { leakless::server::scrape(); });
  {
    std::unique_lock lock(s.m);
    s.cv.wait(lock, [&] { return s.entered; });
  }
  std::thread remover([&] {
    {
      std::lock_guard lock(s.m);
      s.unregistering = true;
    }
    s.cv.notify_all();
    leakless::server::unregister_collector(id);
    s.unregistered.store(true);
  });
  scraper.join();
  remover.join();
  EXPECT_FALSE(s.unregistered_during_collect);
  EXPECT_TRUE(s.unregistered.load());
}

TEST(Registry, WithoutTheLibraryANamedCacheRegistersNothing) {
  // This test links the core, not libleakless.so: the weak C ABI is absent.
  EXPECT_FALSE(leakless::detail::metrics_available());
  const leakless::metrics_registration r(odd_collector, nullptr);
  EXPECT_FALSE(r.active());
  leakless::cache_options<> options;
  options.name = "alone";
  leakless::cache<int, int> c(options);
  c.put(1, 2);
  EXPECT_EQ(c.get(1), 2);
  EXPECT_EQ(leakless::server::scrape().find("alone"), std::string::npos);
}

leakless::pprof::profile two_sample_profile(std::int64_t a, std::int64_t b) {
  using namespace leakless::pprof;
  profile p;
  p.sample_types = {{"inuse_space", "bytes"}};
  p.mappings = {mapping{1, 0x1000, 0x9000, 0, "/bin/x", "", true, false, false, false}};
  p.functions = {function{1, "f", "f", "x.cc", 1}, function{2, "g", "g", "x.cc", 9}};
  p.locations = {location{1, 1, 0x1100, {line{1, 2}}, false},
                 location{2, 1, 0x1200, {line{2, 10}}, false}};
  if (a != 0) p.samples.push_back(sample{{1}, {a}, {}});
  if (b != 0) p.samples.push_back(sample{{2, 1}, {b}, {}});
  return p;
}

TEST(Delta, SubtractsMatchingStacksAndCarriesTheRest) {
  using namespace leakless::pprof;
  // before: f=100, g<-f=50; after: f=300 only (g's memory was freed).
  const profile delta = subtract(two_sample_profile(100, 50), two_sample_profile(300, 0));
  ASSERT_EQ(delta.samples.size(), 2u);
  EXPECT_EQ(delta.samples[0].values, std::vector<std::int64_t>{200});
  EXPECT_EQ(delta.samples[1].values, std::vector<std::int64_t>{-50});
  // The carried sample's stack resolves to g then f in the result.
  const auto name_of = [&](std::uint64_t location_id) {
    for (const location& l : delta.locations) {
      if (l.id != location_id) continue;
      for (const function& f : delta.functions) {
        if (f.id == l.lines.at(0).function_id) return f.name;
      }
    }
    return std::string("?");
  };
  ASSERT_EQ(delta.samples[1].location_ids.size(), 2u);
  EXPECT_EQ(name_of(delta.samples[1].location_ids[0]), "g");
  EXPECT_EQ(name_of(delta.samples[1].location_ids[1]), "f");
  // It encodes and decodes (every id it refers to exists).
  EXPECT_EQ(decode(encode(delta)), delta);
  // Equal profiles give no samples; different sample types are refused.
  EXPECT_TRUE(subtract(two_sample_profile(7, 8), two_sample_profile(7, 8)).samples.empty());
  profile other = two_sample_profile(1, 1);
  other.sample_types[0].type = "alloc_space";
  EXPECT_THROW(subtract(other, two_sample_profile(1, 1)), std::invalid_argument);
}

TEST(Handlers, IndexListsEveryProfile) {
  const http_response r = get("");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  for (const char* name :
       {"allocs", "cmdline", "goroutine", "heap", "profile", "symbol", "threads"}) {
    EXPECT_NE(r.body.find(std::string("<a href='") + name + "?debug=1'>" + name + "</a>"),
              std::string::npos)
        << name;
  }
  EXPECT_NE(r.body.find("threads?debug=2"), std::string::npos);
}

TEST(Handlers, ProfilesAsAttachmentsOrText) {
  http_response r = get("heap");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/octet-stream");
  EXPECT_EQ(header(r, "Content-Disposition"), "attachment; filename=\"heap\"");
  leakless::pprof::profile p = leakless::pprof::decode(r.body);
  ASSERT_EQ(p.sample_types.size(), 4u);
  EXPECT_EQ(p.sample_types[3].type, "inuse_space");
  r = get("allocs");
  EXPECT_EQ(leakless::pprof::decode(r.body).default_sample_type, "alloc_space");
  r = get("heap", {{"debug", "1"}});
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body.rfind("heap profile: ", 0), 0u) << r.body;
  r = get("goroutine");
  EXPECT_EQ(header(r, "Content-Disposition"), "attachment; filename=\"goroutine\"");
  EXPECT_EQ(leakless::pprof::decode(r.body).sample_types.at(0).type, "threads");
  r = get("threads", {{"debug", "2"}});
  EXPECT_NE(r.body.find("thread " + std::to_string(getpid()) + " ("), std::string::npos);
  r = get("threads", {{"debug", "junk"}});  // Go's Atoi error: debug=0
  EXPECT_EQ(r.content_type, "application/octet-stream");
}

TEST(Handlers, GoErrors) {
  expect_go_error(get("nope"), 404, "Unknown profile");
  expect_go_error(get("trace"), 404, "Unknown profile");
  for (const char* bad : {"0", "-1", "x", "1.5"}) {
    expect_go_error(get("heap", {{"seconds", bad}}), 400,
                    R"(invalid value for "seconds" - must be a positive integer)");
  }
  expect_go_error(get("heap", {{"seconds", "1"}, {"debug", "1"}}), 400,
                  "seconds and debug params are incompatible");
  expect_go_error(get("allocs", {{"seconds", "301"}}), 400,
                  "profile duration exceeds server's limit of 300 seconds");
  expect_go_error(get("profile", {{"seconds", "301"}}), 400,
                  "profile duration exceeds server's limit of 300 seconds");
}

TEST(Handlers, DeltaProfiles) {
  for (const char* name : {"heap", "allocs", "threads"}) {
    const http_response r = get(name, {{"seconds", "1"}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(header(r, "Content-Disposition"),
              std::string("attachment; filename=\"") + name + "-delta\"");
    const leakless::pprof::profile p = leakless::pprof::decode(r.body);
    EXPECT_GT(p.duration_nanos, 0);
    EXPECT_FALSE(p.sample_types.empty());
  }
  // An interrupted wait (the server stopping) is Go's canceled request.
  leakless::server::handler_options stopping;
  stopping.sleep = [](std::chrono::seconds) { return false; };
  http_request r;
  r.name = "heap";
  r.params = {{"seconds", "5"}};
  expect_go_error(leakless::server::handle_pprof(r, stopping), 500, "context canceled");
}

TEST(Handlers, CpuProfileAndAlreadyInUse) {
  http_response r = get("profile", {{"seconds", "1"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Disposition"), "attachment; filename=\"profile\"");
  EXPECT_EQ(leakless::pprof::decode(r.body).sample_types.at(1).type, "cpu");
  EXPECT_FALSE(leakless::cpu::running());

  std::ostringstream own;
  leakless::cpu::start(own);
  r = get("profile", {{"seconds", "1"}});
  leakless::cpu::stop();
  expect_go_error(r, 500, "Could not enable CPU profiling: cpu profiling already in use");
  EXPECT_TRUE(header(r, "Content-Disposition").empty());
}

[[gnu::noinline]] int symbol_target_function(int x) { return x * 3 + 1; }

TEST(Handlers, SymbolGetAndPost) {
  char address[32];
  std::snprintf(address, sizeof address, "%#lx",
                reinterpret_cast<unsigned long>(&symbol_target_function) + 1);
  http_request r;
  r.name = "symbol";
  r.raw_query = std::string(address) + "+0x0+bogus";
  http_response res = leakless::server::handle_pprof(r, instant());
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(res.body.rfind("num_symbols: 1\n", 0), 0u);
  EXPECT_NE(
      res.body.find(std::string(address) + " " + "(anonymous namespace)::symbol_target_function"),
      std::string::npos)
      << res.body;
  r.method = "POST";
  r.raw_query.clear();
  r.body = std::string("0x1+") + address;
  res = leakless::server::handle_pprof(r, instant());
  EXPECT_NE(res.body.find(std::string(address) + " "), std::string::npos) << res.body;
  r.body.clear();
  EXPECT_EQ(leakless::server::handle_pprof(r, instant()).body, "num_symbols: 1\n");
  EXPECT_EQ(symbol_target_function(1), 4);
}

TEST(Handlers, Cmdline) {
  const http_response r = get("cmdline");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_NE(r.body.find("server_core_test"), std::string::npos);
  EXPECT_NE(r.body.back(), '\0');
}

}  // namespace
