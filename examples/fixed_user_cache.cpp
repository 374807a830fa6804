// examples/fixed_user_cache.cpp — leaky_user_cache.cpp with the user cache bounded and expiring.
//
// How it works: the same service and load (user_service.hpp), but add_user() puts the user into a
// leakless::cache with max_entries = 1,000 and expire_after_write = 2 s instead of a plain map.
// Every write first drops the expired entries of its shard, and the bound evicts the least useful
// entry (W-TinyLFU) when a burst of logins would exceed it, so the cache holds about the last two
// seconds of logins and its memory stays flat. Run with `--seconds N` to stop after N seconds.
// It exits with status 1 if the cache ever holds more than its bound.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "user_service.hpp"

#include <leakless/cache.hpp>

namespace {

using examples::User;
using user_cache_t = leakless::cache<std::string, std::shared_ptr<const User>>;

constexpr std::size_t kMaxUsers = 1000;

// Every logged-in user by session key, for two seconds at most and 1,000 users at most.
user_cache_t& user_cache() {
  static auto* cache = [] {
    leakless::cache_options<std::string, std::shared_ptr<const User>> options;
    options.name = "users";
    options.max_entries = kMaxUsers;
    options.expire_after_write = std::chrono::seconds(2);
    return new user_cache_t(options);
  }();
  return *cache;
}

void add_user(int id, const std::string& name) {
  user_cache().put(examples::generate_key(), std::make_shared<const User>(id, name));
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "fixed_user_cache: 1000 requests/s, 200 logins/s; logins are cached for 2 s, "
      "1000 at most\n");
  std::fflush(stdout);
  std::size_t largest = 0;
  const std::size_t work = examples::serve(
      seconds, add_user, [&] { largest = std::max(largest, user_cache().size()); },
      [](double elapsed) {
        const auto stats = user_cache().stats();
        std::printf("  %3.0f s: %zu users cached, %llu expired, %llu evicted\n", elapsed,
                    user_cache().size(), static_cast<unsigned long long>(stats.expirations),
                    static_cast<unsigned long long>(stats.evictions));
        std::fflush(stdout);
      });
  std::printf("fixed_user_cache: done, %zu users cached, never more than %zu (checksum %zu)\n",
              user_cache().size(), largest, work % 10);
  return largest <= kMaxUsers ? 0 : 1;
}
