// examples/fixed_expiring_cache.cpp — leaky_expiring_cache.cpp with a TTL on every entry and a
// cleanup task (the story's `redis.setex(key, 3600, data)` plus a background sweep).
//
// How it works: the same bursty page service, but fragments go into a leakless::cache: put() with
// a TTL of 1 s per entry, and cache_options::cleanup_interval = 250 ms starts the cache's cleanup
// thread, which removes expired entries (and gives back the table's memory) even during the quiet
// part of each cycle, when no write would do it. So memory rises during a burst and falls back in
// the pause. After its run it stops writing and waits for the cleanup task to empty the cache; it
// exits with status 1 if the cache is not empty within 30 s. Runs until killed, or `--seconds N`.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "example_common.hpp"
#include "fragment_service.hpp"

#include <leakless/cache.hpp>

namespace {

using fragment_cache = leakless::cache<std::string, std::string>;

fragment_cache& store() {
  static auto* s = [] {
    leakless::cache_options<std::string, std::string> options;
    options.name = "fragments";
    options.cleanup_interval = std::chrono::milliseconds(250);  // the cleanup task
    return new fragment_cache(options);
  }();
  return *s;
}

void cache_fragment(long minute, long user) {
  const std::string key = "report:" + std::to_string(minute) + ":" + std::to_string(user);
  if (!store().get(key)) store().put(key, examples::render_fragment(user), std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "fixed_expiring_cache: caches 500 report fragments/s (in bursts: 3 s on, 2 s off) "
      "for 1 s each; a cleanup task runs every 250 ms\n");
  std::fflush(stdout);
  examples::serve_bursts(seconds, cache_fragment, [&](double elapsed) {
    std::printf("  %3.0f s: %zu fragments cached, %llu expired\n", elapsed, store().size(),
                static_cast<unsigned long long>(store().stats().expirations));
    std::fflush(stdout);
  });
  // No more writes: only the cleanup task can empty the cache now.
  for (int i = 0; i < 300 && store().size() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("fixed_expiring_cache: done, %zu fragments left after the writes stopped\n",
              store().size());
  return store().size() == 0 ? 0 : 1;
}
