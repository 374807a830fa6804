// src/heap/interpose/entry.hpp — what every allocation entry point of libleakless.so does around
// glibc's allocator.
//
// How it works: an entry point allocates with glibc's own implementation (__libc_malloc and
// friends, exported by glibc for exactly this purpose, so no dlsym bootstrap is needed and nothing
// calls back into us), then note_allocation() counts the bytes on the thread's countdown; only
// when the countdown runs out does the out-of-line slow path decide and record. A release asks the
// lock-free live table whether the pointer was sampled before glibc gets it back (after, another
// thread could be handed the same address and sample it). `caller` is the entry point's own
// return address (__builtin_return_address(0), taken in the exported function itself), which is
// where the recorded stack starts: allocator frames are never part of a profile.
#pragma once

#include <cstddef>
#include <cstdint>

#include "heap/sampler.hpp"

extern "C" {
void* __libc_malloc(std::size_t) noexcept;
void* __libc_calloc(std::size_t, std::size_t) noexcept;
void* __libc_realloc(void*, std::size_t) noexcept;
void* __libc_memalign(std::size_t, std::size_t) noexcept;
void* __libc_valloc(std::size_t) noexcept;
void* __libc_pvalloc(std::size_t) noexcept;
void __libc_free(void*) noexcept;
}

#define LEAKLESS_CALLER reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))

namespace leakless::heap {

// The slow path, out of line so the fast path stays a few instructions.
void sample_slow_path(void* address, std::size_t bytes, std::uintptr_t caller) noexcept;

// The sampled case of counted(), out of line so that counted() itself needs no stack frame.
template <class Allocate>
[[gnu::noinline]] void* allocate_sampled(std::size_t bytes, std::uintptr_t caller,
                                         Allocate allocate) noexcept {
  void* address = allocate();
  if (address != nullptr) sample_slow_path(address, bytes, caller);
  return address;
}

// For entry points that only allocate: the countdown runs before glibc's call, so that an
// allocation that is not sampled is a tail call to glibc from a function with no stack frame.
// `allocate` is the glibc call.
template <class Allocate>
[[gnu::always_inline]] inline void* counted(std::size_t bytes, std::uintptr_t caller,
                                            Allocate&& allocate) noexcept {
  if (!note_allocation(bytes)) [[likely]] {
    return allocate();
  }
  return allocate_sampled(bytes, caller, allocate);
}

// For entry points that must see the result first (realloc, posix_memalign, operator new).
[[gnu::always_inline]] inline void* note(void* address, std::size_t bytes,
                                         std::uintptr_t caller) noexcept {
  if (address != nullptr && note_allocation(bytes)) [[unlikely]] {
    sample_slow_path(address, bytes, caller);
  }
  return address;
}

// The release of a block that passed the live table's page filter, out of line so that
// release() needs no stack frame: both of its paths are tail calls.
void release_past_filter(void* address) noexcept;

// free(nullptr) needs no test of its own: the live table answers "no" for it.
[[gnu::always_inline]] inline void release(void* address) noexcept {
  if (live_allocations.passes_filter(reinterpret_cast<std::uintptr_t>(address))) [[unlikely]] {
    release_past_filter(address);
    return;
  }
  __libc_free(address);
}

}  // namespace leakless::heap
