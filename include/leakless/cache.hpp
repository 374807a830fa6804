// leakless/cache.hpp — a bounded, expiring, concurrent in-memory cache (W-TinyLFU or LRU).
//
// A cache<K, V> holds at most max_entries entries and/or max_bytes weighed bytes, drops entries
// that were written or read too long ago, and loads missing values at most once per key at a time
// (get_or_load). It is a header-only class template.
//
// Sharding. The cache is split into 2^s shards by the top bits of the key's hash; each shard has
// its own mutex, hash table, eviction queues, frequency sketch, expiry heap and counters, and its
// own share of the bounds (the shares add up to the bounds exactly, so the whole cache can never
// exceed them even while every shard is being written). Writes lock their shard; hits do not
// (see "Concurrent reads"). The number of shards is picked so that each shard keeps at least 128
// entries (or 64 KiB) — a small cache has one shard, so that its eviction order is exactly the
// policy's — and at most four per hardware thread, 64 at most; cache_options::shards overrides it.
//
// Concurrent reads (as Caffeine does them, without a garbage collector). A get probes the shard's
// table without the lock: tags and slots are atomics, a node's key, value and hash never change
// once it is in the table (a put over a key builds a new node and swaps it into the slot), and
// its deadline is an atomic beside it in the node slab, so the reader checks expiry itself. On a
// hit it copies the value, counts the hit and stores the node's address in the shard's read buffer.
// Gate and buffer are striped (4 stripes, each on cache lines of its own, each with its own gate
// counters and a fixed ring of 32 slots): a thread takes a stripe round robin on its first read and
// keeps it, so that two threads hitting the same hot shard do not bounce one cache line between
// their cores on every hit. The reader whose slot is the last one of its stripe's ring replays its
// own stripe under the lock if the lock is free (try_lock), and every write, locked read and
// cleanup replays every stripe first. A reader leaves the other stripes alone because replaying
// one writes its lines (clears its slots, takes its hits), which would take them from the core
// of the thread that reads through it; and the ring has 32 slots, not Caffeine's 16, because each
// replay also takes the shard's lock and its counters' lines from the other core: with two threads
// reading one cache, those two choices took the rate per thread from about 20 to 23.5 M reads/s
// (cache_bench throughput, read-zipf, on two cores of a Xeon). Replaying does what a locked hit
// did: it counts the key in the sketch and moves the entry within (or between) its queues; the hits
// go to the climber's sample. The buffer is lossy: a record is dropped when two readers pick the
// same slot or when the buffer wraps before a replay, as in Caffeine (this loses a little frequency
// information under contention, never an entry or a count of hits). Anything else (a miss, an
// expired entry, a key that a concurrent erase was shifting in the table) is asked again under the
// lock, which counts the miss and removes an expired entry. A cache with expire_after_access reads
// under the lock, since each read moves the entry's deadline in the heap.
//   Nodes are never freed or reused while a reader may hold one: removal unlinks a node under the
// lock and retires it, as a rehash retires the table's old arrays, and retired memory is freed (a
// retired node's key and value destroyed and the node put on its slab's free list, from which a
// later put may take it for another key) only once every reader that could have seen it has left.
// Readers register in the shard's read gate: in each stripe, two counters, one per parity of the
// shard's epoch. A reader reads the epoch, increments that epoch's counter in its stripe (it also
// carries the stripe's hit count in its upper bits, so a hit costs no third atomic operation;
// a replay folds the hits of the stripes it replays into the shard's counters, and stats() adds
// those not folded yet), checks that the epoch did not change meanwhile (else it moves to the new
// one) and decrements the counter when it leaves. A writer, under the lock, flips the epoch once it
// has retired something and frees the previous epoch's retirements when that epoch's counters, in
// every stripe, show no reader in flight (after replaying the read buffer, which may name them):
// readers that enter after the flip cannot find what was retired before it, so the previous
// counters drain, and new readers never hold up reclamation. The writer checks each stripe's
// counter with a read-modify-write (adding 0), so a reader whose increment comes after it reads
// from it and sees everything the writer did before (the removals, the flip); the decrement is a
// release that the writer's check acquires, so a reader's last access to a node happens before the
// node is freed (or rebuilt for another key). In a single-threaded program the counters are always
// 0 and retired memory is freed at once.
//
// Memory layout. An entry costs its node, its slots in the shard's table and a word of the
// frequency sketch, and with a deadline an atomic deadline and a slot of the deadline heap. Nodes
// live in a per-shard slab (node_slab): chunks of 64 (four of them), 128 (four), 256, ... nodes,
// allocated whole (no malloc header per node) and never moved, so a node's address is stable for
// lock-free readers, and named everywhere else by a 32-bit index, turned into an address through a
// table of pointers to each run of 64 nodes (a shift, a load and an add). A node holds the key, the
// value and six 32-bit fields: its own index, its queue links, its hash, its weight (saturating at
// 4 GiB) and its heap slot, region and state (free, live or retired) — 24 bytes beyond key and
// value. The table's slots are 32-bit indices beside a byte of tag. Deadlines sit beside the nodes,
// an array of atomics per chunk allocated only once the shard stores its first deadline, and the
// heap holds 32-bit indices (sifting reads the deadlines from the slab). Measured with 10^6 uint64
// keys and values in a cache bounded at 10^6 (cache_bench memory): 45 bytes per entry beyond key
// and value, 58 with expire_after_write, where one malloc per node with pointer links took 75 and
// 92. A freed node goes on its chunk's free list and puts take the lowest chunk's free nodes first,
// so the last chunks empty when the cache shrinks, and cleanup() frees chunks that hold no node in
// use; a chunk with one long-lived entry stays.
//
// Eviction (W-TinyLFU, as Caffeine does it). A shard's entries live on three intrusive lists:
// the admission window (1% of the shard's capacity) and the main space, a segmented LRU of a
// probation part and a protected part (80% of the main space). New entries enter the window. When
// the window overflows, its least recent entries move to the probation list as candidates; while
// the shard is over its bounds, the oldest candidate duels with the least recent probation entry
// (or, when only candidates are left there, the least recent protected one): the one whose key was
// used less often, by the frequency sketch, is evicted, and ties go to the incumbent (a candidate
// with a frequency of at least 6 still wins 1 duel in 128, at random, so that an attacker cannot
// pin the cache by flooding colliding keys). A hit in probation promotes the entry to protected;
// protected overflow demotes its least recent entries back to probation. The protected part is a
// CLOCK rather than Caffeine's strict LRU list: a hit on a protected entry only marks it, and
// demotion gives a marked entry at the head a second chance (unmarks it and moves it to the tail),
// at most kSecondChances of them per demotion so that no write sweeps the whole list. So a hit in
// the main space's largest part moves nothing: most hits of a skewed workload land there, and a
// move rewrites the links of the entry's queue neighbours, random cache lines, which after the
// sketch was the largest cost of replaying reads. The sketch is a 4-bit count-min sketch, 4 rows in
// one table of 64-bit words (16 counters each, one word per entry of capacity), laid out as
// Caffeine's in 64-byte blocks, a key's 4 counters in one: every hit and every write counts the
// key, and after 10 counts per entry of capacity all counters are halved, so that the sketch
// forgets old popularity (Caffeine's optional doorkeeper is not implemented). The window's size
// adapts by hill climbing, as in Caffeine: after each sample of 10 requests per entry of capacity
// (5,000 at least), it keeps moving in the direction that raised the hit ratio and turns back when
// the ratio fell (it holds still when the ratio did not change at all, where Caffeine keeps going),
// so a workload where recency matters more than frequency gets a large window
// (cache_options::adaptive_window = false keeps it at 1%). eviction::lru keeps a single LRU list.
// When both bounds are set the regions are sized in entries; otherwise in the bound that is set.
//
// Weight. With max_bytes, an entry weighs cache_options::weigher(key, value) (the heap memory the
// key and value own; 0 when no weigher is given) plus entry_overhead: the node holding the key,
// the value, the entry's links and deadline, up to 8/3 slots of the shard's hash table, a slot of
// the deadline heap and a word of the frequency sketch (see "Memory layout"). So the bound is on
// the memory the cache really holds, not on a count the caller made up, provided the weigher also
// counts what the allocator adds to the key's and value's own blocks (a std::string of capacity 40
// occupies a 64-byte block, not 41 bytes). Measured with glibc: 2,000,000 puts of uint64 keys and
// empty strings into a cache of 8 MiB leave 6.61 MiB allocated (79,136 entries; the charge is an
// upper estimate: it counts a deadline, a heap slot and a write deadline that such a cache lacks).
// stats().bytes is the current total weight.
//
// Expiry. Each entry has a deadline: the earliest of write time + expire_after_write (or + the
// per-entry ttl given to put, which replaces expire_after_write for that entry) and last access +
// expire_after_access. Entries with a deadline sit in a per-shard binary min-heap keyed by it
// (a heap of slab indices; each entry knows its heap slot, so an access that moves the deadline
// re-sifts in O(log n) without allocating). An expired entry is never returned: a read that finds
// one removes it and reports a miss. Expired entries are removed by cleanup(), by every write to
// their shard (it pops the expired top of the heap first), and — when
// cache_options::cleanup_interval is set — by a background thread that runs cleanup() at that
// interval, so memory comes back even when nobody reads or writes (cleanup() also shrinks a shard's
// hash table and heap once they are mostly empty, and frees the slab's trailing chunks once no node
// in them is in use). Time comes from cache_options::clock (nanoseconds since any fixed epoch;
// steady_clock by default), so tests can drive it by hand. A read or an erase calls the clock
// only when the options give every entry a deadline or the entry it found has one (a per-entry
// ttl), and a put only when the options or its ttl give the new entry a deadline or its shard
// holds entries with one (to expire those due): a cache without expiry never reads the time. Not
// reading it on puts took cache_bench's mix-75/25 on one thread from 11.4 to 12.7 M operations/s
// (means of three alternating runs, on a Xeon).
//
// Removal listener. cache_options::removal_listener(key, value, cause) is called for every entry
// that leaves the cache, with the cause: size (evicted for the bounds), expired, explicit_
// (erase()) or replaced (put() over an existing key; the old value is passed). It runs after the
// shard lock is released, on the thread that caused the removal, so it may use the cache; it must
// not throw. The weigher runs under the shard lock (it must not use the cache); the clock, the
// weigher and the listener may be called from several threads at once.
//
// Out of memory. A put that cannot get memory throws std::bad_alloc having changed nothing (but
// the maintenance it did first: replaying reads, removing expired entries): everything it needs
// — the node, a table slot, a deadline heap slot, the listener's copy of a replaced entry — is
// obtained before the new entry is published. A removal never stops halfway: when the listener's
// copy of the removed key and value cannot be made, the entry is removed all the same (the bounds
// come first), the listener is not called for it, and stats().notices_lost counts it. The
// background cleanup thread retries at its next interval.
//
// get_or_load. A miss registers a shared future for the key in the shard's table of loads in
// flight; later misses on the same key find it and wait on it instead of loading. The first caller
// runs the loader without holding any lock, stores the value, removes the registration and then
// fulfils the future. A loader that throws stores nothing, and every waiter gets the same
// exception. stats().loads counts loader calls. A put or erase of the key while its load runs is
// overwritten by the loaded value when the load finishes.
//
// Metrics. A cache with cache_options::name registers with the debug server's /metrics
// (<leakless/metrics.hpp>) when libleakless.so is in the process: leakless_cache_entries, _bytes,
// _hits_total, _misses_total, _hit_ratio, _evictions_total and _expirations_total, labelled
// cache="<name>". Without the library (header-only use) this costs nothing.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <leakless/hash.hpp>
#include <leakless/metrics.hpp>
#include <leakless/prefetch.hpp>

