// src/heap/stack_buckets.hpp — per (call stack, allocation size) counters of sampled allocations.
//
// This is Go's memRecord/bucket pair for C++: every sampled allocation is counted in the bucket of
// its stack and its size, and every sampled free in the same bucket, so a heap profile is one
// pass over the buckets, one pprof sample each ("one sample per stack and size", as Go writes
// it). Each bucket keeps raw sample counts (for the legacy text format, which Go prints unscaled)
// and weighted counts: a sample of size s taken at rate R stands for 1/(1-exp(-s/R))
// allocations, and that weight is added when the sample is taken, so samples taken at different
// rates sum correctly (Go scales once at the end with the current rate instead).
//
// How it works: buckets live in an arena (never freed, like Go's) and are found through a chained
// hash index that doubles when it gets full; all of it is only touched under the profiler's lock.
// A bucket's stack and size never change after creation, so profile writers may read them without
// the lock once they have the bucket's address; only the counters need the lock. The stack is
// stored after the bucket compressed: each return address as the zigzag LEB128 varint of its
// difference from the previous one (the first from 0). Return addresses of one stack mostly lie
// in one or two objects, so a frame takes 3 or 4 bytes instead of 8, and the buckets, most of the
// profiler's memory, take about 40% less.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "heap/os_memory.hpp"

namespace leakless::heap {

// The most frames a recorded stack keeps (Go keeps 32; C++ template code nests deeper).
inline constexpr std::uint32_t kMaxStackDepth = 128;

struct bucket_counts {
  std::uint64_t allocs = 0;  // samples taken
  std::uint64_t frees = 0;   // of those, freed
  double alloc_weight = 0;   // allocations they stand for
  double free_weight = 0;    // frees they stand for
};

struct stack_bucket {
  stack_bucket* next_in_chain = nullptr;  // hash index chain
  stack_bucket* next_created = nullptr;   // list of all buckets, newest first
  std::uint64_t hash = 0;
  std::size_t size = 0;  // allocation size in bytes
  bucket_counts counts;
  std::uint32_t depth = 0;          // return addresses in the stack
  std::uint32_t encoded_bytes = 0;  // bytes of the compressed stack stored right after the bucket

  // The `depth` return addresses, the caller of malloc first (allocates: not under the lock).
  std::vector<std::uintptr_t> frames() const;
  const std::uint8_t* encoded() const noexcept {
    return reinterpret_cast<const std::uint8_t*>(this + 1);
  }
};

class stack_buckets {
 public:
  // The bucket for (frames, size), created when new; nullptr when out of memory. A stack deeper
  // than kMaxStackDepth keeps its first kMaxStackDepth frames.
  stack_bucket* find_or_create(const std::uintptr_t* frames, std::uint32_t depth,
                               std::size_t size) noexcept;

  // Newest first; follow next_created. Buckets are never removed.
  stack_bucket* newest() const noexcept { return newest_; }
  std::size_t count() const noexcept { return count_; }
  std::size_t memory_bytes() const noexcept { return arena_.touched_bytes() + index_bytes_; }

 private:
  bool grow_index() noexcept;

  arena arena_;
  stack_bucket** index_ = nullptr;
  std::size_t index_mask_ = 0;
  std::size_t index_bytes_ = 0;
  std::size_t count_ = 0;
  stack_bucket* newest_ = nullptr;
};

}  // namespace leakless::heap
