// tools/leakless/analysis.cpp — loading a series of heap profiles and finding the call sites that
// leak; the method is described at the top of analysis.hpp.
//
// How it works: every snapshot's samples are added into a table keyed by the symbolized stack, one
// live-bytes value per snapshot and site. Sites that cannot pass the growth threshold (their range
// is smaller than it) are dropped before the O(n²) statistics, so a profile with thousands of
// steady sites costs little. The survivors get the Theil–Sen slope, the Mann–Kendall confidence,
// the residual spread and the recent-half slope, and the thresholds in leak_options decide.
#include "analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

namespace leakless::cli {
namespace {

namespace fs = std::filesystem;

bool looks_like_profile_name(const std::string& name) {
  const auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".tmp")) return false;  // a profile still being written (renamed when complete)
  return ends_with(".pb.gz") || ends_with(".pprof") || name.find(".heap") != std::string::npos;
}

std::int64_t file_time_nanos(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

// The part of a demangled name that says what it is: "std::vector<int>::push_back" out of
// "void std::vector<int>::push_back(int const&) const" (return type and parameters dropped).
std::string_view qualified_name(std::string_view name) {
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') {
      ++depth;
    } else if (c == '>') {
      --depth;
    } else if (depth == 0 && c == '(' && i > 0) {
      return name.substr(start, i - start);
    } else if (depth == 0 && c == ' ') {
      // "operator new" keeps its space; a return type before the name does not.
      if (name.substr(start, i - start).ends_with("operator")) continue;
      start = i + 1;
    }
  }
  return name.substr(start);
}

std::string basename_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct site {
  std::vector<frame> frames;
  std::vector<double> bytes;                // one per snapshot
  double bytes_seen = 0, objects_seen = 0;  // summed over the snapshots that count objects
};

// The bytes one sample of a site stands for: an object of size s is sampled with probability
// 1 - e^(-s/period) and then counts s / (1 - e^(-s/period)) (Go's scaleHeapSample), about one
// period for small objects and about s for large ones. A site's live bytes, L, are then about L / w
// samples, a Poisson count, so their sampling variance is about L * w.
double bytes_per_sample(const site& s, std::int64_t period) {
  const double rate = static_cast<double>(period);
  if (rate <= 0) return 0;
  if (s.objects_seen <= 0 || s.bytes_seen <= 0) return rate;
  const double size = s.bytes_seen / s.objects_seen;
  return size / -std::expm1(-size / rate);
}

std::string site_key(const std::vector<frame>& frames) {
  std::string key;
  for (const frame& f : frames) {
    key += f.function;
    key += '\x1f';
    key += f.file;
    key += '\x1f';
    key += std::to_string(f.line);
    key += '\x1e';
  }
  return key;
}

// Standard deviation estimated from the median absolute deviation (robust to outliers).
double robust_spread(std::vector<double> v) {
  const double centre = median(v);
  for (double& r : v) r = std::fabs(r - centre);
  return 1.4826 * median(std::move(v));
}

// Greatest drop below an earlier peak.
double max_drawdown(const std::vector<double>& y) {
  double peak = -INFINITY;
  double drop = 0;
  for (double v : y) {
    peak = std::max(peak, v);
    drop = std::max(drop, peak - v);
  }
  return drop;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", share * 100);
  return buf;
}

}  // namespace

pprof::profile load_profile(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) throw std::runtime_error(path + ": cannot read the file");
  return decode_profile(bytes, path);
}

pprof::profile decode_profile(const std::string& bytes, const std::string& source) {
  if (bytes.empty()) throw std::runtime_error(source + ": empty, not a pprof profile");
  pprof::profile p;
  try {
    p = pprof::decode(bytes);
  } catch (const pprof::decode_error& e) {
    throw std::runtime_error(source + ": not a valid pprof profile: " + e.what());
  } catch (const std::bad_alloc&) {
    throw std::runtime_error(source + ": not a valid pprof profile: too large to decode");
  }
  if (p.sample_types.empty()) {
    throw std::runtime_error(source + ": not a pprof profile (it declares no sample types)");
  }
  for (const pprof::sample& s : p.samples) {
    if (s.values.size() != p.sample_types.size()) {
      throw std::runtime_error(source + ": not a valid pprof profile: a sample has " +
                               std::to_string(s.values.size()) + " values for " +
                               std::to_string(p.sample_types.size()) + " sample types");
    }
  }
  return p;
}

