// src/pprof/builder.cpp — profile_builder: raw address stacks in, a symbolized pprof profile out.
//
// How it works: samples are kept with their raw stacks until build(). build() then gives each
// distinct address one Location id (in first-seen order, so the output is deterministic), asks
// the resolver for its frames, interns one Function per (name, system name, file, start line) and
// emits one Line per frame, innermost first. Each module that holds at least one location becomes
// a Mapping; the main program is put first (id 1), because pprof takes mapping 1 to be the binary.
// A mapping is marked as symbolized (has_functions) whenever we looked its addresses up, so that
// pprof never tries to re-symbolize from files that may be gone; has_filenames, has_line_numbers
// and has_inline_frames are set when the debug information gave files and lines.
#include "pprof/builder.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace leakless::pprof {

profile_builder::profile_builder(std::vector<value_type> sample_types, value_type period_type,
                                 std::int64_t period) {
  profile_.sample_types = std::move(sample_types);
  profile_.period_type = std::move(period_type);
  profile_.period = period;
}

void profile_builder::set_default_sample_type(std::string type) {
  profile_.default_sample_type = std::move(type);
}

void profile_builder::set_time(std::int64_t time_nanos, std::int64_t duration_nanos) {
  profile_.time_nanos = time_nanos;
  profile_.duration_nanos = duration_nanos;
}

void profile_builder::add_comment(std::string comment) {
  profile_.comments.push_back(std::move(comment));
}

void profile_builder::set_drop_frames(std::string regex) {
  profile_.drop_frames = std::move(regex);
}

void profile_builder::add_sample(std::span<const std::uint64_t> addresses,
                                 std::span<const std::int64_t> values, std::vector<label> labels) {
  stacks_.emplace_back(addresses.begin(), addresses.end());
  profile_.samples.push_back(sample{{}, {values.begin(), values.end()}, std::move(labels)});
}

profile profile_builder::build(const resolver& lookup, const std::vector<stack::module>& modules) {
  // Mappings in the order pprof wants: main program first, then by address.
  std::vector<const stack::module*> used;
  std::unordered_map<const stack::module*, std::uint64_t> mapping_id;
  std::unordered_map<std::uint64_t, std::uint64_t> location_id;  // address -> id
  using function_key = std::tuple<std::string, std::string, std::string, std::int64_t>;
  std::map<function_key, std::uint64_t> function_id;

  struct mapping_flags {
    bool files = false, lines = false, inlines = false;
  };
  std::unordered_map<const stack::module*, mapping_flags> flags;
  std::vector<const stack::module*> location_module;  // parallel to profile_.locations

  for (std::size_t i = 0; i < stacks_.size(); ++i) {
    auto& ids = profile_.samples[i].location_ids;
    ids.reserve(stacks_[i].size());
    for (std::uint64_t address : stacks_[i]) {
      auto [it, inserted] = location_id.try_emplace(address, profile_.locations.size() + 1);
      ids.push_back(it->second);
      if (!inserted) continue;

      location loc;
      loc.id = it->second;
      loc.address = address;
      const stack::module* m = stack::find_module(modules, address);
      if (m != nullptr && !mapping_id.contains(m)) {
        mapping_id.emplace(m, 0);  // numbered below
        used.push_back(m);
      }
      const symbolized& sym = lookup(address);
      for (const frame& f : sym.frames) {
        if (f.function.empty() && f.system_name.empty()) continue;
        function_key key{f.function, f.system_name, f.file, f.start_line};
        auto [fit, new_function] = function_id.try_emplace(key, profile_.functions.size() + 1);
        if (new_function) {
          profile_.functions.push_back(
              function{fit->second, f.function, f.system_name, f.file, f.start_line});
        }
        loc.lines.push_back(line{fit->second, f.line});
        if (m != nullptr) {
          auto& fl = flags[m];
          fl.files |= !f.file.empty();
          fl.lines |= f.line != 0;
        }
      }
      if (m != nullptr && loc.lines.size() > 1) flags[m].inlines = true;
      location_module.push_back(m);
      profile_.locations.push_back(std::move(loc));
    }
  }
  stacks_.clear();

  std::stable_partition(used.begin(), used.end(),
                        [](const stack::module* m) { return m->main_program; });
  for (const stack::module* m : used) {
    std::uint64_t id = profile_.mappings.size() + 1;
    mapping_id[m] = id;
    const mapping_flags& fl = flags[m];
    mapping out;
    out.id = id;
    out.memory_start = m->start;
    out.memory_limit = m->limit;
    out.file_offset = m->file_offset;
    out.filename = m->path;
    out.build_id = m->build_id;
    out.has_functions = true;
    out.has_filenames = fl.files;
    out.has_line_numbers = fl.lines;
    // Inline frames were resolved wherever the debug information was read.
    out.has_inline_frames = fl.files || fl.inlines;
    profile_.mappings.push_back(std::move(out));
  }
  for (std::size_t i = 0; i < profile_.locations.size(); ++i) {
    if (location_module[i] != nullptr)
      profile_.locations[i].mapping_id = mapping_id[location_module[i]];
  }
  return std::move(profile_);
}

}  // namespace leakless::pprof
