// src/pprof/delta.cpp — profile subtraction (see delta.hpp).
#include "pprof/delta.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>

namespace leakless::pprof {
namespace {

struct index {
  std::unordered_map<std::uint64_t, const location*> locations;
  std::unordered_map<std::uint64_t, const function*> functions;
  std::unordered_map<std::uint64_t, const mapping*> mappings;

  explicit index(const profile& p) {
    for (const location& l : p.locations) locations[l.id] = &l;
    for (const function& f : p.functions) functions[f.id] = &f;
    for (const mapping& m : p.mappings) mappings[m.id] = &m;
  }
};

// A sample's identity across two profiles of one process: addresses, function names, labels.
std::string sample_key(const sample& s, const index& ix) {
  std::string key;
  for (const std::uint64_t id : s.location_ids) {
    const auto l = ix.locations.find(id);
    if (l == ix.locations.end()) continue;
    key += std::to_string(l->second->address);
    for (const line& ln : l->second->lines) {
      const auto f = ix.functions.find(ln.function_id);
      key += '/';
      if (f != ix.functions.end()) key += f->second->name;
    }
    key += '|';
  }
  for (const label& lb : s.labels) {
    key += '\n' + lb.key + '=' + lb.str + '#' + std::to_string(lb.num) + lb.num_unit;
  }
  return key;
}

// Copies `before`'s locations (with their functions and mappings) into `out` on demand.
class importer {
 public:
  importer(const profile& before, profile& out) : from_(before), out_(out) {
    for (const location& l : out.locations) next_location_ = std::max(next_location_, l.id + 1);
    for (const function& f : out.functions) {
      next_function_ = std::max(next_function_, f.id + 1);
      functions_[{f.name, f.system_name, f.filename}] = f.id;
    }
    for (const mapping& m : out.mappings) {
      next_mapping_ = std::max(next_mapping_, m.id + 1);
      mappings_[{m.memory_start, m.filename}] = m.id;
    }
  }

  std::uint64_t location_id(std::uint64_t id) {
    const auto done = locations_.find(id);
    if (done != locations_.end()) return done->second;
    const auto l = from_.locations.find(id);
    if (l == from_.locations.end()) return 0;
    location copy = *l->second;
    copy.id = next_location_++;
    copy.mapping_id = mapping_id(copy.mapping_id);
    for (line& ln : copy.lines) ln.function_id = function_id(ln.function_id);
    out_.locations.push_back(copy);
    locations_[id] = copy.id;
    return copy.id;
  }

 private:
  std::uint64_t function_id(std::uint64_t id) {
    const auto f = from_.functions.find(id);
    if (f == from_.functions.end()) return 0;
    const auto key = std::make_tuple(f->second->name, f->second->system_name, f->second->filename);
    const auto found = functions_.find(key);
    if (found != functions_.end()) return found->second;
    function copy = *f->second;
    copy.id = next_function_++;
    out_.functions.push_back(copy);
    functions_[key] = copy.id;
    return copy.id;
  }

  std::uint64_t mapping_id(std::uint64_t id) {
    const auto m = from_.mappings.find(id);
    if (m == from_.mappings.end()) return 0;
    const auto key = std::make_pair(m->second->memory_start, m->second->filename);
    const auto found = mappings_.find(key);
    if (found != mappings_.end()) return found->second;
    mapping copy = *m->second;
    copy.id = next_mapping_++;
    out_.mappings.push_back(copy);
    mappings_[key] = copy.id;
    return copy.id;
  }

  index from_;
  profile& out_;
  std::uint64_t next_location_ = 1, next_function_ = 1, next_mapping_ = 1;
  std::unordered_map<std::uint64_t, std::uint64_t> locations_;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> functions_;
  std::map<std::pair<std::uint64_t, std::string>, std::uint64_t> mappings_;
};

}  // namespace

profile subtract(const profile& before, const profile& after) {
  if (before.sample_types != after.sample_types) {
    throw std::invalid_argument("cannot subtract profiles with different sample types");
  }
  profile out = after;
  std::unordered_map<std::string, std::size_t> by_key;
  {
    const index ix(out);
    for (std::size_t i = 0; i < out.samples.size(); ++i) {
      by_key.emplace(sample_key(out.samples[i], ix), i);
    }
  }
  const index before_ix(before);
  importer import(before, out);
  std::vector<sample> carried;
  for (const sample& s : before.samples) {
    const auto found = by_key.find(sample_key(s, before_ix));
    if (found != by_key.end()) {
      std::vector<std::int64_t>& values = out.samples[found->second].values;
      for (std::size_t v = 0; v < values.size() && v < s.values.size(); ++v)
        values[v] -= s.values[v];
      continue;
    }
    sample negated = s;
    for (std::int64_t& v : negated.values) v = -v;
    for (std::uint64_t& id : negated.location_ids) id = import.location_id(id);
    carried.push_back(std::move(negated));
  }
  for (sample& s : carried) out.samples.push_back(std::move(s));
  std::erase_if(out.samples, [](const sample& s) {
    return std::all_of(s.values.begin(), s.values.end(), [](std::int64_t v) { return v == 0; });
  });
  return out;
}

}  // namespace leakless::pprof