namespace leakless {

// The eviction policy of a bounded cache.
enum class eviction { tinylfu, lru };

// Why an entry left the cache (passed to the removal listener).
enum class removal_cause {
  explicit_,  // erase()
  replaced,   // put() of a key already present: the old value
  expired,    // past its deadline
  size,       // evicted to keep the cache within its bounds
};

// The options every cache understands, whatever its key and value types.
struct cache_options_base {
  std::size_t max_entries = 0;                      // 0: no bound on the number of entries
  std::size_t max_bytes = 0;                        // 0: no bound on the weighed size
  std::chrono::nanoseconds expire_after_write{0};   // 0: never
  std::chrono::nanoseconds expire_after_access{0};  // 0: never
  eviction policy = eviction::tinylfu;
  std::string name;
  // Current time in nanoseconds since any fixed epoch; empty: std::chrono::steady_clock.
  std::function<std::chrono::nanoseconds()> clock;
  std::size_t shards = 0;                        // 0: automatic; otherwise rounded up to 2^k
  std::chrono::nanoseconds cleanup_interval{0};  // > 0: a background thread runs cleanup()
  bool adaptive_window = true;  // tinylfu: resize the window by hill climbing on the hit ratio
};

// cache_options (no arguments) holds the common options; cache_options<K, V> adds the weigher and
// the removal listener, which need the key and value types.
template <class K = void, class V = void>
struct cache_options : cache_options_base {
  std::function<std::size_t(const K&, const V&)> weigher;
  std::function<void(const K&, const V&, removal_cause)> removal_listener;
};

template <>
struct cache_options<void, void> : cache_options_base {};

struct cache_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;     // removals for the bounds
  std::uint64_t expirations = 0;   // removals of expired entries
  std::uint64_t loads = 0;         // loader calls by get_or_load
  std::uint64_t bytes = 0;         // current total weight (see "Weight" above)
  std::uint64_t notices_lost = 0;  // removals not told to the listener: no memory for the copy
};

namespace cache_detail {

inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
// A time not read yet (reads skip the clock while no entry can have a deadline).
inline constexpr std::int64_t kUnread = std::numeric_limits<std::int64_t>::min();

// a + b, clamped to kNever instead of overflowing; b <= 0 means "no deadline".
inline std::int64_t deadline(std::int64_t now, std::int64_t after) noexcept {
  if (after <= 0) return kNever;
  if (now > kNever - after) return kNever;
  return now + after;
}

// A shard's lock: std::mutex, tried a few times before the caller sleeps on it. The sections it
// guards last a few hundred nanoseconds, and std::mutex puts a waiter to sleep at once; waking
// it costs microseconds (a system call and, on a virtual machine, an interrupt through the
// hypervisor), longer than the holder needed. With two threads writing to one cache
// (cache_bench's mix-75/25), a third of the time went to sleeping and waking.
class shard_mutex {
 public:
  void lock() noexcept {
    for (int tries = 0; tries < kTries; ++tries) {
      if (mu_.try_lock()) return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    mu_.lock();
  }
  bool try_lock() noexcept { return mu_.try_lock(); }
  void unlock() noexcept { mu_.unlock(); }

 private:
  static constexpr int kTries = 100;
  std::mutex mu_;
};

// The read stripes of a shard (see "Concurrent reads"), and the calling thread's: threads take
// stripes round robin in the order of their first lock-free read, so that up to kReadStripes
// threads reading the same shard touch cache lines of their own.
inline constexpr std::size_t kReadStripes = 4;
inline std::size_t read_stripe() noexcept {
  static constinit std::atomic<std::size_t> next{0};
  static constinit thread_local std::size_t mine = 0;  // the stripe + 1; 0: none yet
  if (mine == 0) mine = next.fetch_add(1, std::memory_order_relaxed) % kReadStripes + 1;
  return mine - 1;
}

// 4-bit count-min sketch in 64-byte blocks (Caffeine's layout): a key's 4 counters, one per
// row, all lie in one block of 8 words picked by the key's hash, so counting a key touches one
// cache line. Row i uses word 2i or 2i+1 of the block and one of its 16 counters, both picked by
// byte i of a second hash of the key.
class frequency_sketch {
 public:
  void ensure_capacity(std::size_t entries) {
    const std::size_t words = std::bit_ceil(std::max<std::size_t>(entries, 16));
    if (words <= capacity()) return;
    table_.assign(words / 8, block{});
    mask_ = words / 8 - 1;
    sample_size_ = 10 * std::max<std::size_t>(entries, 16);
    size_ = 0;
  }
  std::size_t capacity() const noexcept { return 8 * table_.size(); }

  unsigned frequency(std::uint64_t h) const noexcept {
    if (table_.empty()) return 0;
    const block& b = table_[block_of(h)];
    const std::uint64_t c = counter_hash(h);
    unsigned f = 15;
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned byte = static_cast<unsigned>(c >> (8 * i));
      const std::uint64_t word = b.words[(byte & 1) + 2 * i];
      f = std::min(f, static_cast<unsigned>((word >> (((byte >> 1) & 15) << 2)) & 0xf));
    }
    return f;
  }

  // Asks the processor to fetch h's counters (before a batch of increments).
  void prefetch(std::uint64_t h) const noexcept {
    if (!table_.empty()) prefetch_detail::prefetch_write(&table_[block_of(h)]);
  }

  void increment(std::uint64_t h) noexcept {
    if (table_.empty()) return;
    block& b = table_[block_of(h)];
    const std::uint64_t c = counter_hash(h);
    bool added = false;
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned byte = static_cast<unsigned>(c >> (8 * i));
      std::uint64_t& word = b.words[(byte & 1) + 2 * i];
      const unsigned shift = ((byte >> 1) & 15) << 2;
      if (((word >> shift) & 0xf) != 0xf) {
        word += std::uint64_t{1} << shift;
        added = true;
      }
    }
    if (added && ++size_ >= sample_size_) reset();
  }

 private:
  struct alignas(64) block {
    std::uint64_t words[8] = {};
  };

  std::size_t block_of(std::uint64_t h) const noexcept {
    return static_cast<std::size_t>(hash_detail::mix(h, 0xc3a5c85c97cb3127ull)) & mask_;
  }
  static std::uint64_t counter_hash(std::uint64_t h) noexcept {
    return hash_detail::mix(h, 0xb492b66fbe98f273ull);
  }
  // Halves every counter (the "reset" that ages the sketch).
  void reset() noexcept {
    std::size_t odd = 0;
    for (block& b : table_) {
      for (std::uint64_t& word : b.words) {
        odd += static_cast<std::size_t>(std::popcount(word & 0x1111111111111111ull));
        word = (word >> 1) & 0x7777777777777777ull;
      }
    }
    size_ = (size_ - (odd >> 2)) >> 1;
  }

  std::vector<block> table_;
  std::size_t mask_ = 0;
  std::size_t sample_size_ = 0;
  std::size_t size_ = 0;
};

}  // namespace cache_detail

template <class K, class V, class Hash = leakless::hash<K>, class KeyEqual = std::equal_to<K>>
class cache {
 public:
  using key_type = K;
  using mapped_type = V;
  using options = cache_options<K, V>;

  explicit cache(options opts = {}) : opts_(std::move(opts)) { init(); }
  explicit cache(const cache_options<>& opts) {
    static_cast<cache_options_base&>(opts_) = opts;
    init();
  }
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;
  ~cache() {
    if (cleaner_.joinable()) {
      cleaner_.request_stop();
      cleaner_.join();
    }
  }

