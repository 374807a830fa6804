// examples/leaky_expiring_cache.cpp — cache entries written without an expiry (the story's
// `redis.set("user:1001", data)` without a TTL).
//
// How it works: a toy page service renders report fragments and caches them in a key-value store
// under keys that include the minute and the user (so yesterday's keys are never asked for again).
// The store's set() has no TTL, as a plain Redis SET has none, so every fragment stays forever:
// about 500 KiB a second while traffic flows. Traffic comes in bursts (3 s of writes, 2 s quiet),
// and the memory climbs in steps and never comes down. It runs until killed, or for
// `--seconds N`. The fix, fixed_expiring_cache.cpp, gives every entry a TTL and lets a cleanup
// task remove expired entries even while nobody writes.
#include <cstdio>
#include <string>
#include <unordered_map>

#include "example_common.hpp"
#include "fragment_service.hpp"

namespace {

// A key-value store like Redis's SET/GET, with no expiry at all.
class kv_store {
 public:
  void set(std::string key, std::string value) { data_[std::move(key)] = std::move(value); }
  const std::string* get(const std::string& key) const {
    const auto it = data_.find(key);
    return it == data_.end() ? nullptr : &it->second;
  }
  std::size_t size() const { return data_.size(); }

 private:
  std::unordered_map<std::string, std::string> data_;
};

kv_store& store() {
  static auto* s = new kv_store();  // process-wide, never destroyed
  return *s;
}

void cache_fragment(long minute, long user) {
  const std::string key = "report:" + std::to_string(minute) + ":" + std::to_string(user);
  if (store().get(key) == nullptr)
    store().set(key, examples::render_fragment(user));  // no TTL: kept forever
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "leaky_expiring_cache: caches 500 report fragments/s (in bursts: 3 s on, 2 s off) "
      "with no expiry\n");
  std::fflush(stdout);
  examples::serve_bursts(seconds, cache_fragment, [&](double elapsed) {
    std::printf("  %3.0f s: %zu fragments cached (~%.1f MiB)\n", elapsed, store().size(),
                static_cast<double>(store().size()) * 1100 / (1 << 20));
    std::fflush(stdout);
  });
  std::printf("leaky_expiring_cache: done, %zu fragments cached, none will ever expire\n",
              store().size());
  return 0;
}
