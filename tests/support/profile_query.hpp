// tests/support/profile_query.hpp — questions tests ask of a decoded profile.
//
// How it works: samples_through() sums one value of the samples whose stack has a frame (any
// location, any inlined line) of a function whose name contains a given part; shared by the CPU,
// threads and debug server tests. Header-only (tests/ is on the include path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "pprof/profile.hpp"

namespace leakless::test {

// Sum of value `index` over the samples with a frame of a function whose name contains `part`.
inline std::int64_t samples_through(const leakless::pprof::profile& p, const std::string& part,
                                    std::size_t index = 0) {
  std::map<std::uint64_t, const leakless::pprof::location*> locations;
  for (const auto& l : p.locations) locations[l.id] = &l;
  std::map<std::uint64_t, std::string> functions;
  for (const auto& f : p.functions) functions[f.id] = f.name;
  std::int64_t total = 0;
  for (const auto& s : p.samples) {
    bool found = false;
    for (const std::uint64_t id : s.location_ids) {
      for (const auto& line : locations[id]->lines) {
        found |= functions[line.function_id].find(part) != std::string::npos;
      }
    }
    if (found) total += s.values.at(index);
  }
  return total;
}

}  // namespace leakless::test
