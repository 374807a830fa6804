// src/server/environment.hpp — the debug server a library constructor starts for LEAKLESS_HTTP,
// and its stop at exit.
//
// How it works: stop_environment_server() stops that server (waiting for requests in flight) and
// does nothing the second time or when there is none. Every destructor of libleakless.so calls
// it first, because they run in an unspecified order among themselves but all before the
// library's static objects are destroyed: so the server is stopped, and a CPU profile it is taking
// cut short, before the exit dump is written and before anything a request uses goes away. (An
// atexit handler registered by a preloaded library's constructor would run only after those
// static objects are destroyed: it is registered before them.)
#pragma once

namespace leakless::server {

void stop_environment_server() noexcept;

}  // namespace leakless::server
