// The cache's memory, measured where it matters. First the byte bound against the process's
// resident memory: a cache bounded at 64 MiB takes ten times its budget of distinct 1 KiB values;
// afterwards the memory the process gained since before the cache existed must stay within 1.1
// times the budget. The bound counts the cache's own per-entry memory (its node, table slots and
// deadline slots), so only that accounting keeps RSS under the budget; the weigher reports just
// the key and value bytes a user would count. Then memory given back after expiry, by malloc's
// own count (mallinfo2). Built without sanitizers only: their allocators and shadow memory are not
// what a program runs with.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
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

// Bytes malloc has handed out and not taken back (glibc's count).
std::size_t allocated_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Memory comes back after expiry: once every entry of a cache has expired, cleanup() frees the
// nodes' slab chunks and their deadlines, the table's and the heap's arrays, so that what the
// cache still holds beyond its fixed parts (the frequency sketch, sized by max_entries when the
// cache is built) is a small fraction of what its entries took. Then it fills again as before.
TEST(CacheMemory, CleanupAfterExpiryGivesTheEntriesMemoryBack) {
  constexpr std::size_t entries = 200'000;
  std::int64_t now = 0;
  leakless::cache_options opts;
  opts.max_entries = 2 * entries;  // room in every shard: no entry is evicted
  opts.shards = 4;
  opts.expire_after_write = std::chrono::seconds(10);
  opts.clock = [&now] { return std::chrono::nanoseconds(now); };
  leakless::cache<std::uint64_t, std::uint64_t> c(opts);
  malloc_trim(0);
  const std::size_t before = allocated_bytes();
  const auto fill = [&] {
    for (std::uint64_t k = 0; k < entries; ++k) c.put(k * 0x9e3779b97f4a7c15ull, k);
    return allocated_bytes() - before;
  };
  const std::size_t full = fill();
  EXPECT_EQ(c.size(), entries);
  EXPECT_GT(full, entries * 40) << "the entries should take some memory";

  now += std::chrono::nanoseconds(std::chrono::seconds(11)).count();
  c.cleanup();
  EXPECT_EQ(c.size(), 0u);
  const std::size_t left = allocated_bytes() - before;
  EXPECT_LE(left, full / 50) << "still held after expiry: " << left << " of " << full << " bytes";
  std::printf("%zu entries: %.1f bytes each; after expiry and cleanup %zu bytes left\n", entries,
              static_cast<double>(full) / entries, left);

  const std::size_t again = fill();
  EXPECT_EQ(c.size(), entries);
  EXPECT_LE(again, full + full / 20) << "refilled: " << again << " bytes, first fill " << full;
}

}  // namespace
