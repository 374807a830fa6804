// tools/leakless/commands.hpp — how the `leakless` subcommands plug into the command line.
//
// How it works: every subcommand lives in its own source file and exposes one function,
// add_<name>_command(app, status), which creates the CLI11 subcommand on `app`, declares its
// options and sets a callback. CLI11 runs the callback of the subcommand that was chosen, after
// parsing; the callback does the work and stores the process exit status in `status`. main.cpp
// calls every add_*_command listed in kCommands, so adding a command is one new file and one line
// there. Errors a command reports go to stderr as "leakless: error: ..." (see report_error).
#pragma once

#include <string_view>

#include <CLI/CLI.hpp>

namespace leakless::cli {

// Exit statuses shared by every command; --help lists them.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;  // the command could not do its job (unreadable file, ...)
inline constexpr int exit_usage = 2;    // bad command line

// Registers one subcommand; see the file comment.
using add_command_fn = void (*)(CLI::App& app, int& status);

// Prints "leakless: error: <message>" on stderr.
void report_error(std::string_view message);

// The subcommands (one source file each).
void add_leaks_command(CLI::App& app, int& status);
void add_top_command(CLI::App& app, int& status);
void add_diff_command(CLI::App& app, int& status);
void add_list_command(CLI::App& app, int& status);
void add_snapshot_command(CLI::App& app, int& status);
void add_run_command(CLI::App& app, int& status);
void add_flame_command(CLI::App& app, int& status);
void add_report_command(CLI::App& app, int& status);

}  // namespace leakless::cli
