// src/heap/lifecycle.cpp — configuration, dump files, the dump thread, fork and exit
// (see lifecycle.hpp).
#define UNW_LOCAL_ONLY
#include "heap/lifecycle.hpp"

#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>

#include "heap/config.hpp"
#include "heap/heap_profile.hpp"
#include "heap/sampler.hpp"

namespace leakless::heap {
namespace {

// 0: not read, 1: being read, 2: read.
std::atomic<int> g_config_state{0};
heap_config g_config;

std::atomic<unsigned> g_sequence{0};
pthread_mutex_t g_dump_mutex = PTHREAD_MUTEX_INITIALIZER;
sem_t g_dump_request;
std::atomic<bool> g_dumper_running{false};
std::atomic<bool> g_restart_dumper{false};
bool g_fork_handlers_installed = false;

// The last write error reported, so that a full disk is reported once, not at every interval.
std::atomic<int> g_last_reported_errno{0};

bool files_wanted() noexcept { return g_config.profile_prefix[0] != '\0'; }

void on_dump_signal(int) {
  const int saved = errno;
  sem_post(&g_dump_request);
  errno = saved;
}

void* dumper_main(void*) {
  tls_sampler.busy = 1;  // this thread's allocations are the profiler's own: never sampled
  const double interval = g_config.interval_seconds;
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const auto advance = [&deadline, interval] {
    const double whole = std::floor(interval);
    deadline.tv_sec += static_cast<time_t>(whole);
    deadline.tv_nsec += static_cast<long>((interval - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000L;
    }
  };
  if (interval > 0) advance();
  for (;;) {
    const int r = interval > 0 ? sem_clockwait(&g_dump_request, CLOCK_MONOTONIC, &deadline)
                               : sem_wait(&g_dump_request);
    if (r == 0) {
      dump_heap_profile_file();
    } else if (errno == ETIMEDOUT) {
      dump_heap_profile_file();
      advance();
    }
    // EINTR cannot happen (all signals are blocked here), but retrying is right if it does.
  }
  return nullptr;
}

void start_dumper_thread() noexcept {
  if (g_dumper_running.exchange(true)) return;
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);  // the new thread inherits "all blocked"
  pthread_t thread;
  const int r = pthread_create(&thread, nullptr, dumper_main, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (r != 0) {
    g_dumper_running.store(false);
    report("cannot start the heap profile dump thread; profiles are written at exit only");
    return;
  }
  pthread_setname_np(thread, "leakless-dump");
  pthread_detach(thread);
}

void before_fork() noexcept { lock_for_fork(); }

void after_fork_in_parent() noexcept { unlock_after_fork(); }

void after_fork_in_child() noexcept {
  unlock_after_fork();
  forget_other_threads_after_fork();
  g_sequence.store(0);
  pthread_mutex_init(&g_dump_mutex, nullptr);  // a dump may have been running in the parent
  sem_init(&g_dump_request, 0, 0);
  if (g_dumper_running.exchange(false)) g_restart_dumper.store(true);
}

void report_write_error(const char* what, const char* path, int error) {
  if (g_last_reported_errno.exchange(error) == error) return;
  char text[PATH_MAX + 256];
  snprintf(text, sizeof text, "cannot %s %s: %s", what, path, strerrordesc_np(error));
  report(text);
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void ensure_configured() noexcept {
  if (g_config_state.load(std::memory_order_acquire) != 0) return;
  int expected = 0;
  if (!g_config_state.compare_exchange_strong(expected, 1)) return;
  busy_scope busy;
  g_config = read_environment();
  if (g_config.sample_seed) set_sample_seed(*g_config.sample_seed);
  set_sample_rate(g_config.sample_rate);
  g_config_state.store(2, std::memory_order_release);
}

void start() noexcept {
  busy_scope busy;
  ensure_configured();
  // A per-thread unwind cache: libunwind's global cache takes a lock while unwinding.
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  if (!g_fork_handlers_installed) {
    g_fork_handlers_installed = true;
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
  }
  if (!files_wanted()) return;
  sem_init(&g_dump_request, 0, 0);
  struct sigaction action {};
  action.sa_handler = on_dump_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(g_config.dump_signal, &action, nullptr) != 0) {
    report("cannot install the dump signal handler; profiles are written at exit and by interval");
  }
  start_dumper_thread();
}

void stop_at_exit() noexcept {
  if (g_config_state.load(std::memory_order_acquire) != 2 || !files_wanted()) return;
  dump_heap_profile_file();
}

void after_sample_point() noexcept {
  if (!g_restart_dumper.load(std::memory_order_relaxed) || tls_sampler.busy != 0) return;
  if (g_restart_dumper.exchange(false)) {
    busy_scope busy;
    start_dumper_thread();
  }
}

std::string dump_heap_profile_file() {
  if (!files_wanted()) return {};
  busy_scope busy;
  pthread_mutex_lock(&g_dump_mutex);
  std::string path;
  try {
    path = g_config.profile_prefix;
    path += '.';
    path += std::to_string(getpid());
    path += '.';
    path += std::to_string(g_sequence.fetch_add(1));
    path += ".heap.pb.gz";
    const std::string temporary = path + ".tmp";
    const std::string bytes = heap_profile_bytes(profile_kind::heap);
    const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      report_write_error("create", temporary.c_str(), errno);
      path.clear();
    } else {
      const bool written = write_all(fd, bytes);
      const int write_errno = errno;
      if (close(fd) != 0 || !written) {
        report_write_error("write", temporary.c_str(), written ? errno : write_errno);
        unlink(temporary.c_str());
        path.clear();
      } else if (rename(temporary.c_str(), path.c_str()) != 0) {
        report_write_error("rename to", path.c_str(), errno);
        unlink(temporary.c_str());
        path.clear();
      }
    }
  } catch (...) {
    report("cannot build the heap profile (out of memory?); this dump is skipped");
    path.clear();
  }
  pthread_mutex_unlock(&g_dump_mutex);
  return path;
}

}  // namespace leakless::heap
