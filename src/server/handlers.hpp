// src/server/handlers.hpp — the /debug/pprof/* endpoints, as Go's net/http/pprof answers them,
// independent of the HTTP library (the server in debug_server.cpp translates).
//
// How it works: handle_pprof() takes the path under /debug/pprof/, the query parameters, the
// method and body, and returns status, headers and body:
//   ""                 the index page (HTML: every profile with its count and description)
//   heap, allocs       the heap profiles (heap_profile.hpp); debug=N>0 text
//   threads, goroutine the threads profile (threads_profile.hpp); debug=1 grouped, 2 every thread
//   profile            a CPU profile of seconds=N (default 30, at most max_profile_seconds)
//   cmdline            the command line, arguments separated by NUL bytes
//   symbol             "num_symbols: 1", then "0xADDR name" per known address (GET or POST)
// seconds=N on heap, allocs and threads gives the delta profile (pprof/delta.hpp). Errors are
// Go's: text/plain with X-Go-Pprof: 1, 400 for a bad parameter, 404 for an unknown profile, 500
// when the CPU profiler is already in use. Every response carries X-Content-Type-Options: nosniff.
// Waiting (profile and delta profiles) goes through options.sleep, which the server interrupts
// when it stops; a CPU profile is always stopped before the handler returns.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace leakless::server {

struct http_request {
  std::string method = "GET";
  std::string name;       // the path under /debug/pprof/ ("" for the index)
  std::string raw_query;  // after '?', undecoded (symbol GET)
  std::multimap<std::string, std::string> params;  // decoded query parameters
  std::string body;
};

struct http_response {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string body;
};

struct handler_options {
  int max_profile_seconds = 300;
  // Waits, returning false when interrupted (the server is stopping).
  std::function<bool(std::chrono::seconds)> sleep;
};

http_response handle_pprof(const http_request& request, const handler_options& options);

// Go's serveError: text/plain, X-Go-Pprof: 1, the message and a newline.
http_response error_response(int status, const std::string& message);

}  // namespace leakless::server
