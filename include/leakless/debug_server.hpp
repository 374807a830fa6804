// leakless/debug_server.hpp — Go's net/http/pprof for C++: live profiles over HTTP, plus
// Prometheus /metrics.
//
// How it works: a debug_server listens on its own threads (an accept thread and a few workers,
// every signal blocked but the threads profile's, allocations not sampled) and answers:
//   /debug/pprof/                 index page
//   /debug/pprof/heap, allocs     heap profiles (?debug=1 text, ?seconds=N delta)
//   /debug/pprof/threads          every thread's stack (alias: goroutine; ?debug=1, ?debug=2)
//   /debug/pprof/profile          CPU profile (?seconds=N, default 30, at most max_profile_seconds)
//   /debug/pprof/cmdline, symbol  the command line; addresses to function names (GET and POST)
//   /metrics                      Prometheus text format 0.0.4: process_* and leakless_* metrics
//                                 and whatever was added through <leakless/metrics.hpp>
// Errors are Go's (text/plain, X-Go-Pprof: 1; 400, 404, 500). The address is "host:port";
// ":port" or "port" binds 127.0.0.1 (another interface must be named, e.g. "0.0.0.0:6060"); port
// 0 picks a free port (see port()). With a token (options.token, else LEAKLESS_HTTP_TOKEN from the
// environment) every request must carry "Authorization: Bearer <token>" or gets 401. A slow or
// vanished client only holds one worker, never the profiler or the program (read and write
// timeouts). Destruction stops the server and waits for requests in flight (a running CPU
// profile is cut short). The HTTP side lives in libleakless_http.so, installed next to
// libleakless.so and loaded by the first server, so that the HTTP library (and OpenSSL with it)
// is never loaded into programs that do not serve.
//
// A preloaded (or linked) libleakless.so starts one by itself when LEAKLESS_HTTP=<host:port> is
// set; a bad value or a port in use is reported on stderr ("leakless: ...") and the program runs
// on without it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <leakless/export.hpp>

namespace leakless {

struct debug_server_options {
  std::string token;              // empty: LEAKLESS_HTTP_TOKEN, if set; else no token
  int max_profile_seconds = 300;  // longer CPU or delta profiles are refused with 400
  int workers = 4;                // requests served at once
  int io_timeout_seconds = 10;    // a client that does not send or read for this long is dropped
};

class LEAKLESS_API debug_server {
 public:
  // Starts listening; throws std::invalid_argument for a malformed address and
  // std::system_error (or std::runtime_error) when it cannot listen there.
  explicit debug_server(std::string_view address = "127.0.0.1:6060",
                        debug_server_options options = {});
  ~debug_server();

  debug_server(const debug_server&) = delete;
  debug_server& operator=(const debug_server&) = delete;

  // The port it listens on (the one picked when 0 was asked for).
  int port() const noexcept;
  // "host:port" it listens on.
  std::string address() const;

 private:
  struct impl;
  impl* impl_;
};

}  // namespace leakless