std::vector<heap_snapshot> load_snapshots(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw std::runtime_error(path + ": no such file or directory");
    if (!fs::is_directory(status)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> inside;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file() && looks_like_profile_name(e.path().filename().string())) {
        inside.push_back(e.path().string());
      }
    }
    if (ec) throw std::runtime_error(path + ": cannot list the directory: " + ec.message());
    if (inside.empty()) {
      throw std::runtime_error(path +
                               ": no profiles (*.pb.gz, *.pprof, *.heap*) in this directory");
    }
    std::sort(inside.begin(), inside.end());
    files.insert(files.end(), inside.begin(), inside.end());
  }
  std::vector<heap_snapshot> out;
  out.reserve(files.size());
  for (const std::string& file : files) {
    heap_snapshot s{file, 0, load_profile(file)};
    s.time_nanos = s.profile.time_nanos != 0 ? s.profile.time_nanos : file_time_nanos(file);
    out.push_back(std::move(s));
  }
  std::stable_sort(out.begin(), out.end(), [](const heap_snapshot& a, const heap_snapshot& b) {
    return a.time_nanos < b.time_nanos;
  });
  return out;
}

profile_index::profile_index(const pprof::profile& p) {
  for (const pprof::location& l : p.locations) locations_.emplace(l.id, &l);
  for (const pprof::function& f : p.functions) functions_.emplace(f.id, &f);
  for (const pprof::mapping& m : p.mappings) mappings_.emplace(m.id, &m);
}

const pprof::location* profile_index::location(std::uint64_t id) const {
  const auto it = locations_.find(id);
  return it == locations_.end() ? nullptr : it->second;
}

std::vector<frame> profile_index::frames(const pprof::location& loc) const {
  std::string mapping;
  std::uint64_t offset = loc.address;
  if (const auto m = mappings_.find(loc.mapping_id); m != mappings_.end()) {
    mapping = m->second->filename;
    offset = loc.address - m->second->memory_start + m->second->file_offset;
  }
  std::vector<frame> out;
  for (const pprof::line& l : loc.lines) {
    frame f;
    f.mapping = mapping;
    f.line = l.line;
    if (const auto fn = functions_.find(l.function_id); fn != functions_.end()) {
      f.function = fn->second->name.empty() ? fn->second->system_name : fn->second->name;
      f.file = fn->second->filename;
    }
    out.push_back(std::move(f));
  }
  if (out.empty()) {  // unsymbolized: name it by module and offset, which survive a restart
    char buf[32];
    std::snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(offset));
    out.push_back(
        {(mapping.empty() ? std::string("?") : basename_of(mapping)) + buf, "", 0, mapping});
  }
  return out;
}

std::vector<frame> profile_index::frames(const pprof::sample& s) const {
  std::vector<frame> out;
  for (std::uint64_t id : s.location_ids) {
    if (const pprof::location* loc = location(id)) {
      std::vector<frame> f = frames(*loc);
      out.insert(out.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
    }
  }
  return out;
}

bool is_own_code(const frame& f) {
  if (f.file.starts_with("/usr/include/c++/") ||
      f.file.find("/include/c++/") != std::string::npos) {
    return false;
  }
  const std::string module = basename_of(f.mapping);
  for (std::string_view lib : {"libc.so", "libc-", "libstdc++", "libleakless", "ld-linux",
                               "libm.so", "libgcc_s", "libpthread"}) {
    if (module.starts_with(lib)) return false;
  }
  const std::string_view name = qualified_name(f.function);
  for (std::string_view prefix :
       {"std::", "__gnu_cxx::", "__cxxabiv1::", "leakless::", "operator new", "operator delete",
        "runtime.", "__libc_", "__GI_", "_dl_", "__cxa_", "__interceptor_"}) {
    if (name.starts_with(prefix)) return false;
  }
  for (std::string_view alloc :
       {"malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "strdup", "strndup", "_Znwm", "_Znam",
        "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t"}) {
    if (name == alloc) return false;
  }
  return true;
}

std::size_t naming_frame(const std::vector<frame>& stack) {
  for (std::size_t i = 0; i < stack.size(); ++i) {
    if (is_own_code(stack[i])) return i;
  }
  return 0;
}

std::optional<std::size_t> find_sample_index(const pprof::profile& p, const std::string& type) {
  for (std::size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].type == type) return i;
  }
  return std::nullopt;
}

std::size_t sample_index(const pprof::profile& p, const std::string& type) {
  if (const std::optional<std::size_t> i = find_sample_index(p, type)) return *i;
  std::string have;
  for (const pprof::value_type& t : p.sample_types) have += (have.empty() ? "" : ", ") + t.type;
  throw std::runtime_error("no sample type '" + type + "' (the profile has: " + have + ")");
}

