// src/cpu/profiler.hpp — the CPU profiler: per-thread CPU timers, a SIGPROF handler that records
// stacks without locks or allocation, and Go's CPU profile built from what it recorded.
//
// How it works:
// - Timers. start() arms one POSIX timer per thread on that thread's own CPU clock
//   (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) = ((~tid) << 3) | 6), delivering SIGPROF to that
//   very thread (SIGEV_THREAD_ID), every 1/hz seconds of the thread's CPU time, with a random
//   first expiry so threads do not fire in lockstep. Threads that exist at start are found in
//   /proc/self/task; threads created later arm their own timer when they start (libleakless.so
//   interposes pthread_create and calls thread_started() / thread_exiting() around the start
//   routine, so an exiting thread deletes its timer; timers of threads that exited otherwise are
//   deleted at stop()). A thread started during a profile unblocks SIGPROF (libraries such as
//   liblzma start workers with every signal blocked); a thread that existed at start and blocks
//   SIGPROF is not sampled (as in Go). Where per-thread timers cannot be created, one process-wide
//   setitimer(ITIMER_PROF) is used instead (the kernel then picks the running thread).
// - The handler (async-signal-safe: no locks, no allocation, no dl_iterate_phdr; errno saved)
//   takes the interrupted PC from the ucontext and walks the frame-pointer chain, each frame
//   checked to lie inside the interrupted thread's stack, strictly growing and 8-byte aligned, so
//   it never reads unmapped memory. The stack bounds come from a snapshot of /proc/self/maps taken
//   at start (every stack of a thread existing then) or, for threads started later, from
//   pthread_getattr_np in thread_started(). Why not libunwind: unw_backtrace looks up unwind
//   tables with dl_iterate_phdr, which takes the loader's lock; a signal arriving while the
//   interrupted thread holds that lock (inside dlopen, dlclose, or an exception's unwinding)
//   would deadlock. The frame-pointer walk takes no lock; its price is that frames of code built
//   without frame pointers may be skipped (the leaf PC, and so the flat profile, is always exact).
// - The handler reserves a slot of a fixed per-process ring by compare-and-swap on its head, fills
//   it and publishes it; a reader thread drains the ring every 10 ms into a hash of stack ->
//   count. A sample counts 1 + the timer's overrun (si_overrun): expiries that came while the
//   previous signal was still pending (a busy machine notices CPU-timer expiries late, on
//   scheduler ticks; a thread may block SIGPROF) queue no signal of their own. A full ring
//   counts the sample as dropped; the profile then carries one sample of the pseudo-function
//   "leakless::lost_samples" with the dropped count (as Go's runtime._LostExternalCode).
// - The tail of a thread. When a per-thread timer ends (its thread exits, or stop()), some of the
//   thread's CPU time is in no sample: expiries the kernel has not noticed yet, a signal still
//   pending, the part of a period that has not ended. With threads that live for a few dozen
//   periods, that is several percent of their time. So each timer's signals carry its id
//   (sigev_value), the thread's CPU clock is read when the timer is armed and when it is deleted,
//   and the end of the timer goes through the ring after the timer's samples: the reader then
//   raises the timer's sample total to the thread's CPU time in whole periods (rounded to the
//   nearest: the first expiry's phase is uniform, so that is the expected number of expiries),
//   adding the difference to the thread's latest sampled stack, or its start routine if it was
//   never sampled. Only CPU time since the arming counts (a thread existing at start has a past).
//   An exiting thread blocks SIGPROF first, so its pending signal is never delivered and is
//   counted once, by the clock; stop() reads each live thread's clock just before deleting its
//   timer. Every sample keeps cpu/nanoseconds = samples/count x period, as in Go's profile. The
//   setitimer fallback has no per-thread clock: its tails are not counted.
// - stop() deletes the timers, discards SIGPROF signals still pending, restores the previous
//   SIGPROF action, waits for handlers still running, drains the ring and writes the profile:
//   sample types samples/count and cpu/nanoseconds, period type cpu/nanoseconds, period 1e9/hz,
//   time_nanos and duration_nanos set, symbolized with pprof::profile_builder.
// - Fork: timers and threads do not survive fork; the child starts with no profile running.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "pprof/profile.hpp"

namespace leakless::cpu {

inline constexpr int kDefaultHz = 100;
inline constexpr int kMaxHz = 10000;

// The message of the logic_error start() throws while a profile is running.
inline constexpr const char* kAlreadyInUse = "cpu profiling already in use";

struct options {
  int hz = kDefaultHz;
  bool process_timer = false;  // use setitimer(ITIMER_PROF) even where per-thread timers work
};

// Starts profiling into `out` (written by stop()). Throws std::logic_error(kAlreadyInUse) when a
// profile is already running, std::invalid_argument for a rate outside 1..kMaxHz.
void start(std::ostream& out, options opts = {});

// Stops the running profile and writes it to the stream given to start(); returns false (and
// does nothing) when no profile is running.
bool stop();

bool running() noexcept;

// Whether the running profile uses per-thread timers (false: process-wide setitimer).
bool per_thread_timers() noexcept;

// Called by the pthread_create wrapper in the new thread, before and after its start routine.
// thread_exiting() counts the thread's CPU time its samples did not cover (attributed to
// `start_routine`, when given, if the thread was never sampled) and leaves SIGPROF blocked: the
// thread must be ending.
void thread_started() noexcept;
void thread_exiting(std::uintptr_t start_routine = 0) noexcept;

// Live timers of the running profile (for tests: threads that exit delete theirs).
std::size_t timer_count() noexcept;

// The profile of `counts` (stacks leaf first: the PC, then return addresses minus one) with
// `dropped` lost samples; separate from stop() so it can be tested alone.
using stack_counts = std::map<std::vector<std::uint64_t>, std::int64_t>;
pprof::profile build_profile(const stack_counts& counts, std::int64_t dropped, int hz,
                             std::int64_t time_nanos, std::int64_t duration_nanos);

// The pseudo-function of the dropped-samples sample.
inline constexpr const char* kLostSamplesFunction = "leakless::lost_samples";

// LEAKLESS_CPU_HZ (1..kMaxHz, default 100); a bad value is reported once on stderr.
int hz_from_environment() noexcept;

// Library constructor / destructor work: LEAKLESS_CPU_PROFILE=<file> profiles the whole run.
void start_from_environment() noexcept;
void stop_at_exit() noexcept;

}  // namespace leakless::cpu
