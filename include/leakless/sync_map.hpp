// leakless/sync_map.hpp — a concurrent map with Go's sync.Map design and semantics.
//
// WHAT IT IS FOR, AND WHAT NOT. sync_map is UNBOUNDED: nothing is ever evicted, so it only
// shrinks when you erase. Like Go's sync.Map it is tuned for keys that are written once and read
// many times (and for threads that write disjoint sets of keys) — i.e. exactly "the cache that
// only grows", the classic leak. For caching, use leakless::cache, which is bounded.
//
// Design (Go 1.19 src/sync/map.go, translated). Two maps of key -> shared entry:
//  - read_: an atomic pointer to an immutable snapshot {map, amended}. Loads, and stores to keys
//    already in it, run without the mutex: they find the key's entry in the snapshot and read or
//    compare-and-swap the entry's value pointer.
//  - dirty_: a mutable map under mu_, holding every live key (all of read_'s non-expunged
//    entries plus new keys). amended == true means dirty_ has keys that read_ lacks.
// A lookup that misses read_ while amended takes the mutex and counts a miss; once the misses
// reach dirty_'s size (the cost of the copy it saves), dirty_ is promoted to be the new read
// snapshot (a move, not a copy) and dirty_ becomes null. The next store of a new key rebuilds
// dirty_ from the snapshot, and entries deleted meanwhile (value nil) are marked "expunged"
// instead of being copied; an expunged entry must be un-expunged and put back into dirty_ under
// the mutex before it can take a value again, which keeps dirty_ a superset of the live keys.
//
// An entry's value is an atomic shared_ptr<const V> slot: empty = deleted, expunged = a
// shared_ptr with a null pointer but a (static, never used) control block, anything else = the
// value. Values are immutable once published; store() publishes a new one.
//
// Reclamation. Everything a reader without the mutex can reach is held by std::shared_ptr: the
// snapshot, the map inside it, its entries and their values. A reader takes its own reference
// with an atomic load, so a snapshot replaced by a promotion, an entry dropped from the maps or
// a value overwritten by store() is freed when the last thread that loaded it lets go: no
// epochs, no hazard pointers, no deferred garbage, at the price of reference-count traffic.
// The atomic slot (sync_map_detail::shared_slot) is a few-instruction spin lock around the
// shared_ptr copy, the same design as libstdc++'s std::atomic<std::shared_ptr> (see there for
// why we do not use that one); it is never held while waiting for anything else, and the map's
// mutex is never taken by a load of a key in the snapshot.
//
// Costs: load = two shared_ptr slot loads and a hash lookup; store of an existing read key =
// one compare-and-swap; a store of a new key takes the mutex and, the first time after a
// promotion, copies the snapshot's keys (amortised over the misses that caused the promotion).
// size() is O(1) from a counter (exact whenever no writer is running). Not copyable or movable.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "leakless/hash.hpp"

namespace leakless {

namespace sync_map_detail {

// A std::shared_ptr that many threads may load, store, exchange and compare-and-swap: a one-word
// spin lock around a plain shared_ptr, held only to copy or swap it (one reference-count update),
// never while allocating or running user code (replaced values die after the unlock).
// This is what libstdc++ does inside std::atomic<std::shared_ptr>, but GCC 12's load() releases
// its lock bit with relaxed ordering, so its read of the stored pointer is not ordered before the
// next writer's store (a data race by the standard's rules; ThreadSanitizer reports it). The
// lock is acquired with acquire and released with release ordering here, which also publishes
// the pointee to every later loader.
template <class T>
class shared_slot {
 public:
  explicit shared_slot(std::shared_ptr<T> p = {}) noexcept : p_(std::move(p)) {}
  shared_slot(const shared_slot&) = delete;
  shared_slot& operator=(const shared_slot&) = delete;

  std::shared_ptr<T> load() const noexcept {
    const guard g(locked_);
    return p_;
  }
  void store(std::shared_ptr<T> p) noexcept {
    const guard g(locked_);
    p_.swap(p);
  }  // the old value (now in p) is released here, after the unlock
  std::shared_ptr<T> exchange(std::shared_ptr<T> p) noexcept {
    {
      const guard g(locked_);
      p_.swap(p);
    }
    return p;
  }
  // If the slot holds expected (same pointer, same owner) it takes desired and returns true;
  // otherwise expected receives the current value and the result is false.
  bool compare_exchange(std::shared_ptr<T>& expected, std::shared_ptr<T> desired) noexcept {
    std::shared_ptr<T> old;  // declared before the guard: destroyed after the unlock
    const guard g(locked_);
    if (p_ == expected && !p_.owner_before(expected) && !expected.owner_before(p_)) {
      old = std::move(p_);
      p_ = std::move(desired);
      return true;
    }
    old = std::move(expected);
    expected = p_;
    return false;
  }

