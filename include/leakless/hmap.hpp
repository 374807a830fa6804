// leakless/hmap.hpp — Go's map, for C++, with incremental growth and real shrinking.
//
// This is Go 1.19's runtime/map.go written as a C++ container. A map is a hash table of 2^B
// buckets. Each bucket holds up to 8 key/value pairs, a tophash byte per slot (the top 8 bits of
// the hash, raised to 5 when below it; values below 5 are Go's reserved slot states: emptyRest,
// emptyOne, evacuatedX, evacuatedY, evacuatedEmpty) and a pointer to an overflow bucket. The low B
// bits of the hash pick the bucket; the tophash bytes let a probe reject 7 of 8 slots without
// touching the keys, and all 8 are compared at once (SSE2, or a 64-bit word trick elsewhere). Load
// factor 6.5, a random per-map seed mixed into every hash, re-randomised when the map empties, as
// in Go.
//
// The layout is Go's too: a bucket is one block, its 8 tophash bytes and overflow link (16 bytes)
// and then its 8 slots, and the main buckets are one array of such blocks. A probe reads the
// tophash word and, on a match, a slot in the same cache line or one of the next two, which the
// processor fetches side by side. (A dense array of the main buckets' tophash words, kept apart
// from their slots, partly stays in cache, so misses and inserts of new keys read less, but a hit
// waits for two reads, one after the other; from a million entries lookups are bound by how many
// can be in flight at once, and the one block made hits 25 to 45% faster, misses and inserts
// slower: docs/benchmarks.md has the figures.) Key/value pairs are interleaved when that costs no
// padding; otherwise keys are packed, then values, as Go lays them out.
//
// Growth. When an insert would push the load above 6.5 entries per bucket, a new array twice as
// large is allocated; when overflow buckets pile up (deletes leave holes), a new array of the
// same size, so that the entries are packed again. Nothing is copied then. Each later insert of a
// new key, and each erase, migrates ("evacuates") at most two units of the old array, sweeping in
// order; a key whose unit has not moved yet is read and written where it is. No single operation
// rehashes the table, new buckets are set up only when their unit arrives (starting a growth costs
// an allocation, not a pass over memory), and a large old array's pages go back to the system as
// the sweep leaves them, so freeing it at the end costs no more than any other write. Arrays of
// 4 MiB and more ask for transparent huge pages, as Go's heap does: a random probe then rarely
// misses the TLB, and filling the array takes a page fault per 2 MiB instead of per 4 KiB. Overflow
// buckets are carved from chunks that belong to their array (Go preallocates some with the array
// for the same reason): a migration gives back the old array's overflow buckets by the ten
// thousand, and returning them to malloc one by one left a later malloc sorting them for
// milliseconds inside a single insert. The old array's chunks are freed one per write after its
// migration ends.
//
// Shrinking, which Go lacks (golang/go#20135). Erasing is what triggers it: once the live count is
// below an eighth of the maximum load and enough erases have happened at that occupancy
// (bucket_count/16 — the hysteresis that keeps clear-then-refill and steady churn from ever
// shrinking), the map migrates to an array sized as a fresh map would be (at most 80% of the
// maximum load, at most 8x smaller per step). The same machinery moves the entries: during a
// shrink a "unit" is the group of 2^s old buckets that fold into one new bucket — sparse buckets,
// holding no more entries on average than the two full buckets a growth step moves. A size given
// by hmap(hint) or reserve(n) is a floor that automatic shrinking respects; shrink_to_fit()
// shrinks to the fresh-map size now.
//
// Iteration is Go's `for range`: it starts at a random unit and a random slot offset, so two
// iterations usually differ in order. Erasing any key and inserting keys during iteration are
// safe; no key is visited twice; every key present for the whole iteration is visited once. Go
// gets this by letting the garbage collector keep old arrays alive for running iterators; here a
// live, unfinished iterator pauses migration instead (entries never move while one exists, and
// new entries go into the overflow chains), and migration resumes when the iteration ends.
//
// References and pointers from lookup()/operator[]/iteration stay valid until the next insert of
// a new key, erase, clear or shrink — any of them may move entries, which is why Go makes map
// elements unaddressable. Writing to a key that is already present (operator[], try_emplace,
// insert_or_assign) moves nothing. Keys and values larger than 128 bytes are stored indirectly,
// as Go does.
//
// Exceptions: if a hash, comparison, constructor or allocation throws, the map keeps every entry
// it had (strong guarantee for single-element inserts). Evacuation computes every destination
// and allocates every bucket before it moves anything, and copies (then rolls back) instead of
// moving when a type's move constructor may throw.
//
// Debug builds (no NDEBUG, or LEAKLESS_HMAP_CHECK_WRITERS=1) abort on a second concurrent writer
// with "concurrent map writes", and on a read racing a write, as Go does.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <leakless/hash.hpp>
#include <leakless/prefetch.hpp>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__linux__)
#include <unistd.h>

#include <sys/mman.h>
#endif

#ifndef LEAKLESS_HMAP_CHECK_WRITERS
#ifdef NDEBUG
#define LEAKLESS_HMAP_CHECK_WRITERS 0
#else
#define LEAKLESS_HMAP_CHECK_WRITERS 1
#endif
#endif

