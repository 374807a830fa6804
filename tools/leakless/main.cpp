// tools/leakless/main.cpp — the `leakless` command line.
//
// How it works: CLI11 parses the arguments. Today only --help and --version exist; the subcommands
// (run, snapshot, top, list, diff, leaks, flame, report) are described in --help and will be added
// as CLI11 subcommands. Every parse error (unknown option, unexpected argument, missing command) is
// reported on stderr as "leakless: error: ..." and exits with status 2; --help and --version print
// to stdout and exit 0.
#include <algorithm>
#include <array>
#include <iostream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace {

constexpr const char* kVersion = LEAKLESS_VERSION_STRING;  // set by the build

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr const char* kDescription =
    "leakless finds and fixes memory growth in long-running C++ services.\n"
    "It records a program's heap over time and names the call sites whose live memory keeps\n"
    "growing.";

// Commands described in --help that do not exist yet; naming one gets a specific error.
constexpr std::array<std::string_view, 8> kComingCommands = {"run",  "snapshot", "top",   "list",
                                                             "diff", "leaks",    "flame", "report"};

constexpr const char* kFooter =
    "Commands (coming in upcoming releases; not available yet):\n"
    "  run       start a program with the leakless profiler preloaded\n"
    "  snapshot  save a heap/CPU/threads profile from a running program\n"
    "  top       list the call sites with the most live or allocated memory\n"
    "  list      show annotated source for the functions matching a pattern\n"
    "  diff      compare two profiles (what grew between them)\n"
    "  leaks     name the call sites whose live memory keeps growing over time\n"
    "  flame     write a flame graph\n"
    "  report    write a self-contained HTML report\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  2  usage error (unknown option, unexpected argument, missing command)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "leakless"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("leakless ") + kVersion,
                       "Print the version and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app.exit(e);  // --help or --version: print to stdout
      return kExitOk;
    }
    if (argc > 1 && std::find(kComingCommands.begin(), kComingCommands.end(),
                              std::string_view(argv[1])) != kComingCommands.end()) {
      std::cerr << "leakless: error: command '" << argv[1] << "' is not available yet in leakless "
                << kVersion << "\n"
                << "Run 'leakless --help' for usage.\n";
      return kExitUsage;
    }
    std::cerr << "leakless: error: " << e.what() << "\n"
              << "Run 'leakless --help' for usage.\n";
    return kExitUsage;
  }

  // No command was given. Until the commands exist there is nothing to run, so this is a usage
  // error: show the help on stderr.
  std::cerr << "leakless: error: no command given\n\n" << app.help();
  return kExitUsage;
}
