// tools/leakless/profile_view.cpp — pprof's node tables and number formatting; see the header.
//
// How it works: the code follows google/pprof's internal/graph (newGraph: flat to the leaf, cum
// once per node per sample), internal/report (selectOutputUnit, the text report's labels and
// rows), internal/measurement (unit scaling, percentages) and profile/prune.go (drop_frames),
// so that the same file gives the same figures in both tools.
#include "profile_view.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <regex>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "analysis.hpp"

namespace leakless::cli {
namespace {

struct unit {
  const char* name;
  std::vector<std::string> aliases;
  double factor;
};

struct unit_type {
  std::vector<unit> units;
  unit default_unit;
};

const std::vector<unit_type>& unit_types() {
  static const std::vector<unit_type> types = {
      {{{"B", {"b", "byte"}, 1},
        {"kB", {"kb", "kbyte", "kilobyte"}, 1024.0},
        {"MB", {"mb", "mbyte", "megabyte"}, 1024.0 * 1024},
        {"GB", {"gb", "gbyte", "gigabyte"}, 1024.0 * 1024 * 1024},
        {"TB", {"tb", "tbyte", "terabyte"}, 1024.0 * 1024 * 1024 * 1024},
        {"PB", {"pb", "pbyte", "petabyte"}, 1024.0 * 1024 * 1024 * 1024 * 1024}},
       {"B", {"b", "byte"}, 1}},
      {{{"ns", {"ns", "nanosecond"}, 1},
        {"us", {"\xce\xbcs", "us", "microsecond"}, 1e3},
        {"ms", {"ms", "millisecond"}, 1e6},
        {"s", {"s", "sec", "second"}, 1e9},
        {"hrs", {"hour", "hr"}, 3600e9}},
       {"s", {}, 1e9}},
  };
  return types;
}

const unit* sniff_unit(const unit_type& type, std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.size() > 2 && name.back() == 's') name.pop_back();
  for (const unit& u : type.units) {
    if (std::find(u.aliases.begin(), u.aliases.end(), name) != u.aliases.end()) return &u;
  }
  return nullptr;
}

// measurement.Scale.
std::pair<double, std::string> scale(std::int64_t value, const std::string& from,
                                     const std::string& to) {
  if (value < 0 && -value > 0) {
    auto [v, u] = scale(-value, from, to);
    return {-v, u};
  }
  for (const unit_type& type : unit_types()) {
    const unit* f = sniff_unit(type, from);
    if (f == nullptr) continue;
    const double v = static_cast<double>(value) * f->factor;
    if (to == "minimum" || to == "auto") {
      double best = 0;
      std::string name;
      for (const unit& u : type.units) {
        if (u.factor >= best && v / u.factor >= 1.0) {
          best = u.factor;
          name = u.name;
        }
      }
      if (best == 0) return {v / type.default_unit.factor, type.default_unit.name};
      return {v / best, name};
    }
    const unit* t = sniff_unit(type, to);
    if (t == nullptr) return {v / type.default_unit.factor, type.default_unit.name};
    return {v / t->factor, t->name};
  }
  if (to == "count" || to == "sample" || to == "unit" || to == "minimum" || to == "auto") {
    return {static_cast<double>(value), ""};
  }
  return {static_cast<double>(value), to};
}

// profile/prune.go's simplifyFunc: the name without its argument list.
std::string simplify_function(const std::string& name) {
  std::string n = name;
  if (!n.empty() && n[0] == '.') n.erase(0, 1);
  for (std::size_t i = n.find('('); i != std::string::npos; i = n.find('(', i + 1)) {
    if (n.compare(i, 20, "(anonymous namespace)") == 0 ||
        (i >= 8 && n.compare(i - 8, 10, "operator()") == 0)) {
      continue;
    }
    return n.substr(0, i);
  }
  return n;
}

// symbolizer.go's removeMatching: drops nested start..end groups.
std::string remove_matching(std::string name, char start, char end) {
  int nesting = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == start) {
      if (++nesting == 1) first = i;
    } else if (name[i] == end) {
      if (--nesting < 0) return name;  // mismatch: leave it
      if (nesting == 0) {
        name.erase(first, i - first + 1);
        i = first - 1;  // wraps to first on ++i (first may be 0)
      }
    }
  }
  return name;
}

