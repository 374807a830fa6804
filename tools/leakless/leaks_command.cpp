// tools/leakless/leaks_command.cpp — `leakless leaks`: which call sites leak, from a series of heap
// profiles (files, directories, or fetched from a debug server every few seconds).
//
// How it works: the series is loaded (load_snapshots) or collected (one fetch every --every for
// --for, with a progress bar on a terminal or with --progress, optionally kept in --keep DIR), then
// analyze_leaks() finds the suspects (see analysis.hpp). The report is plain text — each suspect's
// verdict, live bytes, stack and source lines — or, with --json, one JSON object whose `suspects`
// array lists the most likely leak first (empty when nothing grows).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis.hpp"
#include "commands.hpp"
#include "fetch.hpp"
#include "source_file.hpp"

namespace leakless::cli {
namespace {

struct leaks_args {
  std::vector<std::string> paths;
  std::string url;
  std::string every = "5s";
  std::string duration = "2m";
  std::string keep;
  bool json = false;
  bool progress = false;  // draw the bar even when stderr is not a terminal
  leak_options options;
};

std::string seconds_text(double seconds) {
  char buf[48];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.0fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds / 60),
                  static_cast<int>(std::fmod(seconds, 60)));
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds / 3600),
                  static_cast<int>(std::fmod(seconds, 3600) / 60));
  }
  return buf;
}

std::string location_text(const std::string& file, std::int64_t line) {
  if (file.empty()) return "(no source location)";
  return line > 0 ? file + ":" + std::to_string(line) : file;
}

void draw_progress(std::size_t done, std::size_t total, double elapsed, double planned) {
  constexpr int width = 30;
  const int filled = total == 0 ? width : static_cast<int>(width * done / total);
  std::fprintf(stderr, "\r[%s%s] %zu/%zu snapshots, %s of %s ",
               std::string(static_cast<std::size_t>(filled), '#').c_str(),
               std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total,
               seconds_text(elapsed).c_str(), seconds_text(planned).c_str());
  std::fflush(stderr);
}

std::vector<heap_snapshot> collect(const leaks_args& a) {
  const double every = parse_duration(a.every);
  const double planned = parse_duration(a.duration);
  if (every <= 0) throw std::invalid_argument("--every must be more than zero");
  if (planned < every) throw std::invalid_argument("--for must be at least --every");
  const std::string url = heap_profile_url(a.url);
  const auto total = static_cast<std::size_t>(std::floor(planned / every + 1e-9)) + 1;
  if (!a.keep.empty()) std::filesystem::create_directories(a.keep);
  const bool bar = a.progress || ::isatty(2) != 0;

  std::vector<heap_snapshot> series;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::duration<double>(every * double(i))));
    const std::string bytes = fetch_bytes(url);
    heap_snapshot s = snapshot_from_bytes(bytes, url);
    if (!a.keep.empty()) {
      char name[64];
      std::snprintf(name, sizeof name, "leakless.%04zu.heap.pb.gz", i);
      std::ofstream(std::filesystem::path(a.keep) / name, std::ios::binary) << bytes;
    }
    series.push_back(std::move(s));
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (bar) draw_progress(i + 1, total, elapsed, planned);
  }
  if (bar) std::fprintf(stderr, "\n");
  std::cerr << "leakless: collected " << series.size() << " snapshots from " << url << "\n";
  return series;
}

nlohmann::json to_json(const leak_analysis& r) {
  nlohmann::json suspects = nlohmann::json::array();
  for (const suspect& s : r.suspects) suspects.push_back(suspect_json(s));
  return {{"snapshots", r.snapshots},
          {"duration_seconds", r.duration_seconds},
          {"call_sites", r.call_sites},
          {"total_growth_bytes_per_min", r.total_growth_bytes_per_min},
          {"sample_period", r.sample_period},
          {"suspects", suspects}};
}

