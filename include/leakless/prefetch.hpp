// leakless/prefetch.hpp — asking the memory system for a cache line before it is needed.
//
// hmap's migration and the cache's read-buffer replay know which cache lines they will touch a
// few steps ahead, and ask for them with these functions rather than with __builtin_prefetch
// directly. The builtin alone is not enough: GCC treats it as free of side effects, so a function
// whose only effect is prefetching (a loop over the buckets of a migration unit, a sketch's
// "fetch this key's counters") is found to be const, and every call to it that was not inlined
// before that analysis is deleted as dead code. Both of the prefetches above vanished that way
// from the optimised binaries. An empty volatile asm that names the address is a side effect the
// optimiser must keep; it emits no instruction.
#pragma once

namespace leakless::prefetch_detail {

// For a line that is about to be read.
inline void prefetch_read(const void* address) noexcept {
  __builtin_prefetch(address, 0);
  asm volatile("" : : "r"(address));
}

// For a line that is about to be written (on x86 without PREFETCHW, the same as a read).
inline void prefetch_write(const void* address) noexcept {
  __builtin_prefetch(address, 1);
  asm volatile("" : : "r"(address));
}

}  // namespace leakless::prefetch_detail
