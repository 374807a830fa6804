// tests/support/run_program.hpp — runs a program for an integration test and collects what it did.
//
// How it works: run_program() starts `argv` with posix_spawn in `dir`, with this process's
// environment plus (overriding) `env`, stdout and stderr redirected to files in `dir`, waits for
// it, and returns its exit code (128 + signal number when a signal ended it), stdout, stderr and
// pid; start_program() and finish_program() do the same in two steps, for a program that runs
// while the test talks to it. finish_program_within() waits a bounded time, and kills (SIGKILL) and
// reports a program that is still running then, so that a hang fails one test instead of the run.
// Header-only so that any test directory can include it (tests/ is on the include path).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>

extern char** environ;

namespace leakless::test {

struct run_result {
  int exit_code = -1;  // -1: the program could not be started
  std::string out;
  std::string err;
  pid_t pid = 0;
  bool hung = false;  // finish_program_within(): still running at the limit, and killed
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts `argv` as run_program() does, without waiting; returns its pid (0: not started).
inline pid_t start_program(std::vector<std::string> argv,
                           const std::map<std::string, std::string>& env,
                           const std::filesystem::path& dir) {
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (env.count(entry.substr(0, entry.find('='))) == 0) environment.push_back(entry);
  }
  for (const auto& [k, v] : env) environment.push_back(k + "=" + v);

  const auto pointers = [](std::vector<std::string>& strings) {
    std::vector<char*> p;
    for (std::string& s : strings) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  };
  std::vector<char*> argv_p = pointers(argv);
  std::vector<char*> env_p = pointers(environment);
  const std::string out_path = (dir / "stdout").string();
  const std::string err_path = (dir / "stderr").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv_p[0], &actions, nullptr, argv_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? pid : 0;
}

// What a program started by start_program() in `dir` did, from its wait status.
inline run_result collect_program(pid_t pid, int status, const std::filesystem::path& dir) {
  run_result r;
  r.pid = pid;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(dir / "stdout");
  r.err = read_file(dir / "stderr");
  return r;
}

// Waits for a program started by start_program() in `dir` and collects what it did.
inline run_result finish_program(pid_t pid, const std::filesystem::path& dir) {
  if (pid == 0) return {};
  int status = 0;
  waitpid(pid, &status, 0);
  return collect_program(pid, status, dir);
}

// The same, waiting at most `limit`: a program still running then is killed and comes back with
// hung set (and exit code 128 + SIGKILL).
inline run_result finish_program_within(pid_t pid, const std::filesystem::path& dir,
                                        std::chrono::milliseconds limit) {
  if (pid == 0) return {};
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run_result r = collect_program(pid, status, dir);
      r.hung = true;
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return collect_program(pid, status, dir);
}

inline run_result run_program(std::vector<std::string> argv,
                              const std::map<std::string, std::string>& env,
                              const std::filesystem::path& dir) {
  return finish_program(start_program(std::move(argv), env, dir), dir);
}

}  // namespace leakless::test
