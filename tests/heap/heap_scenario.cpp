// tests/heap/heap_scenario.cpp — a program that knows nothing of leakless, run by
// heap_program_test under LD_PRELOAD=libleakless.so to check what a preloaded program sees:
// allocation before main and in static destructors, fork, posix_spawn and exec, the dump signal,
// periodic dumps, profile files written at exit, and that output and exit codes are unchanged.
//
// Usage: heap_scenario <scenario> [args...]; prints what it did on stdout and exits 0, or prints
// "FAIL: ..." and exits 1. Scenarios:
//   leak <MiB>           keep <MiB> in grow_cache() (the function a heap profile must name)
//   fork                 allocate in a forked child that uses threads and exits normally
//   spawn                run /bin/echo with posix_spawn and with fork+exec
//   signal <sig> <dir>   raise <sig> and wait until a new profile file appears in <dir>
//   sleep <seconds>      allocate, then sleep (periodic dumps happen meanwhile)
//   exit <code>          allocate, then exit with <code>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

extern char** environ;

namespace {

// Allocates before main and frees in a static destructor.
struct static_user {
  std::vector<std::string> names;
  static_user() {
    for (int i = 0; i < 1000; ++i)
      names.push_back(std::string(64, 'a' + static_cast<char>(i % 26)));
  }
  ~static_user() {
    names.clear();
    names.shrink_to_fit();
    std::unique_ptr<char[]> late(new char[100000]);  // allocation during static destruction
    late[0] = 1;
  }
} g_static_user;

// A global cache that only grows, held the way long-lived C++ services hold such singletons: never
// destroyed, so it is still live when the profile is written at exit (after static destructors).
std::map<int, std::unique_ptr<char[]>>& g_cache = *new std::map<int, std::unique_ptr<char[]>>;

[[gnu::noinline]] void grow_cache(std::size_t mib) {
  for (std::size_t i = 0; i < mib * 16; ++i) {
    auto block = std::make_unique<char[]>(64 * 1024);
    std::memset(block.get(), static_cast<int>(i), 64 * 1024);
    g_cache[static_cast<int>(i)] = std::move(block);
  }
}

[[gnu::noinline]] void churn(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    std::vector<std::string> v(100, std::string(200, 'x'));
    if (v[99][199] != 'x') std::abort();
  }
}

int fail(const char* what) {
  std::printf("FAIL: %s\n", what);
  return 1;
}

std::size_t count_files(const char* dir) {
  std::size_t n = 0;
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d)) {
      if (std::strstr(e->d_name, ".heap.pb.gz") != nullptr &&
          std::strstr(e->d_name, ".tmp") == nullptr) {
        ++n;
      }
    }
    closedir(d);
  }
  return n;
}

int run_fork() {
  grow_cache(2);
  // Two more threads have captured stacks (an 8 MiB block is sampled all but certainly at the
  // default rate) and are still alive when the process forks: the child has only the forking
  // thread, so its profile must count the unwinder cache of that thread alone.
  std::mutex m;
  std::condition_variable cv;
  int sampled = 0;
  bool forked = false;
  std::vector<std::thread> parent_threads;
  for (int t = 0; t < 2; ++t) {
    parent_threads.emplace_back([&] {
      for (int i = 0; i < 2; ++i) {
        void* block = std::malloc(std::size_t{8} << 20);
        asm volatile("" : : "g"(block) : "memory");  // a real call: the pair may not be elided
        std::free(block);
      }
      std::unique_lock lock(m);
      ++sampled;
      cv.notify_all();
      cv.wait(lock, [&] { return forked; });
    });
  }
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return sampled == 2; });
  }
  const pid_t child = fork();
  if (child < 0) return fail("fork");
  if (child == 0) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) threads.emplace_back([] { churn(2000); });
    for (std::thread& t : threads) t.join();
    grow_cache(3);
    std::printf("child %d ok\n", getpid());
    std::fflush(stdout);
    std::exit(0);
  }
  int status = 0;
  const bool child_ok =
      waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  {
    std::lock_guard lock(m);
    forked = true;
  }
  cv.notify_all();
  for (std::thread& t : parent_threads) t.join();
  if (!child_ok) return fail("child did not exit cleanly");
  churn(100);
  std::printf("parent %d ok\n", getpid());
  return 0;
}

int run_spawn() {
  std::fflush(stdout);
  char echo[] = "/bin/echo";
  char spawned[] = "spawned";
  char* spawn_argv[] = {echo, spawned, nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, echo, nullptr, nullptr, spawn_argv, environ) != 0) return fail("spawn");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || status != 0) return fail("spawned echo failed");
  const pid_t child = fork();
  if (child == 0) {
    char execd[] = "execd";
    char* exec_argv[] = {echo, execd, nullptr};
    execv(echo, exec_argv);
    _exit(127);
  }
  if (waitpid(child, &status, 0) != child || status != 0) return fail("exec'd echo failed");
  return 0;
}

int run_signal(int sig, const char* dir) {
  grow_cache(1);
  const std::size_t before = count_files(dir);
  if (raise(sig) != 0) return fail("raise");
  // Correctness, not speed: the dump thread gets a generous minute to write the file.
  for (int i = 0; i < 6000 && count_files(dir) == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (count_files(dir) == before) return fail("no profile was written after the signal");
  std::printf("dumped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return fail("usage: heap_scenario <scenario> [args...]");
  const std::string scenario = argv[1];
  if (scenario == "leak" && argc == 3) {
    grow_cache(std::strtoul(argv[2], nullptr, 10));
    churn(500);
    std::printf("leaked %s MiB\n", argv[2]);
    return 0;
  }
  if (scenario == "fork") return run_fork();
  if (scenario == "spawn") return run_spawn();
  if (scenario == "signal" && argc == 4) return run_signal(std::atoi(argv[2]), argv[3]);
  if (scenario == "sleep" && argc == 3) {
    grow_cache(1);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(argv[2])));
    std::printf("slept\n");
    return 0;
  }
  if (scenario == "exit" && argc == 3) {
    churn(100);
    std::printf("exiting\n");
    std::fflush(stdout);
    std::exit(std::atoi(argv[2]));
  }
  return fail("unknown scenario");
}
