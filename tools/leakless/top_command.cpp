// tools/leakless/top_command.cpp — `leakless top FILE`: the functions holding the most, as
// `go tool pprof -top FILE` prints them, without a Go toolchain.
//
// How it works: the profile is loaded, its drop_frames applied, and every sample added to a
// per-function node_table (profile_view.hpp); render_top() prints pprof's labels and its
// flat/flat%/sum%/cum/cum% rows in pprof's order, units and rounding.
#include <iostream>
#include <memory>
#include <string>

#include "analysis.hpp"
#include "commands.hpp"
#include "profile_view.hpp"

namespace leakless::cli {
namespace {

struct top_args {
  std::string file;
  std::string sample_index;
  table_options table;
};

int run(const top_args& a) {
  try {
    std::cout << top_report(load_profile(a.file), nullptr, a.sample_index, a.table);
    return exit_ok;
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
}

}  // namespace

// The options top and diff share.
void add_view_options(CLI::App* cmd, std::string& sample_index, table_options& table) {
  cmd->add_option("--sample_index,--sample-index", sample_index,
                  "Sample type to show, by name (inuse_space, alloc_objects, ...) or index; "
                  "default: the profile's default type, else its last");
  cmd->add_option("--nodecount,-n", table.node_count, "Show at most N functions (0: all)")
      ->capture_default_str();
  cmd->add_option("--nodefraction", table.node_fraction,
                  "Hide functions whose cum is under this share of the total")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
}

void add_top_command(CLI::App& app, int& status) {
  auto args = std::make_shared<top_args>();
  CLI::App* cmd = app.add_subcommand(
      "top", "Show the functions holding the most of a profile (like `go tool pprof -top`)");
  cmd->add_option("file", args->file, "Profile file (.pb.gz or raw protobuf)")->required();
  add_view_options(cmd, args->sample_index, args->table);
  cmd->footer(
      "flat: held by the function itself; cum: by it and everything it called.\n"
      "\n"
      "Exit status: 0 printed, 1 the profile could not be read, 2 usage error.");
  cmd->callback([args, &status] { status = run(*args); });
}

}  // namespace leakless::cli
