// src/heap/stack_buckets.cpp — the (stack, size) bucket table (see stack_buckets.hpp).
#include "heap/stack_buckets.hpp"

#include <cstring>
#include <new>

#include "core/leb128.hpp"

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

// Writes `frames` as zigzag LEB128 numbers of each one's difference from the one before; returns
// the bytes written (out has room for depth * kMaxLeb128Bytes).
std::uint32_t encode_frames(const std::uintptr_t* frames, std::uint32_t depth,
                            std::uint8_t* out) noexcept {
  std::uint8_t* at = out;
  std::uintptr_t previous = 0;
  for (std::uint32_t i = 0; i < depth; ++i) {
    at = put_uleb128(zigzag(static_cast<std::int64_t>(frames[i] - previous)), at);
    previous = frames[i];
  }
  return static_cast<std::uint32_t>(at - out);
}

bool same_stack(const stack_bucket* b, const std::uint8_t* encoded, std::uint32_t encoded_bytes,
                std::uint32_t depth, std::size_t size) noexcept {
  return b->size == size && b->depth == depth && b->encoded_bytes == encoded_bytes &&
         std::memcmp(b->encoded(), encoded, encoded_bytes) == 0;
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
  if (depth > kMaxStackDepth) depth = kMaxStackDepth;
  const std::uint64_t h = hash_stack(frames, depth, size);
  std::uint8_t encoded[kMaxStackDepth * kMaxLeb128Bytes];
  const std::uint32_t encoded_bytes = encode_frames(frames, depth, encoded);
  if (index_ != nullptr) {
    for (stack_bucket* b = index_[h & index_mask_]; b != nullptr; b = b->next_in_chain) {
      if (b->hash == h && same_stack(b, encoded, encoded_bytes, depth, size)) return b;
    }
  }
  if ((index_ == nullptr || count_ + 1 > index_mask_ + 1) && !grow_index()) return nullptr;

  void* memory = arena_.allocate(sizeof(stack_bucket) + encoded_bytes);
  if (memory == nullptr) return nullptr;
  auto* b = new (memory) stack_bucket;
  b->hash = h;
  b->size = size;
  b->depth = depth;
  b->encoded_bytes = encoded_bytes;
  std::memcpy(b + 1, encoded, encoded_bytes);
  stack_bucket*& head = index_[h & index_mask_];
  b->next_in_chain = head;
  head = b;
  b->next_created = newest_;
  newest_ = b;
  ++count_;
  return b;
}

std::vector<std::uintptr_t> stack_bucket::frames() const {
  std::vector<std::uintptr_t> out;
  out.reserve(depth);
  const std::uint8_t* at = encoded();
  const std::uint8_t* const end = at + encoded_bytes;
  std::uintptr_t previous = 0;
  std::uint64_t difference = 0;
  while (out.size() < depth && read_uleb128(at, end, difference) == leb128_status::ok) {
    previous += static_cast<std::uintptr_t>(unzigzag(difference));
    out.push_back(previous);
  }
  return out;
}

}  // namespace leakless::heap
