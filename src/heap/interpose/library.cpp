// src/heap/interpose/library.cpp — what happens when libleakless.so is loaded and unloaded.
//
// How it works: the constructor starts the heap profiler (lifecycle.hpp: configuration, fork
// handlers, dump signal and thread when files are wanted). Allocations made before it runs are
// already sampled: the sampler configures itself on first use. The destructor runs in exit()
// after the program's own static destructors (a preloaded or linked library is finalised after
// the program that depends on it) and writes the final profile; the profiler's tables are never
// destroyed, so allocations made later, by other libraries' destructors, still work.
#include "heap/lifecycle.hpp"
#include "server/environment.hpp"

namespace {

[[gnu::constructor]] void start_leakless() { leakless::heap::start(); }

[[gnu::destructor]] void stop_leakless() {
  leakless::server::stop_environment_server();  // first: see server/environment.hpp
  leakless::heap::stop_at_exit();
}

}  // namespace
