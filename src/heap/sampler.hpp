// src/heap/sampler.hpp — the heap sampler: which allocations to record, and recording them.
//
// The allocation entry points (src/heap/interpose/) call in here. Sampling is Go's: a Poisson
// process over allocated bytes with mean `rate` (512 KiB by default). Each thread counts down the
// bytes left until its next sample point; an allocation that reaches it is sampled and a new
// exponentially distributed distance is drawn. So the path for an allocation that is not sampled
// is one thread-local subtraction and two compares (note_allocation below), with no lock and no
// shared write; the rate's generation number is compared too, so that set_sample_rate() reaches
// threads whose countdown was drawn at another rate.
//
// A sampled allocation's stack is captured with the CFI unwinder (stack/cfi_unwind.hpp: it follows
// DWARF unwind tables, so libraries built without frame pointers unwind, through one rule cache
// shared by all threads), or with libunwind's unw_backtrace for a stack it cannot follow, before
// any lock is taken — the unwinder may take the dynamic loader's lock, and a thread inside dlopen
// that holds that lock may itself be waiting in malloc for our lock. Only then is the profiler's
// spinlock taken to count the sample in its (stack, size) bucket and to enter the pointer in the
// live table. free() asks the live table, without a lock, whether the pointer was sampled; only
// sampled pointers take the lock.
//
// Reentrancy: a thread inside the profiler (unwinding, writing a profile) is "busy", and its own
// allocations pass straight through unsampled. A signal handler that frees a sampled pointer
// while its thread holds the lock cannot wait for it: that free is left uncounted and its stale
// entry is replaced if the address is sampled again.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "heap/live_table.hpp"
#include "heap/stack_buckets.hpp"

namespace leakless::heap {

inline constexpr std::size_t kDefaultSampleRate = 512 * 1024;

struct thread_sampler {
  std::int64_t bytes_until_sample = 0;  // 0 on a new thread: its first allocation initialises it
  std::uint64_t random_state = 0;       // 0 until seeded
  std::uint32_t rate_generation = 0;    // generation of the rate `bytes_until_sample` was drawn at
  std::uint32_t busy = 0;               // > 0 while this thread is inside the profiler
  bool holding_lock = false;            // this thread holds the profiler's lock
  bool unwinding = false;               // inside libunwind (its per-thread cache is not reentrant)
  bool unwinder_cache_counted = false;  // counted among the threads holding libunwind's cache
};

extern constinit thread_local thread_sampler tls_sampler [[gnu::tls_model("initial-exec")]];
extern std::atomic<std::uint32_t> rate_generation;
extern live_table live_allocations;

// Counts `bytes` of allocation on this thread; true when the slow path (on_sample_point) must
// decide about this allocation.
[[gnu::always_inline]] inline bool note_allocation(std::size_t bytes) noexcept {
  thread_sampler& t = tls_sampler;
  t.bytes_until_sample -= static_cast<std::int64_t>(bytes);
  return t.bytes_until_sample <= 0 ||
         t.rate_generation != rate_generation.load(std::memory_order_relaxed);
}

// The slow path of an allocation of `bytes` at `address` (never nullptr). `caller` is the return
// address of the allocation entry point, where the recorded stack starts.
void on_sample_point(void* address, std::size_t bytes, std::uintptr_t caller) noexcept;

// Whether free(address) must go to on_sampled_free. No lock; false positives are possible.
[[gnu::always_inline]] inline bool maybe_sampled(const void* address) noexcept {
  return live_allocations.may_contain(reinterpret_cast<std::uintptr_t>(address));
}

// Counts the free of `address` if it was sampled. Call before the memory is released.
void on_sampled_free(void* address) noexcept;

// realloc support: take `address`'s record out (without counting a free) before the block moves,
// then either settle it as freed or put it back if the reallocation failed.
bool detach_sample(void* address, live_entry* out) noexcept;
void settle_detached_free(const live_entry& entry) noexcept;
void restore_detached(void* address, const live_entry& entry) noexcept;

// The sampling rate: mean bytes between samples; 1 = every allocation, 0 = off.
std::size_t sample_rate() noexcept;
void set_sample_rate(std::size_t bytes) noexcept;
// Makes every thread's random stream derive from `seed` (reproducible runs); before any sampling.
void set_sample_seed(std::uint64_t seed) noexcept;

// How many allocations a sample of `bytes` taken at `rate` stands for: 1/(1-exp(-bytes/rate)).
double sample_weight(std::size_t bytes, std::size_t rate) noexcept;

// RAII: marks this thread busy (its allocations are not sampled) for the scope's duration.
class busy_scope {
 public:
  busy_scope() noexcept { ++tls_sampler.busy; }
  ~busy_scope() { --tls_sampler.busy; }
  busy_scope(const busy_scope&) = delete;
  busy_scope& operator=(const busy_scope&) = delete;
};

// A consistent copy of the counters, for writing profiles and statistics.
struct bucket_snapshot {
  const stack_bucket* bucket;  // stack and size are immutable: read without the lock
  bucket_counts counts;
};

// What a bucket's samples stand for: unbiased estimates of the allocations they represent.
struct heap_estimate {
  double alloc_objects = 0;
  double alloc_bytes = 0;
  double inuse_objects = 0;
  double inuse_bytes = 0;
};
heap_estimate estimate(const bucket_snapshot& s) noexcept;

struct sampler_totals {
  std::uint64_t samples = 0;       // allocations sampled
  std::uint64_t dropped = 0;       // samples lost for lack of memory for the tables
  std::size_t live_samples = 0;    // sampled allocations not freed yet
  std::size_t profiler_bytes = 0;  // the tables (with the unwinder's rule cache) and libunwind's
                                   // per-thread caches
  std::size_t buckets = 0;
  std::size_t unwinding_threads = 0;     // live threads holding libunwind's cache (they fell back)
  std::size_t peak_profiler_bytes = 0;   // the most profiler_bytes has been
  std::uint64_t unwinder_fallbacks = 0;  // stacks captured by libunwind, not the CFI unwinder
};

// Copies every bucket's counters (the caller's thread is made busy meanwhile).
std::vector<bucket_snapshot> snapshot_buckets();
sampler_totals totals() noexcept;

// Fork safety: the lock is held across fork so that the child's copy is consistent.
void lock_for_fork() noexcept;
void unlock_after_fork() noexcept;
// In a fork's child, only the forking thread is left: only its unwinder cache still counts.
void forget_other_threads_after_fork() noexcept;

// The memory of libunwind's frame cache, which unw_backtrace makes for each thread the first time
// it captures a stack (here: the first time the thread falls back to it): 2^14 entries of 16 bytes,
// every one written when it is made, unmapped when the thread exits (libunwind quadruples it if it
// gets half full, which a thread needs 8,192 distinct return addresses for; that is not seen from
// here, so this is a lower bound).
inline constexpr std::size_t kUnwinderCacheBytes = std::size_t{16} << 14;

}  // namespace leakless::heap
