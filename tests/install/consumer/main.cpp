// tests/install/consumer/main.cpp — a program built against an installed leakless.
//
// How it works: uses the header-only containers (hmap, cache, sync_map, bloom_filter), the library
// function leakless::version(), the profilers' API (a program linking leakless::leakless is
// profiled) and the debug server (started on a free loopback port), checks the results,
// prints "consumer ok: version=X size=N" and returns 0 only if every check holds; any wrong result
// is printed on stderr and makes it return 1.
#include <cstddef>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include <leakless/bloom.hpp>
#include <leakless/cache.hpp>
#include <leakless/debug_server.hpp>
#include <leakless/hmap.hpp>
#include <leakless/profile.hpp>
#include <leakless/sync_map.hpp>
#include <leakless/version.hpp>

#ifndef EXPECTED_LEAKLESS_VERSION
#define EXPECTED_LEAKLESS_VERSION ""
#endif

int main() {
  int failures = 0;
  auto check = [&failures](bool ok, std::string_view what) {
    if (!ok) {
      std::cerr << "consumer: FAILED: " << what << "\n";
      ++failures;
    }
  };

  const std::string_view version = leakless::version();
  const std::string_view expected = EXPECTED_LEAKLESS_VERSION;
  check(!version.empty(), "leakless::version() is not empty");
  check(expected.empty() || version == expected, "leakless::version() equals the package version");

  leakless::hmap<std::string, int> map;
  for (int i = 0; i < 1000; ++i) {
    map[std::to_string(i)] = i;
  }
  for (int i = 0; i < 1000; i += 2) {
    map.erase(std::to_string(i));
  }
  check(map.size() == 500, "size after erasing the even keys is 500");
  check(map.lookup("2") == nullptr, "erased key is absent");
  const int* seven = map.lookup("7");
  check(seven != nullptr && *seven == 7, "lookup(\"7\") finds 7");

  long sum = 0;
  std::size_t visited = 0;
  for (auto&& [key, value] : map) {
    check(std::stoi(key) == value, "iteration yields matching key and value");
    sum += value;
    ++visited;
  }
  check(visited == 500, "iteration visits 500 entries");
  check(sum == 250000, "sum of the odd values below 1000 is 250000");

  // The heap profiler is running in this program: a profile is gzipped pprof, the rate Go's.
  std::ostringstream profile;
  leakless::write_heap_profile(profile);
  const std::string bytes = profile.str();
  check(bytes.size() > 2 && bytes[0] == '\x1f' && bytes[1] == '\x8b',
        "write_heap_profile writes gzip data");
  check(leakless::heap_stats().sample_rate == 512 * 1024, "the default sample rate is 512 KiB");

  std::ostringstream cpu;
  leakless::start_cpu_profile(cpu);
  check(leakless::stop_cpu_profile(), "stop_cpu_profile stops the running profile");
  check(cpu.str().size() > 2 && cpu.str()[0] == '\x1f', "the CPU profile is gzip data");

  leakless::cache_options options;
  options.max_entries = 10;
  leakless::cache<int, std::string> cache(options);
  for (int i = 0; i < 100; ++i) cache.put(i, std::to_string(i));
  check(cache.size() <= 10, "the cache keeps its entry bound");

  leakless::sync_map<std::string, int> sync_map;
  sync_map.store("a", 1);
  check(sync_map.load("a") == 1, "sync_map loads what was stored");

  leakless::bloom_filter bloom(1000, 0.01);
  bloom.insert(std::string("key"));
  check(bloom.may_contain(std::string("key")), "the Bloom filter has no false negative");

  {
    const leakless::debug_server server("127.0.0.1:0");
    check(server.port() > 0, "the debug server listens on a free port");
    std::ostringstream threads;
    leakless::write_threads_profile(threads, 1);
    check(threads.str().rfind("threads profile: total ", 0) == 0, "the threads profile is written");
  }

  if (failures != 0) {
    return 1;
  }
  std::cout << "consumer ok: version=" << version << " size=" << map.size() << "\n";
  return 0;
}
