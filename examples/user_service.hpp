// examples/user_service.hpp — the request handling that the user-cache examples share.
//
// How it works: a toy service. handle_request() does what a request handler does to the heap:
// it builds a response body (tens of KiB), a few header strings and a parsed item list, then frees
// them all; one request line in four is kept in a bounded log of the last 512 requests. So the
// heap sees a lot of churn and a little steady memory, and neither grows. What differs between
// the leaky and the fixed example is only where the logged-in users go (their add_user).
// serve() is the load both run: every 10 ms, 10 requests and 2 logins.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "example_common.hpp"

namespace examples {

// A logged-in user: an id, a name and the session state a real service keeps per user.
struct User {
  User(int user_id, std::string user_name) : id(user_id), name(std::move(user_name)) {
    session.fill('s');
  }
  int id;
  std::string name;
  std::array<char, 2000> session{};
};

// A new session key on every call ("sess:<n>"): keys are never reused, as with real session ids.
inline std::string generate_key() {
  static long next = 0;
  return "sess:" + std::to_string(++next);
}

// Handles request `n`: allocates and frees a response; keeps a line in a bounded log. Returns the
// response's size, so the work cannot be optimised away.
inline std::size_t handle_request(long n) {
  static std::deque<std::string> recent;  // the last 512 logged requests
  std::string body;
  body.reserve(8192 + static_cast<std::size_t>(n % 8) * 4096);
  while (body.size() + 64 < body.capacity()) body += "{\"item\":12345,\"price\":\"9.99\"},";
  std::vector<std::string> headers = {"Content-Type: application/json",
                                      "X-Request-Id: request-number-" + std::to_string(n),
                                      "Cache-Control: no-store, no-cache, must-revalidate"};
  std::vector<std::size_t> items;
  for (std::size_t i = 0; i < body.size(); i += 31) items.push_back(i);
  if (n % 4 == 0) {
    recent.push_back(headers[1] + std::string(1000, '.'));
    if (recent.size() > 512) recent.pop_front();
  }
  return body.size() + headers.size() + items.size();
}

// Runs the service for `seconds` (until killed without a limit): every 10 ms, 10 requests and 2
// logins, each login calling add_user(id, name), then after_tick(). report(elapsed seconds) runs
// every 5 s. Returns a checksum of the work done.
inline std::size_t serve(std::optional<double> seconds,
                         const std::function<void(int, const std::string&)>& add_user,
                         const std::function<void()>& after_tick,
                         const std::function<void(double)>& report) {
  std::size_t work = 0;
  run_for(
      seconds, std::chrono::milliseconds(10), 500,
      [&](long tick) {
        for (long r = 0; r < 10; ++r) work += handle_request(tick * 10 + r);
        for (int u = 0; u < 2; ++u) {
          const int id = static_cast<int>(tick * 2 + u);
          add_user(id, "user" + std::to_string(id % 1000));
        }
        after_tick();
      },
      report);
  return work;
}

}  // namespace examples
