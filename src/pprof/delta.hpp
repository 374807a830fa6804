// src/pprof/delta.hpp — the difference of two profiles of the same kind, as net/http/pprof's
// `seconds=N` gives it for heap, allocs and the threads profile.
//
// How it works: Go's serveDeltaProfile scales the first profile by -1 and merges it with the
// second; so does subtract(): samples are matched by their stack (each location's address and
// function names) and labels; a matched sample's values are subtracted, a sample only in `before`
// is carried over (its locations, functions and mapping copied in) with negated values, and
// samples whose values are all zero are dropped. Everything else (sample types, mappings, period,
// time) is `after`'s. Both profiles must have the same sample types.
#pragma once

#include "pprof/profile.hpp"

namespace leakless::pprof {

// after - before. Throws std::invalid_argument when the sample types differ.
profile subtract(const profile& before, const profile& after);

}  // namespace leakless::pprof
