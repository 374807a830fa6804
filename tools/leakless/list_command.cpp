// tools/leakless/list_command.cpp — `leakless list FILE REGEX`: the source lines of every function
// whose name matches REGEX, each with the memory (flat, cum) charged to it, like
// `go tool pprof -list REGEX FILE`.
//
// How it works: the profile's samples are added to a per-line node_table (profile_view.hpp); the
// lines of each matching function are grouped by function name and file, in name order. Each
// routine shows its totals, then the source from the function's first line (or five lines before
// its first sampled line) to five lines past its last sampled line, values printed as pprof
// prints them ("." for none). When the source file cannot be read here, the sampled lines are
// listed by number with a note saying so.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "analysis.hpp"
#include "commands.hpp"
#include "profile_view.hpp"
#include "source_file.hpp"

namespace leakless::cli {
namespace {

struct list_args {
  std::string file;
  std::string regex;
  std::string sample_index;
};

std::string value_or_dot(std::int64_t v, const std::string& unit) {
  return v == 0 ? "." : scaled_label(v, unit, "minimum");
}

std::string row(const std::string& flat, const std::string& cum, std::int64_t line,
                const std::string& text) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%10s %10s %6lld:", flat.c_str(), cum.c_str(),
                static_cast<long long>(line));
  return buf + text + "\n";
}

int run(const list_args& a) {
  std::regex pattern;
  try {
    pattern = std::regex(a.regex, kLinearRegex);
  } catch (const std::regex_error& e) {
    report_error("list: '" + a.regex + "' is not a valid regular expression: " + e.what());
    return exit_usage;
  }
  try {
    pprof::profile p = load_profile(a.file);
    const std::size_t index = choose_sample_index(p, a.sample_index);
    const std::string& unit = p.sample_types[index].unit;
    simplify_names_as_pprof(p);
    prune_dropped_frames(p);
    node_table table(node_table::granularity::lines);
    table.add(p, index);

    // function name -> file -> its line nodes
    std::map<std::string, std::map<std::string, std::vector<node_value>>> routines;
    for (const node_value& n : table.by_flat()) {
      if (n.name.size() <= 4096 &&
          std::regex_search(n.name, pattern)) {  // see prune_dropped_frames
        routines[n.name][n.file].push_back(n);
      }
    }
    if (routines.empty()) {
      report_error("no function in " + a.file + " matches '" + a.regex + "'");
      return exit_failure;
    }
    std::cout << "Total: " << scaled_label(table.total(), unit, "minimum") << "\n";
    for (const auto& [name, files] : routines) {
      for (const auto& [file, nodes] : files) {
        if (file.empty()) {
          std::cout << "No source information for " << name << "\n";
          continue;
        }
        std::int64_t flat = 0, cum = 0, first = nodes.front().line, last = nodes.front().line;
        std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> by_line;
        for (const node_value& n : nodes) {
          flat += n.flat;
          cum += n.cum;
          first = std::min(first, n.line);
          last = std::max(last, n.line);
          by_line[n.line].first += n.flat;
          by_line[n.line].second += n.cum;
        }
        char head[64];
        std::snprintf(head, sizeof head, "%10s %10s (flat, cum) ",
                      scaled_label(flat, unit, "minimum").c_str(),
                      scaled_label(cum, unit, "minimum").c_str());
        std::cout << "ROUTINE ======================== " << name << " in " << file << "\n"
                  << head << percentage(cum, table.total()) << " of Total\n";
        const std::optional<source_text> source = read_source(file);
        if (!source) {
          std::cout << " Source not available: " << file << " cannot be read on this machine\n";
          for (const auto& [line, values] : by_line) {
            std::cout << row(value_or_dot(values.first, unit), value_or_dot(values.second, unit),
                             line, "");
          }
          continue;
        }
        const std::int64_t start_line = nodes.front().start_line;
        const std::int64_t start =
            std::max<std::int64_t>(1, start_line > 0 ? std::min(start_line, first) : first - 5);
        for (std::int64_t l = start; l <= last + 5; ++l) {
          if (static_cast<std::size_t>(l) > source->lines.size()) break;
          const auto values =
              by_line.count(l) ? by_line[l] : std::pair<std::int64_t, std::int64_t>{};
          std::cout << row(value_or_dot(values.first, unit), value_or_dot(values.second, unit), l,
                           source->line(l));
        }
      }
    }
    return exit_ok;
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
}

}  // namespace

void add_list_command(CLI::App& app, int& status) {
  auto args = std::make_shared<list_args>();
  CLI::App* cmd = app.add_subcommand(
      "list", "Show the source lines of matching functions with their memory (like pprof -list)");
  cmd->add_option("file", args->file, "Profile file (.pb.gz or raw protobuf)")->required();
  cmd->add_option("regex", args->regex, "Regular expression matched against function names")
      ->required();
  cmd->add_option("--sample_index,--sample-index", args->sample_index,
                  "Sample type to show, by name or index (default: the profile's default type)");
  cmd->footer(
      "Each line shows flat (allocated on that line itself) and cum (on that line and in the\n"
      "functions it called); '.' is none.\n"
      "\n"
      "Exit status: 0 printed, 1 unreadable profile or no matching function, 2 usage error\n"
      "(including an invalid regular expression).");
  cmd->callback([args, &status] { status = run(*args); });
}

}  // namespace leakless::cli
