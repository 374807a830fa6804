// src/heap/os_memory.hpp — memory for the heap profiler's own tables, taken from the kernel.
//
// How it works: the profiler runs inside malloc, so its own tables must never call malloc (that
// would recurse into the sampler, and a sampled allocation's free could need the very lock the
// table is being changed under). os_map/os_unmap are thin mmap/munmap wrappers that return
// zeroed, page-aligned memory; arena hands out small pieces of it for records that live until the
// process ends (stack buckets, as in Go's persistentalloc), so it never frees and needs no lock of
// its own: callers hold the profiler's lock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakless::heap {

// Zeroed memory of at least `bytes` (rounded up to pages), or nullptr when the kernel refuses.
void* os_map(std::size_t bytes) noexcept;
void os_unmap(void* p, std::size_t bytes) noexcept;

// Bump allocator over os_map'ed chunks; the caller serialises access.
class arena {
 public:
  // `bytes` aligned to 16; nullptr when out of memory.
  void* allocate(std::size_t bytes) noexcept;
  // Bytes taken from the kernel so far, less the pages of the last chunk not handed out yet: the
  // chunks are written in order and a page is resident only once written.
  std::size_t touched_bytes() const noexcept;

 private:
  static constexpr std::size_t kChunkBytes = std::size_t{256} << 10;
  std::uintptr_t next_ = 0;
  std::uintptr_t end_ = 0;
  std::size_t reserved_ = 0;
};

}  // namespace leakless::heap
