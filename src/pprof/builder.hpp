// src/pprof/builder.hpp — assembles a pprof profile from raw stacks of code addresses.
//
// How it works: add_sample() takes a stack as addresses (leaf first, each already the address to
// attribute: a return address minus one) plus the sample's values and labels. build() gives every
// distinct address one Location (Go does the same), looks each one up in the symbolizer to get its
// Lines (one per inlined frame, innermost first) and interned Functions, attaches it to the Mapping
// of the module containing it (mapping 1 is the main program, as pprof expects), and sets the
// mapping's has_* flags when symbols were found, so that `go tool pprof` needs no binary.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pprof/profile.hpp"
#include "pprof/symbolizer.hpp"
#include "stack/modules.hpp"

namespace leakless::pprof {

class profile_builder {
 public:
  profile_builder(std::vector<value_type> sample_types, value_type period_type,
                  std::int64_t period);

  void set_default_sample_type(std::string type);
  void set_time(std::int64_t time_nanos, std::int64_t duration_nanos);
  void add_comment(std::string comment);
  // pprof hides frames matching this regex, and every frame beneath them, from the leaf side.
  void set_drop_frames(std::string regex);

  // `addresses` leaf first; `values` has one entry per sample type.
  void add_sample(std::span<const std::uint64_t> addresses, std::span<const std::int64_t> values,
                  std::vector<label> labels = {});

  // Looks an address up (pprof::symbolizer::lookup in the profiler; a table in tests).
  using resolver = std::function<const symbolized&(std::uint64_t address)>;

  // Resolves locations, functions and mappings; the builder is spent afterwards.
  profile build(const resolver& lookup, const std::vector<stack::module>& modules);

 private:
  profile profile_;
  std::vector<std::vector<std::uint64_t>> stacks_;  // per sample, parallel to profile_.samples
};

}  // namespace leakless::pprof
