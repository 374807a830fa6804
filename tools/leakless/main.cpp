// tools/leakless/main.cpp — the `leakless` command line.
//
// How it works: CLI11 parses the arguments. Each subcommand is registered by its own
// add_<name>_command function (commands.hpp), listed in kCommands below; CLI11 calls the chosen
// subcommand's callback, which does the work and sets the exit status. Every parse error (unknown
// option, unexpected argument, missing command) is reported on stderr as
// "leakless: error: ..." and exits with status 2; --help and --version print to stdout and exit 0.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace {

constexpr const char* kVersion = LEAKLESS_VERSION_STRING;  // set by the build

constexpr const char* kDescription =
    "leakless finds and fixes memory growth in long-running C++ services.\n"
    "It records a program's heap over time and names the call sites whose live memory keeps\n"
    "growing.";

constexpr const char* kFooter =
    "Run 'leakless COMMAND --help' for the options of one command.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the command failed (unreadable or malformed profile, unreachable server, ...)\n"
    "  2  usage error (unknown option, unexpected argument, missing command)";

// Every subcommand, in the order --help lists them.
const std::vector<leakless::cli::add_command_fn> kCommands = {
    leakless::cli::add_leaks_command,    leakless::cli::add_top_command,
    leakless::cli::add_diff_command,     leakless::cli::add_list_command,
    leakless::cli::add_snapshot_command, leakless::cli::add_run_command,
    leakless::cli::add_flame_command,    leakless::cli::add_report_command,
};

}  // namespace

int main(int argc, char** argv) {
  namespace cli = leakless::cli;
  CLI::App app{kDescription, "leakless"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("leakless ") + kVersion,
                       "Print the version and exit");
  app.require_subcommand(0, 1);

  int status = cli::exit_ok;
  for (cli::add_command_fn add : kCommands) {
    add(app, status);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app.exit(e);  // --help or --version: print to stdout
      return cli::exit_ok;
    }
    cli::report_error(e.what());
    std::cerr << "Run 'leakless --help' for usage.\n";
    return cli::exit_usage;
  }

  if (app.get_subcommands().empty()) {
    cli::report_error("no command given");
    std::cerr << "\n" << app.help();
    return cli::exit_usage;
  }
  return status;
}
