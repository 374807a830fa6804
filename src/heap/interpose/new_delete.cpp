// src/heap/interpose/new_delete.cpp — every replaceable operator new and delete, exported by
// libleakless.so so that C++ allocations are sampled with the caller of `new` as the stack's top.
//
// How it works: libstdc++'s own operator new would call malloc, and the recorded stack would then
// start inside libstdc++; replacing new itself keeps allocator frames out of profiles. The
// semantics are the standard's, as libstdc++ implements them: a zero-byte request becomes one
// byte; on failure the installed new_handler is called and the allocation retried, and
// std::bad_alloc is thrown when there is no handler; the nothrow forms return nullptr instead;
// aligned forms use memalign. Every delete form (sized, aligned, nothrow, arrays) is a free.
#include <new>

#include "heap/interpose/entry.hpp"

#include <leakless/export.hpp>

namespace {

using leakless::heap::note;
using leakless::heap::release;

void* allocate(std::size_t bytes, std::size_t alignment, std::uintptr_t caller, bool nothrow) {
  if (bytes == 0) bytes = 1;
  for (;;) {
    void* p = alignment == 0 ? __libc_malloc(bytes) : __libc_memalign(alignment, bytes);
    if (p != nullptr) return note(p, bytes, caller);
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

std::size_t align(std::align_val_t a) { return static_cast<std::size_t>(a); }

// The plain forms' common case, inline in each exported operator: a non-zero request, not
// sampled, that glibc satisfies. Its only stack use is the call to glibc (the request is kept for
// the rare path). Anything else (a sample point, zero bytes, failure) goes to allocate_again(),
// which takes the caller's address from the exported function's own frame only then.
#define LEAKLESS_NEW_PLAIN(bytes, nothrow)                                    \
  do {                                                                        \
    if ((bytes) != 0 && !leakless::heap::note_allocation(bytes)) [[likely]] { \
      if (void* p = __libc_malloc(bytes)) [[likely]] {                        \
        return p;                                                             \
      }                                                                       \
    }                                                                         \
    return allocate_again(bytes, LEAKLESS_CALLER, nothrow);                   \
  } while (false)

// The rest of a plain form: allocate() counts the request itself, so a request the inline part
// counted (any non-zero one) is taken off the countdown first.
[[gnu::noinline]] void* allocate_again(std::size_t bytes, std::uintptr_t caller, bool nothrow) {
  if (bytes != 0)
    leakless::heap::tls_sampler.bytes_until_sample += static_cast<std::int64_t>(bytes);
  return allocate(bytes, 0, caller, nothrow);
}

}  // namespace

LEAKLESS_API void* operator new(std::size_t n) { LEAKLESS_NEW_PLAIN(n, false); }
LEAKLESS_API void* operator new[](std::size_t n) { LEAKLESS_NEW_PLAIN(n, false); }
LEAKLESS_API void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  LEAKLESS_NEW_PLAIN(n, true);
}
LEAKLESS_API void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  LEAKLESS_NEW_PLAIN(n, true);
}
LEAKLESS_API void* operator new(std::size_t n, std::align_val_t a) {
  return allocate(n, align(a), LEAKLESS_CALLER, false);
}
LEAKLESS_API void* operator new[](std::size_t n, std::align_val_t a) {
  return allocate(n, align(a), LEAKLESS_CALLER, false);
}
LEAKLESS_API void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, align(a), LEAKLESS_CALLER, true);
}
LEAKLESS_API void* operator new[](std::size_t n, std::align_val_t a,
                                  const std::nothrow_t&) noexcept {
  return allocate(n, align(a), LEAKLESS_CALLER, true);
}

LEAKLESS_API void operator delete(void* p) noexcept { release(p); }
LEAKLESS_API void operator delete[](void* p) noexcept { release(p); }
LEAKLESS_API void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
LEAKLESS_API void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
LEAKLESS_API void operator delete(void* p, std::size_t) noexcept { release(p); }
LEAKLESS_API void operator delete[](void* p, std::size_t) noexcept { release(p); }
LEAKLESS_API void operator delete(void* p, std::align_val_t) noexcept { release(p); }
LEAKLESS_API void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
LEAKLESS_API void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  release(p);
}
LEAKLESS_API void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  release(p);
}
LEAKLESS_API void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
LEAKLESS_API void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
