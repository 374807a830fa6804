// src/threads/threads_profile.hpp — the threads profile: the stack of every thread of the process,
// Go's goroutine profile for threads.
//
// How it works: the requester lists /proc/self/task and sends each thread a real-time signal
// (kSignal) with rt_tgsigqueueinfo, whose payload names the thread's slot in a preallocated array
// and the request's generation. The thread's handler claims its slot by compare-and-swap
// (waiting -> writing), unwinds its own interrupted context with libunwind
// (unw_init_local2(UNW_INIT_SIGNAL_FRAME): DWARF unwind tables, so frames of libraries built
// without frame pointers, glibc's blocking calls included, are followed) into the slot and marks
// it done. The handler takes no lock and allocates nothing; libunwind's dl_iterate_phdr takes
// glibc's recursive loader lock, so a thread interrupted inside the loader does not deadlock on
// itself. A thread interrupted inside the heap sampler's libunwind fallback (libunwind's
// per-thread cache is not reentrant; the sampler's own CFI unwinder is) records its interrupted PC
// only.
//
// The requester polls the slots until every thread has answered or the timeout passes; a thread
// that did not answer (or blocks the signal: read from /proc/self/task/<tid>/status first, so no
// signal is left pending forever) is reported as such, never waited for: its slot is abandoned by
// compare-and-swap, and a late handler finds the generation changed and writes nothing. Slot
// arrays are never freed (a larger one replaces a smaller one), so a late handler never touches
// freed memory. A signal that is not ours (another sender, another payload) goes to the handler
// that was installed before.
//
// Output: pprof (sample type threads/count, one sample per distinct stack with the number of
// threads), debug=1 Go's grouped legacy text, debug=2 every thread with id, name and state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

namespace leakless::threads {

enum class capture_status {
  captured,   // the thread answered with its stack
  blocked,    // the thread blocks the profile's signal
  no_answer,  // the thread did not answer in time
};

struct thread_record {
  pid_t tid = 0;
  std::string name;   // /proc/self/task/<tid>/comm
  std::string state;  // "running", "sleeping", ... from /proc/self/task/<tid>/stat
  capture_status status = capture_status::no_answer;
  // Leaf first: the interrupted PC, then return addresses minus one (addresses to symbolize).
  std::vector<std::uint64_t> addresses;
};

// Every thread alive now (threads that exit meanwhile are left out), in /proc/self/task order.
std::vector<thread_record> capture_all(
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Gzipped pprof bytes of the threads profile.
std::string threads_profile_bytes();

// debug=1: Go's count profile text ("threads profile: total N", then "<count> @ <addresses>" and
// "#\t..." frame lines per distinct stack, most frequent first); debug>=2: every thread.
std::string threads_profile_text(int debug);

// Number of threads alive (for the index page and metrics).
std::size_t thread_count();

// The signal used to ask threads for their stacks.
int profile_signal() noexcept;

}  // namespace leakless::threads