 private:
  class guard {
   public:
    explicit guard(std::atomic<bool>& lock) noexcept : lock_(lock) {
      while (lock_.exchange(true, std::memory_order_acquire)) {
        for (int spins = 0; lock_.load(std::memory_order_relaxed); ++spins) {
          if (spins >= 64) std::this_thread::yield();  // the holder was preempted
        }
      }
    }
    ~guard() { lock_.store(false, std::memory_order_release); }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

   private:
    std::atomic<bool>& lock_;
  };

  mutable std::atomic<bool> locked_{false};
  std::shared_ptr<T> p_;
};

}  // namespace sync_map_detail

template <class K, class V, class Hash = leakless::hash<K>, class KeyEqual = std::equal_to<K>>
class sync_map {
 public:
  using key_type = K;
  using mapped_type = V;

  sync_map() : read_(make_read(std::make_shared<const map_type>(), false)) {
    (void)expunged();  // allocate the marker here, not on first use inside a noexcept test
  }
  sync_map(const sync_map&) = delete;
  sync_map& operator=(const sync_map&) = delete;
  ~sync_map() = default;

  // The value stored for key, if any. Lock-free when the key is in the read snapshot.
  std::optional<V> load(const K& key) const {
    std::shared_ptr<const V> value = load_ptr(key);
    if (!value) return std::nullopt;
    return *value;
  }

  // Sets the value for key.
  void store(K key, V value) {
    value_ptr fresh = std::make_shared<const V>(std::move(value));
    read_ptr read = read_.load();
    if (const entry_ptr* e = find(*read, key); e != nullptr && (*e)->try_store(fresh, count_)) {
      return;
    }

    std::lock_guard<std::mutex> lock(mu_);
    read = read_.load();
    if (const entry_ptr* e = find(*read, key)) {
      unexpunge_locked(std::move(key), *e);
      (*e)->store_locked(std::move(fresh), count_);
    } else if (entry* d = find_dirty(key)) {
      d->store_locked(std::move(fresh), count_);
    } else {
      add_new_locked(*read, std::move(key), std::move(fresh));
    }
  }

  // Go's LoadOrStore: returns the existing value and true if key was present, otherwise stores
  // value and returns it with false. Every racer on one absent key gets the same value back.
  std::pair<V, bool> load_or_store(K key, V value) {
    value_ptr fresh;  // made from value at most once, on the first attempt to store it
    value_ptr actual;
    read_ptr read = read_.load();
    if (const entry_ptr* e = find(*read, key)) {
      const outcome got = (*e)->try_load_or_store(fresh, value, actual, count_);
      if (got != outcome::expunged) return {*actual, got == outcome::loaded};
    }

    std::lock_guard<std::mutex> lock(mu_);
    read = read_.load();
    if (const entry_ptr* e = find(*read, key)) {
      unexpunge_locked(std::move(key), *e);
      const outcome got = (*e)->try_load_or_store(fresh, value, actual, count_);
      return {*actual, got == outcome::loaded};
    }
    if (entry* d = find_dirty(key)) {
      const outcome got = d->try_load_or_store(fresh, value, actual, count_);
      miss_locked();
      return {*actual, got == outcome::loaded};
    }
    if (!fresh) fresh = std::make_shared<const V>(std::move(value));
    add_new_locked(*read, std::move(key), fresh);
    return {*fresh, false};
  }

  // Removes key and returns the value it had, if any.
  std::optional<V> load_and_delete(const K& key) {
    value_ptr old = take(key);
    if (!old) return std::nullopt;
    return *old;
  }

  // Removes key; true if it was present.
  bool erase(const K& key) { return take(key) != nullptr; }

