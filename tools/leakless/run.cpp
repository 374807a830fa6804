// tools/leakless/run.cpp — `leakless run`: runs a program under the heap profiler and records it.
//
// How it works: the command finds libleakless.so (LEAKLESS_LIBRARY, else <dir of this
// executable>/../lib/libleakless.so as installed, else the build tree's library, whose path the
// build passes in as LEAKLESS_BUILD_LIBRARY), resolves PROGRAM on PATH as a shell would, creates
// the output directory and starts the program with posix_spawn. Its environment is ours plus
// LD_PRELOAD=<library>[:<the existing LD_PRELOAD>], LEAKLESS_HEAP_PROFILE=<DIR>/heap (so the
// library writes <DIR>/heap.<pid>.<seq>.heap.pb.gz), LEAKLESS_HEAP_INTERVAL=<--every in seconds>
// and, with --http, LEAKLESS_HTTP=<ADDR> for the library's debug server. The library writes one
// profile per interval and a last one when the program exits.
//
// Signals: before spawning, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGCHLD are blocked in
// this process (the child starts with the signal mask and dispositions leakless was started with,
// as after a plain exec: a program started with SIGINT ignored keeps it ignored), and the command
// waits for them with sigtimedwait. A signal someone sent to us (kill, a supervisor) is forwarded
// to the child; one the terminal generated (Ctrl-C, Ctrl-\: si_code SI_KERNEL) already reached the
// child, which is in the same foreground process group, so it is not sent twice. SIGCHLD means the
// child may have ended: waitpid collects it, and the command exits with the child's exit code, or
// with 128 + the signal number when a signal killed it, as shells report it.
//
// Status line: when stderr is a terminal, it is redrawn every second in place: time elapsed, the
// child's resident memory (/proc/<pid>/statm), the sampled live heap (the inuse_space total of the
// newest profile in DIR, decoded once per new file) and the number of profiles written.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "analysis.hpp"
#include "commands.hpp"
#include "fetch.hpp"
#include "profile_files.hpp"

extern char** environ;

namespace leakless::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1};

struct run_options {
  std::string every = "10s";
  std::string out;
  std::string http;
  std::vector<std::string> command;
};

// Where the library is: see the file comment. Empty when it is nowhere.
std::string find_library() {
  if (const char* env = std::getenv("LEAKLESS_LIBRARY"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = self.parent_path().parent_path() / "lib" / "libleakless.so";
    if (fs::exists(installed, ec)) return installed.string();
  }
#ifdef LEAKLESS_BUILD_LIBRARY
  if (fs::exists(LEAKLESS_BUILD_LIBRARY, ec)) return LEAKLESS_BUILD_LIBRARY;
#endif
  return {};
}

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// PROGRAM as execvp would find it: as given when it has a slash, otherwise the first executable
// file of that name on PATH. Empty when there is none.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return is_executable_file(name) ? name : std::string{};
  const char* path_env = std::getenv("PATH");
  std::istringstream path(path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(path, dir, ':');) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (is_executable_file(candidate)) return candidate.string();
  }
  return {};
}

// leakless-<program>-<YYYYmmdd-HHMMSS> in the current directory.
std::string default_out_dir(const std::string& program) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  return "leakless-" + fs::path(program).filename().string() + "-" + stamp;
}

// The child's environment: ours with the profiler's variables set (see the file comment).
std::vector<std::string> child_environment(const std::string& library, const fs::path& out,
                                           double every_seconds, const std::string& http) {
  std::string preload = library;
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') {
    preload += ":" + std::string(old);
  }
  std::ostringstream interval;
  interval << every_seconds;
  std::vector<std::pair<std::string, std::string>> set = {
      {"LD_PRELOAD", preload},
      {"LEAKLESS_HEAP_PROFILE", (out / "heap").string()},
      {"LEAKLESS_HEAP_INTERVAL", interval.str()}};
  if (!http.empty()) set.emplace_back("LEAKLESS_HTTP", http);

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& kv : set) replaced = replaced || kv.first == key;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

// Resident set size of `pid` in bytes, or nullopt once it is gone.
std::optional<std::uint64_t> resident_bytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return std::nullopt;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// The live status line on stderr (a terminal): see the file comment.
class status_line {
 public:
  explicit status_line(fs::path dir) : dir_(std::move(dir)) {}

  void draw(pid_t pid, std::chrono::steady_clock::duration elapsed) {
    const std::vector<fs::path> files = list_heap_profiles(dir_);
    if (!files.empty() && files.back() != newest_) {
      newest_ = files.back();
      heap_ = inuse_bytes_of(newest_);
    }
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
    char line[256];
    const std::optional<std::uint64_t> rss = resident_bytes(pid);
    std::snprintf(line, sizeof line,
                  "\r\033[Kleakless run: %lld:%02lld elapsed | RSS %s | "
                  "sampled heap %s | %zu snapshot%s",
                  static_cast<long long>(seconds / 60), static_cast<long long>(seconds % 60),
                  rss ? human_bytes(static_cast<double>(*rss)).c_str() : "-",
                  heap_ ? human_bytes(static_cast<double>(*heap_)).c_str() : "-", files.size(),
                  files.size() == 1 ? "" : "s");
    std::cerr << line << std::flush;
    drawn_ = true;
  }