namespace {

// The object count that goes with a bytes sample type (inuse_space: inuse_objects), if the profile
// has it.
std::optional<std::size_t> objects_index_for(const pprof::profile& p, const std::string& type) {
  constexpr std::string_view space = "_space";
  if (!type.ends_with(space)) return std::nullopt;
  return find_sample_index(p, type.substr(0, type.size() - space.size()) + "_objects");
}

}  // namespace

double theil_sen_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = std::min(x.size(), y.size());
  if (n < 2) return 0;
  const auto [lo, hi] = std::minmax_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
  const double min_gap = (*hi - *lo) / 2;
  std::vector<double> slopes;
  slopes.reserve(n * (n - 1) / 2);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double dx = x[j] - x[i];
      if (dx != 0 && std::fabs(dx) >= min_gap) slopes.push_back((y[j] - y[i]) / dx);
    }
  }
  return median(std::move(slopes));
}

double mann_kendall_confidence(const std::vector<double>& y) {
  const std::size_t n = y.size();
  if (n < 2) return 0.5;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) s += (y[j] > y[i]) - (y[j] < y[i]);
  }
  std::map<double, double> ties;
  for (double v : y) ties[v] += 1;
  const double nd = static_cast<double>(n);
  double var = nd * (nd - 1) * (2 * nd + 5);
  for (const auto& [value, t] : ties) var -= t * (t - 1) * (2 * t + 5);
  var /= 18;
  if (var <= 0 || s == 0) return 0.5;
  const double z = (s > 0 ? s - 1 : s + 1) / std::sqrt(var);  // continuity correction
  return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = std::fabs(bytes);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%s%.0f B", bytes < 0 ? "-" : "", v);
  } else {
    std::snprintf(buf, sizeof buf, "%s%.1f %s", bytes < 0 ? "-" : "", v, units[u]);
  }
  return buf;
}

namespace {

// Whether growth seen over the whole window has stopped: the recent half's slope is well under the
// whole window's, by more than chance explains. A sampled leak grows in steps of one sampling
// period that arrive at random (a Poisson process), so a slow leak may show few steps in the
// recent half by chance; it is called stopped only when the shortfall exceeds plateau_z standard
// deviations of that count, plus the recent half's own churn (the spread around its trend).
bool stopped_growing(const std::vector<double>& x, const std::vector<double>& y, double half,
                     double slope, std::int64_t period, const leak_options& opt) {
  std::vector<double> rx, ry;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] >= half) {
      rx.push_back(x[i]);
      ry.push_back(y[i]);
    }
  }
  if (rx.size() < 3) return false;
  const double recent_slope = theil_sen_slope(rx, ry);
  if (recent_slope >= opt.plateau_ratio * slope) return false;
  const double span = rx.back() - rx.front();
  const double expected = slope * span;     // growth had it gone on
  const double seen = recent_slope * span;  // growth it had
  const double unit = period > 0 ? static_cast<double>(period) : 1.0;
  std::vector<double> residuals(rx.size());
  for (std::size_t i = 0; i < rx.size(); ++i) residuals[i] = ry[i] - recent_slope * rx[i];
  const double spread = robust_spread(residuals);
  const double sd = std::sqrt(std::max(expected, 0.0) * unit + 2 * spread * spread);
  return expected - seen > opt.plateau_z * sd;
}

}  // namespace

