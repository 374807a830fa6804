// src/heap/live_table.cpp — lock-free-read set of sampled live allocations (see live_table.hpp).
#include "heap/live_table.hpp"

#include <new>

#include "heap/os_memory.hpp"

namespace leakless::heap {
namespace {

constexpr std::size_t kInitialCapacity = 256;

}  // namespace

bool live_table::probe(std::uintptr_t address) const noexcept {
  if (address == 0) return false;  // free(nullptr): 0 is the empty key, never a live one
  const std::uint64_t before = sequence_.load(std::memory_order_acquire);
  if (before & 1) return true;  // a writer is moving keys: let the caller ask under the lock
  const array* table = current_.load(std::memory_order_acquire);
  if (table == nullptr) return false;
  for (std::size_t i = home(address, table->mask);; i = (i + 1) & table->mask) {
    const std::uintptr_t key = table->keys[i].load(std::memory_order_acquire);
    if (key == address) return true;
    if (key == 0) break;
  }
  return sequence_.load(std::memory_order_relaxed) != before;
}

// Writers only (under the profiler's lock), so a load and a store need no read-modify-write.
void live_table::filter_add(std::uintptr_t address) noexcept {
  std::atomic<std::uint8_t>& counter = filter_[filter_slot(address)];
  const std::uint8_t n = counter.load(std::memory_order_relaxed);
  if (n != kFilterStuck) counter.store(n + 1, std::memory_order_relaxed);
}

void live_table::filter_remove(std::uintptr_t address) noexcept {
  std::atomic<std::uint8_t>& counter = filter_[filter_slot(address)];
  const std::uint8_t n = counter.load(std::memory_order_relaxed);
  if (n != kFilterStuck) counter.store(n - 1, std::memory_order_relaxed);
}

const live_entry* live_table::lookup(std::uintptr_t address) const noexcept {
  const array* table = current_.load(std::memory_order_relaxed);
  if (table == nullptr) return nullptr;
  for (std::size_t i = home(address, table->mask);; i = (i + 1) & table->mask) {
    const std::uintptr_t key = table->keys[i].load(std::memory_order_relaxed);
    if (key == address) return &table->values[i];
    if (key == 0) return nullptr;
  }
}

// No fences (ThreadSanitizer does not model them): every key store after begin_write() is a
// release, and readers load keys with acquire, so a reader that sees a moved key also sees the odd
// sequence number stored before it. On x86-64 both compile to plain moves.
void live_table::begin_write() noexcept {
  sequence_.store(sequence_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void live_table::end_write() noexcept {
  sequence_.store(sequence_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

bool live_table::grow() noexcept {
  const array* old = current_.load(std::memory_order_relaxed);
  const std::size_t capacity = old == nullptr ? kInitialCapacity : (old->mask + 1) * 2;
  const std::size_t bytes =
      sizeof(array) + capacity * (sizeof(std::atomic<std::uintptr_t>) + sizeof(live_entry));
  void* memory = os_map(bytes);
  if (memory == nullptr) return false;
  mapped_bytes_ += bytes;

  // os_map returns zeroed memory: every key starts empty and every value default.
  auto* fresh = new (memory) array;
  fresh->mask = capacity - 1;
  fresh->keys = reinterpret_cast<std::atomic<std::uintptr_t>*>(fresh + 1);
  fresh->values = reinterpret_cast<live_entry*>(fresh->keys + capacity);
  if (old != nullptr) {
    for (std::size_t i = 0; i <= old->mask; ++i) {
      const std::uintptr_t key = old->keys[i].load(std::memory_order_relaxed);
      if (key == 0) continue;
      std::size_t j = home(key, fresh->mask);
      while (fresh->keys[j].load(std::memory_order_relaxed) != 0) j = (j + 1) & fresh->mask;
      fresh->keys[j].store(key, std::memory_order_relaxed);
      fresh->values[j] = old->values[i];
    }
  }
  // The old array stays mapped: a reader may still be probing it.
  current_.store(fresh, std::memory_order_release);
  return true;
}

bool live_table::insert(std::uintptr_t address, live_entry entry) noexcept {
  array* table = current_.load(std::memory_order_relaxed);
  // Keep the load at most 1/2 so probe runs stay short for readers.
  if (table == nullptr || (count_.load(std::memory_order_relaxed) + 1) * 2 > table->mask + 1) {
    if (!grow()) return false;
    table = current_.load(std::memory_order_relaxed);
  }
  std::size_t i = home(address, table->mask);
  for (;; i = (i + 1) & table->mask) {
    const std::uintptr_t key = table->keys[i].load(std::memory_order_relaxed);
    if (key == address) {
      table->values[i] = entry;
      return true;
    }
    if (key == 0) break;
  }
  // Count and filter first: the key's release store below publishes both to a reader that
  // finds the key (and the free of a block comes after the malloc that returned it).
  count_.fetch_add(1, std::memory_order_relaxed);
  filter_add(address);
  table->values[i] = entry;
  table->keys[i].store(address, std::memory_order_release);
  return true;
}

bool live_table::remove(std::uintptr_t address, live_entry* out) noexcept {
  array* table = current_.load(std::memory_order_relaxed);
  if (table == nullptr) return false;
  std::size_t hole = home(address, table->mask);
  for (;; hole = (hole + 1) & table->mask) {
    const std::uintptr_t key = table->keys[hole].load(std::memory_order_relaxed);
    if (key == address) break;
    if (key == 0) return false;
  }
  if (out != nullptr) *out = table->values[hole];

  begin_write();
  // Knuth's algorithm R: walk the rest of the run and move back every entry whose home position
  // does not lie cyclically in (hole, j], so that no probe run is broken by the new empty slot.
  for (std::size_t j = (hole + 1) & table->mask;; j = (j + 1) & table->mask) {
    const std::uintptr_t key = table->keys[j].load(std::memory_order_relaxed);
    if (key == 0) break;
    const std::size_t want = home(key, table->mask);
    const bool stays = hole <= j ? (hole < want && want <= j) : (hole < want || want <= j);
    if (stays) continue;
    table->keys[hole].store(key, std::memory_order_release);
    table->values[hole] = table->values[j];
    hole = j;
  }
  table->keys[hole].store(0, std::memory_order_release);
  table->values[hole] = live_entry{};
  end_write();
  count_.fetch_sub(1, std::memory_order_relaxed);
  filter_remove(address);
  return true;
}

}  // namespace leakless::heap