  // The value of key, if present and not expired; counts a hit or a miss.
  std::optional<V> get(const K& key) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    std::optional<V> result;
    if (try_get(s, key, low(h), result)) return result;
    std::int64_t t = read_time();
    notices pending;
    {
      std::lock_guard lock(s.mu);
      if (node* n = s.lookup(key, low(h), t, pending)) result.emplace(n->value);
    }
    notify(pending);
    return result;
  }

  void put(K key, V value) { put_impl(std::move(key), std::move(value), 0); }
  // Stores value with its own time to live (replacing expire_after_write for this entry; a ttl of
  // zero or less expires it at once).
  void put(K key, V value, std::chrono::nanoseconds ttl) {
    put_impl(std::move(key), std::move(value), ttl.count() > 0 ? ttl.count() : -1);
  }

  // Removes key; true if it was present (an expired entry counts as absent, and is removed).
  bool erase(const K& key) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    const std::int64_t t = read_time();  // the clock only if a deadline may apply, as for a read
    notices pending;
    bool erased = false;
    {
      std::lock_guard lock(s.mu);
      if (node* n = s.table.find(key, low(h), eq_)) {
        const std::int64_t expires = s.expires_of(n);
        const bool expired = expires <= time_for(expires, t);
        s.remove(n, expired ? removal_cause::expired : removal_cause::explicit_, pending);
        s.reclaim();
        erased = !expired;
      }
    }
    notify(pending);
    return erased;
  }

  // Entries held, including expired ones that maintenance has not removed yet (cleanup() first
  // for an exact count of live entries).
  std::size_t size() const {
    std::size_t total = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s->mu);
      total += s->table.size();
    }
    return total;
  }

  // The value of key; on a miss, load(key) is called once however many threads miss on key at
  // the same time, and they all get its value (or its exception).
  template <class Loader>
  V get_or_load(const K& key, Loader&& load) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    {
      std::optional<V> hit;
      if (try_get(s, key, low(h), hit)) return std::move(*hit);
    }
    std::int64_t t = read_time();
    notices pending;
    std::promise<V> promise;
    std::shared_future<V> future;
    bool leader = false;
    std::optional<V> hit;
    {
      std::lock_guard lock(s.mu);
      if (node* n = s.lookup(key, low(h), t, pending)) {
        hit.emplace(n->value);
      } else {
        auto [it, inserted] = s.loading.try_emplace(key);
        if (inserted) {
          leader = true;
          it->second = promise.get_future().share();
          ++s.stats.loads;
        }
        future = it->second;
      }
    }
    notify(pending);
    if (hit) return std::move(*hit);
    if (!leader) return future.get();
    std::optional<V> value;
    try {
      value.emplace(std::invoke(std::forward<Loader>(load), key));
      const std::int64_t loaded_at = now();
      std::lock_guard lock(s.mu);
      s.loading.erase(key);
      s.insert(K(key), low(h), V(*value), 0, loaded_at, pending);
    } catch (...) {
      {
        std::lock_guard lock(s.mu);
        s.loading.erase(key);
      }
      promise.set_exception(std::current_exception());
      throw;
    }
    promise.set_value(*value);
    notify(pending);
    return std::move(*value);
  }

  cache_stats stats() const {
    cache_stats total;
    for (const auto& s : shards_) {
      std::lock_guard lock(s->mu);
      total.hits += s->stats.hits + s->unfolded_hits();
      total.misses += s->stats.misses;
      total.evictions += s->stats.evictions;
      total.expirations += s->stats.expirations;
      total.loads += s->stats.loads;
      total.bytes += s->bytes;
      total.notices_lost += s->stats.notices_lost;
    }
    return total;
  }

  // Removes every expired entry now.
  void cleanup() {
    const std::int64_t t = now();
    for (auto& s : shards_) {
      notices pending;
      {
        std::lock_guard lock(s->mu);
        s->drain();
        s->expire(t, pending);
        s->reclaim();  // first, so that compact() may free the slab chunks it empties
        s->compact();
        s->reclaim();
      }
      notify(pending);
    }
  }

  const std::string& name() const noexcept { return opts_.name; }
  std::size_t shard_count() const noexcept { return shards_.size(); }

 private:
  enum class region : std::uint8_t { window, probation, protect };

  // An entry, in a slot of its shard's node slab (see node_slab): its address never changes while
  // it is in use, for lock-free readers, and the shard's lists and table name it by its 32-bit
  // index in the slab. Its key, value and hash never change once it is in the table (a put over it
  // builds a new node), so a reader may read them without the lock; everything else belongs to the
  // shard's lock. The key and value live only while the node is in use (anonymous unions: the slab
  // constructs and destroys them), so a free node keeps its header and its place in a free list.
  // With 8-byte keys and values, a node takes 40 bytes: key, value and six 32-bit fields.
  struct node {
    union {
      K key;
    };
    union {
      V value;
    };
    std::uint32_t self;          // this node's index in the slab
    std::uint32_t prev = kNone;  // the neighbours in its queue
    std::uint32_t next = kNone;  // also the link of the slab's free lists and of a graveyard
    std::uint32_t hash = 0;      // the low half of hash_of(key): the table's and the sketch's hash
    std::uint32_t weight = 0;    // saturating: an entry weighs at most 2^32 - 1 bytes
    // The entry's slot in the deadline heap, npos if none (so a shard holds at most 2^27 - 1
    // entries with a deadline).
    std::uint32_t heap_index : 27 = npos;
    region where : 2 = region::window;
    std::uint32_t state : 2 = kFree;   // kFree, kLive (in the table) or kRetired
    std::uint32_t referenced : 1 = 0;  // a protected entry hit since it last moved

    explicit node(std::uint32_t i) noexcept : self(i) {}
    node(const node&) = delete;
    node& operator=(const node&) = delete;
    ~node() {}  // the slab ends the key's and value's lives (free nodes have none)
  };
  static constexpr std::uint32_t kNone = 0xffffffffu;  // no node
  static constexpr std::uint32_t npos = (std::uint32_t{1} << 27) - 1;
  static constexpr std::uint32_t kFree = 0, kLive = 1, kRetired = 2;

  // A shard's nodes, in chunks of geometrically growing size, four chunks per doubling: chunks
  // 4o .. 4o+3 (octave o) hold 2^(o + 6) nodes each, so that, once the slab holds a few thousand
  // nodes, the chunk added last, and so the part allocated but not yet handed out, is at most
  // about a fifth of the slab (with one chunk per doubling it would be half).
  // Chunks are never moved or reallocated, so a node's address never changes; they are allocated
  // whole (no malloc header per node) and their nodes are written (made resident) only as they are
  // handed out. Node i is found through the block table: one pointer per run of 64 nodes (0.125
  // bytes a node), node i being blocks[i / 64] + i % 64 — a shift, a load and an add. When the
  // slab outgrows it, the table is copied into one twice as large, which is published for
  // lock-free readers, and the old one is retired (old_tables()) as the hash table's old arrays
  // are, since readers may still be using it. The entries are plain pointers: a reader reads one
  // only for a node it found through a table slot it acquired, stored after the chunk's entries
  // were written, and they are rewritten (the chunk freed and allocated again) only once no reader
  // can hold a node of that chunk.
  //   Each chunk has its own free list, and a node is taken from the lowest chunk that has a free
  // one (then from the unused tail of the last chunk, then from a new chunk), so that the last
  // chunks empty when the cache shrinks: release_empty() frees trailing chunks with no node in
  // use. A node is given back (free()) only once no reader can hold it (see shard::reclaim()).
  // Entries' deadlines live beside the nodes, one atomic per node in an array per chunk, with a
  // block table of their own, allocated only once the shard stores its first deadline (a cache
  // without expiry never pays for them): a lock-free reader that finds no deadline table knows
  // the entry has no deadline. Under the shard's lock, except at_concurrent() and
  // expires_concurrent() (lock-free readers, for nodes they found in the table; see "Concurrent
  // reads").
  class node_slab {
   public:
    // The block tables: pointers to each run of 64 nodes, and of 64 deadlines (none until the
    // slab has deadlines).
    struct table {
      explicit table(std::size_t cap, bool with_deadlines)
          : capacity(cap),
            nodes(std::make_unique<node*[]>(cap)),
            deadlines(with_deadlines ? std::make_unique<std::atomic<std::int64_t>*[]>(cap)
                                     : nullptr) {}
      std::size_t capacity;
      std::unique_ptr<node*[]> nodes;
      std::unique_ptr<std::atomic<std::int64_t>*[]> deadlines;
    };

    node_slab() = default;
    node_slab(const node_slab&) = delete;
    node_slab& operator=(const node_slab&) = delete;
    ~node_slab() {
      for (unsigned k = 0; k < count_; ++k) {
        node* chunk = chunks_[k];
        for (std::size_t j = 0, end = constructed(k); j < end; ++j) {
          if (chunk[j].state != kFree) destroy_entry(&chunk[j]);
        }
      }
      while (count_ > 0) drop_last();
    }

    node* at(std::uint32_t i) const noexcept { return &in_blocks(blocks_, i); }
    node* at_concurrent(std::uint32_t i) const noexcept {
      return &in_blocks(published_nodes_.load(std::memory_order_acquire), i);
    }
    // Node i's deadline (kNever if none).
    std::int64_t expires(std::uint32_t i) const noexcept {
      if (deadline_blocks_ == nullptr) return cache_detail::kNever;
      return in_blocks(deadline_blocks_, i).load(std::memory_order_relaxed);
    }
    // The same for a lock-free reader, which found node i through a table slot it acquired after
    // the node's deadline and the table that holds it were stored.
    std::int64_t expires_concurrent(std::uint32_t i) const noexcept {
      std::atomic<std::int64_t>* const* d = published_deadlines_.load(std::memory_order_acquire);
      if (d == nullptr) return cache_detail::kNever;
      return in_blocks(d, i).load(std::memory_order_relaxed);
    }
    bool deadlines_on() const noexcept { return deadline_blocks_ != nullptr; }
    // Requires deadlines_on(), or t == kNever.
    void set_expires(std::uint32_t i, std::int64_t t) noexcept {
      if (deadline_blocks_ == nullptr) return;
      in_blocks(deadline_blocks_, i).store(t, std::memory_order_relaxed);
    }
    // Gives every node a deadline slot (kNever), now and in the chunks to come.
    void enable_deadlines() {
      if (deadlines_on()) return;
      for (unsigned k = 0; k < count_; ++k) {
        if (deadlines_[k] == nullptr) add_deadlines(k);
      }
      deadlines_wanted_ = true;
      replace_table(t_ ? t_->capacity : 16);
    }

    // A node in use (its key and value not yet constructed).
    node* allocate() {
      node* n;
      if (const unsigned k = lowest_with_free(); k < count_) {
        n = at(free_[k]);
        free_[k] = n->next;
        if (free_[k] == kNone) with_free_[k / 64] &= ~(std::uint64_t{1} << (k % 64));
        ++used_[k];
      } else {
        if (count_ == 0 || bumped_ == size_of(count_ - 1)) grow();
        const unsigned last = count_ - 1;
        n = std::construct_at(chunks_[last] + bumped_,
                              static_cast<std::uint32_t>(base(last) + bumped_));
        ++bumped_;
        ++used_[last];
      }
      n->prev = n->next = kNone;
      n->heap_index = npos;
      n->referenced = 0;
      return n;
    }
    // Gives back a node whose key and value are gone (destroy_entry()) or were never built.
    void free(node* n) noexcept {
      const unsigned k = chunk_of(n->self);
      n->state = kFree;
      n->next = free_[k];
      free_[k] = n->self;
      with_free_[k / 64] |= std::uint64_t{1} << (k % 64);
      --used_[k];
    }
    // Frees the trailing chunks that have no node in use, and gives back most of the block table
    // once it is mostly empty (the old one is retired).
    void release_empty() {
      while (count_ > 0 && used_[count_ - 1] == 0) drop_last();
      const std::size_t blocks =
          count_ == 0 ? 0 : (base(count_ - 1) + size_of(count_ - 1)) >> kFirstBits;
      if (t_ && t_->capacity > 16 && blocks * 4 < t_->capacity) {
        replace_table(std::max<std::size_t>(16, std::bit_ceil(blocks)));
      }
    }
    // The block tables replaced as the slab grew, which lock-free readers may still be using.
    std::vector<std::unique_ptr<table>>& old_tables() noexcept { return old_; }

    static void destroy_entry(node* n) noexcept {
      std::destroy_at(&n->key);
      std::destroy_at(&n->value);
    }

   private:
    static constexpr unsigned kFirstBits = 6;  // octave 0's chunks hold 64 nodes
    static constexpr std::uint32_t kBlockMask = (std::uint32_t{1} << kFirstBits) - 1;
    // 24 octaves: indices below 2^32 - 256, so that kNone is never a node.
    static constexpr unsigned kChunks = 4 * 24;

    // Element i of the arrays a block table points to: each pointer covers a run of 64.
    template <class T>
    static T& in_blocks(T* const* blocks, std::uint32_t i) noexcept {
      return blocks[i >> kFirstBits][i & kBlockMask];
    }
    static unsigned chunk_of(std::uint32_t i) noexcept {
      const unsigned octave =
          static_cast<unsigned>(std::bit_width((i >> (kFirstBits + 2)) + 1)) - 1;
      const std::uint32_t rest = i - (((std::uint32_t{1} << octave) - 1) << (kFirstBits + 2));
      return 4 * octave + (rest >> (octave + kFirstBits));
    }
    static std::size_t base(unsigned k) noexcept {
      const unsigned octave = k / 4;
      return (((std::size_t{1} << octave) - 1) << (kFirstBits + 2)) +
             (std::size_t{k % 4} << (octave + kFirstBits));
    }
    static std::size_t size_of(unsigned k) noexcept {
      return std::size_t{1} << (k / 4 + kFirstBits);
    }
    std::size_t constructed(unsigned k) const noexcept {
      return k + 1 == count_ ? bumped_ : size_of(k);
    }
    unsigned lowest_with_free() const noexcept {
      if (with_free_[0] != 0) return static_cast<unsigned>(std::countr_zero(with_free_[0]));
      if (with_free_[1] != 0) return 64 + static_cast<unsigned>(std::countr_zero(with_free_[1]));
      return kChunks;
    }

    // A new table of cap blocks (with deadlines if wanted) holding the chunks' blocks, published
    // in place of the current one, which is retired.
    void replace_table(std::size_t cap) {
      old_.reserve(old_.size() + 1);
      auto fresh = std::make_unique<table>(cap, deadlines_wanted_);
      for (unsigned k = 0; k < count_; ++k) fill(*fresh, k);
      if (t_) old_.push_back(std::move(t_));
      t_ = std::move(fresh);
      blocks_ = t_->nodes.get();
      deadline_blocks_ = t_->deadlines.get();
      // A reader that found a node published after this store sees these arrays or later ones.
      published_deadlines_.store(deadline_blocks_, std::memory_order_release);
      published_nodes_.store(blocks_, std::memory_order_release);
    }
    // Points t's blocks at chunk k's nodes and deadlines.
    void fill(table& t, unsigned k) noexcept {
      const std::size_t first = base(k) >> kFirstBits;
      for (std::size_t b = 0; b < size_of(k) >> kFirstBits; ++b) {
        t.nodes[first + b] = chunks_[k] + (b << kFirstBits);
        if (t.deadlines) {
          t.deadlines[first + b] = deadlines_[k] + (b << kFirstBits);
        }
      }
    }

    void grow() {
      if (count_ == kChunks)
        throw std::length_error("leakless::cache: too many entries in a shard");
      const unsigned k = count_;
      const std::size_t blocks = (base(k) + size_of(k)) >> kFirstBits;
      node* chunk = std::allocator<node>().allocate(size_of(k));
      try {
        if (deadlines_wanted_) add_deadlines(k);
        chunks_[k] = chunk;
        ++count_;
        if (!t_ || blocks > t_->capacity) {
          replace_table(std::max<std::size_t>(16, std::bit_ceil(blocks)));
        } else {
          fill(*t_, k);
        }
      } catch (...) {
        if (count_ > k) --count_;
        chunks_[k] = nullptr;
        delete[] std::exchange(deadlines_[k], nullptr);
        std::allocator<node>().deallocate(chunk, size_of(k));
        throw;
      }
      free_[k] = kNone;
      used_[k] = 0;
      bumped_ = 0;
    }
    void add_deadlines(unsigned k) {
      auto* d = new std::atomic<std::int64_t>[size_of(k)];
      for (std::size_t j = 0; j < size_of(k); ++j) {
        d[j].store(cache_detail::kNever, std::memory_order_relaxed);
      }
      deadlines_[k] = d;
    }
    void drop_last() noexcept {
      const unsigned k = --count_;
      std::allocator<node>().deallocate(std::exchange(chunks_[k], nullptr), size_of(k));
      delete[] std::exchange(deadlines_[k], nullptr);
      with_free_[k / 64] &= ~(std::uint64_t{1} << (k % 64));
      bumped_ = count_ == 0 ? 0 : size_of(count_ - 1);
    }

    node* chunks_[kChunks] = {};
    std::atomic<std::int64_t>* deadlines_[kChunks] = {};
    std::uint32_t free_[kChunks] = {};  // each chunk's free list (kNone: empty)
    std::uint32_t used_[kChunks] = {};  // each chunk's nodes in use (live or retired)
    std::uint64_t with_free_[2] = {};   // bit k: chunk k's free list is not empty
    unsigned count_ = 0;                // chunks allocated
    std::size_t bumped_ = 0;            // nodes of the last chunk handed out at least once
    bool deadlines_wanted_ = false;     // enable_deadlines() was called
    std::unique_ptr<table> t_;          // the current block table
    node** blocks_ = nullptr;           // its arrays, for the lock's holder
    std::atomic<std::int64_t>** deadline_blocks_ = nullptr;
    // t_'s arrays, for lock-free readers.
    std::atomic<node* const*> published_nodes_{nullptr};
    std::atomic<std::atomic<std::int64_t>* const*> published_deadlines_{nullptr};
    std::vector<std::unique_ptr<table>> old_;
  };

  // The shard's hash table: open addressing with linear probing over an array of 32-bit node
  // indices (into the shard's slab), with a parallel array of one-byte tags (0: empty; else 0x80 |
  // 7 bits of the hash) so that a probe compares keys only on a tag match: 5 bytes a slot. The
  // hash is computed once per operation and kept in the node; deletion shifts the following
  // entries back (no tombstones). At most 3/4 full. Writers change it under the shard's lock;
  // find_concurrent() probes it without the lock (see "Concurrent reads"): tags and slots are
  // atomics, a new node's slot is stored before its tag, and the arrays replaced by a rehash are
  // kept (old()) until the shard frees them.
  class hash_table {
   public:
    struct arrays {
      explicit arrays(std::size_t cap)
          : mask(cap - 1),
            tags(std::make_unique<std::atomic<std::uint8_t>[]>(cap)),
            slots(std::make_unique<std::atomic<std::uint32_t>[]>(cap)) {}
      std::size_t mask;
      std::unique_ptr<std::atomic<std::uint8_t>[]> tags;
      std::unique_ptr<std::atomic<std::uint32_t>[]> slots;
    };

    explicit hash_table(const node_slab& nodes) noexcept : nodes_(nodes) {}
    hash_table(const hash_table&) = delete;
    hash_table& operator=(const hash_table&) = delete;

    std::size_t size() const noexcept { return count_; }
    std::size_t capacity() const noexcept { return a_ ? a_->mask + 1 : 0; }

    // Under the shard's lock.
    node* find(const K& key, std::uint32_t h, const KeyEqual& eq) const {
      if (count_ == 0) return nullptr;
      const std::uint8_t tag = tag_of(h);
      for (std::size_t i = h & a_->mask;; i = (i + 1) & a_->mask) {
        const std::uint8_t t = a_->tags[i].load(std::memory_order_relaxed);
        if (t == 0) return nullptr;
        if (t != tag) continue;
        node* n = slot(i);
        if (eq(n->key, key)) return n;
      }
    }
    // Without the lock, by a reader registered with the shard's gate. It may miss an entry that a
    // concurrent erase is shifting back (the caller then asks again under the lock), and may
    // return a node that a writer has just removed (still readable: it is not freed yet). The
    // array and slot loads are sequentially consistent: see shard::reclaim().
    node* find_concurrent(const K& key, std::uint32_t h, const KeyEqual& eq) const {
      const arrays* a = published_.load(std::memory_order_seq_cst);
      if (a == nullptr) return nullptr;
      const std::uint8_t tag = tag_of(h);
      for (std::size_t i = h & a->mask, probes = 0; probes <= a->mask;
           ++probes, i = (i + 1) & a->mask) {
        const std::uint8_t t = a->tags[i].load(std::memory_order_acquire);
        if (t == 0) return nullptr;
        if (t != tag) continue;
        const std::uint32_t index = a->slots[i].load(std::memory_order_seq_cst);
        if (index == kNone) continue;
        node* n = nodes_.at_concurrent(index);
        if (n->hash == h && eq(n->key, key)) return n;
      }
      return nullptr;
    }
    // Makes room for one more entry (call before allocating it, so that a failure leaks nothing).
    void reserve_one() {
      if ((count_ + 1) * 4 > capacity() * 3) rehash(std::max<std::size_t>(16, 2 * capacity()));
    }
    // Adds n (its key absent); reserve_one() first.
    void insert(const node* n) noexcept {
      place(*a_, n);
      ++count_;
    }
    // Puts n where old is (the same key).
    void replace(const node* old, const node* n) noexcept {
      a_->slots[slot_of(old)].store(n->self, std::memory_order_release);
    }
    void erase(const node* n) noexcept {
      arrays& a = *a_;
      std::size_t i = slot_of(n);
      for (std::size_t j = (i + 1) & a.mask; tag(j) != 0; j = (j + 1) & a.mask) {
        const std::size_t home = slot(j)->hash & a.mask;
        // The entry at j stays if its home lies cyclically in (i, j].
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        a.slots[i].store(index(j), std::memory_order_release);
        a.tags[i].store(tag(j), std::memory_order_release);
        i = j;
      }
      a.tags[i].store(0, std::memory_order_release);
      a.slots[i].store(kNone, std::memory_order_release);
      --count_;
    }
    // Gives the arrays back once most entries are gone (the table never shrinks by itself).
    void compact() {
      if (capacity() > 64 && count_ * 8 < capacity()) {
        rehash(std::max<std::size_t>(16, std::bit_ceil(count_ * 4 / 3 + 1)));
      }
    }
    // The arrays replaced by rehashes, which lock-free readers may still be probing.
    std::vector<std::unique_ptr<arrays>>& old() noexcept { return old_; }

   private:
    static std::uint8_t tag_of(std::uint32_t h) noexcept {
      return static_cast<std::uint8_t>(0x80 | (h >> 25));
    }
    std::uint8_t tag(std::size_t i) const noexcept {
      return a_->tags[i].load(std::memory_order_relaxed);
    }
    std::uint32_t index(std::size_t i) const noexcept {
      return a_->slots[i].load(std::memory_order_relaxed);
    }
    node* slot(std::size_t i) const noexcept { return nodes_.at(index(i)); }
    std::size_t slot_of(const node* n) const noexcept {
      std::size_t i = n->hash & a_->mask;
      while (tag(i) == 0 || index(i) != n->self) i = (i + 1) & a_->mask;
      return i;
    }
    // The slot before the tag: a reader that sees the tag sees the node.
    static void place(arrays& a, const node* n) noexcept {
      std::size_t i = n->hash & a.mask;
      while (a.tags[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & a.mask;
      a.slots[i].store(n->self, std::memory_order_release);
      a.tags[i].store(tag_of(n->hash), std::memory_order_release);
    }
    void rehash(std::size_t cap) {
      auto fresh = std::make_unique<arrays>(cap);
      for (std::size_t i = 0; i < capacity(); ++i) {
        if (tag(i) != 0) place(*fresh, slot(i));
      }
      if (a_) old_.push_back(std::move(a_));
      a_ = std::move(fresh);
      published_.store(a_.get(), std::memory_order_release);
    }

    const node_slab& nodes_;
    std::unique_ptr<arrays> a_;
    std::atomic<const arrays*> published_{nullptr};  // a_, for lock-free readers
    std::vector<std::unique_ptr<arrays>> old_;
    std::size_t count_ = 0;
  };

 public:
  // The bytes charged per entry on top of the weigher's answer, an upper estimate of what the
  // cache itself holds per entry: the node (key, value, the entry's links; in the slab, which has
  // no header per node and writes a chunk's nodes only as it hands them out) and its deadline
  // beside it; up to 8/3 table slots of a 32-bit index and a tag byte each (the table is at most
  // 3/4 full, and at least 3/8 after growing; it does not shrink by itself); a slot of the
  // deadline heap and its write deadline (kept only with expire_after_access); and a word of the
  // frequency sketch (which a byte-bounded shard sizes by its entries). Retired nodes that readers
  // may still hold are not counted: they are freed as soon as those readers leave.
  static constexpr std::size_t entry_overhead =
      sizeof(node) + sizeof(std::int64_t) + (8 * (sizeof(std::uint32_t) + 1) + 2) / 3 +
      sizeof(std::uint32_t) + sizeof(std::int64_t) + sizeof(std::uint64_t);

 private:
  struct notice {
    K key;
    V value;
    removal_cause cause;
  };
  using notices = std::vector<notice>;

  // An intrusive doubly linked list of slab indices: front is the least recently used.
  struct list {
    std::uint32_t head = kNone;
    std::uint32_t tail = kNone;
    std::size_t weight = 0;  // in region units (entries or bytes)

    void push_back(const node_slab& s, node* n, std::size_t w) noexcept {
      n->prev = tail;
      n->next = kNone;
      (tail != kNone ? s.at(tail)->next : head) = n->self;
      tail = n->self;
      weight += w;
    }
    void unlink(const node_slab& s, node* n, std::size_t w) noexcept {
      (n->prev != kNone ? s.at(n->prev)->next : head) = n->next;
      (n->next != kNone ? s.at(n->next)->prev : tail) = n->prev;
      n->prev = n->next = kNone;
      weight -= w;
    }
  };

  struct counters {
    std::uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0, loads = 0;
    std::uint64_t notices_lost = 0;
  };

  // The read gate's words (see "Concurrent reads"): the low 24 bits count the readers in flight,
  // the bits above count their hits since the shard last folded them into its counters.
  static constexpr std::uint64_t kHit = std::uint64_t{1} << 24;
  static constexpr std::uint64_t kInFlight = kHit - 1;
  static constexpr std::size_t kReadSlots = 32;  // slots of a stripe's read buffer (2^k)

  // One stripe of a shard's read gate and read buffer, on cache lines of its own.
  struct alignas(64) read_stripe {
    std::atomic<std::uint64_t> gate[2] = {};    // readers in flight (by epoch parity) and hits
    std::atomic<node*> reads[kReadSlots] = {};  // the lossy read buffer
  };

  // The removed nodes and replaced table arrays of one generation, waiting to be freed.
  struct graveyard {
    std::uint32_t nodes = kNone;  // linked by next
    std::vector<std::unique_ptr<typename hash_table::arrays>> arrays;
    std::vector<std::unique_ptr<typename node_slab::table>> tables;

    bool empty() const noexcept { return nodes == kNone && arrays.empty() && tables.empty(); }
    // Ends the nodes' entries and gives the nodes back to the slab.
    void free(node_slab& slab) noexcept {
      while (nodes != kNone) {
        node* n = slab.at(nodes);
        nodes = n->next;
        node_slab::destroy_entry(n);
        slab.free(n);
      }
      arrays.clear();
      tables.clear();
    }
  };

  struct shard {
    const cache* owner = nullptr;
    mutable cache_detail::shard_mutex mu;
    node_slab slab;  // the nodes: ends the entries still there when the shard goes
    hash_table table{slab};
    std::unordered_map<K, std::shared_future<V>, Hash, KeyEqual> loading;
    list window, probation, protect;
    // Min-heap of the slab indices of entries with a deadline, by deadline (read in the slab).
    std::vector<std::uint32_t> heap;
    // With expire_after_access only: each heap slot's write deadline (write time + write ttl, what
    // an access cannot move past), kept beside the heap rather than in the node so that an entry
    // without a deadline, or a cache without expire_after_access, does not pay for it.
    std::vector<std::int64_t> written;
    cache_detail::frequency_sketch sketch;
    std::size_t max_entries = 0, max_bytes = 0;   // this shard's share; 0 = unbounded
    std::size_t window_max = 0, protect_max = 0;  // in region units
    std::size_t capacity = 0;                     // in region units; 0 = unbounded
    // Hill climbing (adaptive window): requests in the current sample, the previous sample's hit
    // ratio and the next step (in region units, signed; starts by shrinking, as Caffeine does).
    std::size_t sample_hits = 0, sample_misses = 0, sample_size = 0;
    double previous_hit_ratio = 0, step = 0;
    bool by_bytes = false;  // region units are bytes (else entries)
    std::size_t bytes = 0;
    std::uint64_t rng = 0x9e3779b97f4a7c15ull;
    counters stats;
    // Removed under the lock since the last epoch flip, and removed before it (waiting for the
    // readers of the previous epoch to leave).
    graveyard retired, waiting;

    // Touched by lock-free readers, on cache lines of their own.
    alignas(64) std::atomic<std::uint64_t> epoch{0};
    read_stripe stripes[cache_detail::kReadStripes];

    shard() = default;
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    node* ptr(std::uint32_t i) const noexcept { return i == kNone ? nullptr : slab.at(i); }
    std::size_t units(const node* n) const noexcept { return by_bytes ? n->weight : 1; }
    list& list_of(region r) noexcept {
      return r == region::window ? window : r == region::probation ? probation : protect;
    }
    // Moves n (of u units) to the most recent end of region `to`'s queue, which may be its own.
    void move_to(node* n, region to, std::size_t u) noexcept {
      list& from = list_of(n->where);
      if (n->where == to && from.tail == n->self) return;  // already the most recent (a hot key)
      from.unlink(slab, n, u);
      list_of(to).push_back(slab, n, u);
      n->where = to;
      n->referenced = 0;
    }
    bool over() const noexcept {
      return (max_entries != 0 && table.size() > max_entries) ||
             (max_bytes != 0 && bytes > max_bytes);
    }

    // --- concurrent reads ---

    // A hit without the lock: copies the value of key's live entry into out and records the
    // access in the read buffer. False when the key was not found or its entry has expired (the
    // caller asks again under the lock, which counts the miss or removes the expired entry).
    bool try_get(const K& key, std::uint32_t h, std::optional<V>& out) {
      read_stripe& mine = own_stripe();
      std::uint64_t e = 0, ticket = 0;
      for (;;) {  // enter the current epoch's gate (re-checked: see reclaim())
        e = epoch.load(std::memory_order_seq_cst);
        ticket = mine.gate[e & 1].fetch_add(1, std::memory_order_seq_cst);
        if (epoch.load(std::memory_order_seq_cst) == e) break;
        mine.gate[e & 1].fetch_sub(1, std::memory_order_release);
      }
      struct leave {
        std::atomic<std::uint64_t>& word;
        bool hit = false;
        ~leave() { word.fetch_add(hit ? kHit - 1 : ~std::uint64_t{0}, std::memory_order_release); }
      } guard{mine.gate[e & 1]};
      node* n = table.find_concurrent(key, h, owner->eq_);
      if (n == nullptr) return false;
      const std::int64_t expires = slab.expires_concurrent(n->self);
      if (expires != cache_detail::kNever && expires <= owner->now()) return false;
      out.emplace(n->value);
      // The slot: the hits and readers counted in the stripe before this one, so that a lone
      // reader fills its stripe's buffer in order and concurrent ones mostly pick different slots
      // (a clash loses a record, as a full buffer does: the buffer is lossy, as Caffeine's is).
      const std::size_t slot = ((ticket >> 24) + (ticket & kInFlight)) & (kReadSlots - 1);
      mine.reads[slot].store(n, std::memory_order_release);
      guard.hit = true;
      return slot == kReadSlots - 1;  // true: a hit, and the stripe's buffer is due for replay
    }

    // The calling thread's stripe of the read gate and buffer.
    read_stripe& own_stripe() noexcept { return stripes[cache_detail::read_stripe()]; }

    // Replays the read buffer (under the lock): every stripe (drain()) or one, a reader's own
    // (drain(stripe); see "Concurrent reads"). Each recorded access of a live entry counts in
    // the sketch and reorders the queues, as a locked hit does; the gate's hit counts move to
    // the shard's counters. A stripe whose words count no hit since the last fold holds no
    // record to replay and is skipped: a reader stores its record before the release that
    // counts its hit, and the fold reads the words (acquire) before the slots, so a record is
    // either seen by the drain that folds its hit or still counted for the next one.
    // A slot is read and then cleared without an atomic exchange: a record stored in between is
    // lost (the buffer is lossy), but no record of a node can outlive a drain that follows the
    // exit of every reader that could have stored it, which is what reclaim() needs. The
    // sketch's counters and the queue neighbours are fetched for all records first.
    void drain() noexcept { replay(stripes, cache_detail::kReadStripes); }
    void drain(read_stripe& stripe) noexcept { replay(&stripe, 1); }
    void replay(read_stripe* first, std::size_t count_of_stripes) noexcept {
      node* batch[kReadSlots * cache_detail::kReadStripes];
      std::size_t count = 0;
      for (read_stripe& stripe : std::span(first, count_of_stripes)) {
        std::uint64_t stripe_hits = 0;
        for (auto& word : stripe.gate) {
          const std::uint64_t hits = word.load(std::memory_order_acquire) >> 24;
          if (hits == 0) continue;
          word.fetch_sub(hits << 24, std::memory_order_relaxed);
          stripe_hits += hits;
        }
        if (stripe_hits == 0) continue;
        stats.hits += stripe_hits;
        sample_hits += stripe_hits;
        for (auto& slot : stripe.reads) {
          node* n = slot.load(std::memory_order_acquire);
          if (n == nullptr) continue;
          slot.store(nullptr, std::memory_order_relaxed);
          if (n->state != kLive) continue;
          sketch.prefetch(n->hash);
          if (n->prev != kNone) prefetch_detail::prefetch_write(slab.at(n->prev));
          if (n->next != kNone) prefetch_detail::prefetch_write(slab.at(n->next));
          batch[count++] = n;
        }
      }
      for (std::size_t i = 0; i < count; ++i) {
        sketch.increment(batch[i]->hash);
        on_access(batch[i]);
      }
    }

    // Hits counted by the gate and not folded yet (under the lock).
    std::uint64_t unfolded_hits() const noexcept {
      std::uint64_t hits = 0;
      for (const auto& stripe : stripes)
        for (const auto& word : stripe.gate) hits += word.load(std::memory_order_relaxed) >> 24;
      return hits;
    }

    // Frees what was removed once no reader can hold it (under the lock; see "Concurrent reads").
    void reclaim() noexcept {
      if (!waiting.empty()) {
        if (!previous_epoch_left()) return;
        drain();  // the buffer may hold the waiting nodes
        waiting.free(slab);
      }
      retire_all(table.old(), retired.arrays);
      retire_all(slab.old_tables(), retired.tables);
      if (retired.empty()) return;
      std::swap(waiting, retired);
      epoch.store(epoch.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
      if (!previous_epoch_left()) return;
      drain();
      waiting.free(slab);
    }
    // Moves replaced arrays into a graveyard; out of memory, they stay where they are (alive, as
    // readers may need) until a later reclaim() finds room.
    template <class T>
    static void retire_all(std::vector<T>& from, std::vector<T>& to) noexcept {
      if (from.empty()) return;
      if (to.empty()) {
        to.swap(from);
        return;
      }
      try {
        to.reserve(to.size() + from.size());
      } catch (...) {
        return;
      }
      for (T& x : from) to.push_back(std::move(x));
      from.clear();
    }
    // Whether every reader that entered before the last epoch flip has left. An atomic
    // read-modify-write, not a load: a reader whose increment of the counter comes after it in
    // the counter's order reads from it (read-modify-writes continue its release sequence), so
    // everything this thread did before, the removals and the flip, happens before that reader's
    // probe, and it cannot find what the waiting graveyard holds. Readers that incremented before
    // it are counted.
    bool previous_epoch_left() noexcept {
      const std::uint64_t previous = (epoch.load(std::memory_order_relaxed) - 1) & 1;
      for (auto& stripe : stripes)
        if ((stripe.gate[previous].fetch_add(0, std::memory_order_seq_cst) & kInFlight) != 0)
          return false;
      return true;
    }

    // Finds a live entry and records the access; removes an expired one. Counts hit or miss.
    // t may be cache_detail::kUnread (see read_time()): the clock is read here, under the lock,
    // only if the entry has a deadline.
    node* lookup(const K& key, std::uint32_t h, std::int64_t& t, notices& pending) {
      drain();
      node* n = table.find(key, h, owner->eq_);
      if (n == nullptr) {
        ++stats.misses;
        return nullptr;
      }
      const std::int64_t expires = expires_of(n);
      t = owner->time_for(expires, t);
      if (expires <= t) {
        remove(n, removal_cause::expired, pending);
        ++stats.misses;
        reclaim();
        return nullptr;
      }
      ++stats.hits;
      ++sample_hits;
      sketch.increment(n->hash);
      on_access(n);
      if (owner->access_ttl_ > 0) {
        const std::int64_t w = written_at(n->heap_index);
        set_deadline(n, std::min(w, cache_detail::deadline(t, owner->access_ttl_)), w);
      }
      return n;
    }

    // Moves an accessed entry to the most recent end of its queue (promoting from probation); a
    // protected entry is only marked (the protected part is a CLOCK: see demote_protected()).
    void on_access(node* n) {
      if (n->where == region::protect) {
        if (n->referenced == 0) n->referenced = 1;  // no store when already marked
      } else if (n->where == region::probation) {
        move_to(n, region::protect, units(n));
        demote_protected();
      } else {
        move_to(n, n->where, units(n));
      }
    }

    // Demotes protected entries from the head to probation until the part fits; a referenced one
    // gets a second chance instead (unmarked and moved to the tail), up to kSecondChances per call:
    // past that the head is demoted marked or not, so a write does bounded work even when every
    // protected entry has been hit since the last pass.
    static constexpr unsigned kSecondChances = 16;
    void demote_protected() {
      unsigned chances = 0;
      while (protect.weight > protect_max && protect.head != kNone) {
        node* d = slab.at(protect.head);
        if (d->referenced != 0 && chances < kSecondChances) {
          ++chances;
          d->referenced = 0;
          move_to(d, region::protect, units(d));
          continue;
        }
        move_to(d, region::probation, units(d));
      }
    }

    // ttl: 0 = the options' expire_after_write, > 0 = this entry's, < 0 = expired already. t may
    // be cache_detail::kUnread when neither the options nor ttl give the entry a deadline.
    void insert(K&& key, std::uint32_t h, V&& value, std::int64_t ttl, std::int64_t t,
                notices& pending) {
      drain();
      if (t == cache_detail::kUnread && !heap.empty()) t = owner->now();
      expire(t, pending);
      if (ttl < 0) {  // expired from the start: it replaces the old value and is gone at once
        if (node* old = table.find(key, h, owner->eq_))
          remove(old, removal_cause::replaced, pending);
        ++stats.expirations;
        queue_notice(pending, std::move(key), std::move(value), removal_cause::expired);
        reclaim();
        return;
      }
      std::size_t weight = entry_overhead;
      if (owner->opts_.weigher) weight += owner->opts_.weigher(key, value);
      weight = std::min<std::size_t>(weight, std::numeric_limits<std::uint32_t>::max());
      const std::int64_t write_ttl = ttl > 0 ? ttl : owner->write_ttl_;
      const std::int64_t write_deadline = cache_detail::deadline(t, write_ttl);
      const std::int64_t deadline =
          std::min(write_deadline, cache_detail::deadline(t, owner->access_ttl_));
      node* old = table.find(key, h, owner->eq_);
      if (old == nullptr) {
        if (sketch.capacity() < table.size() + 1 && max_entries == 0) {
          sketch.ensure_capacity(2 * (table.size() + 1));
        }
        table.reserve_one();
      }
      if (deadline != cache_detail::kNever) {
        slab.enable_deadlines();
        if (old == nullptr || old->heap_index == npos) reserve_heap_slot();
      }
      // The listener's copy of a replaced entry, made while nothing has changed yet; taken back
      // if the new entry cannot be built.
      const bool notify = old != nullptr && owner->opts_.removal_listener;
      if (notify) pending.push_back(notice{old->key, old->value, removal_cause::replaced});
      // A new node even for a key already present: lock-free readers may be copying the old
      // value, so it is not assigned in place; the old node is retired instead. Every step that
      // can throw is above this point or undone in place: from here on nothing fails.
      node* n = nullptr;
      try {
        n = slab.allocate();
        std::construct_at(&n->key, std::move(key));
      } catch (...) {
        if (n != nullptr) slab.free(n);
        if (notify) pending.pop_back();
        throw;
      }
      try {
        std::construct_at(&n->value, std::move(value));
      } catch (...) {
        std::destroy_at(&n->key);
        slab.free(n);
        if (notify) pending.pop_back();
        throw;
      }
      n->state = kLive;
      n->hash = h;
      n->weight = static_cast<std::uint32_t>(weight);
      slab.set_expires(n->self, deadline);  // before the table publishes n
      if (old != nullptr) {
        list& l = list_of(old->where);
        l.unlink(slab, old, units(old));
        n->where = old->where;
        l.push_back(slab, n, units(n));
        bytes = bytes - old->weight + n->weight;
        if (old->heap_index != npos) {
          n->heap_index = old->heap_index;
          heap[n->heap_index] = n->self;
          old->heap_index = npos;
        }
        table.replace(old, n);
        retire(old);
        on_access(n);
      } else {
        n->where = region::window;
        table.insert(n);
        bytes += n->weight;
        window.push_back(slab, n, units(n));
        ++sample_misses;
      }
      sketch.increment(h);
      set_deadline(n, deadline, write_deadline);
      evict(pending);
      reclaim();
    }

    // Unlinks n from everything and retires it (handing copies of key and value to the listener:
    // a lock-free reader may still be reading them).
    void remove(node* n, removal_cause cause, notices& pending) noexcept {
      queue_notice(pending, n->key, n->value, cause);
      list_of(n->where).unlink(slab, n, units(n));
      if (n->heap_index != npos) heap_erase(n->heap_index);
      bytes -= n->weight;
      if (cause == removal_cause::size) ++stats.evictions;
      if (cause == removal_cause::expired) ++stats.expirations;
      table.erase(n);
      retire(n);
    }
    // Queues the listener's notice of a removal (copying or moving the key and value into it). With
    // no memory for it the removal goes on all the same, untold, and counts in notices_lost (see
    // "Out of memory").
    template <class KeyArg, class ValueArg>
    void queue_notice(notices& pending, KeyArg&& key, ValueArg&& value,
                      removal_cause cause) noexcept {
      if (!owner->opts_.removal_listener) return;
      try {
        pending.push_back(notice{std::forward<KeyArg>(key), std::forward<ValueArg>(value), cause});
      } catch (...) {
        ++stats.notices_lost;
      }
    }
    // n is out of the table: its entry is ended and its node reused once no reader can hold it
    // (reclaim()).
    void retire(node* n) noexcept {
      n->state = kRetired;
      n->next = retired.nodes;
      retired.nodes = n->self;
    }

    void expire(std::int64_t t, notices& pending) {
      while (!heap.empty() && slab.expires(heap.front()) <= t) {
        remove(slab.at(heap.front()), removal_cause::expired, pending);
      }
    }

    // Gives back the hash table's buckets and the heap's slots once most entries are gone (the
    // table never shrinks by itself), and the slab's trailing chunks once no node in them is in
    // use. Cost: a pass over what is left, only when it is small.
    void compact() {
      table.compact();
      if (heap.capacity() > 64 && heap.size() * 4 < heap.capacity()) {
        heap.shrink_to_fit();
        written.shrink_to_fit();
      }
      slab.release_empty();
    }

    void evict(notices& pending) {
      if (owner->opts_.policy == eviction::lru) {
        while (over() && window.head != kNone) {
          remove(slab.at(window.head), removal_cause::size, pending);
        }
        return;
      }
      if (owner->opts_.adaptive_window && capacity != 0) climb();
      demote_protected();  // a replaced value may have made a protected entry heavier
      // The window's overflow moves to probation: these are the candidates for admission.
      node* candidate = nullptr;
      std::size_t candidates = 0;
      while (window.weight > window_max && window.head != kNone) {
        node* n = slab.at(window.head);
        move_to(n, region::probation, units(n));
        if (candidate == nullptr) candidate = n;
        ++candidates;
      }
      while (over()) {
        if (candidates == 0) {
          node* v = ptr(probation.head != kNone ? probation.head
                        : protect.head != kNone ? protect.head
                                                : window.head);
          if (v == nullptr) break;
          remove(v, removal_cause::size, pending);
          continue;
        }
        node* victim = ptr(probation.head);
        if (victim == candidate) victim = ptr(protect.head);  // probation holds only candidates
        bool evict_candidate = true;
        if (victim != nullptr && !(max_bytes != 0 && candidate->weight > max_bytes)) {
          evict_candidate = !admit(candidate->hash, victim->hash);
        }
        if (evict_candidate) {
          node* next = ptr(candidate->next);
          remove(candidate, removal_cause::size, pending);
          candidate = --candidates == 0 ? nullptr : next;
        } else {
          remove(victim, removal_cause::size, pending);
        }
      }
    }

    // Caffeine's hill climber: after each sample of 10 requests per entry of capacity (at least
    // 5,000, where Caffeine has no floor: a small cache's samples were mostly noise), keep moving
    // the window size in the direction that raised the hit ratio (or turn back if it fell), with a
    // step that decays by 2% per sample and restarts at 6.25% of capacity when the ratio changes
    // by 5 points or more. Growing the window takes its room from the protected part.
    void climb() {
      const std::size_t requests = sample_hits + sample_misses;
      // In bytes, the capacity says little about the entry count: sample by entries held.
      if (requests < (by_bytes ? std::max<std::size_t>(10 * table.size(), 5000) : sample_size))
        return;
      const double ratio = static_cast<double>(sample_hits) / static_cast<double>(requests);
      const double change = ratio - previous_hit_ratio;
      sample_hits = sample_misses = 0;
      // An unchanged ratio (a scan, say: no hits at all) says nothing about which way helps, and
      // moving on blindly would walk the window to one end: hold still.
      if (std::abs(change) < 1e-9) return;
      const double amount = change >= 0 ? step : -step;
      const double restart = 0.0625 * static_cast<double>(capacity);
      step = std::abs(change) >= 0.05 ? (amount >= 0 ? restart : -restart) : 0.98 * amount;
      previous_hit_ratio = ratio;
      const auto adjust = static_cast<std::int64_t>(amount);
      if (adjust > 0) grow_window(static_cast<std::size_t>(adjust));
      if (adjust < 0) shrink_window(static_cast<std::size_t>(-adjust));
    }

    void grow_window(std::size_t quota) {
      quota = std::min(quota, protect_max);
      protect_max -= quota;
      window_max += quota;
      demote_protected();
      while (true) {
        node* n = ptr(probation.head);
        if (n == nullptr || units(n) > quota) n = ptr(protect.head);
        if (n == nullptr || units(n) > quota) break;
        const std::size_t u = units(n);
        quota -= u;
        move_to(n, region::window, u);
      }
      protect_max += quota;  // give back what could not move
      window_max -= quota;
    }

    void shrink_window(std::size_t quota) {
      if (window_max <= 1) return;
      quota = std::min(quota, window_max - 1);
      protect_max += quota;
      window_max -= quota;
      while (window.head != kNone && units(slab.at(window.head)) <= quota) {
        node* n = slab.at(window.head);
        const std::size_t u = units(n);
        quota -= u;
        move_to(n, region::probation, u);
      }
      protect_max -= quota;
      window_max += quota;
    }

    bool admit(std::uint64_t candidate, std::uint64_t victim) noexcept {
      const unsigned cf = sketch.frequency(candidate);
      const unsigned vf = sketch.frequency(victim);
      if (cf > vf) return true;
      if (cf >= 6) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (rng & 127) == 0;
      }
      return false;
    }

    // --- the deadline heap ---
    std::int64_t expires_of(const node* n) const noexcept { return slab.expires(n->self); }
    void set_deadline(node* n, std::int64_t deadline, std::int64_t write_deadline) {
      slab.set_expires(n->self, deadline);
      if (deadline == cache_detail::kNever) {
        if (n->heap_index != npos) heap_erase(n->heap_index);
        return;
      }
      if (n->heap_index == npos) {
        heap.push_back(n->self);
        if (tracks_written()) written.push_back(write_deadline);
        n->heap_index = static_cast<std::uint32_t>(heap.size() - 1) & npos;
      } else if (tracks_written()) {
        written[n->heap_index] = write_deadline;
      }
      heap_fix(n->heap_index);
    }
    bool tracks_written() const noexcept { return owner->access_ttl_ > 0; }
    // Room for one more heap slot and its write deadline, taken before an entry is published, so
    // that set_deadline() cannot run out of memory halfway (a node in the table but not in the
    // heap would never be expired by cleanup()).
    void reserve_heap_slot() {
      if (heap.size() == heap.capacity()) heap.reserve(2 * heap.size() + 16);
      if (tracks_written() && written.size() == written.capacity()) {
        written.reserve(2 * written.size() + 16);
      }
    }
    // The write deadline of heap slot i (npos: none).
    std::int64_t written_at(std::size_t i) const noexcept {
      return i == npos || !tracks_written() ? cache_detail::kNever : written[i];
    }
    void heap_place(std::size_t i, std::uint32_t index, std::int64_t w) noexcept {
      heap[i] = index;
      if (tracks_written()) written[i] = w;
      slab.at(index)->heap_index = static_cast<std::uint32_t>(i) & npos;
    }
    void heap_fix(std::size_t i) noexcept {
      const std::uint32_t d = heap[i];
      const std::int64_t expires = slab.expires(d);
      const std::int64_t w = written_at(i);
      while (i > 0 && slab.expires(heap[(i - 1) / 2]) > expires) {
        heap_place(i, heap[(i - 1) / 2], written_at((i - 1) / 2));
        i = (i - 1) / 2;
      }
      for (;;) {
        std::size_t c = 2 * i + 1;
        if (c >= heap.size()) break;
        std::int64_t child = slab.expires(heap[c]);
        if (c + 1 < heap.size()) {
          const std::int64_t right = slab.expires(heap[c + 1]);
          if (right < child) {
            ++c;
            child = right;
          }
        }
        if (child >= expires) break;
        heap_place(i, heap[c], written_at(c));
        i = c;
      }
      heap_place(i, d, w);
    }
    void heap_erase(std::size_t i) noexcept {
      node* gone = slab.at(heap[i]);
      const std::uint32_t last = heap.back();
      const std::int64_t last_w = written_at(heap.size() - 1);
      heap.pop_back();
      if (tracks_written()) written.pop_back();
      gone->heap_index = npos;
      if (last != gone->self) {
        heap_place(i, last, last_w);
        heap_fix(i);
      }
    }
  };

  void init() {
    write_ttl_ = opts_.expire_after_write.count();
    access_ttl_ = opts_.expire_after_access.count();
    std::size_t n = opts_.shards;
    if (n == 0) {
      const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
      n = std::min<std::size_t>(64, std::bit_ceil(4 * hw));
      while (n > 1 && ((opts_.max_entries != 0 && opts_.max_entries / n < 128) ||
                       (opts_.max_bytes != 0 && opts_.max_bytes / n < 65536))) {
        n /= 2;
      }
    }
    n = std::bit_ceil(std::max<std::size_t>(n, 1));
    shard_shift_ = n == 1 ? 64 : 64 - static_cast<unsigned>(std::countr_zero(n));
    for (std::size_t i = 0; i < n; ++i) {
      auto s = std::make_unique<shard>();
      s->owner = this;
      s->max_entries = share(opts_.max_entries, n, i);
      s->max_bytes = share(opts_.max_bytes, n, i);
      s->by_bytes = s->max_entries == 0 && s->max_bytes != 0;
      const std::size_t cap = s->by_bytes ? s->max_bytes : s->max_entries;
      s->capacity = opts_.policy == eviction::lru ? 0 : cap;
      // At least 5,000 requests a sample, so that a sample's hit ratio is within about 1.4 points
      // of the truth (2 sigma) and noise does not steer a small cache's climber.
      s->sample_size = std::max<std::size_t>(10 * cap, 5000);
      s->step = -0.0625 * static_cast<double>(cap);
      if (cap == 0 || opts_.policy == eviction::lru) {
        s->window_max = std::numeric_limits<std::size_t>::max();
        s->protect_max = 0;
      } else {
        s->window_max = cap - static_cast<std::size_t>(static_cast<double>(cap) * 0.99);
        s->protect_max = static_cast<std::size_t>(static_cast<double>(cap - s->window_max) * 0.8);
      }
      s->sketch.ensure_capacity(s->max_entries != 0 ? s->max_entries : 64);
      s->rng ^= static_cast<std::uint64_t>(i) * 0x2545f4914f6cdd1dull;
      shards_.push_back(std::move(s));
    }
    if (!opts_.name.empty()) metrics_ = metrics_registration(&cache::collect_metrics, this);
    if (opts_.cleanup_interval.count() > 0) {
      cleaner_ = std::jthread([this](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        while (!stop.stop_requested()) {
          cv.wait_for(lock, stop, opts_.cleanup_interval, [] { return false; });
          if (stop.stop_requested()) break;
          try {
            cleanup();
          } catch (...) {  // out of memory (compacting): the next interval tries again
          }
        }
      });
    }
  }

  // Shard i's share of a bound: the shares add up to the bound; 0 stays 0 (unbounded).
  static std::size_t share(std::size_t bound, std::size_t n, std::size_t i) {
    if (bound == 0) return 0;
    const std::size_t s = bound / n + (i < bound % n ? 1 : 0);
    return std::max<std::size_t>(s, 1);
  }

  shard& shard_for(std::uint64_t h) noexcept {
    return *shards_[shard_shift_ >= 64 ? 0 : static_cast<std::size_t>(h >> shard_shift_)];
  }

  // The key's hash, mixed again so that the top bits (the shard) and the sketch's rows are well
  // spread even for a Hash that is the identity, as std::hash<int> is.
  // Its low half picks the slot in the shard's table and the sketch's counters (the shard is
  // picked by the top bits).
  static std::uint32_t low(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h); }
  std::uint64_t hash_of(const K& key) const {
    return hash_detail::mix(static_cast<std::uint64_t>(hash_(key)), 0x6a09e667f3bcc909ull);
  }

  std::int64_t now() const {
    if (opts_.clock) return opts_.clock().count();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // A hit without the shard's lock (see "Concurrent reads"); false: ask again under the lock.
  // A cache with expire_after_access always reads under the lock (a read moves the deadline).
  bool try_get(shard& s, const K& key, std::uint32_t h, std::optional<V>& out) {
    if (access_ttl_ > 0) return false;
    if (s.try_get(key, h, out)) {  // a hit that filled the read buffer: replay it if idle
      std::unique_lock lock(s.mu, std::try_to_lock);
      if (lock.owns_lock()) {
        s.drain(s.own_stripe());
        s.reclaim();
      }
    }
    return out.has_value();
  }

  // The time for a read: now() when the options make every entry expire, else kUnread, and
  // lookup() reads the clock itself if the entry found has a deadline (a per-entry ttl). A read
  // of an entry without a deadline thus never calls the clock.
  std::int64_t read_time() const {
    return write_ttl_ > 0 || access_ttl_ > 0 ? now() : cache_detail::kUnread;
  }
  // t, or now() when t was left unread (read_time()) and an entry's deadline must be compared
  // with it.
  std::int64_t time_for(std::int64_t deadline, std::int64_t t) const {
    return deadline != cache_detail::kNever && t == cache_detail::kUnread ? now() : t;
  }

  void put_impl(K&& key, V&& value, std::int64_t ttl) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    // As for a read (read_time()): without expiry in the options or a ttl of its own, insert()
    // reads the clock only if the shard holds entries with a deadline, which it may have to expire.
    const std::int64_t t = ttl > 0 ? now() : read_time();
    notices pending;
    {
      std::lock_guard lock(s.mu);
      s.insert(std::move(key), low(h), std::move(value), ttl, t, pending);
    }
    notify(pending);
  }

  // Delivers and clears the notices gathered under a shard lock (call with no lock held).
  void notify(notices& pending) {
    for (notice& n : pending) opts_.removal_listener(n.key, n.value, n.cause);
    pending.clear();
  }

  options opts_;
  Hash hash_;
  KeyEqual eq_;
  std::int64_t write_ttl_ = 0;
  std::int64_t access_ttl_ = 0;
  unsigned shard_shift_ = 64;
  std::vector<std::unique_ptr<shard>> shards_;
  std::jthread cleaner_;  // stopped and joined before the shards go
  // A named cache's metrics on the debug server's /metrics (<leakless/metrics.hpp>; nothing without
  // libleakless.so). Last: unregistered, waiting for a scrape in progress, before anything goes.
  metrics_registration metrics_;

  static void collect_metrics(void* self, leakless_metrics_emit_fn emit_fn, void* emit_context) {
    const cache& c = *static_cast<const cache*>(self);
    const cache_stats s = c.stats();
    const metrics_emitter emit(emit_fn, emit_context);
    const std::initializer_list<metrics_emitter::label> label = {{"cache", c.opts_.name.c_str()}};
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    const std::uint64_t lookups = s.hits + s.misses;
    emit.gauge("leakless_cache_entries", "Entries held by the cache.", d(c.size()), label);
    emit.gauge("leakless_cache_bytes", "Weighed size of the cache's entries in bytes.", d(s.bytes),
               label);
    emit.counter("leakless_cache_hits_total", "Lookups that found their key.", d(s.hits), label);
    emit.counter("leakless_cache_misses_total", "Lookups that did not find their key.", d(s.misses),
                 label);
    emit.gauge("leakless_cache_hit_ratio", "Hits over lookups since the cache was created.",
               lookups == 0 ? 0.0 : d(s.hits) / d(lookups), label);
    emit.counter("leakless_cache_evictions_total", "Entries removed to keep within the bounds.",
                 d(s.evictions), label);
    emit.counter("leakless_cache_expirations_total", "Entries removed because they expired.",
                 d(s.expirations), label);
  }
};

}  // namespace leakless
