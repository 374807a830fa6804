// tools/leakless/diff_command.cpp — `leakless diff BASE FILE`: what changed between two profiles,
// per function, as `go tool pprof -top -diff_base BASE FILE` prints it.
//
// How it works: both profiles are loaded with their drop_frames applied; FILE's samples are added
// to a per-function node_table and BASE's with their values negated, so flat and cum are
// FILE minus BASE. As in pprof, percentages are of BASE's total and rows are ordered by the size
// of the change, growth and shrinkage alike.
#include <iostream>
#include <memory>
#include <string>

#include "analysis.hpp"
#include "commands.hpp"
#include "profile_view.hpp"

namespace leakless::cli {
namespace {

struct diff_args {
  std::string base;
  std::string file;
  std::string sample_index;
  table_options table;
};

int run(const diff_args& a) {
  try {
    const pprof::profile base = load_profile(a.base);
    std::cout << top_report(load_profile(a.file), &base, a.sample_index, a.table);
    return exit_ok;
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
}

}  // namespace

void add_diff_command(CLI::App& app, int& status) {
  auto args = std::make_shared<diff_args>();
  CLI::App* cmd = app.add_subcommand(
      "diff",
      "Show per function what changed from BASE to FILE (like `go tool pprof -top -diff_base`)");
  cmd->add_option("base", args->base, "The earlier profile")->required();
  cmd->add_option("file", args->file, "The later profile")->required();
  add_view_options(cmd, args->sample_index, args->table);
  cmd->footer(
      "Values are FILE minus BASE (negative: shrank); percentages are of BASE's total.\n"
      "\n"
      "Exit status: 0 printed, 1 a profile could not be read, 2 usage error.");
  cmd->callback([args, &status] { status = run(*args); });
}

}  // namespace leakless::cli
