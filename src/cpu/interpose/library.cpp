// src/cpu/interpose/library.cpp — LEAKLESS_CPU_PROFILE=<file>: the CPU profile of a whole run.
//
// How it works: libleakless.so's constructor starts a CPU profile into the file when the variable
// is set (at LEAKLESS_CPU_HZ samples per second), and its destructor, which runs in exit() after
// the program's own static destructors, stops it and writes the file. A forked child does not
// inherit the running profile (cpu/profiler.hpp), so it never overwrites the parent's file.
#include "cpu/profiler.hpp"
#include "server/environment.hpp"

namespace {

[[gnu::constructor]] void start_cpu_from_environment() { leakless::cpu::start_from_environment(); }

[[gnu::destructor]] void stop_cpu_at_exit() {
  leakless::server::stop_environment_server();  // first: see server/environment.hpp
  leakless::cpu::stop_at_exit();
}

}  // namespace
