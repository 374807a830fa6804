// src/heap/os_memory.cpp — mmap-backed memory for the profiler's tables (see os_memory.hpp).
#include "heap/os_memory.hpp"

#include <unistd.h>

#include <algorithm>

#include <sys/mman.h>

namespace leakless::heap {
namespace {

std::size_t round_to_pages(std::size_t bytes) noexcept {
  static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

}  // namespace

void* os_map(std::size_t bytes) noexcept {
  void* p = mmap(nullptr, round_to_pages(bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void os_unmap(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) munmap(p, round_to_pages(bytes));
}

std::size_t arena::touched_bytes() const noexcept {
  const std::size_t untouched = end_ - round_to_pages(next_);
  return reserved_ - untouched;
}

void* arena::allocate(std::size_t bytes) noexcept {
  bytes = (bytes + 15) & ~std::size_t{15};
  if (end_ - next_ < bytes) {
    const std::size_t chunk = round_to_pages(std::max(bytes, kChunkBytes));
    void* fresh = os_map(chunk);
    if (fresh == nullptr) return nullptr;
    // The tail of the previous chunk is abandoned: records are small, so little is lost.
    next_ = reinterpret_cast<std::uintptr_t>(fresh);
    end_ = next_ + chunk;
    reserved_ += chunk;
  }
  void* p = reinterpret_cast<void*>(next_);
  next_ += bytes;
  return p;
}

}  // namespace leakless::heap
