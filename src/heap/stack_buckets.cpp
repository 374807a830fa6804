// src/heap/stack_buckets.cpp — the (stack, size) bucket table (see stack_buckets.hpp).
#include "heap/stack_buckets.hpp"

#include <cstring>
#include <new>

namespace leakless::heap {
namespace {

constexpr std::size_t kInitialIndexSlots = 1024;

std::uint64_t hash_stack(const std::uintptr_t* frames, std::uint32_t depth,
                         std::size_t size) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ size;
  for (std::uint32_t i = 0; i < depth; ++i) {
    h ^= frames[i];
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h;
}

bool same_stack(const stack_bucket* b, const std::uintptr_t* frames, std::uint32_t depth,
                std::size_t size) noexcept {
  return b->size == size && b->depth == depth &&
         std::memcmp(b->frames(), frames, depth * sizeof(std::uintptr_t)) == 0;
}

}  // namespace

bool stack_buckets::grow_index() noexcept {
  const std::size_t slots = index_ == nullptr ? kInitialIndexSlots : (index_mask_ + 1) * 2;
  auto** fresh = static_cast<stack_bucket**>(os_map(slots * sizeof(stack_bucket*)));
  if (fresh == nullptr) return false;
  for (stack_bucket* b = newest_; b != nullptr; b = b->next_created) {
    stack_bucket*& head = fresh[b->hash & (slots - 1)];
    b->next_in_chain = head;
    head = b;
  }
  os_unmap(index_, index_bytes_);
  index_ = fresh;
  index_mask_ = slots - 1;
  index_bytes_ = slots * sizeof(stack_bucket*);
  return true;
}

stack_bucket* stack_buckets::find_or_create(const std::uintptr_t* frames, std::uint32_t depth,
                                            std::size_t size) noexcept {
  const std::uint64_t h = hash_stack(frames, depth, size);
  if (index_ != nullptr) {
    for (stack_bucket* b = index_[h & index_mask_]; b != nullptr; b = b->next_in_chain) {
      if (b->hash == h && same_stack(b, frames, depth, size)) return b;
    }
  }
  if ((index_ == nullptr || count_ + 1 > index_mask_ + 1) && !grow_index()) return nullptr;

  void* memory = arena_.allocate(sizeof(stack_bucket) + depth * sizeof(std::uintptr_t));
  if (memory == nullptr) return nullptr;
  auto* b = new (memory) stack_bucket;
  b->hash = h;
  b->size = size;
  b->depth = depth;
  std::memcpy(b->frames(), frames, depth * sizeof(std::uintptr_t));
  stack_bucket*& head = index_[h & index_mask_];
  b->next_in_chain = head;
  head = b;
  b->next_created = newest_;
  newest_ = b;
  ++count_;
  return b;
}

}  // namespace leakless::heap
