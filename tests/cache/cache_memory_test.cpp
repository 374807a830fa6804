// The byte bound, measured where it matters: the process's resident memory. A cache bounded at
// 64 MiB takes ten times its budget of distinct 1 KiB values; afterwards the memory the process
// gained since before the cache existed must stay within 1.1 times the budget. The bound counts
// the cache's own per-entry memory (its node, table slot and deadline slot), so only that
// accounting keeps RSS under the budget; the weigher reports just the key and value bytes a user
// would count. Built without sanitizers only: their allocators and shadow memory are not what a
// program runs with.
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include <leakless/cache.hpp>

namespace {

std::size_t resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  const int read = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (read != 2) return 0;
  return static_cast<std::size_t>(pages_resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

TEST(CacheMemory, ByteBoundedCacheKeepsResidentMemoryWithinItsBudgetAfterTenfoldChurn) {
  constexpr std::size_t budget = std::size_t{64} << 20;
  constexpr std::size_t value_size = 1000;
  const std::size_t before = resident_bytes();
  ASSERT_GT(before, 0u);

  leakless::cache_options<std::string, std::string> opts;
  opts.max_bytes = budget;
  opts.weigher = [](const std::string& k, const std::string& v) { return k.size() + v.size(); };
  leakless::cache<std::string, std::string> c(opts);

  const std::size_t puts = 10 * budget / value_size;
  std::size_t peak = 0;
  for (std::size_t i = 0; i < puts; ++i) {
    c.put("user:" + std::to_string(i), std::string(value_size, static_cast<char>('a' + i % 26)));
    if (i % 4096 == 0) {
      const std::size_t now = resident_bytes();
      if (now > peak) peak = now;
    }
  }
  c.cleanup();
  const std::size_t after = resident_bytes();
  if (after > peak) peak = after;

  EXPECT_LE(c.stats().bytes, budget);
  EXPECT_GT(c.size(), budget / (2 * value_size)) << "the cache should be nearly full";
  const double growth = static_cast<double>(peak - before);
  EXPECT_LE(growth, 1.1 * static_cast<double>(budget))
      << "resident memory grew by " << growth / (1 << 20) << " MiB for a budget of "
      << budget / (1 << 20) << " MiB";
  std::printf("resident memory grew by %.1f MiB (peak) for a 64 MiB budget, %zu entries held\n",
              growth / (1 << 20), c.size());
}

}  // namespace
