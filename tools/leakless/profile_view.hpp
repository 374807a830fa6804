// tools/leakless/profile_view.hpp — what `top`, `list` and `diff` compute from a profile, the way
// `go tool pprof` computes it, so both tools print the same numbers for the same file.
//
// How it works: node_table adds up a profile's samples per node — a function (name and file) for
// top and diff, a source line for list — as pprof's graph does: every sample's value goes to the
// `flat` of its leaf frame (the innermost inlined frame of its first location) and to the `cum` of
// every distinct node on its stack, once per sample however often recursion repeats it. Before
// that, prune_dropped_frames() applies the profile's drop_frames regex exactly as pprof's Prune
// does (a heap profile names its allocation plumbing there, so a vector's allocation is charged to
// the code that grew the vector). An unsymbolized location is a node per module ("[libc.so.6]"),
// as in pprof. A diff adds the base profile with its values negated; the
// percentages of a diff are of the base's total, as pprof's are. The formatting helpers are
// pprof's: units scaled like measurement.ScaledLabel, one output unit per report chosen from the
// smallest value shown, percentages with at least two digits.
#pragma once

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "pprof/profile.hpp"

namespace leakless::cli {

// How the views compile regular expressions (drop_frames, list's REGEX): ECMAScript, run by
// libstdc++'s breadth-first matcher, whose time grows with the input times the pattern and whose
// recursion does not grow with the input, so a hostile pattern cannot hang or crash a view.
// Back-references are refused (regex_error).
inline constexpr std::regex::flag_type kLinearRegex =
    std::regex::ECMAScript | std::regex_constants::__polynomial;

// The sample type a view shows: `requested` names a type ("inuse_space") or is an index ("3");
// empty means the profile's default_sample_type, or its last type (pprof's rule). Throws
// std::runtime_error listing the types when there is no such one.
std::size_t choose_sample_index(const pprof::profile& p, const std::string& requested);

// Names functions as pprof does when it reads a profile (its symbolizer's Demangle step): a
// function whose name is missing or equal to its system name gets the demangled system name
// without parameters and template arguments ("std::make_unique<T>()" -> "std::make_unique").
void simplify_names_as_pprof(pprof::profile& p);

// Applies p.drop_frames (and keep_frames) the way pprof's Profile.Prune does; after
// simplify_names_as_pprof, as pprof does.
void prune_dropped_frames(pprof::profile& p);

struct node_value {
  std::string name;
  std::string file;
  std::int64_t line = 0;        // only for line nodes
  std::int64_t start_line = 0;  // the function's first line, when the profile says
  std::int64_t flat = 0;
  std::int64_t cum = 0;
};

class node_table {
 public:
  enum class granularity { functions, lines };
  explicit node_table(granularity g) : granularity_(g) {}

  // Adds every sample's value at `index`, times `sign` (-1 for a diff's base).
  void add(const pprof::profile& p, std::size_t index, std::int64_t sign = 1);

  // pprof's total: the sum of the samples' absolute values (of the base only, for a diff).
  std::int64_t total() const { return base_total_ > 0 ? base_total_ : total_; }

  // Nodes ordered as `pprof -top` orders them: by |flat|, then name, then |cum|.
  std::vector<node_value> by_flat() const;

 private:
  granularity granularity_;
  std::map<std::tuple<std::string, std::string, std::int64_t>, node_value> nodes_;
  std::int64_t total_ = 0;
  std::int64_t base_total_ = 0;
};

// measurement.ScaledLabel: `value` in `from_unit` ("bytes", "nanoseconds", "count", ...) shown in
// `to_unit` ("MB", "ms", ...; "auto" picks the largest unit the value fills).
std::string scaled_label(std::int64_t value, const std::string& from_unit,
                         const std::string& to_unit);

// The one unit a report shows its values in (pprof's selectOutputUnit).
std::string output_unit(const std::vector<node_value>& shown, std::int64_t total,
                        const std::string& sample_unit);

// measurement.Percentage: "50.00%", "  100%", " 0.51%" or "0.0012%".
std::string percentage(std::int64_t value, std::int64_t total);

// The flat/cum table of `top` and `diff`: header lines, then one row per node.
struct table_options {
  double node_fraction = 0.005;  // nodes whose |cum| is under this share of the total are dropped
  std::size_t node_count = 0;    // show at most this many (0: all)
};
std::string render_top(const node_table& table, const std::string& sample_unit,
                       const table_options& options);

// The whole `top` report (header and table) of `p`, or with `base` the `diff` report of p minus
// base, for the sample type `sample_index` (see choose_sample_index).
std::string top_report(pprof::profile p, const pprof::profile* base,
                       const std::string& sample_index, const table_options& options);

// Adds --sample_index, --nodecount and --nodefraction to a command (top, diff).
void add_view_options(CLI::App* cmd, std::string& sample_index, table_options& table);

// Profile facts pprof prints above a report: "File: ...", "Type: ...", "Time: ...".
std::string profile_header(const pprof::profile& p, const std::string& sample_type);

}  // namespace leakless::cli