bool looks_like_demangled_cplusplus(const std::string& name) {
  if (name.find(".<") != std::string::npos || name.find("]).") != std::string::npos) return false;
  return name.find_first_of("<>[]") != std::string::npos || name.find("::") != std::string::npos;
}

}  // namespace

void simplify_names_as_pprof(pprof::profile& p) {
  for (pprof::function& f : p.functions) {
    if (!f.name.empty() && f.system_name != f.name) continue;  // already demangled
    std::string name = f.system_name;
    if (name.starts_with("_Z")) {
      int status = 0;
      char* demangled = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
      if (status == 0 && demangled != nullptr) name = demangled;
      std::free(demangled);
    }
    if (looks_like_demangled_cplusplus(name)) {
      name = remove_matching(remove_matching(name, '(', ')'), '<', '>');
    }
    f.name = name;
  }
}

std::size_t choose_sample_index(const pprof::profile& p, const std::string& requested) {
  if (p.sample_types.empty()) throw std::runtime_error("the profile has no sample types");
  std::string want = requested.empty() ? p.default_sample_type : requested;
  if (want.empty()) return p.sample_types.size() - 1;
  if (std::all_of(want.begin(), want.end(), [](char c) { return std::isdigit(c) != 0; })) {
    const unsigned long i = std::stoul(want);
    if (i < p.sample_types.size()) return i;
    throw std::runtime_error("sample index " + want + " is out of range (the profile has " +
                             std::to_string(p.sample_types.size()) + " sample types)");
  }
  return sample_index(p, want);
}

void prune_dropped_frames(pprof::profile& p) {
  // libstdc++'s regex matcher recurses per character: a hostile profile's huge pattern or names
  // must not exhaust the stack, so those are not matched (the frames are shown).
  constexpr std::size_t max_pattern = 4096, max_name = 4096;
  if (p.drop_frames.empty() || p.drop_frames.size() > max_pattern ||
      p.keep_frames.size() > max_pattern) {
    return;
  }
  std::regex drop, keep;
  try {
    drop = std::regex("^(" + p.drop_frames + ")$", kLinearRegex);
    if (!p.keep_frames.empty()) keep = std::regex("^(" + p.keep_frames + ")$", kLinearRegex);
  } catch (const std::regex_error&) {
    return;  // not a pattern we can read: show every frame
  }
  std::unordered_map<std::uint64_t, std::string> names;
  for (const pprof::function& f : p.functions) names.emplace(f.id, f.name);
  std::unordered_set<std::uint64_t> prune, prune_beneath;
  for (pprof::location& loc : p.locations) {
    std::ptrdiff_t i = static_cast<std::ptrdiff_t>(loc.lines.size()) - 1;
    for (; i >= 0; --i) {
      const auto name = names.find(loc.lines[static_cast<std::size_t>(i)].function_id);
      if (name == names.end() || name->second.empty()) continue;
      if (name->second.size() > max_name) continue;
      const std::string simple = simplify_function(name->second);
      bool dropped = false;
      try {
        dropped = std::regex_match(simple, drop) &&
                  (p.keep_frames.empty() || !std::regex_match(simple, keep));
      } catch (const std::regex_error&) {  // too complex to match: keep the frame
      }
      if (dropped) break;
    }
    if (i < 0) continue;
    prune_beneath.insert(loc.id);
    if (static_cast<std::size_t>(i) == loc.lines.size() - 1) {
      prune.insert(loc.id);
    } else {
      loc.lines.erase(loc.lines.begin(), loc.lines.begin() + i + 1);
    }
  }
  for (pprof::sample& s : p.samples) {
    bool found_user = false;
    for (std::ptrdiff_t i = static_cast<std::ptrdiff_t>(s.location_ids.size()) - 1; i >= 0; --i) {
      const std::uint64_t id = s.location_ids[static_cast<std::size_t>(i)];
      if (!prune.count(id) && !prune_beneath.count(id)) {
        found_user = true;
        continue;
      }
      if (!found_user) continue;
      s.location_ids.erase(s.location_ids.begin(),
                           s.location_ids.begin() + i + (prune.count(id) ? 1 : 0));
      break;
    }
  }
}

