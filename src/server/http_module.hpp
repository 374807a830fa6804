// src/server/http_module.hpp — the interface between libleakless.so and libleakless_http.so, the
// module that holds the debug server's HTTP side (cpp-httplib and what it needs: OpenSSL, zlib,
// brotli).
//
// How it works: libleakless.so is loaded into every profiled program, so it does not link the HTTP
// library: loading it would load OpenSSL and run its initialisation in programs that never start
// a server (and could change how a program's own OpenSSL is set up). The first debug_server
// dlopens the module from libleakless.so's own directory and calls leakless_http_module() for
// this table. The module does only HTTP: it listens, runs its threads and turns each request
// into an http_call for the host's serve(), which does everything else (token, routing, profiles,
// metrics) with the one copy of the profiler's state, in libleakless.so. Both sides are built
// from this tree with the same compiler and standard library, so std types cross the boundary;
// `version` guards against a module from another build.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace leakless::server {

inline constexpr int kHttpModuleVersion = 1;

struct http_call {
  std::string method;
  std::string path;           // without the query
  std::string target;         // path and raw query, as sent
  std::string authorization;  // the Authorization header, or ""
  std::multimap<std::string, std::string> params;
  std::string body;
};

struct http_reply {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct http_settings {
  std::string host;
  int port = 0;  // 0: any free port
  int workers = 4;
  int io_timeout_seconds = 10;
};

struct http_host {
  // Runs first on every thread the module starts (marks it as the profiler's own, sets its mask).
  void (*thread_started)();
  // Answers one request; `context` is the value given to start().
  void (*serve)(void* context, const http_call& call, http_reply& reply);
};

struct http_module {
  int version;
  // Binds and starts serving; returns the server, or nullptr with `error` set. `port` receives
  // the port bound.
  void* (*start)(const http_host* host, void* context, const http_settings& settings, int* port,
                 std::string* error);
  // Stops accepting, waits for the requests in flight (each bounded: a stalled client by the read
  // and write timeouts) and for every thread to end, and frees the server.
  void (*stop)(void* server);
};

}  // namespace leakless::server

// The module's one entry point.
extern "C" const leakless::server::http_module* leakless_http_module();
