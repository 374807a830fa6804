// src/heap/interpose/malloc.cpp — the C allocation entry points exported by libleakless.so.
//
// How it works: each function keeps glibc 2.36's exact behaviour (errno, alignment rules, what
// realloc(p, 0) does, aligned_alloc being memalign) by calling glibc's implementation, and adds
// only the sampler's bookkeeping (entry.hpp). realloc moves a sampled block's record: it is taken
// out before glibc may free the old block, settled as a free if the block moved or grew, and put
// back untouched if the reallocation failed. malloc_usable_size and dlclose are glibc's own,
// looked up in libc itself on first use (never from inside malloc) — not with RTLD_NEXT, which
// in a program linked with another allocator (redis-server links jemalloc) finds that
// allocator's malloc_usable_size, which cannot read glibc's blocks. dlclose then flushes the
// unwinders' caches (the CFI unwinder's rules and libunwind's), whose cached frame layouts would
// otherwise outlive the unloaded code.
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>

#include <atomic>
#include <cerrno>

#include <gnu/lib-names.h>

#include "heap/interpose/entry.hpp"
#include "heap/lifecycle.hpp"
#include "stack/cfi_unwind.hpp"

#include <leakless/export.hpp>

namespace leakless::heap {

void sample_slow_path(void* address, std::size_t bytes, std::uintptr_t caller) noexcept {
  on_sample_point(address, bytes, caller);
  after_sample_point();
}

[[gnu::noinline]] void release_past_filter(void* address) noexcept {
  if (live_allocations.probe(reinterpret_cast<std::uintptr_t>(address))) on_sampled_free(address);
  __libc_free(address);
}

namespace {

void* reallocate(void* old, std::size_t bytes, std::uintptr_t caller) noexcept {
  if (old == nullptr) return note(__libc_malloc(bytes), bytes, caller);
  if (bytes == 0) {  // glibc frees the block and returns nullptr
    if (maybe_sampled(old)) on_sampled_free(old);
    return __libc_realloc(old, 0);
  }
  live_entry record;
  const bool was_sampled = maybe_sampled(old) && detach_sample(old, &record);
  void* fresh = __libc_realloc(old, bytes);
  if (fresh == nullptr) {
    if (was_sampled) restore_detached(old, record);
    return nullptr;
  }
  if (was_sampled) settle_detached_free(record);
  return note(fresh, bytes, caller);
}

template <class Function>
Function glibc_function(std::atomic<Function>& cache, const char* name) noexcept {
  Function f = cache.load(std::memory_order_acquire);
  if (f == nullptr) {
    // libc is always loaded; RTLD_NOLOAD only returns a handle to it. The handle is kept (libc
    // is never unloaded), which also spares a call of our own dlclose from in here.
    void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
    if (libc == nullptr) return nullptr;
    f = reinterpret_cast<Function>(dlsym(libc, name));
    cache.store(f, std::memory_order_release);
  }
  return f;
}

using usable_size_function = std::size_t (*)(void*);
using dlclose_function = int (*)(void*);
std::atomic<usable_size_function> g_glibc_usable_size{nullptr};
std::atomic<dlclose_function> g_glibc_dlclose{nullptr};

}  // namespace
}  // namespace leakless::heap

using namespace leakless::heap;

extern "C" {

LEAKLESS_API void* malloc(std::size_t bytes) noexcept {
  return counted(bytes, LEAKLESS_CALLER, [bytes] { return __libc_malloc(bytes); });
}

LEAKLESS_API void free(void* address) noexcept { release(address); }

LEAKLESS_API void* calloc(std::size_t count, std::size_t size) noexcept {
  // glibc checks count * size for overflow and fails (ENOMEM); that request is not counted.
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) return __libc_calloc(count, size);  // fails
  return counted(bytes, LEAKLESS_CALLER, [count, size] { return __libc_calloc(count, size); });
}

LEAKLESS_API void* realloc(void* address, std::size_t bytes) noexcept {
  return reallocate(address, bytes, LEAKLESS_CALLER);
}

LEAKLESS_API void* reallocarray(void* address, std::size_t count, std::size_t size) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return reallocate(address, bytes, LEAKLESS_CALLER);
}

LEAKLESS_API void* memalign(std::size_t alignment, std::size_t bytes) noexcept {
  return counted(bytes, LEAKLESS_CALLER,
                 [alignment, bytes] { return __libc_memalign(alignment, bytes); });
}

// glibc 2.36 exports aligned_alloc as an alias of memalign: same checks, same rounding.
LEAKLESS_API void* aligned_alloc(std::size_t alignment, std::size_t bytes) noexcept {
  return counted(bytes, LEAKLESS_CALLER,
                 [alignment, bytes] { return __libc_memalign(alignment, bytes); });
}

LEAKLESS_API int posix_memalign(void** out, std::size_t alignment, std::size_t bytes) noexcept {
  // The alignment must be a power of two multiple of sizeof(void*); errno is left alone.
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) {
    return EINVAL;
  }
  const int saved = errno;
  void* p = __libc_memalign(alignment, bytes);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = note(p, bytes, LEAKLESS_CALLER);
  return 0;
}

LEAKLESS_API void* valloc(std::size_t bytes) noexcept {
  return counted(bytes, LEAKLESS_CALLER, [bytes] { return __libc_valloc(bytes); });
}

LEAKLESS_API void* pvalloc(std::size_t bytes) noexcept {
  return counted(bytes, LEAKLESS_CALLER, [bytes] { return __libc_pvalloc(bytes); });
}

LEAKLESS_API std::size_t malloc_usable_size(void* address) noexcept {
  // Blocks are glibc's own, unchanged, so glibc's answer is the answer.
  const usable_size_function glibc = glibc_function(g_glibc_usable_size, "malloc_usable_size");
  return glibc != nullptr ? glibc(address) : 0;
}

LEAKLESS_API int dlclose(void* handle) noexcept {
  const dlclose_function glibc = glibc_function(g_glibc_dlclose, "dlclose");
  if (glibc == nullptr) return -1;
  const int result = glibc(handle);
  unw_flush_cache(unw_local_addr_space, 0, 0);
  leakless::stack::cfi_flush_cache();
  return result;
}

}  // extern "C"