namespace leakless {

// What a map holds now; see hmap::stats().
struct hmap_stats {
  std::size_t count = 0;             // live entries
  std::size_t bucket_count = 0;      // buckets in the current array (2^B)
  std::size_t old_bucket_count = 0;  // buckets in the array being migrated from, 0 if none
  std::size_t overflow_buckets = 0;  // overflow buckets hanging off either array
  bool growing = false;              // migrating to a larger or same-size array
  bool shrinking = false;            // migrating to a smaller array
  std::size_t memory_bytes = 0;      // heap bytes the map holds, as memory_bytes()
};

namespace hmap_detail {

static_assert(std::endian::native == std::endian::little,
              "hmap reads the 8 tophash bytes of a bucket as one little-endian word");

inline constexpr std::size_t kSlots = 8;
// Go's tophash states: values below kMinTopHash mark a slot, not a hash.
inline constexpr std::uint8_t kEmptyRest = 0;   // empty, and so is every later slot and overflow
inline constexpr std::uint8_t kEmptyOne = 1;    // empty
inline constexpr std::uint8_t kEvacuatedX = 2;  // moved to the same index in the new array
inline constexpr std::uint8_t kEvacuatedY = 3;  // moved to another index in the new array
static_assert(kEvacuatedY == kEvacuatedX + 1);  // move_small_unit computes one from the other
inline constexpr std::uint8_t kEvacuatedEmpty = 4;  // empty, and the bucket has been evacuated
inline constexpr std::uint8_t kMinTopHash = 5;
inline constexpr std::size_t kMaxInlineSize = 128;

// Slot masks: the 8 tophash bytes of a bucket, read as one word, are compared all at once. A
// mask has one bit (or, without SSE2, one byte's high bit) per matching slot, lowest slot first.
#if defined(__SSE2__)
inline constexpr bool kExactMatch = true;  // no false positives: no need to re-check the byte
inline std::uint64_t mask_of(__m128i bytes_equal) noexcept {
  return static_cast<std::uint64_t>(_mm_movemask_epi8(bytes_equal)) & 0xFFu;
}
inline __m128i load_word(std::uint64_t word) noexcept {
  return _mm_cvtsi64_si128(static_cast<long long>(word));
}
inline std::uint64_t bytes_equal_to(std::uint64_t word, std::uint8_t byte) noexcept {
  return mask_of(_mm_cmpeq_epi8(load_word(word), _mm_set1_epi8(static_cast<char>(byte))));
}
// A key's tophash as a probe compares it: in all 16 lanes, computed from the hash with no trip
// through a general register (tophash() below gives the same byte).
using tophash_probe = __m128i;
inline tophash_probe probe_of(std::uint64_t hash) noexcept {
  __m128i v = _mm_unpacklo_epi8(load_word(hash), load_word(hash));  // byte i in 16-bit lane i
  v = _mm_shufflehi_epi16(v, 0xFF);  // lane 7, the top byte twice, in lanes 4 to 7
  v = _mm_unpackhi_epi64(v, v);      // and in lanes 0 to 3
  return _mm_max_epu8(v, _mm_set1_epi8(static_cast<char>(kMinTopHash)));
}
// Slots whose tophash is the probe's. The word's upper 8 lanes are zero, and a tophash never is,
// so only the 8 slots' lanes can match.
inline std::uint64_t matching_slots(std::uint64_t word, tophash_probe probe) noexcept {
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(load_word(word), probe)));
}
// Slots that are emptyRest.
inline std::uint64_t zero_bytes(std::uint64_t word) noexcept { return bytes_equal_to(word, 0); }
// Slots that are emptyRest or emptyOne.
inline std::uint64_t empty_slots(std::uint64_t word) noexcept {
  const __m128i v = load_word(word);
  return mask_of(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(kEmptyOne)), v));
}
// Slots holding an entry; valid in chains that hold no evacuation marks.
inline std::uint64_t live_slots(std::uint64_t word) noexcept { return ~empty_slots(word) & 0xFFu; }
inline std::size_t slot_of_bit(std::uint64_t bits) noexcept {
  return static_cast<std::size_t>(std::countr_zero(bits));
}
#else
inline constexpr bool kExactMatch = false;
inline constexpr std::uint64_t kByteOnes = 0x0101010101010101ull;
inline constexpr std::uint64_t kByteHighs = 0x8080808080808080ull;
// High bit set in (at least) every zero byte of x; a false positive is only possible in a byte
// above a true zero byte, so "any bit set" is exact and the lowest set bit is a true zero.
constexpr std::uint64_t zero_bytes(std::uint64_t x) noexcept {
  return (x - kByteOnes) & ~x & kByteHighs;
}
constexpr std::uint64_t bytes_equal_to(std::uint64_t word, std::uint8_t byte) noexcept {
  return zero_bytes(word ^ (kByteOnes * byte));
}
constexpr std::uint64_t empty_slots(std::uint64_t word) noexcept {
  return zero_bytes(word & ~kByteOnes);
}
// Exact, because masking the low bit leaves no byte equal to 1, so zero_bytes() has nothing to
// borrow from.
constexpr std::uint64_t live_slots(std::uint64_t word) noexcept {
  return ~empty_slots(word) & kByteHighs;
}
inline std::size_t slot_of_bit(std::uint64_t bits) noexcept {
  return static_cast<std::size_t>(std::countr_zero(bits)) >> 3;
}
#endif
// How many slots a mask holds. std::popcount is a library call without -mpopcnt (not in the
// x86-64 baseline); this is a few arithmetic instructions.
constexpr std::size_t count_slots(std::uint64_t bits) noexcept {
  bits -= (bits >> 1) & 0x5555555555555555ull;
  bits = (bits & 0x3333333333333333ull) + ((bits >> 2) & 0x3333333333333333ull);
  bits = (bits + (bits >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return static_cast<std::size_t>((bits * 0x0101010101010101ull) >> 56);
}
// The hash's top byte, raised to kMinTopHash when it is below: the values under it are Go's
// tophash states. (Go adds kMinTopHash instead; taking the larger of the two is one SSE2
// instruction on all lanes at once, see probe_of, and changes how often a tophash is 5 from
// 2 in 256 to 6 in 256.)
constexpr std::uint8_t tophash(std::uint64_t hash) noexcept {
  const auto top = static_cast<std::uint8_t>(hash >> 56);
  return top < kMinTopHash ? kMinTopHash : top;
}
#if !defined(__SSE2__)
using tophash_probe = std::uint8_t;
constexpr tophash_probe probe_of(std::uint64_t hash) noexcept { return tophash(hash); }
constexpr std::uint64_t matching_slots(std::uint64_t word, tophash_probe top) noexcept {
  return bytes_equal_to(word, top);
}
#endif
// Go's overLoadFactor: more than 6.5 entries per bucket on average (and more than one bucket's
// worth at all).
constexpr bool over_load(std::size_t count, unsigned log2_buckets) noexcept {
  return count > kSlots && count > 13 * ((std::size_t{1} << log2_buckets) >> 1);
}
// The smallest table Go's makemap would allocate for `count` entries.
constexpr unsigned log2_for(std::size_t count) noexcept {
  unsigned log2 = 0;
  while (over_load(count, log2)) ++log2;
  return log2;
}
// Below an eighth of the maximum load: where shrinking is considered. An eighth, not a quarter:
// a map being emptied then shrinks about 4x per step instead of 2x, which moves a third as many
// survivors in total, and still ends within 2x of a fresh map's size.
constexpr bool sparse(std::size_t count, unsigned log2_buckets) noexcept {
  return count * 16 < 13 * (std::size_t{1} << log2_buckets);
}
// At most 80% of the maximum load: the size a shrink aims for, so that the map does not grow
// again as soon as a few keys come back.
constexpr bool fits_after_shrink(std::size_t count, unsigned log2_buckets) noexcept {
  return count * 5 <= 26 * (std::size_t{1} << log2_buckets);
}

// The unit in which large tables take and give back memory: one transparent huge page.
inline constexpr std::uintptr_t kHugePageBytes = std::uintptr_t{2} << 20;

// Applies `advice` to the whole huge pages inside [begin, end), if there are any.
inline void advise_whole_huge_pages(std::uintptr_t begin, std::uintptr_t end, int advice) noexcept {
#if defined(__linux__)
  const std::uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const std::uintptr_t last = end & ~(kHugePageBytes - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, advice);
#else
  (void)begin;
  (void)end;
  (void)advice;
#endif
}

// Gives the whole huge pages of [begin, end) back to the operating system; their contents read as
// zero afterwards. `floor` is where the range may be widened down to: the part of begin's huge
// page below begin is released too (it belongs to buckets already left behind) unless it is below
// floor. Whole huge pages, because releasing part of one makes the system split it first, which
// costs more than the release saves.
inline void release_pages(const void* floor, const void* begin, const void* end) noexcept {
#if defined(__linux__)
  const auto widened = reinterpret_cast<std::uintptr_t>(begin) & ~(kHugePageBytes - 1);
  advise_whole_huge_pages(std::max(widened, reinterpret_cast<std::uintptr_t>(floor)),
                          reinterpret_cast<std::uintptr_t>(end), MADV_DONTNEED);
#else
  (void)floor;
  (void)begin;
  (void)end;
#endif
}

// Asks for transparent huge pages over the 2 MiB-aligned part of [begin, begin + bytes), as Go's
// heap does for its arenas. A large table is read at random: with 4 KiB pages nearly every probe
// also misses the TLB, and filling it takes a page fault per 4 KiB, which on a virtual machine
// costs microseconds each. Only a hint: the system may decline it, and nothing depends on it.
inline void advise_huge_pages(const void* begin, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto first = reinterpret_cast<std::uintptr_t>(begin);
  advise_whole_huge_pages(first, first + bytes, MADV_HUGEPAGE);
#else
  (void)begin;
  (void)bytes;
#endif
}

[[noreturn]] inline void fatal(const char* what) noexcept {
  std::fprintf(stderr, "fatal error: leakless::hmap: %s\n", what);
  std::abort();
}

// A fast per-thread random source (wyrand) for map seeds and iteration starts.
inline std::uint64_t random_u64() noexcept {
  static std::atomic<std::uint64_t> threads{0};
  thread_local std::uint64_t state = [] {
    const auto now =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::uint64_t salt = threads.fetch_add(1, std::memory_order_relaxed);
    return hash_detail::mix(now ^ reinterpret_cast<std::uintptr_t>(&salt), salt);
  }();
  state += hash_detail::kMix0;
  return hash_detail::fold_mul(state, state ^ hash_detail::kMix1);
}

template <class T, class = void>
struct is_transparent : std::false_type {};
template <class T>
struct is_transparent<T, std::void_t<typename T::is_transparent>> : std::true_type {};

// How a key or value lives in a slot: inline, or behind a pointer when larger than 128 bytes.
template <class T, class Alloc>
struct storage {
  static constexpr bool indirect = sizeof(T) > kMaxInlineSize;
  using stored = std::conditional_t<indirect, T*, T>;
  using alloc_type = typename std::allocator_traits<Alloc>::template rebind_alloc<T>;
  using traits = std::allocator_traits<alloc_type>;
  static constexpr bool nothrow_relocate = indirect || std::is_nothrow_move_constructible_v<T>;

  static T& get(stored& slot) noexcept {
    if constexpr (indirect) {
      return *slot;
    } else {
      return slot;
    }
  }
  template <class... Args>
  static void construct(const Alloc& alloc, void* where, Args&&... args) {
    if constexpr (indirect) {
      alloc_type typed(alloc);
      T* object = traits::allocate(typed, 1);
      try {
        traits::construct(typed, object, std::forward<Args>(args)...);
      } catch (...) {
        traits::deallocate(typed, object, 1);
        throw;
      }
      ::new (where) stored(object);
    } else {
      ::new (where) T(std::forward<Args>(args)...);
    }
  }
  // Moves (or, when moving may throw, copies) a slot's contents to raw storage.
  static void relocate(void* where, stored& from) noexcept(nothrow_relocate) {
    ::new (where) stored(std::move_if_noexcept(from));
  }
  // Undoes relocate() when a later copy failed: the source still owns its object.
  static void drop_copy(stored& copy) noexcept {
    if constexpr (!indirect) copy.~T();
  }
  // Ends the source of a completed relocate(): an indirect object now belongs to the copy.
  static void drop_source(stored& from) noexcept {
    if constexpr (!indirect) from.~T();
  }
  static void destroy(const Alloc& alloc, stored& slot) noexcept {
    if constexpr (indirect) {
      alloc_type typed(alloc);
      traits::destroy(typed, slot);
      traits::deallocate(typed, slot, 1);
    } else {
      slot.~T();
    }
  }
};

// A bucket's 8 tophash bytes and its overflow link: the 16 bytes at the head of its block.
template <class Overflow>
struct control {
  std::uint8_t tophash[kSlots];
  Overflow* overflow;

  std::uint64_t word() const noexcept {
    std::uint64_t word;
    std::memcpy(&word, tophash, sizeof word);
    return word;
  }
  void reset() noexcept {
    std::memset(tophash, kEmptyRest, sizeof tophash);
    overflow = nullptr;
  }
};

// Where the 8 keys and 8 values of a bucket sit. Key/value pairs are interleaved when that needs
// no padding, so that a hit reads one cache line; otherwise keys are packed, then values, as Go
// lays them out.
template <class StoredKey, class StoredValue>
struct slot_layout {
  static constexpr bool interleaved = sizeof(StoredKey) % alignof(StoredValue) == 0 &&
                                      sizeof(StoredValue) % alignof(StoredKey) == 0;
  // Bytes from one key to the next.
  static constexpr std::size_t key_stride =
      interleaved ? sizeof(StoredKey) + sizeof(StoredValue) : sizeof(StoredKey);
  static constexpr std::size_t values_offset =
      (kSlots * sizeof(StoredKey) + alignof(StoredValue) - 1) / alignof(StoredValue) *
      alignof(StoredValue);
  static constexpr std::size_t size =
      interleaved ? kSlots * key_stride : values_offset + kSlots * sizeof(StoredValue);
  static constexpr std::size_t align = std::max(alignof(StoredKey), alignof(StoredValue));
};

template <class StoredKey, class StoredValue>
struct alignas(slot_layout<StoredKey, StoredValue>::align) slots {
  using layout = slot_layout<StoredKey, StoredValue>;
  unsigned char bytes[layout::size];

  void* key_address(std::size_t slot) noexcept { return bytes + slot * layout::key_stride; }
  void* value_address(std::size_t slot) noexcept {
    return layout::interleaved ? bytes + slot * layout::key_stride + sizeof(StoredKey)
                               : bytes + layout::values_offset + slot * sizeof(StoredValue);
  }
};

// A bucket's block: its control, then its slots. A table is an array of them; an overflow bucket
// is one more, carved from an overflow_pool's chunk.
template <class StoredKey, class StoredValue>
struct bucket_block {
  control<bucket_block> ctl;
  slots<StoredKey, StoredValue> data;
};

// The overflow buckets of one bucket array, carved from chunks instead of one allocation each.
// A migration frees the old array's overflow buckets by the tens of thousands; handed to malloc
// one by one, they flood its free lists, and a later malloc that has to sort them stalls for
// milliseconds in a single insert. A chunk's first bucket is its header: the link to the next
// chunk and the chunk's length in buckets. Chunks double in size up to about 64 KiB, so a small
// map wastes little and a large one makes few allocations; a bucket given back goes onto a free
// list that the next take() reuses. Chunks are freed together, when their array is done with.
template <class Overflow, class Alloc>
class overflow_pool {
  using traits = std::allocator_traits<Alloc>;

 public:
  overflow_pool() noexcept = default;
  overflow_pool(overflow_pool&& other) noexcept
      : chunks_(std::exchange(other.chunks_, nullptr)),
        free_(std::exchange(other.free_, nullptr)),
        next_(std::exchange(other.next_, nullptr)),
        end_(std::exchange(other.end_, nullptr)),
        in_use_(std::exchange(other.in_use_, 0)),
        reserved_(std::exchange(other.reserved_, 0)) {}
  overflow_pool& operator=(overflow_pool&& other) noexcept {
    overflow_pool moved(std::move(other));
    swap(moved);
    return *this;
  }
  void swap(overflow_pool& other) noexcept {
    std::swap(chunks_, other.chunks_);
    std::swap(free_, other.free_);
    std::swap(next_, other.next_);
    std::swap(end_, other.end_);
    std::swap(in_use_, other.in_use_);
    std::swap(reserved_, other.reserved_);
  }

  // An empty overflow bucket.
  Overflow* take(Alloc& alloc) {
    Overflow* b = free_;
    if (b != nullptr) {
      free_ = b->ctl.overflow;
    } else {
      if (next_ == end_) add_chunk(alloc);
      b = next_++;
    }
    b->ctl.reset();
    ++in_use_;
    return b;
  }
  void give_back(Overflow* b) noexcept {
    b->ctl.overflow = free_;
    free_ = b;
    --in_use_;
  }
  std::size_t in_use() const noexcept { return in_use_; }
  // Buckets held in chunks, headers included.
  std::size_t reserved() const noexcept { return reserved_; }

  // Hands over the chunk list (for free_first_chunk) and leaves the pool empty.
  Overflow* detach_chunks() noexcept {
    Overflow* chunks = chunks_;
    *this = overflow_pool();
    return chunks;
  }
  // Frees the first chunk of a list and moves the list on; returns the chunk's length.
  static std::size_t free_first_chunk(Alloc& alloc, Overflow*& list) noexcept {
    Overflow* chunk = std::exchange(list, list->ctl.overflow);
    const std::size_t length = chunk_length(chunk);
    traits::deallocate(alloc, chunk, length);
    return length;
  }

 private:
  static constexpr std::size_t kFirstChunk = 16;
  static constexpr std::size_t kLargestChunk =
      std::max<std::size_t>(kFirstChunk, (std::size_t{64} << 10) / sizeof(Overflow));

  static std::size_t chunk_length(const Overflow* header) noexcept {
    std::size_t length;
    std::memcpy(&length, &header->data, sizeof length);
    return length;
  }
  void add_chunk(Alloc& alloc) {
    const std::size_t length = std::clamp(reserved_, kFirstChunk, kLargestChunk);
    Overflow* chunk = traits::allocate(alloc, length);
    static_assert(sizeof(Overflow::data) >= sizeof(std::size_t));
    chunk->ctl.overflow = chunks_;
    std::memcpy(&chunk->data, &length, sizeof length);
    chunks_ = chunk;
    next_ = chunk + 1;
    end_ = chunk + length;
    reserved_ += length;
  }

  Overflow* chunks_ = nullptr;  // headers, linked through ctl.overflow
  Overflow* free_ = nullptr;    // given back, linked through ctl.overflow
  Overflow* next_ = nullptr;    // the rest of the newest chunk: [next_, end_)
  Overflow* end_ = nullptr;
  std::size_t in_use_ = 0;
  std::size_t reserved_ = 0;
};

// A bucket as the algorithms see it: a pointer to its block, in a table or an overflow chunk. A
// null view ends a chain.
template <class StoredKey, class StoredValue>
class bucket {
 public:
  using block_type = bucket_block<StoredKey, StoredValue>;
  using control_type = control<block_type>;
  using slots_type = slots<StoredKey, StoredValue>;

  bucket() noexcept = default;
  explicit bucket(block_type* stored) noexcept : stored_(stored) {}

  explicit operator bool() const noexcept { return stored_ != nullptr; }
  friend bool operator==(const bucket& a, const bucket& b) noexcept {
    return a.stored_ == b.stored_;
  }

  // `which` (0 or 1) ? one : zero, by masking instead of a branch: for a choice that is a coin
  // toss, where a mispredicted branch would cost more than the work around it.
  static bucket select(const bucket& zero, const bucket& one, unsigned which) noexcept {
    const std::uintptr_t mask = std::uintptr_t{0} - which;
    return bucket(
        reinterpret_cast<block_type*>((reinterpret_cast<std::uintptr_t>(zero.stored_) & ~mask) |
                                      (reinterpret_cast<std::uintptr_t>(one.stored_) & mask)));
  }

  control_type& ctl() const noexcept { return stored_->ctl; }
  std::uint8_t& top(std::size_t slot) const noexcept { return stored_->ctl.tophash[slot]; }
  std::uint64_t word() const noexcept { return stored_->ctl.word(); }
  bucket next() const noexcept { return bucket(stored_->ctl.overflow); }

  // Asks for the bucket's slots to be brought into cache: a line at each 64 bytes of them from
  // the first. A block is 144 bytes for 8-byte keys and values, so where it starts part-way into
  // a line the last slot's line is left out; asking for every line the slots touch (a loop whose
  // length depends on the address) made inserts and erases at N = 1k 12 to 70% slower.
  void prefetch_slots() const noexcept {
    for (std::size_t offset = 0; offset < sizeof(slots_type); offset += 64) {
      prefetch_detail::prefetch_read(reinterpret_cast<const unsigned char*>(&stored_->data) +
                                     offset);
    }
  }
  // Asks for the bucket's control and slots to be brought into cache.
  void prefetch() const noexcept {
    prefetch_detail::prefetch_read(&stored_->ctl);
    prefetch_slots();
  }

  void* key_address(std::size_t slot) const noexcept { return stored_->data.key_address(slot); }
  void* value_address(std::size_t slot) const noexcept { return stored_->data.value_address(slot); }
  StoredKey& key(std::size_t slot) const noexcept {
    return *std::launder(static_cast<StoredKey*>(key_address(slot)));
  }
  StoredValue& value(std::size_t slot) const noexcept {
    return *std::launder(static_cast<StoredValue*>(value_address(slot)));
  }

 private:
  block_type* stored_ = nullptr;
};

// operator-> for iterators whose reference is a pair of references.
template <class Reference>
struct arrow_proxy {
  Reference reference;
  Reference* operator->() noexcept { return &reference; }
};

}  // namespace hmap_detail

template <class K, class V, class Hash = leakless::hash<K>, class KeyEqual = std::equal_to<K>,
          class Allocator = std::allocator<std::pair<const K, V>>>
class hmap {
  using key_storage = hmap_detail::storage<K, Allocator>;
  using value_storage = hmap_detail::storage<V, Allocator>;
  using bucket = hmap_detail::bucket<typename key_storage::stored, typename value_storage::stored>;
  using control = typename bucket::control_type;
  using bucket_block = typename bucket::block_type;
  template <class T>
  using rebound = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using block_traits = std::allocator_traits<rebound<bucket_block>>;
  using overflow_pool = hmap_detail::overflow_pool<bucket_block, rebound<bucket_block>>;
  using alloc_traits = std::allocator_traits<Allocator>;

  static constexpr bool kTransparent =
      hmap_detail::is_transparent<Hash>::value &&
      (hmap_detail::is_transparent<KeyEqual>::value || std::is_same_v<KeyEqual, std::equal_to<K>>);
  static constexpr bool kNothrowRelocate =
      key_storage::nothrow_relocate && value_storage::nothrow_relocate;
  static constexpr bool kNothrowHash = [] {
    if constexpr (std::is_invocable_v<const Hash&, const K&, std::uint64_t>) {
      return std::is_nothrow_invocable_v<const Hash&, const K&, std::uint64_t>;
    } else {
      return std::is_nothrow_invocable_v<const Hash&, const K&>;
    }
  }();

  // An array of 2^n main buckets' blocks (see allocate_table), with the mask 2^n - 1 that picks
  // a hash's bucket. The mask is kept, not computed from n: a lookup then spends two instructions
  // on it instead of seven, about 4% of a lookup in a table that fits in cache.
  struct table {
    bucket_block* blocks = nullptr;
    std::size_t mask = 0;
    explicit operator bool() const noexcept { return blocks != nullptr; }
    bucket at(std::size_t i) const noexcept { return bucket(blocks + i); }
    bucket for_hash(std::uint64_t hash) const noexcept { return at(hash & mask); }
  };

  template <bool Const>
  class basic_iterator;

 public:
  using key_type = K;
  using mapped_type = V;
  using value_type = std::pair<const K, V>;
  using size_type = std::size_t;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using allocator_type = Allocator;
  using iterator = basic_iterator<false>;
  using const_iterator = basic_iterator<true>;

  // make(map[K]V)
  hmap() : seed_(hmap_detail::random_u64()) {}
  // make(map[K]V, hint): room for `hint` entries now, and never shrunk below that automatically.
  explicit hmap(std::size_t hint, const Hash& hash = Hash(), const KeyEqual& equal = KeyEqual(),
                const Allocator& alloc = Allocator())
      : seed_(hmap_detail::random_u64()), hash_(hash), equal_(equal), alloc_(alloc) {
    reserve(hint);
  }
  // map[K]V{...}; on repeated keys the first one wins.
  hmap(std::initializer_list<value_type> entries) : hmap() {
    allocate_for(entries.size());
    for (const value_type& entry : entries) emplace_key(entry.first, entry.second);
  }
  hmap(const hmap& other)
      : seed_(hmap_detail::random_u64()),
        hash_(other.hash_),
        equal_(other.equal_),
        alloc_(alloc_traits::select_on_container_copy_construction(other.alloc_)) {
    copy_entries_from(other);
  }
  hmap(hmap&& other) noexcept
      : seed_(hmap_detail::random_u64()),
        hash_(std::move(other.hash_)),
        equal_(std::move(other.equal_)),
        alloc_(std::move(other.alloc_)) {
    take_table(other);
  }
  hmap& operator=(const hmap& other) {
    if (this != &other) {
      hmap copy(other);
      swap(copy);
    }
    return *this;
  }
  hmap& operator=(hmap&& other) noexcept(
      alloc_traits::propagate_on_container_move_assignment::value ||
      alloc_traits::is_always_equal::value) {
    if (this == &other) return *this;
    release_all();
    hash_ = std::move(other.hash_);
    equal_ = std::move(other.equal_);
    if constexpr (alloc_traits::propagate_on_container_move_assignment::value) {
      alloc_ = std::move(other.alloc_);
    }
    if (alloc_traits::propagate_on_container_move_assignment::value || alloc_ == other.alloc_) {
      take_table(other);
    } else {
      copy_entries_from(other);  // memory of one allocator cannot be handed to another
      other.clear();
    }
    return *this;
  }
  ~hmap() { release_all(); }

  void swap(hmap& other) noexcept {
    using std::swap;
    swap(buckets_, other.buckets_);
    swap(old_buckets_, other.old_buckets_);
    swap(count_, other.count_);
    swap(evacuated_units_, other.evacuated_units_);
    swap(released_units_, other.released_units_);
    pool_.swap(other.pool_);
    old_pool_.swap(other.old_pool_);
    swap(retiring_, other.retiring_);
    swap(retiring_buckets_, other.retiring_buckets_);
    swap(shrink_credit_, other.shrink_credit_);
    swap(seed_, other.seed_);
    swap(log2_buckets_, other.log2_buckets_);
    swap(old_log2_buckets_, other.old_log2_buckets_);
    swap(floor_log2_buckets_, other.floor_log2_buckets_);
    swap(hash_, other.hash_);
    swap(equal_, other.equal_);
    if constexpr (alloc_traits::propagate_on_container_swap::value) swap(alloc_, other.alloc_);
  }
  friend void swap(hmap& a, hmap& b) noexcept { a.swap(b); }

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

  // v, ok := m[k] — nullptr when absent.
  V* lookup(const K& key) { return lookup_impl(key); }
  const V* lookup(const K& key) const { return lookup_impl(key); }
  template <class Q>
  requires kTransparent V* lookup(const Q& key) { return lookup_impl(key); }
  template <class Q>
  requires kTransparent const V* lookup(const Q& key) const { return lookup_impl(key); }
  // v := m[k] — the zero value V{} when absent.
  V get(const K& key) const {
    const V* value = lookup(key);
    return value != nullptr ? *value : V{};
  }
  bool contains(const K& key) const { return lookup(key) != nullptr; }
  template <class Q>
  requires kTransparent bool contains(const Q& key) const { return lookup(key) != nullptr; }

  // m[k] as an lvalue: inserts V{} when absent.
  // The insert paths are inlined into the caller on purpose; see emplace_key.
  [[gnu::always_inline]] V& operator[](const K& key) { return *emplace_key(key).first; }
  [[gnu::always_inline]] V& operator[](K&& key) { return *emplace_key(std::move(key)).first; }
  // m[k] = v; true when the key was inserted.
  [[gnu::always_inline]] bool insert_or_assign(K key, V value) {
    auto [slot, inserted] = emplace_key(std::move(key), std::move(value));
    if (!inserted) *slot = std::move(value);
    return inserted;
  }
  // Constructs V from args only when the key is absent.
  template <class... Args>
  [[gnu::always_inline]] std::pair<V*, bool> try_emplace(K key, Args&&... args) {
    return emplace_key(std::move(key), std::forward<Args>(args)...);
  }

  // delete(m, k): 0, and no error, when absent.
  std::size_t erase(const K& key) { return erase_impl(key); }
  template <class Q>
  requires kTransparent std::size_t erase(const Q& key) { return erase_impl(key); }

  // Removes every entry but keeps the bucket array, as Go's clear does, so that refilling does
  // not allocate again; re-randomises the seed. Safe during iteration.
  void clear() {
    writer_guard guard(*this);
    if (frozen()) {
      for_each_live_chain([&](bucket head, bool) {
        for (bucket b = head; b; b = b.next()) {
          destroy_entries(b);
          std::memset(b.ctl().tophash, hmap_detail::kEmptyRest, hmap_detail::kSlots);
        }
      });
    } else if (buckets_) {
      destroy_and_free_chains();
      if (old_buckets_) finish_with_old_array();
      for (std::size_t i = 0; i < bucket_count(); ++i) buckets_.blocks[i].ctl.reset();
    }
    count_ = 0;
    shrink_credit_ = 0;
    seed_ = hmap_detail::random_u64();
  }

  // Room for n entries without growing; n also becomes a floor for automatic shrinking.
  // Finishes any migration now. While an iteration is in progress it only records the floor.
  void reserve(std::size_t n) {
    const unsigned wanted = hmap_detail::log2_for(n);
    floor_log2_buckets_ =
        static_cast<std::uint8_t>(std::max<unsigned>(floor_log2_buckets_, wanted));
    if (frozen()) return;
    writer_guard guard(*this);
    allocate_for(n);
  }
  // Shrinks to the size a fresh map holding the current entries would have, packing overflow
  // chains, now; drops the reserve() floor. Does nothing while an iteration is in progress.
  void shrink_to_fit() {
    if (frozen()) return;
    writer_guard guard(*this);
    floor_log2_buckets_ = 0;
    finish_migration();
    if (count_ == 0) {
      release_all();
      return;
    }
    const unsigned target = hmap_detail::log2_for(count_);
    if (target < log2_buckets_ || pool_.in_use() > 0) {
      start_migration(std::min<unsigned>(target, log2_buckets_));
      finish_migration();
    }
  }

  // Heap bytes the map holds now: bucket arrays, overflow buckets and indirectly stored keys and
  // values (not memory that the keys and values themselves own).
  std::size_t memory_bytes() const noexcept {
    std::size_t bytes = 0;
    if (buckets_) bytes += table_bytes(log2_buckets_);
    if (old_buckets_) bytes += table_bytes(old_log2_buckets_);
    bytes += (pool_.reserved() + old_pool_.reserved() + retiring_buckets_) * sizeof(bucket_block);
    if constexpr (key_storage::indirect) bytes += count_ * sizeof(K);
    if constexpr (value_storage::indirect) bytes += count_ * sizeof(V);
    return bytes;
  }
  hmap_stats stats() const noexcept {
    hmap_stats s;
    s.count = count_;
    s.bucket_count = bucket_count();
    s.old_bucket_count = old_buckets_ ? old_bucket_count() : 0;
    s.overflow_buckets = pool_.in_use() + old_pool_.in_use();
    s.growing = static_cast<bool>(old_buckets_) && log2_buckets_ >= old_log2_buckets_;
    s.shrinking = static_cast<bool>(old_buckets_) && log2_buckets_ < old_log2_buckets_;
    s.memory_bytes = memory_bytes();
    return s;
  }

  iterator begin() { return iterator(this); }
  iterator end() noexcept { return iterator(); }
  const_iterator begin() const { return const_iterator(this); }
  const_iterator end() const noexcept { return const_iterator(); }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const noexcept { return end(); }

  hasher hash_function() const { return hash_; }
  key_equal key_eq() const { return equal_; }
  allocator_type get_allocator() const { return alloc_; }

 private:
  // Where a key's chain starts: the bucket in the array that currently holds its unit.
  struct chain_ref {
    bucket head;
    bool in_old;
  };

  class writer_guard {
   public:
#if LEAKLESS_HMAP_CHECK_WRITERS
    explicit writer_guard(const hmap& map) : map_(map) {
      if (map_.writing_.exchange(true, std::memory_order_acquire)) {
        hmap_detail::fatal("concurrent map writes");
      }
    }
    ~writer_guard() { map_.writing_.store(false, std::memory_order_release); }

   private:
    const hmap& map_;
#else
    explicit writer_guard(const hmap&) noexcept {}
#endif
    writer_guard(const writer_guard&) = delete;
    writer_guard& operator=(const writer_guard&) = delete;
  };

  std::size_t bucket_count() const noexcept { return std::size_t{1} << log2_buckets_; }
  std::size_t old_bucket_count() const noexcept { return std::size_t{1} << old_log2_buckets_; }
  // Units of the migration under way: min(old, new) bucket counts. Unit u covers old buckets
  // u, u+units, u+2*units... and new buckets u, u+units, ...: one side always has one bucket.
  std::size_t unit_count() const noexcept {
    return std::size_t{1} << std::min(log2_buckets_, old_log2_buckets_);
  }
  bool frozen() const noexcept { return iterators_.load(std::memory_order_relaxed) != 0; }
  bool unit_evacuated(std::size_t unit) const noexcept { return unit < evacuated_units_; }

  template <class Q>
  std::uint64_t hash_of(const Q& key) const {
    if constexpr (std::is_invocable_v<const Hash&, const Q&, std::uint64_t>) {
      return static_cast<std::uint64_t>(hash_(key, seed_));
    } else {
      return hash_detail::mix(static_cast<std::uint64_t>(hash_(key)), seed_);
    }
  }
  template <class Q>
  bool key_matches(bucket b, std::size_t slot, const Q& key) const {
    const K& stored = key_storage::get(b.key(slot));
    if constexpr (std::is_same_v<Q, K> || hmap_detail::is_transparent<KeyEqual>::value) {
      return equal_(stored, key);
    } else {
      return stored == key;  // std::equal_to<K> with a transparent hash: K == Q directly
    }
  }
  static V& value_at(bucket b, std::size_t slot) noexcept {
    return value_storage::get(b.value(slot));
  }

  chain_ref chain_for(std::uint64_t hash) const noexcept {
    if (old_buckets_) [[unlikely]] {
      if (!unit_evacuated(hash & (unit_count() - 1))) {
        return {old_buckets_.for_hash(hash), true};
      }
    }
    return {buckets_.for_hash(hash), false};
  }

  // The slot of key in bucket b (whose tophash word is given), or kSlots when it is not there.
  template <class Q>
  std::size_t match_in_bucket(bucket b, std::uint64_t word, hmap_detail::tophash_probe probe,
                              const Q& key) const {
    for (std::uint64_t m = hmap_detail::matching_slots(word, probe); m != 0; m &= m - 1) {
      const std::size_t slot = hmap_detail::slot_of_bit(m);
      if (slot >= hmap_detail::kSlots) __builtin_unreachable();  // see matching_slots
      if constexpr (!hmap_detail::kExactMatch) {
        if (b.top(slot) != probe) continue;
      }
      if (key_matches(b, slot, key)) return slot;
    }
    return hmap_detail::kSlots;
  }

  // Walks key's chain; returns on_found(bucket, slot) for the key's slot, or a value-initialised
  // result when the key is absent. The match returns straight from the loop, so that a lookup is
  // one short path the processor can overlap with the next one.
  template <class Q, class OnFound>
  auto probe(std::uint64_t hash, const Q& key, OnFound&& on_found) const {
    return probe_chain(chain_for(hash).head, hash, key, on_found);
  }
  // The same, in the chain that starts at head (chain_for(hash).head, when the caller has it).
  template <class Q, class OnFound>
  auto probe_chain(bucket head, std::uint64_t hash, const Q& key, OnFound&& on_found) const {
    using result = decltype(on_found(bucket(), std::size_t{0}));
    const hmap_detail::tophash_probe probe = hmap_detail::probe_of(hash);
    bucket b = head;
    for (;;) {
      const std::uint64_t word = b.word();
      if (const std::size_t slot = match_in_bucket(b, word, probe, key); slot < hmap_detail::kSlots)
          [[likely]] {
        return on_found(b, slot);
      }
      if (hmap_detail::zero_bytes(word) != 0) return result{};  // emptyRest: the chain ends
      b = b.next();
      if (!b) return result{};
    }
  }
  template <class Q>
  std::pair<bucket, std::size_t> find_slot(bucket head, std::uint64_t hash, const Q& key) const {
    return probe_chain(head, hash, key,
                       [](bucket b, std::size_t slot) { return std::pair(b, slot); });
  }

  template <class Q>
  V* lookup_impl(const Q& key) const {
    if (count_ == 0) return nullptr;
    const std::uint64_t hash = hash_of(key);
#if LEAKLESS_HMAP_CHECK_WRITERS
    if (writing_.load(std::memory_order_relaxed)) {
      hmap_detail::fatal("concurrent map read and map write");
    }
#endif
    return probe(hash, key, [](bucket b, std::size_t slot) {
      V* const found = &value_at(b, slot);
      // Never null: said so that a caller's `if (found)` costs nothing on the path of a hit.
      if (found == nullptr) __builtin_unreachable();
      return found;
    });
  }

  // What a write finds in a key's chain: the key's slot; or else the first free slot, if any, and
  // the chain's last bucket, where a new overflow bucket would be linked.
  struct write_probe {
    bucket found;
    std::size_t found_slot = 0;
    bucket free_bucket;
    std::size_t free_slot = 0;
    bucket last;
  };
  template <class Q>
  write_probe probe_for_write(bucket head, hmap_detail::tophash_probe probe, const Q& key) const {
    write_probe p;
    for (bucket b = head; b; b = b.next()) {
      p.last = b;
      const std::uint64_t word = b.word();
      if (const std::size_t slot = match_in_bucket(b, word, probe, key);
          slot < hmap_detail::kSlots) {
        p.found = b;
        p.found_slot = slot;
        return p;
      }
      if (!p.free_bucket) {
        if (const std::uint64_t empty = hmap_detail::empty_slots(word); empty != 0) {
          p.free_bucket = b;
          p.free_slot = hmap_detail::slot_of_bit(empty);
        }
      }
      if (hmap_detail::zero_bytes(word) != 0) break;
    }
    return p;
  }

  // Go's rule for starting a growth before an insert: past the load factor, or too many overflow
  // buckets.
  bool insert_needs_growth() const noexcept {
    return hmap_detail::over_load(count_ + 1, log2_buckets_) || too_many_overflow_buckets();
  }

  // Builds the entry in a free slot; the slot's tophash is written last, so a throw leaves the slot
  // free.
  template <class KeyArg, class... Args>
  V* construct_entry(bucket b, std::size_t slot, std::uint64_t hash, KeyArg&& key, Args&&... args) {
    key_storage::construct(alloc_, b.key_address(slot), std::forward<KeyArg>(key));
    try {
      value_storage::construct(alloc_, b.value_address(slot), std::forward<Args>(args)...);
    } catch (...) {
      key_storage::destroy(alloc_, b.key(slot));
      throw;
    }
    b.top(slot) = hmap_detail::tophash(hash);
    ++count_;
    if (retiring_ != nullptr) [[unlikely]] {
      free_a_retired_chunk();
    }
    return &value_at(b, slot);
  }

  // The one insertion path: finds the key or inserts it with V constructed from args.
  //
  // The common write takes a short path, inlined into the caller: no migration under way, and a
  // chain that ends in its first bucket (an emptyRest byte), which then holds the key or the free
  // slot a new key takes, with the table below its load limit. Everything else (the first table,
  // migration steps, growth, a longer chain, a new overflow bucket) is emplace_slow's. Why inline:
  // an insert into a table larger than the cache stores into lines that are still on their way
  // from memory, and the processor lets stores leave only in order, so each insert's stores hold
  // places in its store queue for about one memory latency. A call adds the return address and the
  // saved registers, about eight stores to the four an insert needs (key, value, tophash, count);
  // inlined, inserts at N = 1M and 10M took 8 to 21% less time (see docs/benchmarks.md).
  template <class KeyArg, class... Args>
  [[gnu::always_inline]] std::pair<V*, bool> emplace_key(KeyArg&& key, Args&&... args) {
    const std::uint64_t hash = hash_of(key);  // before the writer flag: a throw leaves no trace
    writer_guard guard(*this);
    if (buckets_ && !old_buckets_) [[likely]] {
      const bucket head = buckets_.for_hash(hash);
      head.prefetch_slots();  // a new key is written there; see erase_impl
      const std::uint64_t word = head.word();
      if (const std::size_t slot = match_in_bucket(head, word, hmap_detail::probe_of(hash), key);
          slot < hmap_detail::kSlots) {
        return {&value_at(head, slot), false};
      }
      if (hmap_detail::zero_bytes(word) != 0 && !insert_needs_growth()) [[likely]] {
        const std::size_t free_slot = hmap_detail::slot_of_bit(hmap_detail::empty_slots(word));
        return {construct_entry(head, free_slot, hash, std::forward<KeyArg>(key),
                                std::forward<Args>(args)...),
                true};
      }
    }
    return emplace_slow(hash, std::forward<KeyArg>(key), std::forward<Args>(args)...);
  }

  template <class KeyArg, class... Args>
  [[gnu::noinline]] std::pair<V*, bool> emplace_slow(std::uint64_t hash, KeyArg&& key,
                                                     Args&&... args) {
    if (!buckets_) allocate_for(0);
    const hmap_detail::tophash_probe probe = hmap_detail::probe_of(hash);
    // Migration work is done only by a write that inserts, once the key is known to be absent:
    // finding a key that is there moves nothing, so `m[a] += m[b]` keeps both references valid.
    bool migrated = false;
    for (;;) {
      const chain_ref chain = chain_for(hash);
      chain.head.prefetch_slots();
      write_probe p = probe_for_write(chain.head, probe, key);
      if (p.found) return {&value_at(p.found, p.found_slot), false};
      if (old_buckets_ && !frozen() && !migrated) {
        migrate_step();
        migrated = true;
        continue;  // the key's unit may have moved: look again
      }
      if (!old_buckets_ && !frozen() && insert_needs_growth()) {
        // Growing invalidates what was just found; look again (Go's `goto again`). Past the load
        // factor the array doubles; else its overflow buckets piled up and it keeps its size.
        const bool overloaded = hmap_detail::over_load(count_ + 1, log2_buckets_);
        start_migration(overloaded ? log2_buckets_ + 1u : log2_buckets_);
        continue;
      }
      if (!p.free_bucket) {
        bucket_block* added = new_overflow_bucket(chain.in_old ? old_pool_ : pool_);
        p.last.ctl().overflow = added;
        p.free_bucket = bucket(added);
        p.free_slot = 0;
      }
      return {construct_entry(p.free_bucket, p.free_slot, hash, std::forward<KeyArg>(key),
                              std::forward<Args>(args)...),
              true};
    }
  }

  template <class Q>
  std::size_t erase_impl(const Q& key) {
    if (count_ == 0) return 0;
    const std::uint64_t hash = hash_of(key);
    writer_guard guard(*this);
    // The key is most likely there: its slot will be read as soon as the control word says which
    // one, so both cache misses are started now, side by side, instead of one after the other.
    bucket head = chain_for(hash).head;
    head.prefetch_slots();
    auto [b, slot] = find_slot(head, hash, key);
    if (!b) return 0;
    if (old_buckets_ && !frozen()) {
      // Before the erase, so that a throw from it erases nothing; the key's unit may move.
      migrate_step();
      head = chain_for(hash).head;
      std::tie(b, slot) = find_slot(head, hash, key);
    }
    key_storage::destroy(alloc_, b.key(slot));
    value_storage::destroy(alloc_, b.value(slot));
    b.top(slot) = hmap_detail::kEmptyOne;
    mark_empty_rest(head, b, slot);
    if (--count_ == 0) seed_ = hmap_detail::random_u64();  // as Go: harder to aim collisions
    consider_shrinking();
    if (retiring_ != nullptr) free_a_retired_chunk();
    return 1;
  }

  // Go's delete: if the slot after this one is emptyRest (or this is the chain's last slot), this
  // slot and every empty slot before it become emptyRest, so that probes stop early.
  static void mark_empty_rest(bucket head, bucket b, std::size_t slot) noexcept {
    if (slot == hmap_detail::kSlots - 1) {
      if (b.next() && b.next().top(0) != hmap_detail::kEmptyRest) return;
    } else if (b.top(slot + 1) != hmap_detail::kEmptyRest) {
      return;
    }
    for (;;) {
      b.top(slot) = hmap_detail::kEmptyRest;
      if (slot == 0) {
        if (b == head) return;
        bucket previous = head;
        while (!(previous.next() == b)) previous = previous.next();
        b = previous;
        slot = hmap_detail::kSlots - 1;
      } else {
        --slot;
      }
      if (b.top(slot) != hmap_detail::kEmptyOne) return;
    }
  }

  // Go's tooManyOverflowBuckets: about as many overflow buckets as regular ones. Go compares a
  // count with 2^min(B, 15) but, above B = 15, counts each overflow bucket only with probability
  // 2^(15-B); the exact count here is compared with 2^B, which is what that sampling estimates.
  bool too_many_overflow_buckets() const noexcept { return pool_.in_use() >= bucket_count(); }

  void consider_shrinking() noexcept {
    if (old_buckets_ || frozen()) return;
    if (log2_buckets_ <= floor_log2_buckets_ || !hmap_detail::sparse(count_, log2_buckets_)) {
      shrink_credit_ = 0;
      return;
    }
    if (++shrink_credit_ < std::max<std::size_t>(bucket_count() / 16, hmap_detail::kSlots)) {
      return;
    }
    unsigned target =
        std::max<unsigned>(floor_log2_buckets_, log2_buckets_ > 3 ? log2_buckets_ - 3u : 0u);
    while (!hmap_detail::fits_after_shrink(count_, target)) ++target;
    shrink_credit_ = 0;
    try {
      start_migration(target);
    } catch (...) {
      // The erase has happened; shrinking is an optimisation and can wait for memory.
    }
  }

  // ---- memory ----

  bucket_block* new_overflow_bucket(overflow_pool& pool) {
    rebound<bucket_block> typed(alloc_);
    return pool.take(typed);
  }
  // An old array's overflow chunks are freed one per later write (free_a_retired_chunk), not all
  // in the write that ends its migration: tens of megabytes of populated memory are not given
  // back to the system for free.
  void retire_overflow(overflow_pool& pool) noexcept {
    retiring_buckets_ += pool.reserved();
    bucket_block* chunks = pool.detach_chunks();
    while (chunks != nullptr) {
      bucket_block* rest = chunks->ctl.overflow;
      chunks->ctl.overflow = retiring_;
      retiring_ = chunks;
      chunks = rest;
    }
  }
  void free_a_retired_chunk() noexcept {
    rebound<bucket_block> typed(alloc_);
    retiring_buckets_ -= overflow_pool::free_first_chunk(typed, retiring_);
  }
  void free_all_overflow() noexcept {
    retire_overflow(pool_);
    retire_overflow(old_pool_);
    while (retiring_ != nullptr) free_a_retired_chunk();
  }
  // Allocates the blocks of 2^log2 main buckets as one array. Their controls are set up now only
  // if asked; a migration sets each one up when its unit is evacuated.
  static constexpr std::size_t table_bytes(unsigned log2) noexcept {
    return (std::size_t{1} << log2) * sizeof(bucket_block);
  }
  table allocate_table(unsigned log2, bool initialise) {
    const std::size_t n = std::size_t{1} << log2;
    table t;
    t.mask = n - 1;
    if (on_huge_pages(log2)) {
      // What std::allocator would do (it allocates with ::operator new), on a huge-page boundary,
      // so that every huge page of the table is whole.
      t.blocks = static_cast<bucket_block*>(::operator new(table_bytes(log2), kHugePageAlignment));
      hmap_detail::advise_huge_pages(t.blocks, table_bytes(log2));
    } else {
      rebound<bucket_block> typed(alloc_);
      t.blocks = block_traits::allocate(typed, n);
    }
    if (initialise) {
      for (std::size_t i = 0; i < n; ++i) t.blocks[i].ctl.reset();
    }
    return t;
  }
  void free_table(table& t, unsigned log2) noexcept {
    if (on_huge_pages(log2)) {
      ::operator delete(t.blocks, table_bytes(log2), kHugePageAlignment);
    } else {
      rebound<bucket_block> typed(alloc_);
      block_traits::deallocate(typed, t.blocks, std::size_t{1} << log2);
    }
    t = table();
  }

  // Sizes the table for n entries now (finishing any migration); never shrinks it.
  void allocate_for(std::size_t n) {
    const unsigned wanted = hmap_detail::log2_for(n);
    if (!buckets_) {
      buckets_ = allocate_table(wanted, true);
      log2_buckets_ = static_cast<std::uint8_t>(wanted);
      return;
    }
    finish_migration();
    while (log2_buckets_ < wanted) {
      start_migration(log2_buckets_ + 1u);
      finish_migration();
    }
  }

  // Go's hashGrow, generalised: the current array becomes the old one and a new one of 2^log2
  // buckets is allocated, uninitialised — each new bucket is set up when its unit is evacuated.
  void start_migration(unsigned log2) {
    table fresh = allocate_table(log2, false);
    old_buckets_ = buckets_;
    old_log2_buckets_ = log2_buckets_;
    old_pool_ = std::move(pool_);
    buckets_ = fresh;
    log2_buckets_ = static_cast<std::uint8_t>(log2);
    evacuated_units_ = 0;
    released_units_ = 0;
  }

  // Go's growWork, as a sweep: every write moves the next two units in order. A key whose unit
  // has not moved yet is read and written in its old chain, so writes never touch random
  // places in both arrays, and "has this unit moved" is a comparison with the sweep's mark.
  // The sweep's order is known, so each step first asks the memory system for the two units the
  // next step will move: their old buckets are then in cache when it comes, instead of costing a
  // dozen cache misses in a row.
  void migrate_step() {
    prefetch_unit(evacuated_units_ + 2);
    prefetch_unit(evacuated_units_ + 3);
    evacuate_next_unit();
    if (old_buckets_) evacuate_next_unit();
  }
  void prefetch_unit(std::size_t unit) const noexcept {
    const std::size_t units = unit_count();
    if (unit >= units) return;
    for (std::size_t i = unit; i < old_bucket_count(); i += units) {
      old_buckets_.at(i).prefetch();
    }
  }
  void finish_migration() {
    while (old_buckets_) evacuate_next_unit();
  }
  void evacuate_next_unit() {
    move_unit(evacuated_units_);
    if (++evacuated_units_ == unit_count()) {
      finish_with_old_array();
    } else {
      release_evacuated_pages();
    }
  }

  // The pages of tables from std::allocator, whose memory is known to be plain heap memory:
  // - A table of 4 MiB or more is placed on a huge-page boundary and asks for huge pages (see
  //   advise_huge_pages); it fills them as its units arrive. Once freed, a block of 32 MiB or more
  //   leaves with its advice (glibc's malloc maps each such block on its own: its mmap threshold
  //   never rises above that); a smaller one may be carved from malloc's heap, where the advice
  //   stays on the address range that malloc reuses, as glibc's own `glibc.malloc.hugetlb=1`
  //   tunable does for the whole heap. Its pages are populated by then, so this changes how they
  //   are mapped, not how much memory is used.
  // - A table of 32 MiB or more gives its pages back as the sweep leaves them, a huge page at a
  //   time: freeing it at the end of a migration would otherwise unmap that many populated bytes
  //   in one write, and the final free now finds little left to unmap. Nothing reads an
  //   evacuated old bucket again: the sweep mark answers "has it moved". A smaller table keeps
  //   its pages: if it came from malloc's heap, malloc hands them to the next allocation, which
  //   would only fault them in again.
  static constexpr bool kManagesPages =
      std::is_same_v<Allocator, std::allocator<std::pair<const K, V>>>;
  static constexpr std::size_t kHugePageTableBytes = std::size_t{4} << 20;
  static constexpr std::align_val_t kHugePageAlignment{hmap_detail::kHugePageBytes};
  static constexpr bool on_huge_pages(unsigned log2) noexcept {
    return kManagesPages && table_bytes(log2) >= kHugePageTableBytes;
  }
  static constexpr std::size_t kReleasedTableBytes = std::size_t{32} << 20;
  void release_evacuated_pages() noexcept {
    if constexpr (kManagesPages) {
      const std::size_t units = unit_count();
      if (table_bytes(old_log2_buckets_) < kReleasedTableBytes ||
          (evacuated_units_ - released_units_) * sizeof(bucket_block) <
              hmap_detail::kHugePageBytes) {
        return;
      }
      // Unit u's old buckets are u, u+units, ...: the evacuated ones form a prefix of each stripe.
      for (std::size_t stripe = 0; stripe < old_bucket_count(); stripe += units) {
        const table& t = old_buckets_;
        hmap_detail::release_pages(t.blocks + stripe, t.blocks + stripe + released_units_,
                                   t.blocks + stripe + evacuated_units_);
      }
      released_units_ = evacuated_units_;
    }
  }
  void finish_with_old_array() noexcept {
    free_table(old_buckets_, old_log2_buckets_);
    old_log2_buckets_ = 0;
    retire_overflow(old_pool_);
    evacuated_units_ = 0;
  }

  // One bit per entry of a unit being moved: inline for the usual few dozen, then on the heap.
  class entry_bits {
   public:
    void push_back(bool bit) {
      if (size_ < 64) {
        inline_ |= std::uint64_t{bit} << size_;
      } else {
        more_.push_back(bit);
      }
      ++size_;
    }
    bool operator[](std::size_t i) const noexcept {
      return i < 64 ? ((inline_ >> i) & 1u) != 0 : more_[i - 64];
    }

   private:
    std::uint64_t inline_ = 0;
    std::size_t size_ = 0;
    std::vector<bool> more_;
  };

  // Calls fn(bucket, slot, tophash, source) for every live entry of a unit's old chains, in a
  // fixed order; fn may rewrite the tophash bytes of the bucket it is given.
  template <class Fn>
  void for_each_unit_entry(std::size_t unit, Fn&& fn) {
    const std::size_t units = unit_count();
    const std::size_t sources = old_bucket_count() / units;
    for (std::size_t s = 0; s < sources; ++s) {
      for (bucket b = old_buckets_.at(unit + s * units); b; b = b.next()) {
        const std::uint64_t word = b.word();
        for (std::uint64_t live = hmap_detail::live_slots(word); live != 0; live &= live - 1) {
          const std::size_t slot = hmap_detail::slot_of_bit(live);
          fn(b, slot, static_cast<std::uint8_t>(word >> (slot * 8)), s);
        }
      }
    }
  }

  // When doubling: 1 if the entry in slot of b goes to the upper of its unit's two new buckets
  // (its hash has bit log2(units) set), else 0.
  unsigned upper_half(bucket b, std::size_t slot, unsigned split_bit) const {
    return static_cast<unsigned>(hash_of(key_storage::get(b.key(slot))) >> split_bit) & 1u;
  }

  // Moves one unit from the old array to the new one (Go's evacuate). Every step that can throw
  // — hashing, allocating, copying — happens before the old unit is changed.
  void move_unit(std::size_t unit) {
    const std::size_t units = unit_count();
    const std::size_t sources = old_bucket_count() / units;  // > 1 when shrinking
    const bool doubling = bucket_count() > units;            // else one target bucket
    const unsigned split_bit = std::min(log2_buckets_, old_log2_buckets_);  // log2(units)
    const std::size_t target_count = doubling ? 2 : 1;
    bucket targets[2] = {buckets_.at(unit), doubling ? buckets_.at(unit + units) : bucket()};
    for (std::size_t t = 0; t < target_count; ++t) targets[t].ctl().reset();
    if constexpr (kNothrowRelocate && kNothrowHash) {
      if (move_small_unit(unit, sources, doubling, split_bit, targets)) return;
    }

    std::size_t total = 0;
    for (std::size_t s = 0; s < sources; ++s)
      total += live_in_chain(old_buckets_.at(unit + s * units));
    // Where each entry goes is only in question when doubling, and needs the hash. It is worked
    // out before anything moves when the hash may throw, when copies may have to be rolled back,
    // or when the targets need overflow buckets (their number depends on the split).
    std::size_t per_target[2] = {total, 0};
    entry_bits upper;
    const bool presplit =
        doubling && (total > hmap_detail::kSlots || !kNothrowHash || !kNothrowRelocate);
    if (presplit) {
      per_target[0] = 0;
      for_each_unit_entry(unit, [&](bucket b, std::size_t slot, std::uint8_t, std::size_t) {
        const bool up = upper_half(b, slot, split_bit) != 0;
        upper.push_back(up);
        ++per_target[up ? 1 : 0];
      });
    }

    try {
      for (std::size_t t = 0; t < target_count; ++t) {
        control* tail = &targets[t].ctl();
        for (std::size_t n = hmap_detail::kSlots; n < per_target[t]; n += hmap_detail::kSlots) {
          tail->overflow = new_overflow_bucket(pool_);
          tail = &tail->overflow->ctl;
        }
      }
    } catch (...) {
      for (std::size_t t = 0; t < target_count; ++t) free_overflow_chain(targets[t], pool_);
      throw;
    }

    bucket fill[2] = {targets[0], targets[1]};
    std::size_t fill_slot[2] = {0, 0};
    std::size_t entry = 0;
    // Places an entry in the next free slot of its target; returns whether it went to the upper
    // half (doubling) or came from another source bucket (shrinking): Go's evacuatedY.
    // The target is an index, not a branch: which one an entry goes to is a coin toss (see
    // move_small_unit).
    auto place = [&](bucket b, std::size_t slot, std::uint8_t top, std::size_t source) {
      unsigned up = 0;
      if (doubling) {
        up = presplit ? static_cast<unsigned>(upper[entry]) : upper_half(b, slot, split_bit);
      }
      ++entry;
      if (fill_slot[up] == hmap_detail::kSlots) {
        fill[up] = fill[up].next();
        fill_slot[up] = 0;
      }
      const bucket to = fill[up];
      const std::size_t to_slot = fill_slot[up]++;
      key_storage::relocate(to.key_address(to_slot), b.key(slot));
      try {
        value_storage::relocate(to.value_address(to_slot), b.value(slot));
      } catch (...) {
        key_storage::drop_copy(to.key(to_slot));
        throw;
      }
      to.top(to_slot) = top;
      return (up | static_cast<unsigned>(source != 0)) != 0;
    };
    auto finish_source = [&](bucket b, std::size_t slot, bool elsewhere, std::size_t source) {
      key_storage::drop_source(b.key(slot));
      value_storage::drop_source(b.value(slot));
      if (b == old_buckets_.at(unit + source * units)) {
        b.top(slot) = elsewhere ? hmap_detail::kEvacuatedY : hmap_detail::kEvacuatedX;
      }
    };

    if constexpr (kNothrowRelocate) {
      // One pass: nothing below can throw (a hash computed here is noexcept).
      for_each_unit_entry(unit, [&](bucket b, std::size_t slot, std::uint8_t top, std::size_t s) {
        finish_source(b, slot, place(b, slot, top, s), s);
      });
    } else {
      // Copy everything first; if a copy throws, destroy the copies and leave the old unit as
      // it was.
      entry_bits elsewhere;
      try {
        for_each_unit_entry(unit, [&](bucket b, std::size_t slot, std::uint8_t top, std::size_t s) {
          elsewhere.push_back(place(b, slot, top, s));
        });
      } catch (...) {
        for (std::size_t t = 0; t < target_count; ++t) {
          for (bucket b = targets[t]; b; b = b.next()) {
            for (std::uint64_t live = hmap_detail::live_slots(b.word()); live != 0;
                 live &= live - 1) {
              const std::size_t slot = hmap_detail::slot_of_bit(live);
              key_storage::drop_copy(b.key(slot));
              value_storage::drop_copy(b.value(slot));
            }
          }
          free_overflow_chain(targets[t], pool_);
        }
        throw;
      }
      entry = 0;
      for_each_unit_entry(unit, [&](bucket b, std::size_t slot, std::uint8_t, std::size_t s) {
        finish_source(b, slot, elsewhere[entry++], s);
      });
    }
    for (std::size_t s = 0; s < sources; ++s) {
      const bucket head = old_buckets_.at(unit + s * units);
      mark_evacuated_empty(head);
      free_overflow_chain(head, old_pool_);
    }
  }

  // move_unit's common case, in one pass: no old bucket of the unit has overflow buckets and its
  // entries fit in the targets' main buckets, so nothing is allocated and nothing can throw.
  // Returns false, having changed nothing, when that is not the case.
  bool move_small_unit(std::size_t unit, std::size_t sources, bool doubling, unsigned split_bit,
                       const bucket (&targets)[2]) noexcept {
    const std::size_t units = unit_count();
    std::size_t total = 0;
    for (std::size_t s = 0; s < sources; ++s) {
      const bucket head = old_buckets_.at(unit + s * units);
      if (head.next()) return false;
      total += hmap_detail::count_slots(hmap_detail::live_slots(head.word()));
    }
    if (total > hmap_detail::kSlots) return false;  // a shrink that needs overflow buckets
    // Which target an entry goes to is a coin toss, so it is computed, not branched on: a
    // mispredicted branch per entry costs more than the rest of the move. The slots used so far
    // in each target stay in one register: target 0's count in bits 0-7, target 1's in 8-15.
    std::uint64_t filled = 0;
    for (std::size_t s = 0; s < sources; ++s) {
      const bucket head = old_buckets_.at(unit + s * units);
      const std::uint64_t word = head.word();
      std::uint64_t marks = hmap_detail::kEvacuatedEmpty * 0x0101010101010101ull;
      for (std::uint64_t live = hmap_detail::live_slots(word); live != 0; live &= live - 1) {
        const std::size_t slot = hmap_detail::slot_of_bit(live);
        const unsigned up = doubling ? upper_half(head, slot, split_bit) : 0u;
        const bucket to = bucket::select(targets[0], targets[1], up);
        const unsigned count_shift = up * 8;
        const std::size_t to_slot = (filled >> count_shift) & 0xff;
        filled += std::uint64_t{1} << count_shift;
        key_storage::relocate(to.key_address(to_slot), head.key(slot));
        value_storage::relocate(to.value_address(to_slot), head.value(slot));
        key_storage::drop_source(head.key(slot));
        value_storage::drop_source(head.value(slot));
        to.top(to_slot) = static_cast<std::uint8_t>(word >> (slot * 8));
        // evacuatedY (X + 1) when the entry went up or came from another source bucket.
        const auto mark = static_cast<std::uint8_t>(hmap_detail::kEvacuatedX +
                                                    (up | static_cast<unsigned>(s != 0)));
        marks ^= static_cast<std::uint64_t>(hmap_detail::kEvacuatedEmpty ^ mark) << (slot * 8);
      }
      std::memcpy(head.ctl().tophash, &marks, sizeof marks);
    }
    return true;
  }

  // Marks the empty slots of an evacuated old bucket, once its live slots have been marked
  // evacuatedX/Y (empty_slots() only matches 0 and 1).
  static void mark_evacuated_empty(bucket head) noexcept {
    for (std::uint64_t empty = hmap_detail::empty_slots(head.word()); empty != 0;
         empty &= empty - 1) {
      head.top(hmap_detail::slot_of_bit(empty)) = hmap_detail::kEvacuatedEmpty;
    }
  }

  static std::size_t live_in_chain(bucket head) noexcept {
    std::size_t live = 0;
    for (bucket b = head; b; b = b.next()) {
      live += hmap_detail::count_slots(hmap_detail::live_slots(b.word()));
    }
    return live;
  }
  // Gives a chain's overflow buckets (not the head) back to the pool they came from.
  static void free_overflow_chain(bucket head, overflow_pool& pool) noexcept {
    for (bucket_block* b = head.ctl().overflow; b != nullptr;) {
      bucket_block* next = b->ctl.overflow;
      pool.give_back(b);
      b = next;
    }
    head.ctl().overflow = nullptr;
  }
  void destroy_entries(bucket b) noexcept {
    for (std::uint64_t live = hmap_detail::live_slots(b.word()); live != 0; live &= live - 1) {
      const std::size_t slot = hmap_detail::slot_of_bit(live);
      key_storage::destroy(alloc_, b.key(slot));
      value_storage::destroy(alloc_, b.value(slot));
    }
  }

  // Calls fn(head, in_old) for every chain that may hold entries: during a migration, the old
  // buckets of units not yet moved and the new buckets of units that have.
  template <class Fn>
  void for_each_live_chain(Fn&& fn) const {
    if (!buckets_) return;
    if (!old_buckets_) {
      for (std::size_t i = 0; i < bucket_count(); ++i) fn(buckets_.at(i), false);
      return;
    }
    const std::size_t units = unit_count();
    for (std::size_t unit = 0; unit < units; ++unit) {
      const bool moved = unit_evacuated(unit);
      const table& array = moved ? buckets_ : old_buckets_;
      const std::size_t n = (moved ? bucket_count() : old_bucket_count()) / units;
      for (std::size_t k = 0; k < n; ++k) fn(array.at(unit + k * units), !moved);
    }
  }
  void destroy_and_free_chains() noexcept {
    for_each_live_chain([&](bucket head, bool) {
      for (bucket b = head; b; b = b.next()) destroy_entries(b);
      head.ctl().overflow = nullptr;
    });
    free_all_overflow();
    count_ = 0;
  }
  void release_all() noexcept {
    if (!buckets_) return;
    destroy_and_free_chains();
    if (old_buckets_) finish_with_old_array();
    free_table(buckets_, log2_buckets_);
    log2_buckets_ = 0;
    shrink_credit_ = 0;
  }
  void take_table(hmap& other) noexcept {
    buckets_ = std::exchange(other.buckets_, table());
    old_buckets_ = std::exchange(other.old_buckets_, table());
    count_ = std::exchange(other.count_, 0);
    evacuated_units_ = std::exchange(other.evacuated_units_, 0);
    released_units_ = std::exchange(other.released_units_, 0);
    pool_ = std::move(other.pool_);
    old_pool_ = std::move(other.old_pool_);
    retiring_ = std::exchange(other.retiring_, nullptr);
    retiring_buckets_ = std::exchange(other.retiring_buckets_, 0);
    shrink_credit_ = std::exchange(other.shrink_credit_, 0);
    seed_ = std::exchange(other.seed_, hmap_detail::random_u64());
    log2_buckets_ = std::exchange(other.log2_buckets_, 0);
    old_log2_buckets_ = std::exchange(other.old_log2_buckets_, 0);
    floor_log2_buckets_ = std::exchange(other.floor_log2_buckets_, 0);
  }
  void copy_entries_from(const hmap& other) {
    if (other.count_ == 0) return;
    try {
      allocate_for(other.count_);
      for (auto&& [key, value] : other) emplace_key(key, value);
    } catch (...) {
      release_all();
      throw;
    }
  }

  // ---- iteration ----

  // A position: which unit (counted from a random start), which chain of that unit, which
  // bucket of the chain, which slot (visited in order from a random offset).
  struct cursor {
    std::size_t units_left = 0;
    std::size_t unit = 0;
    std::size_t chain = 0;
    bucket b;
    std::size_t step = 0;
    std::size_t slot = 0;
    std::size_t offset = 0;
  };
  std::size_t iteration_units() const noexcept {
    return old_buckets_ ? unit_count() : bucket_count();
  }
  // The chains of a unit: one outside a migration; during one, the unit's old buckets until it
  // has moved, then its new buckets.
  std::size_t chains_in_unit(std::size_t unit) const noexcept {
    if (!old_buckets_) return 1;
    return (unit_evacuated(unit) ? bucket_count() : old_bucket_count()) / unit_count();
  }
  bucket chain_head(std::size_t unit, std::size_t chain) const noexcept {
    if (!old_buckets_) return buckets_.at(unit);
    return (unit_evacuated(unit) ? buckets_ : old_buckets_).at(unit + chain * unit_count());
  }
  bool start(cursor& c) const noexcept {
    if (count_ == 0) return false;
    const std::uint64_t r = hmap_detail::random_u64();
    c.units_left = iteration_units();
    c.unit = r & (c.units_left - 1);
    c.offset = (r >> 32) & (hmap_detail::kSlots - 1);
    c.chain = 0;
    c.b = chain_head(c.unit, 0);
    c.step = 0;
    return advance(c);
  }
  // Moves c to the next live slot after its position; false at the end.
  bool advance(cursor& c) const noexcept {
    for (;;) {
      while (c.step < hmap_detail::kSlots) {
        const std::size_t slot = (c.step++ + c.offset) & (hmap_detail::kSlots - 1);
        if (c.b.top(slot) >= hmap_detail::kMinTopHash) {
          c.slot = slot;
          return true;
        }
      }
      c.step = 0;
      if (c.b.next()) {
        c.b = c.b.next();
      } else if (++c.chain < chains_in_unit(c.unit)) {
        c.b = chain_head(c.unit, c.chain);
      } else if (--c.units_left == 0) {
        return false;
      } else {
        c.unit = (c.unit + 1) & (iteration_units() - 1);
        c.chain = 0;
        c.b = chain_head(c.unit, 0);
      }
    }
  }

  template <bool Const>
  class basic_iterator {
    using map_type = std::conditional_t<Const, const hmap, hmap>;
    using value_ref = std::conditional_t<Const, const V&, V&>;

   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<const K, V>;
    using difference_type = std::ptrdiff_t;
    using reference = std::pair<const K&, value_ref>;
    using pointer = hmap_detail::arrow_proxy<reference>;

    basic_iterator() noexcept = default;
    basic_iterator(const basic_iterator& other) noexcept
        : map_(other.map_), cursor_(other.cursor_) {
      enter();
    }
    template <bool OtherConst>
    requires(Const && !OtherConst) basic_iterator(const basic_iterator<OtherConst>& other)
    noexcept  // implicit, as in std
        : map_(other.map_), cursor_(other.cursor_) {
      enter();
    }
    basic_iterator& operator=(const basic_iterator& other) noexcept {
      if (this != &other) {
        leave();
        map_ = other.map_;
        cursor_ = other.cursor_;
        enter();
      }
      return *this;
    }
    ~basic_iterator() { leave(); }

    reference operator*() const noexcept {
      return reference(key_storage::get(cursor_.b.key(cursor_.slot)),
                       value_storage::get(cursor_.b.value(cursor_.slot)));
    }
    pointer operator->() const noexcept { return pointer{**this}; }
    basic_iterator& operator++() noexcept {
      if (!map_->advance(cursor_)) {
        leave();
        map_ = nullptr;
      }
      return *this;
    }
    basic_iterator operator++(int) noexcept {
      basic_iterator before(*this);
      ++*this;
      return before;
    }
    friend bool operator==(const basic_iterator& a, const basic_iterator& b) noexcept {
      if (a.map_ == nullptr || b.map_ == nullptr) return a.map_ == b.map_;
      return a.cursor_.b == b.cursor_.b && a.cursor_.slot == b.cursor_.slot &&
             a.cursor_.units_left == b.cursor_.units_left;
    }

   private:
    friend class hmap;
    template <bool>
    friend class basic_iterator;

    explicit basic_iterator(map_type* map) noexcept : map_(map) {
      if (!map_->start(cursor_)) {
        map_ = nullptr;
        return;
      }
      enter();
    }
    // A live iterator pauses migration; see the top of this file.
    void enter() const noexcept {
      if (map_ != nullptr) map_->iterators_.fetch_add(1, std::memory_order_relaxed);
    }
    void leave() const noexcept {
      if (map_ != nullptr) map_->iterators_.fetch_sub(1, std::memory_order_relaxed);
    }

    map_type* map_ = nullptr;
    cursor cursor_;
  };

  table buckets_;      // 2^log2_buckets_ main buckets; empty until the first insert
  table old_buckets_;  // the array being migrated from, or empty
  std::size_t count_ = 0;
  std::size_t evacuated_units_ = 0;   // migration mark: every unit below it has moved
  std::size_t released_units_ = 0;    // units whose old pages went back to the system
  overflow_pool pool_;                // overflow buckets off buckets_
  overflow_pool old_pool_;            // overflow buckets off old_buckets_
  bucket_block* retiring_ = nullptr;  // chunks of finished old arrays, freed one per write
  std::size_t retiring_buckets_ = 0;
  std::size_t shrink_credit_ = 0;  // erases seen at low occupancy since the last shrink check
  std::uint64_t seed_;
  std::uint8_t log2_buckets_ = 0;
  std::uint8_t old_log2_buckets_ = 0;
  std::uint8_t floor_log2_buckets_ = 0;  // hint / reserve(): automatic shrinking stops here
  mutable std::atomic<std::uint32_t> iterators_{0};
#if LEAKLESS_HMAP_CHECK_WRITERS
  mutable std::atomic<bool> writing_{false};
#endif
  [[no_unique_address]] Hash hash_{};
  [[no_unique_address]] KeyEqual equal_{};
  [[no_unique_address]] Allocator alloc_{};
};

}  // namespace leakless
