// tests/server/server_scenario.cpp — a program for the debug server's integration tests.
//
// How it works: it keeps a growing "cache" (grow_request_cache allocates 32 KiB blocks and keeps
// them, up to 64 MiB), parks four threads in park_worker_thread (waiting on a condition
// variable), and runs one thread in burn_cpu_in_known_function (busy half of the time). With
// `--listen ADDRESS PORTFILE` it links the debug server and starts it itself (port 0: any free
// port), writing the port it got to PORTFILE; otherwise it relies on LEAKLESS_HTTP (a preloaded
// or linked libleakless.so starts the server). With SCENARIO_FORK set it forks a child that exits
// through exit() and prints "child exited <status>". It registers a metrics collector of its own
// (scenario_cache_blocks) when linked, and holds a named leakless::cache ("sessions", 150 puts into
// 100 entries, 10 lookups), which registers its metrics by itself. It runs until SIGTERM or SIGINT,
// or 300 seconds. With `--start-stop N` (linked) it only makes and destroys a debug_server on a
// free loopback port N times in a row, prints "started and stopped N" and exits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include <leakless/cache.hpp>
#ifdef SCENARIO_LINKED
#include <leakless/debug_server.hpp>
#include <leakless/metrics.hpp>
#endif

namespace {

std::atomic<bool> g_stop{false};
std::mutex g_mutex;
// Never destroyed: a forked child's exit() would wait forever on the parent's waiters.
std::condition_variable& g_wake = *new std::condition_variable;
std::vector<std::unique_ptr<char[]>> g_cache;
std::atomic<std::size_t> g_blocks{0};

[[gnu::noinline]] void grow_request_cache() {
  constexpr std::size_t kBlock = 32 * 1024;
  if (g_cache.size() >= 2048) return;
  auto block = std::make_unique<char[]>(kBlock);
  std::memset(block.get(), 1, kBlock);
  g_cache.push_back(std::move(block));
  g_blocks.store(g_cache.size());
}

[[gnu::noinline]] void park_worker_thread() {
  std::unique_lock lock(g_mutex);
  g_wake.wait(lock, [] { return g_stop.load(); });
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] double burn_cpu_in_known_function() {
  double x = 1.0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    while (std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < 1000; ++i) x = x * 1.0000001 + 0.5 / (x + 1.0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return x;
}

void on_stop(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
#ifdef SCENARIO_LINKED
  if (argc == 3 && std::string(argv[1]) == "--start-stop") {
    const int times = std::atoi(argv[2]);
    for (int i = 0; i < times; ++i) {
      const leakless::debug_server server("127.0.0.1:0");
    }
    std::printf("started and stopped %d\n", times);
    return 0;
  }
  std::unique_ptr<leakless::debug_server> server;
  if (argc == 4 && std::string(argv[1]) == "--listen") {
    server = std::make_unique<leakless::debug_server>(argv[2]);
    std::ofstream(argv[3]) << server->port() << "\n";
  }
  const leakless::metrics_registration metrics(
      [](void*, leakless_metrics_emit_fn emit, void* context) {
        leakless::metrics_emitter(emit, context)
            .gauge("scenario_cache_blocks", "Blocks in the scenario's cache.",
                   static_cast<double>(g_blocks.load()), {{"cache", "requests"}});
      },
      nullptr);
#else
  (void)argc;
  (void)argv;
#endif
  // A named cache: linked or preloaded, it shows on /metrics as leakless_cache_*{cache="sessions"}.
  leakless::cache_options<> options;
  options.name = "sessions";
  options.max_entries = 100;
  leakless::cache<int, int> sessions(options);
  for (int i = 0; i < 150; ++i) sessions.put(i, i);
  for (int i = 0; i < 10; ++i) sessions.get(i % 3);

  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(park_worker_thread);
  threads.emplace_back(burn_cpu_in_known_function);
  std::printf("ready\n");
  std::fflush(stdout);
  if (std::getenv("SCENARIO_FORK") != nullptr) {
    // A child that runs a little and exits through exit(): its static destructors and the
    // library's run, and must leave the parent's server alone.
    const pid_t child = fork();
    if (child == 0) {
      grow_request_cache();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::exit(0);
    }
    int status = -1;
    waitpid(child, &status, 0);
    std::printf("child exited %d\n", status);
    std::fflush(stdout);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!g_stop.load() && std::chrono::steady_clock::now() < deadline) {
    grow_request_cache();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  g_stop.store(true);
  g_wake.notify_all();
  for (std::thread& t : threads) t.join();
  return 0;
}
