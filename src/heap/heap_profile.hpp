// src/heap/heap_profile.hpp — the heap and allocs profiles, written as Go's runtime/pprof writes
// them: pprof protobuf (debug=0) or the legacy text format (debug=1).
//
// How it works: a consistent copy of the (stack, size) buckets is taken under the sampler's lock,
// then everything slow — symbolization with libdw, building and compressing the profile — runs
// without any lock, on a thread marked busy so that its own allocations are not sampled. Values
// are the buckets' weighted counts (each sample already unbiased when taken); one pprof sample per
// bucket with the numeric label `bytes` (the allocation size), sample types alloc_objects,
// alloc_space, inuse_objects, inuse_space, period_type space/bytes and period the sampling rate.
#pragma once

#include <iosfwd>
#include <string>

namespace leakless::heap {

enum class profile_kind { heap, allocs };

// Gzipped pprof bytes of the profile.
std::string heap_profile_bytes(profile_kind kind);

// Go's legacy text format (`debug=1`): totals line, one record per bucket with its raw sample
// counts and stack addresses, and the symbolized frames as `#\t0xADDR\tname+0xOFF\tfile:line`.
std::string heap_profile_text(profile_kind kind);

}  // namespace leakless::heap