void print_text(const leak_analysis& r, const leak_options& opt) {
  std::cout << "Analyzed " << r.snapshots << " heap profiles over "
            << seconds_text(r.duration_seconds) << ", " << r.call_sites
            << " call sites; the sampled heap grows " << human_bytes(r.total_growth_bytes_per_min)
            << "/min.\n";
  if (r.snapshots < opt.min_snapshots) {
    std::cout << "Too few profiles to judge a trend: give at least " << opt.min_snapshots << ".\n";
  }
  if (r.suspects.empty()) {
    std::cout << "No leak suspects: no call site's live memory keeps growing.\n";
    return;
  }
  std::cout << r.suspects.size() << (r.suspects.size() == 1 ? " suspect" : " suspects")
            << ", most likely leak first:\n";
  int rank = 0;
  for (const suspect& s : r.suspects) {
    char confidence[32];
    std::snprintf(confidence, sizeof confidence, "%.1f%%", s.confidence * 100);
    std::cout << "\n#" << ++rank << " " << s.function << "  " << location_text(s.file, s.line)
              << "\n   " << s.verdict << " (confidence " << confidence << ")\n"
              << "   live: " << human_bytes(s.first_bytes) << " -> " << human_bytes(s.last_bytes)
              << "\n   stack (leaf first):\n";
    for (const frame& f : s.stack) {
      std::cout << "     " << (f.function == s.function && f.line == s.line ? "> " : "  ")
                << f.function << "  " << location_text(f.file, f.line) << "\n";
    }
    if (const auto text = read_source(s.file); text && s.line > 0) {
      std::cout << "   source:\n";
      for (std::int64_t l = std::max<std::int64_t>(1, s.line - 2); l <= s.line + 2; ++l) {
        if (static_cast<std::size_t>(l) > text->lines.size()) break;
        char num[32];
        std::snprintf(num, sizeof num, "%6lld", static_cast<long long>(l));
        std::cout << "   " << (l == s.line ? ">" : " ") << num << "  " << text->line(l) << "\n";
      }
    } else if (!s.file.empty()) {
      std::cout << "   source: " << s.file << " is not available on this machine\n";
    }
  }
}

int run(const leaks_args& a) {
  if (a.paths.empty() == a.url.empty()) {
    report_error("leaks: give either profile files/directories or --url URL");
    return exit_usage;
  }
  try {
    const std::vector<heap_snapshot> series = a.url.empty() ? load_snapshots(a.paths) : collect(a);
    const leak_analysis result = analyze_leaks(series, a.options);
    if (a.json) {
      std::cout << to_json(result).dump(2) << "\n";
    } else {
      print_text(result, a.options);
    }
    return exit_ok;
  } catch (const std::invalid_argument& e) {
    report_error(std::string("leaks: ") + e.what());
    return exit_usage;
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
}

}  // namespace

void add_leaks_command(CLI::App& app, int& status) {
  auto args = std::make_shared<leaks_args>();
  CLI::App* cmd = app.add_subcommand(
      "leaks",
      "Find the call sites whose live memory keeps growing over a series of heap profiles");
  cmd->add_option("profiles", args->paths,
                  "Heap profiles, or directories holding them (*.pb.gz, *.pprof, *.heap*)");
  cmd->add_option("--url", args->url,
                  "Collect the series from a debug server instead (host:port or full URL of "
                  "/debug/pprof/heap)");
  cmd->add_option("--every", args->every, "With --url: time between profiles (e.g. 5s, 500ms)")
      ->capture_default_str();
  cmd->add_option("--for", args->duration, "With --url: how long to collect (e.g. 2m, 90s)")
      ->capture_default_str();
  cmd->add_option("--keep", args->keep, "With --url: also save every fetched profile in DIR");
  cmd->add_flag("--progress", args->progress,
                "With --url: draw the progress bar even when stderr is not a terminal");
  cmd->add_flag("--json", args->json,
                "Print one JSON object; its `suspects` array lists the most likely leak first");
  cmd->add_option("--min-confidence", args->options.min_confidence,
                  "Trend confidence needed to name a suspect, 0..1")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-snapshots", args->options.min_snapshots,
                  "Fewest profiles to judge a trend from")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->footer(
      "A suspect is a call site whose live bytes rise steadily (Theil-Sen slope, Mann-Kendall\n"
      "trend test), by more than sampling noise and its own churn, and still rise in the recent\n"
      "half of the series (growth that reached a plateau is not a leak). It is named by the\n"
      "first frame of the program's own code; the full stack is listed with it.\n"
      "\n"
      "Exit status: 0 the analysis ran (with or without suspects), 1 a profile could not be\n"
      "read or fetched, 2 usage error.");
  cmd->callback([args, &status] { status = run(*args); });
}

}  // namespace leakless::cli