void node_table::add(const pprof::profile& p, std::size_t index, std::int64_t sign) {
  const profile_index idx(p);
  std::unordered_map<std::uint64_t, std::int64_t> start_lines;
  for (const pprof::function& f : p.functions) start_lines.emplace(f.id, f.start_line);
  std::set<std::tuple<std::string, std::string, std::int64_t>> seen;
  for (const pprof::sample& s : p.samples) {
    if (index >= s.values.size()) continue;
    const std::int64_t v = s.values[index] * sign;
    if (v == 0) continue;
    total_ += std::abs(v);
    if (sign < 0) base_total_ += std::abs(v);
    seen.clear();
    bool leaf = true;
    for (std::uint64_t id : s.location_ids) {
      const pprof::location* loc = idx.location(id);
      if (loc == nullptr) continue;
      std::vector<frame> frames = idx.frames(*loc);
      if (loc->lines.empty()) {  // unsymbolized: pprof shows the module, "[libfoo.so]"
        const std::string& module = frames[0].mapping;
        frames[0].function =
            module.empty() ? "<unknown>" : "[" + module.substr(module.rfind('/') + 1) + "]";
      }
      for (std::size_t k = 0; k < frames.size(); ++k) {
        const frame& f = frames[k];
        const std::int64_t line = granularity_ == granularity::lines ? f.line : 0;
        auto key = std::make_tuple(f.function, f.file, line);
        node_value& n = nodes_[key];
        if (n.name.empty()) {
          n.name = f.function;
          n.file = f.file;
          n.line = line;
          if (k < loc->lines.size()) {
            const auto start = start_lines.find(loc->lines[k].function_id);
            if (start != start_lines.end()) n.start_line = start->second;
          }
        }
        if (leaf) n.flat += v;
        leaf = false;
        if (seen.insert(std::move(key)).second) n.cum += v;
      }
    }
  }
}

