// src/heap/sampler.cpp — sampling decisions, stack capture and the counting tables
// (see sampler.hpp for the design).
#include "heap/sampler.hpp"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <sys/syscall.h>

#include "heap/lifecycle.hpp"
#include "stack/cfi_unwind.hpp"

namespace leakless::heap {

constinit thread_local thread_sampler tls_sampler [[gnu::tls_model("initial-exec")]];
std::atomic<std::uint32_t> rate_generation{1};
live_table live_allocations;

namespace {

// The sampling rate and the seed. A new generation makes every thread redraw its countdown.
std::atomic<std::size_t> g_rate{kDefaultSampleRate};
std::atomic<bool> g_seeded{false};
std::atomic<std::uint64_t> g_seed{0};
std::atomic<std::uint64_t> g_thread_counter{0};

// Everything below is guarded by g_lock.
std::atomic<bool> g_lock{false};
stack_buckets g_buckets;
std::uint64_t g_samples = 0;
std::uint64_t g_dropped = 0;

// The live threads that have fallen back to libunwind, each holding one of its frame caches
// (kUnwinderCacheBytes): counted at a thread's first fallback, uncounted by a thread-specific
// key's destructor when it exits, as libunwind's own key frees the cache then.
std::atomic<std::size_t> g_unwinding_threads{0};
std::atomic<std::size_t> g_unwinding_threads_peak{0};  // the most at any one time
pthread_once_t g_unwinder_key_once = PTHREAD_ONCE_INIT;
pthread_key_t g_unwinder_key;
bool g_unwinder_key_made = false;
// Stacks the CFI unwinder could not follow, captured by libunwind instead.
std::atomic<std::uint64_t> g_unwinder_fallbacks{0};

void uncount_unwinder_cache(void*) noexcept {
  tls_sampler.unwinder_cache_counted = false;
  g_unwinding_threads.fetch_sub(1, std::memory_order_relaxed);
}

void make_unwinder_key() noexcept {
  g_unwinder_key_made = pthread_key_create(&g_unwinder_key, uncount_unwinder_cache) == 0;
}

// Called after this thread's unw_backtrace (busy: pthread_setspecific may allocate).
void count_unwinder_cache(thread_sampler& t) noexcept {
  if (t.unwinder_cache_counted) return;
  pthread_once(&g_unwinder_key_once, make_unwinder_key);
  // The value only has to be non-null for the destructor to run.
  if (!g_unwinder_key_made || pthread_setspecific(g_unwinder_key, &t) != 0) return;
  t.unwinder_cache_counted = true;
  const std::size_t now = g_unwinding_threads.fetch_add(1, std::memory_order_relaxed) + 1;
  std::size_t peak = g_unwinding_threads_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_unwinding_threads_peak.compare_exchange_weak(peak, now)) {
  }
}

// A test-and-test-and-set spinlock: critical sections are a hash lookup and a few stores. It is
// a plain flag (no owner, no destructor) so it survives fork and static destruction.
void lock() noexcept {
  for (int spins = 0; g_lock.exchange(true, std::memory_order_acquire); ++spins) {
    while (g_lock.load(std::memory_order_relaxed)) {
      if (++spins > 64) sched_yield();
    }
  }
  tls_sampler.holding_lock = true;
}

void unlock() noexcept {
  tls_sampler.holding_lock = false;
  g_lock.store(false, std::memory_order_release);
}

class lock_guard {
 public:
  lock_guard() noexcept { lock(); }
  ~lock_guard() { unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;
};

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void seed_thread(thread_sampler& t) noexcept {
  const std::uint64_t index = g_thread_counter.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t state;
  if (g_seeded.load(std::memory_order_acquire)) {
    state = g_seed.load(std::memory_order_relaxed) + index * 0xD1B54A32D192ED03ull;
  } else {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    state = static_cast<std::uint64_t>(now.tv_nsec) ^
            (static_cast<std::uint64_t>(now.tv_sec) << 30) ^
            (static_cast<std::uint64_t>(syscall(SYS_gettid)) << 17) ^
            reinterpret_cast<std::uintptr_t>(&t) ^ (index << 48);
  }
  t.random_state = splitmix64(state) | 1;  // never 0: 0 means "not seeded"
}

// Bytes until the next sample point: exponentially distributed with mean `rate`.
std::int64_t draw_distance(thread_sampler& t, std::size_t rate) noexcept {
  if (rate == 0) return std::numeric_limits<std::int64_t>::max();  // sampling is off
  if (rate == 1) return 1;
  // A uniform double in (0, 1]: the top 53 bits of a splitmix64 draw, plus one ulp.
  const double uniform =
      (static_cast<double>(splitmix64(t.random_state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double distance = -std::log(uniform) * static_cast<double>(rate);
  if (distance >= 9.0e18) return std::numeric_limits<std::int64_t>::max();
  return distance < 1.0 ? 1 : static_cast<std::int64_t>(distance);
}

// Captures the stack of the current allocation into `out`, starting at the frame that called
// the allocation entry point (found as `caller`); returns the depth. The CFI unwinder, with its
// one shared rule cache, does the work; a stack it cannot follow to the end (a signal frame, code
// with no unwind table) is captured again whole by libunwind, whose frame cache then costs this
// thread 256 KiB (counted, see count_unwinder_cache).
std::uint32_t capture_stack(std::uintptr_t caller, std::uintptr_t* out) noexcept {
  // Room for our own frames (this function, the slow path, the entry point) above the caller's.
  constexpr std::size_t kOwnFramesSlack = 16;
  constexpr std::size_t kRawDepth = kMaxStackDepth + kOwnFramesSlack;
  std::uintptr_t raw[kRawDepth];
  const stack::unwind_result walked = stack::cfi_backtrace(raw, kRawDepth);
  std::size_t got = walked.depth;
  if (walked.end == stack::unwind_end::unsupported) {
    void* fallback[kRawDepth];
    tls_sampler.unwinding = true;
    const int unwound = unw_backtrace(fallback, static_cast<int>(kRawDepth));
    tls_sampler.unwinding = false;
    count_unwinder_cache(tls_sampler);
    g_unwinder_fallbacks.fetch_add(1, std::memory_order_relaxed);
    got = unwound > 0 ? static_cast<std::size_t>(unwound) : 0;
    for (std::size_t i = 0; i < got; ++i) raw[i] = reinterpret_cast<std::uintptr_t>(fallback[i]);
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < got && i < kOwnFramesSlack; ++i) {
    if (raw[i] == caller) {
      start = i;
      break;
    }
  }
  // If `caller` was not found (a tail call in between, say), keep everything rather than guess.
  std::uint32_t depth = 0;
  for (std::size_t i = start; i < got && depth < kMaxStackDepth; ++i) out[depth++] = raw[i];
  return depth;
}

void count_free_locked(const live_entry& entry) noexcept {
  entry.bucket->counts.frees += 1;
  entry.bucket->counts.free_weight += entry.weight;
}

void record_sample(void* address, std::size_t bytes, std::size_t rate,
                   std::uintptr_t caller) noexcept {
  std::uintptr_t frames[kMaxStackDepth];
  const std::uint32_t depth = capture_stack(caller, frames);
  const double weight = sample_weight(bytes, rate);
  const auto key = reinterpret_cast<std::uintptr_t>(address);

  lock_guard guard;
  // A stale entry for this address (its free went uncounted) is settled as freed first.
  live_entry stale;
  if (live_allocations.remove(key, &stale)) count_free_locked(stale);
  stack_bucket* bucket = g_buckets.find_or_create(frames, depth, bytes);
  if (bucket == nullptr || !live_allocations.insert(key, live_entry{bucket, weight})) {
    ++g_dropped;
    return;
  }
  bucket->counts.allocs += 1;
  bucket->counts.alloc_weight += weight;
  ++g_samples;
}

}  // namespace

double sample_weight(std::size_t bytes, std::size_t rate) noexcept {
  if (rate <= 1 || bytes == 0) return 1.0;
  return 1.0 / -std::expm1(-static_cast<double>(bytes) / static_cast<double>(rate));
}

heap_estimate estimate(const bucket_snapshot& s) noexcept {
  const double size = static_cast<double>(s.bucket->size);
  const double live = std::max(0.0, s.counts.alloc_weight - s.counts.free_weight);
  return {s.counts.alloc_weight, s.counts.alloc_weight * size, live, live * size};
}

std::size_t sample_rate() noexcept { return g_rate.load(std::memory_order_relaxed); }

void set_sample_rate(std::size_t bytes) noexcept {
  g_rate.store(bytes, std::memory_order_relaxed);
  rate_generation.fetch_add(1, std::memory_order_release);
}

void set_sample_seed(std::uint64_t seed) noexcept {
  g_seed.store(seed, std::memory_order_relaxed);
  g_seeded.store(true, std::memory_order_release);
}

void on_sample_point(void* address, std::size_t bytes, std::uintptr_t caller) noexcept {
  thread_sampler& t = tls_sampler;
  if (t.busy != 0) return;  // our own allocation; the countdown resumes after
  busy_scope busy;
  ensure_configured();

  // The countdown as it stood before this allocation.
  std::int64_t distance = t.bytes_until_sample + static_cast<std::int64_t>(bytes);
  const std::uint32_t generation = rate_generation.load(std::memory_order_acquire);
  const std::size_t rate = g_rate.load(std::memory_order_relaxed);
  if (t.random_state == 0) seed_thread(t);
  if (t.rate_generation != generation) {
    t.rate_generation = generation;
    distance = draw_distance(t, rate);
  }
  if (rate == 0) {
    t.bytes_until_sample = std::numeric_limits<std::int64_t>::max();
    return;
  }
  // Go's rule (runtime/malloc.go): sample when the allocation reaches the sample point.
  if (rate != 1 && static_cast<std::int64_t>(bytes) < distance) {
    t.bytes_until_sample = distance - static_cast<std::int64_t>(bytes);
    return;
  }
  t.bytes_until_sample = draw_distance(t, rate);
  record_sample(address, bytes, rate, caller);
}

void on_sampled_free(void* address) noexcept {
  if (tls_sampler.holding_lock) return;  // a signal handler interrupted us under the lock
  lock_guard guard;
  live_entry entry;
  if (live_allocations.remove(reinterpret_cast<std::uintptr_t>(address), &entry)) {
    count_free_locked(entry);
  }
}

bool detach_sample(void* address, live_entry* out) noexcept {
  if (tls_sampler.holding_lock) return false;
  lock_guard guard;
  return live_allocations.remove(reinterpret_cast<std::uintptr_t>(address), out);
}

void settle_detached_free(const live_entry& entry) noexcept {
  lock_guard guard;
  count_free_locked(entry);
}

void restore_detached(void* address, const live_entry& entry) noexcept {
  lock_guard guard;
  if (!live_allocations.insert(reinterpret_cast<std::uintptr_t>(address), entry)) {
    count_free_locked(entry);  // no room to keep it: count it gone rather than lose track
    ++g_dropped;
  }
}

std::vector<bucket_snapshot> snapshot_buckets() {
  busy_scope busy;
  std::vector<bucket_snapshot> out;
  for (;;) {
    std::size_t expected;
    {
      lock_guard guard;
      expected = g_buckets.count();
    }
    // Reserve outside the lock: allocating (or freeing) under it could wait for the lock itself.
    out.reserve(expected + 64);
    lock_guard guard;
    if (g_buckets.count() > out.capacity()) continue;
    out.clear();
    for (const stack_bucket* b = g_buckets.newest(); b != nullptr; b = b->next_created) {
      out.push_back(bucket_snapshot{b, b->counts});
    }
    return out;
  }
}

sampler_totals totals() noexcept {
  lock_guard guard;
  sampler_totals t;
  t.samples = g_samples;
  t.dropped = g_dropped;
  t.live_samples = live_allocations.size();
  t.unwinding_threads = g_unwinding_threads.load(std::memory_order_relaxed);
  t.unwinder_fallbacks = g_unwinder_fallbacks.load(std::memory_order_relaxed);
  const std::size_t tables =
      g_buckets.memory_bytes() + live_allocations.memory_bytes() + stack::cfi_cache_bytes();
  t.profiler_bytes = tables + t.unwinding_threads * kUnwinderCacheBytes;
  // The tables never shrink, so their size now is also their largest.
  t.peak_profiler_bytes =
      tables + g_unwinding_threads_peak.load(std::memory_order_relaxed) * kUnwinderCacheBytes;
  t.buckets = g_buckets.count();
  return t;
}

void lock_for_fork() noexcept { lock(); }

void unlock_after_fork() noexcept { unlock(); }

void forget_other_threads_after_fork() noexcept {
  const std::size_t left = tls_sampler.unwinder_cache_counted ? 1 : 0;
  g_unwinding_threads.store(left, std::memory_order_relaxed);
  g_unwinding_threads_peak.store(left, std::memory_order_relaxed);
}

}  // namespace leakless::heap