  void clear() {
    if (drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
  }

 private:
  fs::path dir_;
  fs::path newest_;
  std::optional<std::uint64_t> heap_;
  bool drawn_ = false;
};

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return exit_failure;
}

int run(const run_options& o) {
  double every = 0;
  try {
    every = parse_duration(o.every);
  } catch (const std::invalid_argument& e) {
    report_error(std::string("--every: ") + e.what());
    return exit_usage;
  }
  if (every <= 0) {
    report_error("--every: '" + o.every + "' must be more than zero");
    return exit_usage;
  }
  if (o.command.empty()) {
    report_error("run: no program given (leakless run [OPTIONS] -- PROGRAM [ARGS...])");
    return exit_usage;
  }
  const std::string program = resolve_program(o.command[0]);
  if (program.empty()) {
    report_error("run: program not found or not executable: " + o.command[0]);
    return 127;
  }
  const std::string library = find_library();
  if (library.empty()) {
    report_error("run: cannot find libleakless.so (set LEAKLESS_LIBRARY to its path)");
    return exit_failure;
  }
  const fs::path out = fs::absolute(o.out.empty() ? default_out_dir(program) : o.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) {
    report_error("run: cannot create the output directory " + out.string() + ": " +
                 (ec ? ec.message() : "not a directory"));
    return exit_failure;
  }

  std::vector<std::string> argv = o.command;
  std::vector<std::string> env = child_environment(library, out, every, o.http);
  const auto pointers = [](std::vector<std::string>& strings) {
    std::vector<char*> p;
    for (std::string& s : strings) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  };
  std::vector<char*> argv_p = pointers(argv);
  std::vector<char*> env_p = pointers(env);

  sigset_t waited, old_mask;
  sigemptyset(&waited);
  for (int sig : kForwarded) sigaddset(&waited, sig);
  sigaddset(&waited, SIGCHLD);
  sigprocmask(SIG_BLOCK, &waited, &old_mask);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &old_mask);  // the mask leakless was started with
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t child = 0;
  const int spawned =
      posix_spawn(&child, program.c_str(), nullptr, &attr, argv_p.data(), env_p.data());
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) {
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    report_error("run: cannot start " + program + ": " + std::strerror(spawned));
    return spawned == ENOENT ? 127 : 126;
  }

  std::cerr << "leakless run: recording " << fs::path(program).filename().string() << " (pid "
            << child << "), a heap profile every " << o.every << " into " << out.string() << "\n";
  const bool show_status = ::isatty(STDERR_FILENO) != 0;
  status_line status(out);
  const auto start = std::chrono::steady_clock::now();
  int wait_status = 0;
  for (;;) {
    const pid_t done = ::waitpid(child, &wait_status, WNOHANG);
    if (done == child) break;
    if (done < 0 && errno != EINTR) {
      wait_status = W_EXITCODE(exit_failure, 0);
      break;
    }
    if (show_status) status.draw(child, std::chrono::steady_clock::now() - start);
    timespec timeout{1, 0};
    siginfo_t info{};
    const int sig = ::sigtimedwait(&waited, &info, &timeout);
    if (sig > 0 && sig != SIGCHLD && info.si_code != SI_KERNEL) ::kill(child, sig);
  }
  if (show_status) status.clear();
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  const int code = exit_code_of(wait_status);
  const std::size_t profiles = list_heap_profiles(out).size();
  std::cerr << "leakless run: " << fs::path(program).filename().string()
            << (WIFSIGNALED(wait_status)
                    ? " was killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
                          strsignal(WTERMSIG(wait_status)) + ")"
                    : " exited with status " + std::to_string(code))
            << "; " << profiles << " heap profile" << (profiles == 1 ? "" : "s") << " in "
            << out.string() << "\n";
  return code;
}

}  // namespace

void add_run_command(CLI::App& app, int& status) {
  auto opts = std::make_shared<run_options>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run PROGRAM under the heap profiler, writing a heap profile into DIR every interval");
  cmd->footer(
      "Example: leakless run --every 2s --out hunt -- ./server --port 8080\n"
      "Signals sent to leakless (INT, TERM, HUP, QUIT, USR1) are forwarded to PROGRAM; leakless\n"
      "exits with PROGRAM's exit status (128 + N when signal N killed it; 127 when PROGRAM is not\n"
      "found). Then: leakless leaks DIR, leakless report DIR -o report.html.");
  cmd->add_option("--every", opts->every, "Time between heap profiles: 500ms, 10s, 2m")
      ->capture_default_str();
  cmd->add_option("--out", opts->out,
                  "Directory for the profiles (default: leakless-PROGRAM-DATE-TIME here)");
  cmd->add_option("--http", opts->http,
                  "Start the program's debug server on ADDR (host:port), e.g. 127.0.0.1:6060");
  cmd->add_option("command", opts->command, "PROGRAM and its arguments (after --)")->required();
  cmd->callback([opts, &status] { status = run(*opts); });
}

}  // namespace leakless::cli