leak_analysis analyze_leaks(const std::vector<heap_snapshot>& series, const leak_options& opt) {
  leak_analysis out;
  out.snapshots = series.size();
  if (series.empty()) return out;

  const std::size_t n = series.size();
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(series[i].time_nanos - series.front().time_nanos) / 1e9;
  }
  out.duration_seconds = x.back() - x.front();

  std::unordered_map<std::string, site> sites;
  std::vector<double> total(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const pprof::profile& p = series[i].profile;
    std::size_t index = 0;
    try {
      index = sample_index(p, opt.sample_type);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(series[i].source + ": not a heap profile: " + e.what());
    }
    if (p.period_type.type == "space" && p.period > 0) out.sample_period = p.period;
    const std::optional<std::size_t> objects_index = objects_index_for(p, opt.sample_type);
    const profile_index idx(p);
    for (const pprof::sample& s : p.samples) {
      const double v = static_cast<double>(s.values[index]);
      if (v == 0) continue;
      std::vector<frame> frames = idx.frames(s);
      site& entry = sites[site_key(frames)];
      if (entry.bytes.empty()) {
        entry.frames = std::move(frames);
        entry.bytes.assign(n, 0);
      }
      entry.bytes[i] += v;
      total[i] += v;
      if (objects_index) {
        entry.bytes_seen += v;
        entry.objects_seen += static_cast<double>(s.values[*objects_index]);
      }
    }
  }
  out.call_sites = sites.size();
  for (std::size_t i = 0; i < n; ++i) out.total_inuse.push_back({x[i], total[i]});
  out.total_growth_bytes_per_min = theil_sen_slope(x, total) * 60;
  if (n < opt.min_snapshots || out.duration_seconds <= 0) return out;

  const double min_growth = opt.min_growth_samples * static_cast<double>(out.sample_period);
  const double half = x.front() + out.duration_seconds / 2;  // start of the recent half
  for (auto& [key, s] : sites) {
    const auto [lo, hi] = std::minmax_element(s.bytes.begin(), s.bytes.end());
    if (*hi - *lo < min_growth || *hi == *lo) continue;  // cannot have grown enough

    const double slope = theil_sen_slope(x, s.bytes);  // bytes per second
    const double growth = slope * out.duration_seconds;
    if (slope <= 0 || growth < min_growth) continue;
    const double confidence = mann_kendall_confidence(s.bytes);
    if (confidence < opt.min_confidence) continue;

    std::vector<double> residuals(n);
    for (std::size_t i = 0; i < n; ++i) residuals[i] = s.bytes[i] - slope * x[i];
    const double spread = robust_spread(residuals);
    if (growth < opt.noise_factor * spread) continue;

    // A site that drops on the way replaces its objects, so its start and end levels are both
    // fresh draws of its samples, and a small steady site can rise by chance over a short run, with
    // a rank test that looks confident (it takes every snapshot for an independent draw). Its rise
    // must stand out of the sampling noise of both levels. (A site that never drops keeps its
    // samples; its rise is the count of samples it gained, which min_growth_samples judges.)
    if (max_drawdown(s.bytes) > 0) {
      const double start_level = std::max(median(residuals), 0.0);
      const double noise =
          std::sqrt((2 * start_level + growth) * bytes_per_sample(s, out.sample_period));
      if (growth < opt.sampling_z * noise) continue;
    }

    if (stopped_growing(x, s.bytes, half, slope, out.sample_period, opt)) continue;

    suspect sus;
    const std::size_t name = naming_frame(s.frames);
    if (!s.frames.empty()) {
      sus.function = s.frames[name].function;
      sus.file = s.frames[name].file;
      sus.line = s.frames[name].line;
    }
    sus.growth_bytes_per_min = slope * 60;
    sus.confidence = confidence;
    sus.stack = s.frames;
    for (std::size_t i = 0; i < n; ++i) sus.inuse.push_back({x[i], s.bytes[i]});
    sus.first_bytes = s.bytes.front();
    sus.last_bytes = s.bytes.back();
    sus.released = max_drawdown(s.bytes) >
                   std::max(2.0 * static_cast<double>(out.sample_period), 0.1 * growth);
    out.suspects.push_back(std::move(sus));
  }

  double all_growth = std::max(out.total_growth_bytes_per_min, 0.0);
  double suspects_growth = 0;
  for (const suspect& s : out.suspects) suspects_growth += s.growth_bytes_per_min;
  all_growth = std::max(all_growth, suspects_growth);
  for (suspect& s : out.suspects) {
    s.share_of_growth = all_growth > 0 ? std::min(1.0, s.growth_bytes_per_min / all_growth) : 0;
    s.verdict = "grows " + human_bytes(s.growth_bytes_per_min) + "/min, " +
                (s.released ? "partly released" : "never released") + ", " +
                percent(s.share_of_growth) + " of growth";
  }
  std::sort(out.suspects.begin(), out.suspects.end(), [](const suspect& a, const suspect& b) {
    if (a.growth_bytes_per_min != b.growth_bytes_per_min) {
      return a.growth_bytes_per_min > b.growth_bytes_per_min;
    }
    return a.function < b.function;
  });
  return out;
}

nlohmann::json suspect_json(const suspect& s) {
  nlohmann::json stack = nlohmann::json::array();
  for (const frame& f : s.stack) {
    stack.push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}});
  }
  nlohmann::json inuse = nlohmann::json::array();
  for (const series_point& p : s.inuse)
    inuse.push_back({{"seconds", p.seconds}, {"bytes", p.bytes}});
  return {{"function", s.function},
          {"file", s.file},
          {"line", s.line},
          {"growth_bytes_per_min", s.growth_bytes_per_min},
          {"confidence", s.confidence},
          {"share_of_growth", s.share_of_growth},
          {"verdict", s.verdict},
          {"released", s.released},
          {"first_bytes", s.first_bytes},
          {"last_bytes", s.last_bytes},
          {"stack", stack},
          {"inuse", inuse}};
}

}  // namespace leakless::cli
