// leakless/profile.hpp — the heap and CPU profilers' API for programs that link libleakless.so.
//
// How it works: once libleakless.so is loaded (linked, or LD_PRELOADed) every allocation goes
// through its malloc and operator new, which forward to glibc and, on average once per sample
// rate's worth of allocated bytes (a Poisson process, 512 KiB by default, as in Go), record the
// allocation's stack. These functions read that record: the heap profile (what is live now), the
// allocs profile (everything allocated since start) and summary statistics. Profiles are written in
// the pprof format (gzipped protobuf) with symbols inside, or as Go's legacy text with debug=1.
// Every estimate is unbiased: each sample is scaled by 1/(1-exp(-size/rate)), as Go does.
#pragma once

#include <cstddef>
#include <iosfwd>

#include <leakless/export.hpp>

namespace leakless {

// Summary of the heap profile; every byte and object figure is an unbiased estimate from samples.
// profiler_bytes counts the profiler's tables, the stack unwinder's rule cache (one for the
// process), and the frame cache that libunwind keeps for each live thread whose stack the
// unwinder had to leave to libunwind (a stack through a signal frame or code with no unwind
// table; 256 KiB each, all of it written when it is made).
struct heap_profile_stats {
  std::size_t inuse_bytes = 0;     // live bytes now
  std::size_t inuse_objects = 0;   // live allocations now
  std::size_t alloc_bytes = 0;     // bytes allocated since the profiler started
  std::size_t alloc_objects = 0;   // allocations since the profiler started
  std::size_t samples = 0;         // allocations sampled since start
  std::size_t live_samples = 0;    // sampled allocations not freed yet
  std::size_t profiler_bytes = 0;  // memory the profiler itself holds
  std::size_t sample_rate = 0;     // mean bytes between samples
};

// Writes the heap profile (live memory; sample types alloc_objects, alloc_space, inuse_objects,
// inuse_space; default inuse_space). debug=0: gzipped pprof; debug=1: Go's legacy text format.
LEAKLESS_API void write_heap_profile(std::ostream& out, int debug = 0);

// Writes the allocs profile: the same data with default_sample_type alloc_space.
LEAKLESS_API void write_allocs_profile(std::ostream& out, int debug = 0);

// Sets the mean number of bytes between samples. 1 records every allocation; 0 stops sampling.
// Samples already taken keep the rate they were taken at.
LEAKLESS_API void set_sample_rate(std::size_t bytes) noexcept;

// Current estimates; cheap (no symbolization).
LEAKLESS_API heap_profile_stats heap_stats() noexcept;

// Starts the CPU profile of every thread (those running now and those created later) at
// LEAKLESS_CPU_HZ samples per second of each thread's CPU time (default 100). The profile is
// written to `out` by stop_cpu_profile(), in Go's CPU profile format (gzipped pprof; sample types
// samples/count and cpu/nanoseconds); `out` must outlive the profile. Only one CPU profile runs at
// a time: while one runs this throws std::logic_error with what() "cpu profiling already in use".
LEAKLESS_API void start_cpu_profile(std::ostream& out);

// Stops the CPU profile and writes it; returns false (and does nothing) when none is running.
LEAKLESS_API bool stop_cpu_profile();

// Writes the threads profile, Go's goroutine profile for threads: the stack of every thread of the
// process, taken by signalling each one (a real-time signal, SIGRTMAX-3, whose handler unwinds the
// interrupted thread). debug=0: gzipped pprof, sample type threads/count, one sample per distinct
// stack with the number of threads; debug=1: Go's grouped legacy text; debug=2: every thread with
// its id, name and state. A thread that blocks the signal or does not answer within two seconds
// is listed with the pseudo-frame leakless::signal_blocked or leakless::no_answer.
LEAKLESS_API void write_threads_profile(std::ostream& out, int debug = 0);

}  // namespace leakless
