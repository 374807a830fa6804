// src/heap/lifecycle.hpp — starting the heap profiler in a process, writing its profile files,
// and keeping it working across fork and exit.
//
// How it works: the environment is read exactly once, by whichever comes first — the first
// sampling decision (which may be inside a malloc made before main, even before our own
// constructor) or libleakless.so's constructor (start()). The constructor then does what must not
// happen inside malloc: registers fork handlers, and, when LEAKLESS_HEAP_PROFILE is set,
// installs the dump signal's handler and starts one background thread ("leakless-dump", all
// signals blocked) that writes a profile when the handler posts to its semaphore (the only thing
// the handler does: sem_post is async-signal-safe) or when the interval elapses. The library's
// destructor writes the final profile at exit, after the program's own static destructors.
// Files are written to "<name>.tmp" and renamed, so a reader never sees half a profile; a failed
// write is reported once per reason on stderr and loses nothing else.
//
// Fork: the sampler's lock is held across fork() so the child's tables are consistent; the child
// starts its own sequence at 0 and writes files with its own pid. A child has no dump thread
// (threads do not survive fork); it starts one at its first sampled allocation, if it lives that
// long (most children exec first and never need it).
#pragma once

#include <string>

namespace leakless::heap {

// Reads the environment once per process and applies the sampling settings.
void ensure_configured() noexcept;

// Library constructor / destructor work (see above).
void start() noexcept;
void stop_at_exit() noexcept;

// Called on the allocation slow path: restarts the dump thread in a forked child.
void after_sample_point() noexcept;

// Writes one heap profile file now; returns its path, or "" (and reports why) on failure.
std::string dump_heap_profile_file();

}  // namespace leakless::heap
