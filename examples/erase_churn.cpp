// examples/erase_churn.cpp — heavy insert/erase: std::unordered_map keeps its buckets after 99% of
// the entries are erased, leakless::hmap gives the memory back (the story's "map that never
// shrinks").
//
// How it works: a connection table holds 2,000 long-lived connections and sees traffic spikes:
// 198,000 more connections open (inserted) and close again (erased), so 99% of the peak is erased;
// this repeats for three rounds. The same operations run on a std::unordered_map and on a
// leakless::hmap, each with a counting allocator, so the figures are the exact bytes each
// container holds from the heap, nothing estimated. After every phase the program prints both.
// std::unordered_map frees the erased nodes but keeps the bucket array sized for the peak (2.8 MiB
// for 2,000 entries) until rehash(0); hmap shrinks as it erases. It exits with status 1 unless
// hmap, after every spike, holds less than a quarter of its peak and less than std::unordered_map
// does. `--seconds N` is accepted and ignored.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <unordered_map>

#include "example_common.hpp"

#include <leakless/hmap.hpp>

namespace {

// An allocator that adds every byte it hands out to *counter and subtracts what comes back.
template <class T>
struct counting_allocator {
  using value_type = T;
  std::size_t* counter;
  explicit counting_allocator(std::size_t* c) : counter(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) : counter(other.counter) {}
  T* allocate(std::size_t n) {
    *counter += n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    *counter -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const {
    return counter == other.counter;
  }
};

struct connection {
  std::uint64_t peer = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint32_t state = 0;
};

using entry = std::pair<const std::uint64_t, connection>;
using std_table = std::unordered_map<std::uint64_t, connection, std::hash<std::uint64_t>,
                                     std::equal_to<std::uint64_t>, counting_allocator<entry>>;
using hmap_table = leakless::hmap<std::uint64_t, connection, leakless::hash<std::uint64_t>,
                                  std::equal_to<std::uint64_t>, counting_allocator<entry>>;

void row(const char* phase, std::size_t entries, std::size_t std_bytes, std::size_t hmap_bytes) {
  std::printf("  %-34s %8zu entries   std::unordered_map %9.1f KiB   leakless::hmap %9.1f KiB\n",
              phase, entries, static_cast<double>(std_bytes) / 1024,
              static_cast<double>(hmap_bytes) / 1024);
}

}  // namespace

int main(int argc, char** argv) {
  examples::seconds_option(argc, argv);
  constexpr std::uint64_t kPeak = 200000, kSteady = 2000;
  constexpr int kRounds = 3;
  std::printf("erase_churn: %d rounds of %llu connections opened, 99%% closed again\n", kRounds,
              static_cast<unsigned long long>(kPeak));
  std::size_t std_bytes = 0, hmap_bytes = 0;
  bool ok = true;
  {
    std_table std_map(0, std::hash<std::uint64_t>(), std::equal_to<std::uint64_t>(),
                      counting_allocator<entry>(&std_bytes));
    hmap_table table(0, leakless::hash<std::uint64_t>(), std::equal_to<std::uint64_t>(),
                     counting_allocator<entry>(&hmap_bytes));
    std::uint64_t next_id = 0;
    for (; next_id < kSteady; ++next_id) {  // the long-lived connections
      std_map.emplace(next_id, connection{next_id, 0, 0, 1});
      table.insert_or_assign(next_id, connection{next_id, 0, 0, 1});
    }
    for (int round = 1; round <= kRounds; ++round) {
      std::printf("round %d\n", round);
      const std::uint64_t first = next_id;
      for (; next_id < first + kPeak - kSteady; ++next_id) {
        std_map.emplace(next_id, connection{next_id, next_id, next_id, 1});
        table.insert_or_assign(next_id, connection{next_id, next_id, next_id, 1});
      }
      row("after the spike", table.size(), std_bytes, hmap_bytes);
      const std::size_t hmap_peak = hmap_bytes;
      for (std::uint64_t id = first; id < next_id; ++id) {
        std_map.erase(id);
        table.erase(id);
      }
      row("after 99% closed", table.size(), std_bytes, hmap_bytes);
      if (table.size() != kSteady || std_map.size() != kSteady) ok = false;
      if (!(hmap_bytes * 4 < hmap_peak && hmap_bytes < std_bytes)) ok = false;
    }
    std_map.rehash(0);
    row("after std_map.rehash(0)", std_map.size(), std_bytes, hmap_bytes);
  }
  std::printf("erase_churn: %s\n", ok ? "hmap gave the memory back after every spike"
                                      : "FAILED: hmap kept its peak memory");
  return ok ? 0 : 1;
}
