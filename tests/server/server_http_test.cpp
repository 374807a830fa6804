// tests/server/server_http_test.cpp — the debug server through HTTP, as clients see it.
//
// How it works: each case starts tests/server/server_scenario (linked with libleakless.so and
// starting leakless::debug_server on port 0, which writes the port it got to a file; or plain and
// preloaded with LEAKLESS_HTTP), waits for it to listen (bounded), talks to it with cpp-httplib's
// client and checks status, headers and body of every endpoint: the index, the profiles (decoded
// with our pprof decoder: sample types and the scenario's known functions), delta profiles, Go's
// errors, cmdline, symbol (GET and POST), /metrics, the bearer token, the default bind address,
// clients that connect and never send or never read, and LEAKLESS_HTTP's error lines. The program
// is stopped with SIGTERM and must exit cleanly. Nothing asserts on time.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pprof/profile.hpp"
#include "support/profile_query.hpp"
#include "support/run_program.hpp"

namespace {

namespace fs = std::filesystem;
using leakless::test::finish_program;
using leakless::test::start_program;

using leakless::test::samples_through;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// An empty directory of this test process for one case's files.
fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("leakless_server_test." + name + "." + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A scenario program serving the debug server.
class scenario {
 public:
  // Linked: the program starts debug_server(address) itself.
  static scenario linked(const std::string& name, const std::string& address = "127.0.0.1:0",
                         std::map<std::string, std::string> env = {}) {
    scenario s(name);
    const fs::path port_file = s.dir_ / "port";
    env.emplace("LEAKLESS_SAMPLE_RATE", "64k");
    s.pid_ = start_program({SCENARIO_LINKED, "--listen", address, port_file.string()}, env, s.dir_);
    for (int i = 0; i < 3000 && s.port_ == 0; ++i) {  // up to 30 s on a loaded machine
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port) s.port_ = port;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }

  // Plain program with LD_PRELOAD and LEAKLESS_HTTP=127.0.0.1:<port>.
  static scenario preloaded(const std::string& name, std::map<std::string, std::string> env) {
    scenario s(name);
    env.emplace("LD_PRELOAD", LEAKLESS_LIBRARY);
    env.emplace("LEAKLESS_SAMPLE_RATE", "64k");
    if (env.count("LEAKLESS_HTTP") == 0) {
      s.port_ = free_port();
      env["LEAKLESS_HTTP"] = "127.0.0.1:" + std::to_string(s.port_);
    }
    s.pid_ = start_program({SCENARIO_PLAIN}, env, s.dir_);
    for (int i = 0; i < 3000; ++i) {  // until it says "ready"
      if (leakless::test::read_file(s.dir_ / "stdout").find("ready") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }

  scenario(scenario&& other) noexcept
      : dir_(std::exchange(other.dir_, {})),
        pid_(std::exchange(other.pid_, 0)),
        port_(other.port_) {}
  // Stops the program and removes its directory, which is kept when the test failed.
  ~scenario() {
    if (pid_ != 0) stop();
    if (!dir_.empty() && !::testing::Test::HasFailure()) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
  }

  int port() const { return port_; }
  std::string output() const { return leakless::test::read_file(dir_ / "stdout"); }
  pid_t pid() const { return pid_; }

  // Waits (bounded) until the heap profile shows the scenario's growing cache.
  void wait_for_growth() const {
    httplib::Client c = client();
    for (int i = 0; i < 300; ++i) {
      const auto r = c.Get("/debug/pprof/heap?debug=1");
      if (r && r->body.find("grow_request_cache") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    return c;
  }

  // SIGTERM, then the program's result.
  leakless::test::run_result stop() {
    kill(pid_, SIGTERM);
    const auto r = finish_program(pid_, dir_);
    pid_ = 0;
    return r;
  }

 private:
  explicit scenario(const std::string& name) : dir_(fresh_dir(name)) {}

  fs::path dir_;
  pid_t pid_ = 0;
  int port_ = 0;
};

void expect_go_error(const httplib::Result& r, int status, const std::string& message) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->get_header_value("X-Go-Pprof"), "1");
  EXPECT_EQ(r->body, message + "\n");
}

TEST(ServerHttp, EveryEndpoint) {
  scenario s = scenario::linked("endpoints");
  ASSERT_NE(s.port(), 0);
  s.wait_for_growth();
  httplib::Client c = s.client();

  auto r = c.Get("/debug/pprof/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  for (const char* name : {"allocs", "heap", "threads", "goroutine", "profile", "cmdline"}) {
    EXPECT_NE(r->body.find(std::string(">") + name + "</a>"), std::string::npos) << name;
  }

  r = c.Get("/debug/pprof/heap");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r->get_header_value("Content-Disposition"), "attachment; filename=\"heap\"");
  auto p = leakless::pprof::decode(r->body);
  ASSERT_EQ(p.sample_types.size(), 4u);
  EXPECT_EQ(p.sample_types[0].type, "alloc_objects");
  EXPECT_EQ(p.sample_types[3].type, "inuse_space");
  EXPECT_GT(samples_through(p, "grow_request_cache", 3), 0);

  r = c.Get("/debug/pprof/allocs");
  ASSERT_TRUE(r);
  EXPECT_EQ(leakless::pprof::decode(r->body).default_sample_type, "alloc_space");

  r = c.Get("/debug/pprof/heap?debug=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->body.rfind("heap profile: ", 0), 0u);
  EXPECT_NE(r->body.find("grow_request_cache"), std::string::npos);

  for (const char* name : {"threads", "goroutine"}) {
    r = c.Get(std::string("/debug/pprof/") + name);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    p = leakless::pprof::decode(r->body);
    EXPECT_EQ(p.sample_types.at(0).type, "threads");
    EXPECT_EQ(samples_through(p, "park_worker_thread", 0), 4) << name;
  }
  r = c.Get("/debug/pprof/threads?debug=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.rfind("threads profile: total ", 0), 0u);
  EXPECT_NE(r->body.find("\n4 @ 0x"), std::string::npos) << r->body;
  r = c.Get("/debug/pprof/threads?debug=2");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("thread " + std::to_string(s.pid()) + " (server_scenari"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("(leakless-http) ["), std::string::npos);

  r = c.Get("/debug/pprof/heap?seconds=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Disposition"), "attachment; filename=\"heap-delta\"");
  p = leakless::pprof::decode(r->body);
  EXPECT_GT(p.duration_nanos, 0);

  expect_go_error(c.Get("/debug/pprof/unknown"), 404, "Unknown profile");
  expect_go_error(c.Get("/debug/pprof/heap?seconds=x"), 400,
                  R"(invalid value for "seconds" - must be a positive integer)");
  expect_go_error(c.Get("/debug/pprof/heap?seconds=1&debug=1"), 400,
                  "seconds and debug params are incompatible");
  expect_go_error(c.Get("/debug/pprof/profile?seconds=100000"), 400,
                  "profile duration exceeds server's limit of 300 seconds");

  r = c.Get("/debug/pprof/cmdline");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_NE(r->body.find(std::string("--listen") + '\0' + "127.0.0.1:0" + '\0'), std::string::npos);

  // symbol: an address of grow_request_cache from the text profile, by GET and by POST.
  r = c.Get("/debug/pprof/heap?debug=1");
  ASSERT_TRUE(r);
  const auto at = r->body.find("grow_request_cache");
  ASSERT_NE(at, std::string::npos);
  const auto line_start = r->body.rfind("#\t", at) + 2;
  const std::string address =
      r->body.substr(line_start, r->body.find('\t', line_start) - line_start);
  c.set_url_encode(false);  // the raw query is the request, '+' included (not %2B)
  r = c.Get("/debug/pprof/symbol?" + address + "+0x1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body,
            "num_symbols: 1\n" + address + " (anonymous namespace)::grow_request_cache()\n");
  r = c.Post("/debug/pprof/symbol", "0x2+" + address, "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body,
            "num_symbols: 1\n" + address + " (anonymous namespace)::grow_request_cache()\n");

  r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const char* name :
       {"\nleakless_heap_inuse_bytes ", "\nleakless_heap_inuse_objects ",
        "\nleakless_heap_allocated_bytes_total ", "\nleakless_profiler_samples_total ",
        "\nleakless_profiler_dropped_samples_total ", "\nleakless_profiler_memory_bytes ",
        "\nprocess_resident_memory_bytes ", "\nprocess_threads ",
        "\nscenario_cache_blocks{cache=\"requests\"} ",
        "\nleakless_cache_entries{cache=\"sessions\"} 100\n",
        "\nleakless_cache_evictions_total{cache=\"sessions\"} 50\n",
        "\nleakless_cache_hit_ratio{cache=\"sessions\"} "}) {
    EXPECT_NE(r->body.find(name), std::string::npos) << name;
  }

  r = c.Get("/nothing/here");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);

  const auto result = s.stop();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
}

TEST(ServerHttp, CpuProfileAndASecondOneAtTheSameTime) {
  scenario s = scenario::linked("cpu");
  ASSERT_NE(s.port(), 0);
  auto first = std::async(std::launch::async,
                          [&] { return s.client().Get("/debug/pprof/profile?seconds=4"); });
  auto second = std::async(std::launch::async,
                           [&] { return s.client().Get("/debug/pprof/profile?seconds=4"); });
  const auto a = first.get();
  const auto b = second.get();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  // The two overlap: one profiles, the other is refused as Go refuses it.
  const auto& ok = a->status == 200 ? a : b;
  const auto& refused = a->status == 200 ? b : a;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Content-Disposition"), "attachment; filename=\"profile\"");
  const auto p = leakless::pprof::decode(ok->body);
  EXPECT_EQ(p.sample_types.at(1).type, "cpu");
  EXPECT_GT(samples_through(p, "burn_cpu_in_known_function", 0), 0);
  expect_go_error(refused, 500, "Could not enable CPU profiling: cpu profiling already in use");
  EXPECT_EQ(s.stop().exit_code, 0);
}

TEST(ServerHttp, StoppingWithAProfileInFlightCutsItShort) {
  for (const bool preloaded : {false, true}) {
    scenario s = preloaded ? scenario::preloaded("inflight_preloaded", {})
                           : scenario::linked("inflight_linked");
    ASSERT_NE(s.port(), 0);
    s.wait_for_growth();
    auto profile = std::async(std::launch::async,
                              [&] { return s.client().Get("/debug/pprof/profile?seconds=200"); });
    // Once the profile runs (its reader thread, "leakless-cpu", exists), the program is told to
    // exit.
    const auto profiling = [&] {
      const fs::path tasks = "/proc/" + std::to_string(s.pid()) + "/task";
      std::error_code ec;
      for (const auto& task : fs::directory_iterator(tasks, ec)) {
        if (leakless::test::read_file(task.path() / "comm") == "leakless-cpu\n") return true;
      }
      return false;
    };
    for (int i = 0; i < 600 && !profiling(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(profiling());
    const auto result = s.stop();
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const auto r = profile.get();
    ASSERT_TRUE(r) << preloaded;
    EXPECT_EQ(r->status, 200);
    const auto p = leakless::pprof::decode(r->body);
    EXPECT_LT(p.duration_nanos, 200'000'000'000) << "the profile was cut short by the stop";
  }
}

TEST(ServerHttp, AForkedChildLeavesTheParentsServerAlone) {
  for (const bool preloaded : {false, true}) {
    scenario s = preloaded
                     ? scenario::preloaded("fork_preloaded", {{"SCENARIO_FORK", "1"}})
                     : scenario::linked("fork_linked", "127.0.0.1:0", {{"SCENARIO_FORK", "1"}});
    ASSERT_NE(s.port(), 0);
    for (int i = 0; i < 600 && s.output().find("child exited") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NE(s.output().find("child exited 0\n"), std::string::npos) << s.output();
    const auto r = s.client().Get("/debug/pprof/threads?debug=1");
    ASSERT_TRUE(r) << preloaded;
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("park_worker_thread"), std::string::npos);
    const auto result = s.stop();
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err, "");
  }
}

// A server destroyed right after it was made, before its accept loop ran, must still stop: the
// accept thread is joined only once it is sure to leave accept(). Before the fix, about one stop
// in three waited forever. A run that has not finished in two minutes is reported as hung.
TEST(ServerHttp, DestroyedRightAfterItWasMadeItStops) {
  const fs::path dir = fresh_dir("start_stop");
  const pid_t pid = start_program({SCENARIO_LINKED, "--start-stop", "200"}, {}, dir);
  ASSERT_GT(pid, 0);
  const auto result = leakless::test::finish_program_within(pid, dir, std::chrono::minutes(2));
  ASSERT_FALSE(result.hung) << "making and destroying a debug_server 200 times hung";
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "started and stopped 200\n");
  fs::remove_all(dir);
}

TEST(ServerHttp, BearerToken) {
  scenario s = scenario::linked("token", "127.0.0.1:0", {{"LEAKLESS_HTTP_TOKEN", "s3cret"}});
  ASSERT_NE(s.port(), 0);
  httplib::Client c = s.client();
  auto r = c.Get("/debug/pprof/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer realm=\"leakless\"");
  r = c.Get("/metrics", {{"Authorization", "Bearer wrong"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Get("/metrics", {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("leakless_heap_inuse_bytes"), std::string::npos);
  EXPECT_EQ(s.stop().exit_code, 0);
}

TEST(ServerHttp, DefaultBindIsLoopback) {
  scenario s = scenario::linked("bind", ":0");
  ASSERT_NE(s.port(), 0);
  // /proc/net/tcp lists the listening socket as 0100007F:<port hex> (127.0.0.1).
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X 00000000:0000 0A", s.port());
  const std::string table = leakless::test::read_file("/proc/net/tcp");
  EXPECT_NE(table.find(local), std::string::npos) << table;
  char any[32];
  std::snprintf(any, sizeof any, "00000000:%04X 00000000:0000 0A", s.port());
  EXPECT_EQ(table.find(any), std::string::npos);
  EXPECT_EQ(s.stop().exit_code, 0);
}

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(ServerHttp, ClientsThatNeverSendOrNeverReadStallNothing) {
  scenario s = scenario::linked("slow");
  ASSERT_NE(s.port(), 0);
  // Silent clients: connected, nothing sent.
  std::vector<int> silent;
  for (int i = 0; i < 2; ++i) silent.push_back(connect_to(s.port()));
  // A client that asks for big responses and never reads them, with a tiny receive buffer.
  const int reader = connect_to(s.port());
  ASSERT_GE(reader, 0);
  const int small = 1024;
  setsockopt(reader, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string requests;
  for (int i = 0; i < 20; ++i) {
    requests += "GET /debug/pprof/threads?debug=2 HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  ASSERT_EQ(send(reader, requests.data(), requests.size(), 0),
            static_cast<ssize_t>(requests.size()));
  // Everything else goes on: the server answers others, the program keeps allocating.
  httplib::Client c = s.client();
  for (int i = 0; i < 5; ++i) {
    const auto r = c.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  const auto r = c.Get("/debug/pprof/heap?debug=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // The program stops cleanly with the stalled clients still connected.
  const auto result = s.stop();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  for (const int fd : silent) close(fd);
  close(reader);
}

TEST(ServerHttp, PreloadedWithLeaklessHttp) {
  scenario s = scenario::preloaded("preload", {});
  s.wait_for_growth();
  httplib::Client c = s.client();
  // The server listens from the library's constructor on, before "ready" is printed.
  auto r = c.Get("/debug/pprof/threads?debug=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("park_worker_thread"), std::string::npos) << r->body;
  r = c.Get("/debug/pprof/heap");
  ASSERT_TRUE(r);
  EXPECT_GT(samples_through(leakless::pprof::decode(r->body), "grow_request_cache", 3), 0);
  // The header-only cache of a program that never linked the library registers its metrics.
  r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("\nleakless_cache_entries{cache=\"sessions\"} 100\n"), std::string::npos)
      << r->body;
  const auto result = s.stop();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
}

TEST(ServerHttp, BadLeaklessHttpIsOneLineAndTheProgramRunsOn) {
  scenario s = scenario::preloaded("bad", {{"LEAKLESS_HTTP", "localhost:99999"}});
  const auto result = s.stop();
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.err,
            "leakless: LEAKLESS_HTTP=localhost:99999 is not host:port (the port must be a number "
            "from 0 to 65535); no debug server\n");
  EXPECT_NE(result.out.find("ready"), std::string::npos);
}

TEST(ServerHttp, PortInUseIsOneLineAndTheProgramRunsOn) {
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  socklen_t len = sizeof a;
  getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  scenario s = scenario::preloaded("inuse", {{"LEAKLESS_HTTP", address}});
  const auto result = s.stop();
  close(busy);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.err,
            "leakless: cannot start the debug server (LEAKLESS_HTTP): cannot listen on " + address +
                ": Address already in use\n");
  EXPECT_NE(result.out.find("ready"), std::string::npos);
}

}  // namespace
