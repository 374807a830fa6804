// src/heap/live_table.hpp — the set of sampled allocations that are still live, keyed by address.
//
// Every free() asks "was this pointer sampled?", so the question must be answered in a few
// instructions, without a lock, and never wrongly "no" (that would leave a freed object counted as
// live forever). Writers (sampling an allocation, freeing a sampled one) are rare and hold the
// profiler's lock; readers are every free() on every thread and hold nothing.
//
// How it works: open addressing with linear probing over a power-of-two array of atomic keys,
// with a parallel array of values that only writers touch. Deletion shifts later entries of the
// same probe run back (Knuth's algorithm R), so there are no tombstones and the table never needs
// rebuilding for churn. Because a shift can move a key past a reader that is probing for it, the
// table is guarded by a sequence counter (a seqlock): a writer makes it odd while it changes
// keys and even again after; a reader that saw it change, or odd, answers "maybe" and lets the
// caller take the lock and ask again with lookup(). Growing allocates a twice-as-large array and
// publishes it; the old array is kept mapped (readers may still be probing it) — the arrays form a
// geometric series, so the retired ones never add up to more than the live one. Keys are never 0
// (nullptr is never sampled), so 0 marks an empty slot.
//
// In front of the table sits a page filter, so that the free of a block that was not sampled (all
// but a few) costs one byte load: a byte per 4 KiB page of address space, folded modulo
// kFilterPages, counts the live keys that lie in such pages. Writers raise a key's counter before
// the key is published and lower it after it is gone; a counter that reached 255 is never lowered
// again (it only stays a false "maybe"). A zero counter therefore means no live key lies in any
// page of that fold — never a wrong "no" — and only a non-zero one sends the reader to probe the
// table. Blocks of one page share a counter and neighbouring pages share a cache line, so the
// filter of a busy heap stays in cache; the program's blocks themselves are never touched.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace leakless::heap {

struct stack_bucket;

struct live_entry {
  stack_bucket* bucket = nullptr;  // where the allocation's stack and size are counted
  double weight = 0;               // how many allocations this sample stands for
};

class live_table {
 public:
  // Readers, any thread, no lock. False only if `address` is certainly not in the table.
  // Inline: this is on the path of every free(); the probe runs only past the page filter.
  bool may_contain(std::uintptr_t address) const noexcept {
    if (!passes_filter(address)) [[likely]]
      return false;
    return probe(address);
  }
  // The filter alone: false when `address` is certainly not in the table (one byte load).
  bool passes_filter(std::uintptr_t address) const noexcept {
    return filter_[filter_slot(address)].load(std::memory_order_relaxed) != 0;
  }
  // The table's answer past the filter (out of line: the uncommon case of free()).
  bool probe(std::uintptr_t address) const noexcept;

  // Writers, under the profiler's lock.
  // Inserts or replaces; false when memory for growing could not be had (the sample is dropped).
  bool insert(std::uintptr_t address, live_entry entry) noexcept;
  // Removes `address`, copying its entry to *out; false when absent.
  bool remove(std::uintptr_t address, live_entry* out) noexcept;
  // The entry for `address`, or nullptr.
  const live_entry* lookup(std::uintptr_t address) const noexcept;

  std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::size_t memory_bytes() const noexcept { return mapped_bytes_; }

 private:
  struct array {
    std::size_t mask = 0;  // capacity - 1
    std::atomic<std::uintptr_t>* keys = nullptr;
    live_entry* values = nullptr;
  };

  static constexpr std::size_t kFilterPages = 32768;  // 32 KiB of counters: 128 MiB unfolded
  static constexpr std::uint8_t kFilterStuck = 255;

  static std::size_t filter_slot(std::uintptr_t address) noexcept {
    return (address >> 12) & (kFilterPages - 1);
  }
  void filter_add(std::uintptr_t address) noexcept;
  void filter_remove(std::uintptr_t address) noexcept;

  static std::size_t home(std::uintptr_t address, std::size_t mask) noexcept {
    // Allocations are at least 16-byte aligned; a multiplicative hash spreads the other bits.
    return static_cast<std::size_t>(((address >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  }
  bool grow() noexcept;
  void begin_write() noexcept;
  void end_write() noexcept;

  std::atomic<array*> current_{nullptr};
  std::atomic<std::uint64_t> sequence_{0};
  std::atomic<std::size_t> count_{0};
  std::size_t mapped_bytes_ = 0;
  std::atomic<std::uint8_t> filter_[kFilterPages] = {};
};

}  // namespace leakless::heap
