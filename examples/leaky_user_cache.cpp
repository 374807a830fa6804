// examples/leaky_user_cache.cpp — the global user cache that only grows (the story's first leak).
//
// How it works: a toy service handles 1,000 requests a second (see user_service.hpp: each
// allocates and frees a response) and logs in 200 users a second with add_user(), which stores
// the user in a global map under a fresh session key. Nothing ever removes an entry, so the map
// grows by about 2 KiB per login (~24 MiB a minute) until the process runs out of memory. The map
// is still reachable, so LeakSanitizer and valgrind report nothing at exit; `leakless run` and
// `leakless leaks` name add_user's insert line. The cache is created with `new` and never
// destroyed, as process-wide objects usually are, so it is still there in the profile written at
// exit. Run with `--seconds N` to stop after N seconds; otherwise it runs until killed.
// The fix is fixed_user_cache.cpp.
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>

#include "user_service.hpp"

namespace {

using examples::User;

// Every logged-in user by session key. Filled by add_user, never cleaned.
std::unordered_map<std::string, std::unique_ptr<User>>& user_cache() {
  static auto* cache = new std::unordered_map<std::string, std::unique_ptr<User>>();
  return *cache;
}

void add_user(int id, const std::string& name) {
  user_cache()[examples::generate_key()] = std::make_unique<User>(id, name);  // never removed
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "leaky_user_cache: 1000 requests/s, 200 logins/s; every login is cached in a global map "
      "that is never cleaned\n");
  std::fflush(stdout);
  const std::size_t work = examples::serve(
      seconds, add_user, [] {},
      [](double elapsed) {
        std::printf("  %3.0f s: %zu users cached (~%.1f MiB of sessions)\n", elapsed,
                    user_cache().size(),
                    static_cast<double>(user_cache().size() * sizeof(User)) / (1 << 20));
        std::fflush(stdout);
      });
  std::printf("leaky_user_cache: done, %zu users still cached (checksum %zu)\n",
              user_cache().size(), work % 10);
  return 0;
}
