// tools/leakless/analysis.hpp — the leak hunter: which call sites' live memory keeps growing over a
// series of heap profiles.
//
// How it works: load_snapshots() decodes every profile of a series and sorts them by the time
// they were taken. analyze_leaks() groups every profile's samples by call site — the symbolized
// stack (function, file and line of every frame), not addresses, which differ between processes —
// and builds each site's live bytes (inuse_space) over time. Each site's trend is estimated with
// robust statistics: the Theil–Sen slope (the median of the slopes between pairs of snapshots
// at least half the window apart, so a one-off spike or a few wild points do not move it; see
// theil_sen_slope) and the Mann–Kendall rank test, whose one-sided confidence that the series rises
// is the suspect's `confidence`. A site is named a suspect only when
//   - there are enough snapshots (options.min_snapshots),
//   - the rise is significant (confidence >= options.min_confidence),
//   - the growth over the window is large against sampling noise: a sampled heap profile counts
//     live memory in units of about one sampling period (each sample stands for ~period bytes), so
//     the growth must exceed options.min_growth_samples periods, and it must exceed
//     options.noise_factor times the spread of the site's own residuals around the trend line
//     (steady churn moves a site up and down; it does not make it grow); a site that drops on
//     the way (it replaces its objects) must also rise by options.sampling_z standard deviations
//     of the sampling noise of its start and end levels (live bytes are a Poisson count of
//     samples; see bytes_per_sample), and
//   - it is still growing: a site whose slope over the recent half of the window is under
//     options.plateau_ratio of the whole window's, by more than sampling noise explains
//     (options.plateau_z standard deviations), has stopped — a cache that filled up and stays
//     full is not a leak.
// Suspects are ranked by growth rate, most first. Each is named by the first frame of the
// program's own code (frames of the C++ standard library, libc, the Go runtime and leakless itself
// are skipped for the name; see is_own_code), while the whole stack is kept alongside.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pprof/profile.hpp"

namespace leakless::cli {

struct heap_snapshot {
  std::string source;  // the file (or URL) the profile came from
  std::int64_t time_nanos = 0;
  pprof::profile profile;
};

// Files and directories (every *.pb.gz / *.pprof / *.heap* file directly inside a directory, but
// not *.tmp, the name a profile has while the profiler writes it),
// decoded and sorted by time (then by source). Throws std::runtime_error with a clear message
// naming the file on an unreadable or malformed one, or when a directory holds no profile.
std::vector<heap_snapshot> load_snapshots(const std::vector<std::string>& paths);

// Reads and decodes one profile file; throws std::runtime_error naming the file.
pprof::profile load_profile(const std::string& path);

// Decodes profile bytes that came from `source` (a file or URL) and checks they are a usable
// profile (sample types declared, one value per type in every sample); throws std::runtime_error
// with a message naming `source`.
pprof::profile decode_profile(const std::string& bytes, const std::string& source);

struct frame {
  std::string function;
  std::string file;
  std::int64_t line = 0;
  std::string mapping;  // file of the module holding the code; may be empty
};

struct series_point {
  double seconds;  // since the first snapshot
  double bytes;
};

struct suspect {
  std::string function, file;  // first frame in the program's own code
  std::int64_t line = 0;
  double growth_bytes_per_min = 0, confidence = 0;  // confidence in [0, 1]
  double share_of_growth = 0;                       // of all growth, [0, 1]
  std::string verdict;                     // "grows 4.1 MiB/min, never released, 97% of growth"
  std::vector<frame> stack;                // leaf first
  std::vector<series_point> inuse;         // live bytes over time
  double first_bytes = 0, last_bytes = 0;  // live bytes in the first and last snapshots
  bool released = false;  // some of its memory was freed on the way (it dropped noticeably)
};

struct leak_options {
  std::string sample_type = "inuse_space";  // the live-bytes sample type
  std::size_t min_snapshots = 5;            // fewer: no suspects (too little to tell)
  double min_confidence = 0.95;             // Mann–Kendall one-sided confidence
  double min_growth_samples = 4;            // growth over the window, in sampling periods
  double noise_factor = 3;                  // growth over the window vs residual spread
  double plateau_ratio = 0.3;               // recent-half slope vs whole-window slope
  double plateau_z = 3;     // how far under the expected recent growth, in standard deviations
  double sampling_z = 2.5;  // rise of a site that drops vs its levels' sampling noise, in sd
};

struct leak_analysis {
  std::vector<suspect> suspects;          // most likely leak first; empty when nothing grows
  std::vector<series_point> total_inuse;  // whole sampled heap over time
  double duration_seconds = 0;
  std::size_t snapshots = 0;
  std::size_t call_sites = 0;             // distinct call sites seen
  double total_growth_bytes_per_min = 0;  // Theil–Sen slope of the whole heap
  std::int64_t sample_period = 0;         // the profiles' sampling period (bytes), 0 if unknown
};

// Throws std::runtime_error (naming the source) when a snapshot has no options.sample_type.
leak_analysis analyze_leaks(const std::vector<heap_snapshot>& series, const leak_options& = {});

// One suspect as a JSON object: what `leaks --json` prints for it and what the HTML report embeds
// (function, file, line, growth_bytes_per_min, confidence, share_of_growth, verdict, released,
// first_bytes, last_bytes, stack [{function, file, line}], inuse [{seconds, bytes}]).
nlohmann::json suspect_json(const suspect& s);

// --- Pieces the analysis is made of, exposed for the other commands and the tests ---------------

// Finds a profile's locations, functions and mappings by id, and turns them into frames.
class profile_index {
 public:
  explicit profile_index(const pprof::profile& p);
  // The frames of one location, innermost (inlined) first; an unsymbolized location is one frame
  // named "<module>+0x<offset>".
  std::vector<frame> frames(const pprof::location& loc) const;
  // A sample's whole stack, leaf first (inline frames expanded).
  std::vector<frame> frames(const pprof::sample& s) const;
  const pprof::location* location(std::uint64_t id) const;

 private:
  std::unordered_map<std::uint64_t, const pprof::location*> locations_;
  std::unordered_map<std::uint64_t, const pprof::function*> functions_;
  std::unordered_map<std::uint64_t, const pprof::mapping*> mappings_;
};

// Whether a frame belongs to the program rather than the C++ standard library, libc, the
// allocator plumbing, the Go runtime or leakless itself.
bool is_own_code(const frame& f);

// Index of the first own-code frame of a stack (leaf first); 0 when there is none.
std::size_t naming_frame(const std::vector<frame>& stack);

// Index of `type` among the profile's sample types; nullopt if missing.
std::optional<std::size_t> find_sample_index(const pprof::profile& p, const std::string& type);

// Index of `type` among the profile's sample types; throws std::runtime_error if missing.
std::size_t sample_index(const pprof::profile& p, const std::string& type);

// Theil–Sen slope of y over x: the median of the slopes between pairs of points, over the pairs at
// least half the x range apart. Short pairs are left out because a sampled leak is a staircase
// (live bytes rise one sampling period at a time): most close pairs see no step and would drag the
// median towards zero. A point still takes part in at most half the pairs, so spikes and wild
// points do not move the estimate. 0 for fewer than two distinct x.
double theil_sen_slope(const std::vector<double>& x, const std::vector<double>& y);

// Mann–Kendall test: one-sided confidence in [0, 1] that y rises with x (0.5: no trend).
double mann_kendall_confidence(const std::vector<double>& y);

// "4.1 MiB", "512 KiB", "12 B": a byte count for people (binary units).
std::string human_bytes(double bytes);

}  // namespace leakless::cli
