// tools/leakless/snapshot_command.cpp — `leakless snapshot URL|PID [-o FILE]`: take one heap
// profile of a running program now.
//
// How it works: with a URL (or host:port), the profile is fetched from the program's debug server
// (/debug/pprof/heap). With a PID, the program must run with libleakless.so loaded (checked in
// /proc/PID/maps) and LEAKLESS_HEAP_PROFILE set (read from /proc/PID/environ, a relative prefix
// taken from the program's working directory): the command notes the newest
// <prefix>.<pid>.<seq>.heap.pb.gz, sends the dump signal (LEAKLESS_DUMP_SIGNAL from the same
// environment, SIGUSR2 by default; only if the process catches it, per /proc/PID/status, since
// an uncaught one would end it) and waits for a file with a higher sequence number; the
// profiler writes it under a temporary name and renames it, so a file that appears is complete.
// Either way the profile is decoded to check it, then written to FILE (default: a name with the
// time in the current directory; "-" for stdout) and summarized on stderr.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "analysis.hpp"
#include "commands.hpp"
#include "fetch.hpp"
#include "heap/config.hpp"

namespace leakless::cli {
namespace {

namespace fs = std::filesystem;

struct snapshot_args {
  std::string target;
  std::string output;
  double timeout_seconds = 10;
};

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::optional<std::string> environment_value(const std::string& environ, const std::string& key) {
  std::size_t start = 0;
  while (start < environ.size()) {
    std::size_t end = environ.find('\0', start);
    if (end == std::string::npos) end = environ.size();
    const std::string_view entry(environ.data() + start, end - start);
    if (entry.size() > key.size() && entry.substr(0, key.size()) == key &&
        entry[key.size()] == '=') {
      return std::string(entry.substr(key.size() + 1));
    }
    start = end + 1;
  }
  return std::nullopt;
}

// Highest sequence number among <prefix>.<pid>.<seq>.heap.pb.gz, or -1.
long long newest_sequence(const fs::path& prefix, const std::string& pid, fs::path* newest) {
  const std::string stem = prefix.filename().string() + "." + pid + ".";
  long long best = -1;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(prefix.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with(stem) || !name.ends_with(".heap.pb.gz")) continue;
    const std::string seq = name.substr(stem.size(), name.size() - stem.size() - 11);
    if (seq.empty() || seq.find_first_not_of("0123456789") != std::string::npos) continue;
    const long long n = std::stoll(seq);
    if (n > best) {
      best = n;
      if (newest != nullptr) *newest = e.path();
    }
  }
  return best;
}

// Asks a preloaded process for a new profile file; returns its bytes.
std::string snapshot_pid(const std::string& pid, double timeout_seconds, std::string* source) {
  const fs::path proc = fs::path("/proc") / pid;
  std::error_code ec;
  if (!fs::exists(proc, ec)) throw std::runtime_error("no process with PID " + pid);
  std::string environ;
  try {
    environ = read_whole(proc / "environ");
  } catch (const std::runtime_error&) {
    throw std::runtime_error("cannot read the environment of process " + pid +
                             " (is it yours?): " + std::strerror(errno));
  }
  const std::string maps = read_whole(proc / "maps");
  if (maps.find("libleakless") == std::string::npos) {
    throw std::runtime_error("process " + pid +
                             " has no leakless library loaded; start it with "
                             "LD_PRELOAD=libleakless.so and LEAKLESS_HEAP_PROFILE=PREFIX");
  }
  const std::optional<std::string> prefix_text =
      environment_value(environ, "LEAKLESS_HEAP_PROFILE");
  if (!prefix_text || prefix_text->empty()) {
    throw std::runtime_error("process " + pid +
                             " has no LEAKLESS_HEAP_PROFILE in its environment, so it writes no "
                             "profile files; start it with LEAKLESS_HEAP_PROFILE=PREFIX, or use "
                             "its debug server: leakless snapshot HOST:PORT");
  }
  fs::path prefix = *prefix_text;
  if (prefix.is_relative()) prefix = fs::read_symlink(proc / "cwd", ec) / prefix;
  int sig = SIGUSR2;
  if (const auto name = environment_value(environ, "LEAKLESS_DUMP_SIGNAL")) {
    if (const auto parsed = heap::parse_signal(*name)) sig = *parsed;
  }

  // A signal the process does not catch would end it: check its caught-signal mask first.
  const std::string status = read_whole(proc / "status");
  const std::size_t caught = status.find("SigCgt:");
  if (caught != std::string::npos) {
    const unsigned long long mask = std::stoull(status.substr(caught + 7), nullptr, 16);
    if ((mask & (1ULL << (sig - 1))) == 0) {
      throw std::runtime_error("process " + pid + " does not handle signal " + std::to_string(sig) +
                               " (yet); leakless installs its dump handler as the program starts");
    }
  }
  const long long before = newest_sequence(prefix, pid, nullptr);
  if (::kill(static_cast<pid_t>(std::stol(pid)), sig) != 0) {
    throw std::runtime_error("cannot signal process " + pid + ": " + std::strerror(errno));
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  fs::path newest;
  while (newest_sequence(prefix, pid, &newest) <= before) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("process " + pid + " wrote no new profile " + prefix.string() + "." +
                               pid + ".*.heap.pb.gz within " +
                               std::to_string(static_cast<int>(timeout_seconds)) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *source = newest.string();
  return read_whole(newest);
}

std::string default_output() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char name[64];
  std::strftime(name, sizeof name, "leakless.heap.%Y%m%d-%H%M%S.pb.gz", &tm);
  return name;
}

int run(const snapshot_args& a) {
  try {
    const bool is_pid =
        !a.target.empty() && a.target.find_first_not_of("0123456789") == std::string::npos;
    std::string source;
    std::string bytes;
    if (is_pid) {
      bytes = snapshot_pid(a.target, a.timeout_seconds, &source);
    } else {
      source = heap_profile_url(a.target);
      bytes = fetch_bytes(source, static_cast<int>(a.timeout_seconds));
    }
    const pprof::profile p = decode_profile(bytes, source);
    const std::string output = a.output.empty() ? default_output() : a.output;
    if (output == "-") {
      std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    } else {
      std::ofstream out(output, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.close();
      if (!out) throw std::runtime_error(output + ": cannot write the profile");
    }
    std::cerr << "leakless: wrote " << (output == "-" ? "stdout" : output) << " (" << bytes.size()
              << " bytes, " << p.samples.size() << " samples) from " << source << "\n";
    return exit_ok;
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
}

}  // namespace

void add_snapshot_command(CLI::App& app, int& status) {
  auto args = std::make_shared<snapshot_args>();
  CLI::App* cmd = app.add_subcommand(
      "snapshot", "Take one heap profile of a running program, from its debug server or by signal");
  cmd->add_option("target", args->target,
                  "URL or host:port of the program's debug server, or the PID of a program run "
                  "with libleakless.so and LEAKLESS_HEAP_PROFILE")
      ->required();
  cmd->add_option("-o,--output", args->output,
                  "Where to write the profile ('-': stdout; default: "
                  "leakless.heap.<time>.pb.gz here)");
  cmd->add_option("--timeout", args->timeout_seconds, "Seconds to wait for the profile")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->footer(
      "By PID, the program is sent its dump signal (LEAKLESS_DUMP_SIGNAL, default SIGUSR2) and\n"
      "the new <prefix>.<pid>.<seq>.heap.pb.gz it writes is copied.\n"
      "\n"
      "Exit status: 0 written, 1 no profile could be taken (unreachable server, process without\n"
      "leakless or LEAKLESS_HEAP_PROFILE, malformed answer), 2 usage error.");
  cmd->callback([args, &status] { status = run(*args); });
}

}  // namespace leakless::cli
