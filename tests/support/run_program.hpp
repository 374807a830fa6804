// tests/support/run_program.hpp — runs a program for an integration test and collects what it did.
//
// How it works: run_program() starts `argv` with posix_spawn in `dir`, with this process's
// environment plus (overriding) `env`, stdout and stderr redirected to files in `dir`, waits for
// it, and returns its exit code (128 + signal number when a signal ended it), stdout, stderr and
// pid. A test that must act while the program runs (send it a signal, watch its files) calls
// start_program() and later finish_program(), the two halves of run_program(). Header-only so that
// any test directory can include it (tests/ is on the include path).
#pragma once

#include <fcntl.h>
#include <spawn.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
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
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts the program as run_program() does and returns at once; r.exit_code stays -1 and r.pid
// is 0 when it could not be started.
inline run_result start_program(std::vector<std::string> argv,
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
  run_result r;
  const int spawned =
      posix_spawn(&r.pid, argv_p[0], &actions, nullptr, argv_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) r.pid = 0;
  return r;
}

// Waits for a program start_program() started (in `dir`) and fills in its exit code and output.
inline run_result finish_program(run_result r, const std::filesystem::path& dir) {
  if (r.pid == 0) return r;
  int status = 0;
  waitpid(r.pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(dir / "stdout");
  r.err = read_file(dir / "stderr");
  return r;
}

inline run_result run_program(std::vector<std::string> argv,
                              const std::map<std::string, std::string>& env,
                              const std::filesystem::path& dir) {
  return finish_program(start_program(std::move(argv), env, dir), dir);
}

}  // namespace leakless::test