std::vector<node_value> node_table::by_flat() const {
  std::vector<node_value> out;
  for (const auto& [key, n] : nodes_) {
    if (n.flat != 0 || n.cum != 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end(), [](const node_value& a, const node_value& b) {
    if (std::abs(a.flat) != std::abs(b.flat)) return std::abs(a.flat) > std::abs(b.flat);
    if (a.name != b.name) return a.name < b.name;
    if (std::abs(a.cum) != std::abs(b.cum)) return std::abs(a.cum) > std::abs(b.cum);
    if (a.file != b.file) return a.file < b.file;
    return a.line < b.line;
  });
  return out;
}

std::string scaled_label(std::int64_t value, const std::string& from_unit,
                         const std::string& to_unit) {
  const auto [v, u] = scale(value, from_unit, to_unit);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string text = buf;
  if (text.size() > 3 && text.compare(text.size() - 3, 3, ".00") == 0) text.resize(text.size() - 3);
  if (text == "0" || text == "-0") return "0";
  return text + u;
}

std::string output_unit(const std::vector<node_value>& shown, std::int64_t total,
                        const std::string& sample_unit) {
  if (shown.empty()) return sample_unit;
  std::int64_t min_value = 0;
  for (const node_value& n : shown) {
    std::int64_t v = std::abs(n.flat);
    if (v == 0) v = std::abs(n.cum);
    if (v > 0 && (min_value == 0 || v < min_value)) min_value = v;
  }
  const std::int64_t max_value = total;
  if (min_value == 0) min_value = max_value;
  const std::string min_unit = scale(min_value, sample_unit, "minimum").second;
  const std::string max_unit = scale(max_value, sample_unit, "minimum").second;
  std::string chosen = min_unit;
  if (min_unit != max_unit && min_value * 100 < max_value) {
    chosen = scale(100 * min_value, sample_unit, "minimum").second;
  }
  return chosen.empty() ? sample_unit : chosen;
}

std::string percentage(std::int64_t value, std::int64_t total) {
  double ratio = 0;
  if (total != 0) ratio = std::fabs(static_cast<double>(value) / static_cast<double>(total)) * 100;
  char buf[64];
  if (ratio >= 99.95 && ratio <= 100.05) return "  100%";
  if (ratio >= 1.0) {
    std::snprintf(buf, sizeof buf, "%5.2f%%", ratio);
  } else {
    std::snprintf(buf, sizeof buf, "%5.2g%%", ratio);
  }
  return buf;
}

std::string render_top(const node_table& table, const std::string& sample_unit,
                       const table_options& options) {
  const std::vector<node_value> all = table.by_flat();
  const std::int64_t total = table.total();
  std::int64_t signed_sum = 0;
  for (const node_value& n : all) signed_sum += n.flat;
  const auto cutoff =
      std::llabs(static_cast<long long>(static_cast<double>(signed_sum) * options.node_fraction));
  std::vector<node_value> kept;
  for (const node_value& n : all) {
    if (cutoff == 0 || std::llabs(n.cum) >= cutoff) kept.push_back(n);
  }
  const std::size_t dropped = all.size() - kept.size();
  const std::size_t before_count = kept.size();
  if (options.node_count > 0 && kept.size() > options.node_count) kept.resize(options.node_count);

  const std::string unit = output_unit(kept, total, sample_unit);
  const auto format = [&](std::int64_t v) { return scaled_label(v, sample_unit, unit); };
  std::int64_t flat_sum = 0;
  for (const node_value& n : kept) flat_sum += n.flat;
  std::string shown_pct = percentage(flat_sum, total);
  shown_pct.erase(0, shown_pct.find_first_not_of(' '));

  std::string out = "Showing nodes accounting for " + format(flat_sum) + ", " + shown_pct + " of " +
                    format(total) + " total\n";
  if (total != 0 && dropped > 0) {
    const auto drop_value = static_cast<std::int64_t>(
        std::llabs(static_cast<long long>(static_cast<double>(total) * options.node_fraction)));
    out += "Dropped " + std::to_string(dropped) + (dropped > 1 ? " nodes" : " node") +
           " (cum <= " + format(drop_value) + ")\n";
  }
  if (total != 0 && !kept.empty() && kept.size() < before_count) {
    out += "Showing top " + std::to_string(kept.size()) + " nodes out of " +
           std::to_string(before_count) + "\n";
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%10s %5s%% %5s%% %10s %5s%%\n", "flat", "flat", "sum", "cum",
                "cum");
  out += buf;
  std::int64_t running = 0;
  for (const node_value& n : kept) {
    running += n.flat;
    std::snprintf(buf, sizeof buf, "%10s %s %s %10s %s  ", format(n.flat).c_str(),
                  percentage(n.flat, total).c_str(), percentage(running, total).c_str(),
                  format(n.cum).c_str(), percentage(n.cum, total).c_str());
    out += buf;
    out += n.name + "\n";
  }
  return out;
}

std::string top_report(pprof::profile p, const pprof::profile* base,
                       const std::string& sample_index, const table_options& options) {
  const std::size_t index = choose_sample_index(p, sample_index);
  const pprof::value_type type = p.sample_types[index];
  simplify_names_as_pprof(p);
  prune_dropped_frames(p);
  node_table table(node_table::granularity::functions);
  table.add(p, index);
  if (base != nullptr) {
    pprof::profile b = *base;
    const std::size_t base_index = cli::sample_index(b, type.type);
    simplify_names_as_pprof(b);
    prune_dropped_frames(b);
    table.add(b, base_index, -1);
    // pprof merges the two: the earlier time is the report's.
    if (b.time_nanos != 0 && (p.time_nanos == 0 || b.time_nanos < p.time_nanos)) {
      p.time_nanos = b.time_nanos;
    }
  }
  return profile_header(p, type.type) + render_top(table, type.unit, options);
}

std::string profile_header(const pprof::profile& p, const std::string& sample_type) {
  std::string out;
  if (!p.mappings.empty() && !p.mappings[0].filename.empty()) {
    const std::string& f = p.mappings[0].filename;
    out += "File: " + f.substr(f.rfind('/') + 1) + "\n";
  }
  if (!p.mappings.empty() && !p.mappings[0].build_id.empty()) {
    out += "Build ID: " + p.mappings[0].build_id + "\n";
  }
  for (const std::string& c : p.comments) {
    if (!c.starts_with("#")) out += c + "\n";
  }
  out += "Type: " + sample_type + "\n";
  if (p.time_nanos != 0) {
    const std::time_t t = static_cast<std::time_t>(p.time_nanos / 1'000'000'000);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char date[64], clock[32];
    std::strftime(date, sizeof date, "%b %e, %Y", &tm);
    std::string d = date;
    if (const std::size_t dbl = d.find("  "); dbl != std::string::npos) d.erase(dbl, 1);
    const int hour = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
    std::snprintf(clock, sizeof clock, "%d:%02d%s", hour, tm.tm_min, tm.tm_hour < 12 ? "am" : "pm");
    out += "Time: " + d + " at " + clock + " (" + (tm.tm_zone ? tm.tm_zone : "") + ")\n";
  }
  return out;
}

}  // namespace leakless::cli
