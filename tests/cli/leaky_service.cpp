// tests/cli/leaky_service.cpp — a program with two leaks at different rates under steady churn, run
// by cli_program_test under LD_PRELOAD=libleakless.so with periodic heap profiles, so that
// `leakless leaks` is checked on a real series.
//
// How it works: for the given number of seconds, every 10 ms it handles a "request": it keeps a
// fixed-size window of recent request buffers, filled before the first (churn: memory that is
// large but steady), adds a user
// record to a registry that is never pruned (the fast leak, in add_user, through std::vector), and
// every other request appends to a log it never trims (the slow leak, in remember_event). The
// rates are printed so the test can compare. With `plateau` both stop growing after the first
// 15% of the run and only the churn goes on: memory that grew to a plateau and stays, which is
// not a leak. With `hidden` only the slow leak runs, every other request (~0.8 MiB/s: about 18
// sampling periods in 12 s, where a 1 MiB/min leak gives 10 in 5 minutes), under ~100 MiB/s of
// short-lived allocations in serve_burst. Usage: leaky_service SECONDS [plateau|hidden]. Built
// with -g so the profile names functions and lines.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kUserBytes = 24 * 1024;   // per request: ~2.3 MiB/s
constexpr std::size_t kEventBytes = 16 * 1024;  // every other request: ~0.8 MiB/s
constexpr std::size_t kRequestBytes = 64 * 1024;
constexpr std::size_t kWindow = 200;      // request buffers kept: ~12.5 MiB, replaced constantly
constexpr std::size_t kBurstBlocks = 16;  // `hidden`: 16 x 64 KiB allocated and freed per request

struct user {
  std::vector<char> profile;
};

// Never destroyed, as a leak's memory is not freed at exit either (the profile written at exit
// still holds it).
auto& g_users = *new std::vector<std::unique_ptr<user>>;
auto& g_events = *new std::list<std::string>;
auto& g_recent = *new std::deque<std::vector<char>>;

__attribute__((noinline)) void add_user(int id) {
  auto u = std::make_unique<user>();
  u->profile.resize(kUserBytes, static_cast<char>(id));  // the fast leak's line
  g_users.push_back(std::move(u));
}

__attribute__((noinline)) void remember_event(int id) {
  g_events.emplace_back(kEventBytes, static_cast<char>('a' + id % 26));  // the slow leak's line
}

__attribute__((noinline)) void handle_request(int id) {
  g_recent.emplace_back(kRequestBytes, static_cast<char>(id));
  if (g_recent.size() > kWindow) g_recent.pop_front();
}

// Short-lived memory: allocated, used and freed within the request (never touched, so that the
// churn costs the allocator, not memset).
__attribute__((noinline)) std::size_t serve_burst() {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (std::size_t i = 0; i < kBurstBlocks; ++i) {
    blocks.push_back(std::make_unique_for_overwrite<char[]>(kRequestBytes));
  }
  return blocks.size();
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 12;
  const std::string mode = argc > 2 ? argv[2] : "";
  const bool plateau = mode == "plateau", hidden = mode == "hidden";
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  const auto growth_end = plateau ? start + std::chrono::duration<double>(0.15 * seconds) : end;
  // The first kWindow requests fill the window at once, with no pause and no leak, so that its
  // memory is large but steady from the first profile on. They go through the same call site as
  // every later request: a separate call in main would be a separate call site, one that shrinks
  // while this one fills.
  int id = -static_cast<int>(kWindow);
  for (auto now = start; now < end; now = std::chrono::steady_clock::now()) {
    handle_request(id);
    if (id < 0) {
      ++id;
      continue;
    }
    if (hidden) {
      if (serve_burst() != kBurstBlocks) return 1;
      if (id % 2 == 0) remember_event(id);
    } else if (now < growth_end) {
      add_user(id);
      if (id % 2 == 0) remember_event(id);
    }
    ++id;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("requests %d users %zu events %zu\n", id, g_users.size(), g_events.size());
  return 0;
}