  // Calls f(const K&, const V&) for each key and value present, until f returns false (f may
  // also return void). As in Go, this is not a consistent snapshot: each key is visited at most
  // once, and a key stored or deleted concurrently may or may not be seen. No lock is held while
  // f runs, so f may call this map. The first range after new keys were added promotes them.
  template <class F>
  void range(F&& f) {
    read_ptr read = read_.load();
    if (read->amended) {
      std::lock_guard<std::mutex> lock(mu_);
      read = read_.load();
      if (read->amended) {
        promote_locked();
        read = read_.load();
      }
    }
    for (const auto& [key, e] : *read->map) {
      const value_ptr value = e->load();
      if (!value) continue;
      if constexpr (std::is_void_v<std::invoke_result_t<F&, const K&, const V&>>) {
        f(key, *value);
      } else {
        if (!static_cast<bool>(f(key, *value))) break;
      }
    }
  }

  // Number of keys present. O(1), no lock; exact whenever no writer is running concurrently.
  std::size_t size() const noexcept {
    const std::ptrdiff_t n = count_.load(std::memory_order_acquire);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  using value_ptr = std::shared_ptr<const V>;
  using counter = std::atomic<std::ptrdiff_t>;
  enum class outcome { loaded, stored, expunged };

  // The "expunged" marker: null pointer, non-empty ownership, so it is told apart from an empty
  // shared_ptr (deleted) by owner comparison and by atomic<shared_ptr>'s compare-and-swap.
  static const value_ptr& expunged() {
    static const value_ptr marker(static_cast<const V*>(nullptr), [](const V*) {});
    return marker;
  }
  static bool is_expunged(const value_ptr& p) noexcept {
    return !p && !p.owner_before(expunged()) && !expunged().owner_before(p);
  }

  class entry {
   public:
    explicit entry(value_ptr value) : p_(std::move(value)) {}

    value_ptr load() const {
      value_ptr p = p_.load();
      return p ? p : value_ptr{};  // nil and expunged both read as absent
    }

    // Stores unless expunged (then the caller must take the mutex).
    bool try_store(const value_ptr& value, counter& count) {
      value_ptr p = p_.load();
      for (;;) {
        if (is_expunged(p)) return false;
        const bool was_nil = !p;
        if (p_.compare_exchange(p, value)) {
          if (was_nil) count.fetch_add(1, std::memory_order_relaxed);
          return true;
        }
      }
    }

    // Only mutex holders move an entry into or out of the expunged state, so under the mutex
    // this answer stays true until the holder changes it.
    bool expunged_locked() const { return is_expunged(p_.load()); }

    // Expunged -> nil (the caller holds the mutex and has checked expunged_locked()).
    void unexpunge_locked() {
      value_ptr expected = expunged();
      p_.compare_exchange(expected, value_ptr{});
    }

    // Only for entries known not to be expunged.
    void store_locked(value_ptr value, counter& count) {
      const value_ptr old = p_.exchange(std::move(value));
      if (!old) count.fetch_add(1, std::memory_order_relaxed);
    }

    // Go's tryLoadOrStore. fresh is built from value on first need and reused on retries.
    outcome try_load_or_store(value_ptr& fresh, V& value, value_ptr& actual, counter& count) {
      value_ptr p = p_.load();
      if (is_expunged(p)) return outcome::expunged;
      if (p) {
        actual = std::move(p);
        return outcome::loaded;
      }
      if (!fresh) fresh = std::make_shared<const V>(std::move(value));
      for (;;) {
        value_ptr expected;  // nil
        if (p_.compare_exchange(expected, fresh)) {
          count.fetch_add(1, std::memory_order_relaxed);
          actual = fresh;
          return outcome::stored;
        }
        if (is_expunged(expected)) return outcome::expunged;
        if (expected) {
          actual = std::move(expected);
          return outcome::loaded;
        }
      }
    }

    // Value -> nil; returns the removed value (null if there was none).
    value_ptr remove(counter& count) {
      value_ptr p = p_.load();
      for (;;) {
        if (!p) return {};  // nil or expunged
        value_ptr removed = p;
        if (p_.compare_exchange(p, value_ptr{})) {
          count.fetch_sub(1, std::memory_order_relaxed);
          return removed;
        }
      }
    }

    // Nil -> expunged; true if the entry is (now) expunged.
    bool try_expunge_locked() {
      value_ptr p = p_.load();
      while (!p && !is_expunged(p)) {
        if (p_.compare_exchange(p, expunged())) {
          return true;
        }
      }
      return is_expunged(p);
    }

   private:
    sync_map_detail::shared_slot<const V> p_;
  };

  using entry_ptr = std::shared_ptr<entry>;
  using map_type = std::unordered_map<K, entry_ptr, Hash, KeyEqual>;

  struct read_only {
    std::shared_ptr<const map_type> map;
    bool amended = false;  // dirty_ holds keys that map lacks
  };
  using read_ptr = std::shared_ptr<const read_only>;

  static read_ptr make_read(std::shared_ptr<const map_type> map, bool amended) {
    auto r = std::make_shared<read_only>();
    r->map = std::move(map);
    r->amended = amended;
    return r;
  }

  // The key's entry in a snapshot (valid while the caller holds the snapshot), or null.
  static const entry_ptr* find(const read_only& read, const K& key) {
    const auto it = read.map->find(key);
    return it == read.map->end() ? nullptr : &it->second;
  }

  // Go's "if e.unexpungeLocked() { m.dirty[key] = e }", ordered so that an exception from the
  // insertion leaves the entry expunged (and so still consistently outside dirty_). Expunged
  // entries exist only while dirty_ does.
  void unexpunge_locked(K key, const entry_ptr& e) {
    if (!e->expunged_locked()) return;
    dirty_->insert_or_assign(std::move(key), e);
    e->unexpunge_locked();
  }

  entry* find_dirty(const K& key) const {
    if (!dirty_) return nullptr;
    const auto it = dirty_->find(key);
    return it == dirty_->end() ? nullptr : it->second.get();
  }

  value_ptr load_ptr(const K& key) const {
    read_ptr read = read_.load();
    const entry_ptr* e = find(*read, key);
    entry_ptr hold;  // keeps a dirty-only entry alive after the mutex is released
    if (e == nullptr && read->amended) {
      std::lock_guard<std::mutex> lock(mu_);
      read = read_.load();
      e = find(*read, key);
      if (e == nullptr && read->amended) {
        if (const auto it = dirty_->find(key); it != dirty_->end()) {
          hold = it->second;
          e = &hold;
        }
        miss_locked();
      }
    }
    return e == nullptr ? value_ptr{} : (*e)->load();
  }

  value_ptr take(const K& key) {
    read_ptr read = read_.load();
    const entry_ptr* e = find(*read, key);
    entry_ptr hold;
    if (e == nullptr && read->amended) {
      std::lock_guard<std::mutex> lock(mu_);
      read = read_.load();
      e = find(*read, key);
      if (e == nullptr && read->amended) {
        if (const auto it = dirty_->find(key); it != dirty_->end()) {
          hold = std::move(it->second);
          e = &hold;
          dirty_->erase(it);
        }
        miss_locked();
      }
    }
    return e == nullptr ? value_ptr{} : (*e)->remove(count_);
  }

  // A new key: make sure dirty_ exists and the snapshot says amended, then add the entry.
  void add_new_locked(const read_only& read, K key, value_ptr value) {
    auto e = std::make_shared<entry>(std::move(value));
    if (!read.amended) {
      dirty_locked(read);
      read_.store(make_read(read.map, true));
    }
    dirty_->insert_or_assign(std::move(key), std::move(e));
    count_.fetch_add(1, std::memory_order_relaxed);
  }

  void miss_locked() const {
    ++misses_;
    if (misses_ < dirty_->size()) return;
    promote_locked();
  }

  // dirty_ becomes the snapshot (moved, not copied); allocations come first, so a bad_alloc
  // leaves everything as it was.
  void promote_locked() const {
    auto r = std::make_shared<read_only>();
    r->map = std::make_shared<const map_type>(std::move(*dirty_));
    r->amended = false;
    read_.store(std::move(r));
    dirty_.reset();
    misses_ = 0;
  }

  // Rebuilds dirty_ from the snapshot, leaving out (and expunging) deleted entries. Copies the
  // keys first and expunges second, so an exception while copying leaves no entry expunged.
  void dirty_locked(const read_only& read) {
    if (dirty_) return;
    auto d = std::make_unique<map_type>();
    d->reserve(read.map->size());
    for (const auto& [key, e] : *read.map) d->emplace(key, e);
    for (auto it = d->begin(); it != d->end();) {
      it = it->second->try_expunge_locked() ? d->erase(it) : std::next(it);
    }
    dirty_ = std::move(d);
  }

  mutable sync_map_detail::shared_slot<const read_only> read_;
  mutable std::mutex mu_;
  mutable std::unique_ptr<map_type> dirty_;  // null = Go's nil dirty map
  mutable std::size_t misses_ = 0;
  counter count_{0};
};

}  // namespace leakless
