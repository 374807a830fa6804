// src/cpu/profiler.cpp — the CPU profiler's timers, signal handler, ring, reader thread and
// profile writer (see profiler.hpp for the design).
#include "cpu/profiler.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <sys/syscall.h>
#include <sys/time.h>

#include "heap/config.hpp"
#include "heap/sampler.hpp"
#include "pprof/builder.hpp"
#include "pprof/symbolizer.hpp"
#include "stack/modules.hpp"

namespace leakless::cpu {
namespace {

// ---- The ring written by the signal handler -------------------------------------------------

constexpr std::uint32_t kMaxDepth = 62;
constexpr std::uint64_t kRingSlots = 4096;  // ~2 MiB, untouched until used

// A record is a sample (written by the handler) or the end of a thread's timer (written by
// thread_exiting() or stop(): the thread's CPU time since its timer was armed, so the reader can
// add what the samples did not cover; frames then hold the start routine, if known).
enum class record_kind : std::uint32_t { sample, timer_end };

struct record {
  std::atomic<std::uint32_t> state;  // 0 free, 1 being written, 2 full
  std::uint32_t depth;
  record_kind kind;
  std::uint64_t generation;
  std::uint64_t periods;   // sample: timer periods it stands for, 1 + the timer's overruns
  std::uint64_t timer_id;  // the per-thread timer that fired or ended (0: setitimer's signal)
  std::int64_t cpu_nanos;  // timer_end: the thread's CPU time since the timer was armed
  std::uintptr_t frames[kMaxDepth];
};

// Zero-initialised, hence constant-initialised: it lies in .bss and its pages stay untouched.
record g_ring[kRingSlots]{};
std::atomic<std::uint64_t> g_head{0};  // next slot to reserve
std::atomic<std::uint64_t> g_tail{0};  // next slot to read (the reader's alone)
std::atomic<std::uint64_t> g_dropped{0};

// The session: generation > 0 while a profile runs; handlers check it first.
std::atomic<std::uint64_t> g_active_generation{0};
std::uint64_t g_generation_counter = 0;
std::atomic<int> g_in_handler{0};

// ---- Stack bounds for the frame-pointer walk -------------------------------------------------

struct region {
  std::uintptr_t start, end;
};
constexpr std::size_t kMaxRegions = 8192;
region g_regions[kMaxRegions];  // writable mappings at start, sorted; read-only while running
std::atomic<std::size_t> g_region_count{0};

struct thread_stack {
  std::uintptr_t lo = 0, hi = 0;
};
constinit thread_local thread_stack tls_stack [[gnu::tls_model("initial-exec")]];

// Reads /proc/self/maps with read(2) into the region table (only private writable mappings:
// thread stacks, the main stack, heap).
void snapshot_regions() noexcept {
  std::size_t count = 0;
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buffer[8192];
    std::size_t used = 0;
    bool eof = false;
    while (!eof || used > 0) {
      if (!eof) {
        const ssize_t n = read(fd, buffer + used, sizeof buffer - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          eof = true;
        else
          used += static_cast<std::size_t>(n);
      }
      char* newline = static_cast<char*>(memchr(buffer, '\n', used));
      if (newline == nullptr) {
        if (eof || used == sizeof buffer) used = 0;  // a last partial line, or an absurd one
        continue;
      }
      const std::string_view line(buffer, static_cast<std::size_t>(newline - buffer));
      std::uintptr_t start = 0, end = 0;
      const auto dash = line.find('-');
      const auto space = line.find(' ');
      if (dash != std::string_view::npos && space != std::string_view::npos && space > dash &&
          line.size() >= space + 5) {
        std::from_chars(line.data(), line.data() + dash, start, 16);
        std::from_chars(line.data() + dash + 1, line.data() + space, end, 16);
        const std::string_view perms = line.substr(space + 1, 4);
        if (perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p' && count < kMaxRegions &&
            end > start) {
          g_regions[count++] = region{start, end};
        }
      }
      const std::size_t consumed = static_cast<std::size_t>(newline - buffer) + 1;
      memmove(buffer, newline + 1, used - consumed);
      used -= consumed;
    }
    close(fd);
  }
  g_region_count.store(count, std::memory_order_release);  // /proc/self/maps is sorted
}

// The stack region containing `sp`: this thread's own bounds, else the snapshot's mapping.
bool stack_bounds(std::uintptr_t sp, std::uintptr_t* lo, std::uintptr_t* hi) noexcept {
  const thread_stack& own = tls_stack;
  if (own.hi != 0 && sp >= own.lo && sp < own.hi) {
    *lo = own.lo;
    *hi = own.hi;
    return true;
  }
  std::size_t low = 0, high = g_region_count.load(std::memory_order_acquire);
  while (low < high) {
    const std::size_t mid = low + (high - low) / 2;
    if (g_regions[mid].end <= sp) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  if (low < g_region_count.load(std::memory_order_relaxed) && sp >= g_regions[low].start) {
    *lo = g_regions[low].start;
    *hi = g_regions[low].end;
    return true;
  }
  return false;
}

// The interrupted PC, then return addresses minus one along the frame-pointer chain.
[[gnu::no_sanitize_address, gnu::no_sanitize_thread]] std::uint32_t walk(
    const ucontext_t* context, std::uintptr_t* out) noexcept {
#if defined(__x86_64__)
  const auto pc = static_cast<std::uintptr_t>(context->uc_mcontext.gregs[REG_RIP]);
  auto fp = static_cast<std::uintptr_t>(context->uc_mcontext.gregs[REG_RBP]);
  const auto sp = static_cast<std::uintptr_t>(context->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  const auto pc = static_cast<std::uintptr_t>(context->uc_mcontext.pc);
  auto fp = static_cast<std::uintptr_t>(context->uc_mcontext.regs[29]);
  const auto sp = static_cast<std::uintptr_t>(context->uc_mcontext.sp);
#else
#error "the CPU profiler supports x86-64 and AArch64"
#endif
  std::uint32_t depth = 0;
  out[depth++] = pc;
  std::uintptr_t lo = 0, hi = 0;
  if (!stack_bounds(sp, &lo, &hi)) return depth;
  lo = sp;  // nothing below the stack pointer is a live frame
  while (depth < kMaxDepth) {
    if (fp < lo || fp > hi - 2 * sizeof(std::uintptr_t) || (fp & 7) != 0) break;
    const auto* frame = reinterpret_cast<const std::uintptr_t*>(fp);
    const std::uintptr_t next = frame[0];
    const std::uintptr_t ret = frame[1];
    if (ret < 4096) break;
    out[depth++] = ret - 1;
    if (next <= fp) break;
    fp = next;
  }
  return depth;
}

// Reserves the next ring slot and marks it being written; null when the ring is full.
record* reserve_record() noexcept {
  std::uint64_t head = g_head.load(std::memory_order_relaxed);
  for (;;) {
    if (head - g_tail.load(std::memory_order_acquire) >= kRingSlots) return nullptr;
    if (g_head.compare_exchange_weak(head, head + 1, std::memory_order_acq_rel)) break;
  }
  record& r = g_ring[head % kRingSlots];
  r.state.store(1, std::memory_order_relaxed);
  return &r;
}

struct sigaction g_previous_action;
bool g_previous_saved = false;

void on_sigprof(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  g_in_handler.fetch_add(1, std::memory_order_acquire);
  const std::uint64_t generation = g_active_generation.load(std::memory_order_acquire);
  if (generation == 0) {
    // Not ours (a stray or late signal): hand it to the handler that was there before us.
    g_in_handler.fetch_sub(1, std::memory_order_release);
    if (g_previous_saved) {
      if ((g_previous_action.sa_flags & SA_SIGINFO) != 0 &&
          g_previous_action.sa_sigaction != nullptr) {
        g_previous_action.sa_sigaction(signal, info, context);
      } else if (g_previous_action.sa_handler != SIG_DFL &&
                 g_previous_action.sa_handler != SIG_IGN) {
        g_previous_action.sa_handler(signal);
      }
    }
    errno = saved_errno;
    return;
  }
  // A CPU timer that expires again while its signal is still pending queues no second signal: it
  // counts an overrun. That happens on a busy machine, where the kernel notices expiries late
  // (on scheduler ticks) and several periods can pass between two deliveries, and while the
  // thread blocks SIGPROF. The sample then stands for 1 + overrun periods, or the thread's CPU
  // time would be undercounted. (setitimer's signals carry no overrun count.)
  const bool timer = info != nullptr && info->si_code == SI_TIMER;
  const int overrun = timer ? info->si_overrun : 0;
  const std::uint64_t periods = 1 + static_cast<std::uint64_t>(overrun > 0 ? overrun : 0);
  record* slot = reserve_record();
  if (slot == nullptr) {
    g_dropped.fetch_add(periods, std::memory_order_relaxed);
    g_in_handler.fetch_sub(1, std::memory_order_release);
    errno = saved_errno;
    return;
  }
  record& r = *slot;
  r.kind = record_kind::sample;
  r.generation = generation;
  r.periods = periods;
  r.timer_id = timer ? reinterpret_cast<std::uintptr_t>(info->si_value.sival_ptr) : 0;
  r.cpu_nanos = 0;
  r.depth = walk(static_cast<const ucontext_t*>(context), r.frames);
  r.state.store(2, std::memory_order_release);
  g_in_handler.fetch_sub(1, std::memory_order_release);
  errno = saved_errno;
}

// ---- The session ---------------------------------------------------------------------------

struct thread_timer {
  pid_t tid;
  timer_t timer;
  clockid_t clock;           // the thread's CPU clock
  std::uint64_t id;          // the timer's signals carry it (sigev_value)
  std::int64_t armed_nanos;  // the thread's CPU clock when the timer was armed
  std::int64_t ended_nanos;  // stop(): the thread's CPU clock when the timer was deleted
};

// What the reader knows of each per-thread timer: the periods its samples stood for and the
// stack of its latest sample (a key of g_counts: std::map keys stay put), so the CPU time a
// thread used after its last counted expiry can be added to that stack when its timer ends.
struct timer_account {
  std::int64_t periods = 0;
  stack_counts::iterator last;
};

std::mutex g_session_mutex;                                  // start/stop
pthread_mutex_t g_timers_mutex = PTHREAD_MUTEX_INITIALIZER;  // g_timers, thread start/exit
std::vector<thread_timer> g_timers;
bool g_per_thread = true;
std::int64_t g_period_nanos = 10'000'000;
int g_hz = kDefaultHz;
std::ostream* g_out = nullptr;
std::int64_t g_start_nanos = 0;
std::chrono::steady_clock::time_point g_start_steady;
stack_counts g_counts;                                        // the reader's, then stop()'s
std::unordered_map<std::uint64_t, timer_account> g_accounts;  // by timer id; as g_counts
std::uint64_t g_timer_ids = 0;  // the last timer id given (under g_timers_mutex)
pthread_t g_reader;
std::atomic<bool> g_reader_stop{false};
std::atomic<pid_t> g_reader_tid{0};  // the reader takes no timer: it blocks every signal
bool g_fork_handler_installed = false;

pid_t current_tid() noexcept { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

timespec nanos_to_timespec(std::int64_t nanos) {
  return timespec{static_cast<time_t>(nanos / 1'000'000'000),
                  static_cast<long>(nanos % 1'000'000'000)};
}

std::int64_t timespec_to_nanos(const timespec& t) noexcept {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// Arms a timer on `tid`'s CPU clock; g_timers_mutex is held. False if the thread is gone or the
// kernel has no per-thread CPU timers.
bool arm_thread_timer(pid_t tid) noexcept {
  for (const thread_timer& t : g_timers) {
    if (t.tid == tid) return true;
  }
  const std::uint64_t id = ++g_timer_ids;
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = SIGPROF;
  event.sigev_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
  event._sigev_un._tid = tid;
  const clockid_t clock = static_cast<clockid_t>((~static_cast<clockid_t>(tid)) << 3) | 6;
  timer_t timer;
  if (timer_create(clock, &event, &timer) != 0) return false;
  // The samples cover the thread's CPU time from here on, not what it used before (a thread that
  // exists at start has a past the profile must not count).
  timespec armed{};
  if (clock_gettime(clock, &armed) != 0) {
    timer_delete(timer);
    return false;
  }
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  std::uint64_t state = static_cast<std::uint64_t>(now.tv_nsec) ^
                        (static_cast<std::uint64_t>(tid) << 32) ^
                        static_cast<std::uint64_t>(now.tv_sec);
  const auto first =
      static_cast<std::int64_t>(splitmix64(state) % static_cast<std::uint64_t>(g_period_nanos)) + 1;
  itimerspec spec{};
  spec.it_interval = nanos_to_timespec(g_period_nanos);
  spec.it_value = nanos_to_timespec(first);
  if (timer_settime(timer, 0, &spec, nullptr) != 0) {
    timer_delete(timer);
    return false;
  }
  try {
    g_timers.push_back(thread_timer{tid, timer, clock, id, timespec_to_nanos(armed), -1});
  } catch (...) {
    timer_delete(timer);
    return false;
  }
  return true;
}

// Writes the end of timer `t` into the ring: `cpu_nanos` is the thread's CPU clock read when the
// timer was deleted (-1: the thread was gone), `start_routine` the thread's start routine (0:
// unknown). g_timers_mutex is held, and no signal of `t` can still be handled: the reader then
// counts the end after every sample of the timer. The reader runs (stop() joins it later), so a
// full ring drains; if it stays full, the thread's tail is lost.
void end_timer(const thread_timer& t, std::int64_t cpu_nanos,
               std::uintptr_t start_routine) noexcept {
  if (cpu_nanos < 0) return;
  record* r = nullptr;
  for (int wait = 0; (r = reserve_record()) == nullptr; ++wait) {
    if (wait == 100) return;
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
  }
  r->kind = record_kind::timer_end;
  r->generation = g_active_generation.load(std::memory_order_relaxed);
  r->periods = 0;
  r->timer_id = t.id;
  r->cpu_nanos = cpu_nanos - t.armed_nanos;
  r->depth = 0;
  if (start_routine != 0) r->frames[r->depth++] = start_routine;
  r->state.store(2, std::memory_order_release);
}

std::int64_t cpu_clock_nanos(clockid_t clock) noexcept {
  timespec now{};
  return clock_gettime(clock, &now) == 0 ? timespec_to_nanos(now) : -1;
}

void count_sample(const record& r) {
  const auto periods = static_cast<std::int64_t>(r.periods);
  stack_counts::iterator at;
  try {
    at = g_counts.try_emplace(std::vector<std::uint64_t>(r.frames, r.frames + r.depth), 0).first;
  } catch (...) {
    g_dropped.fetch_add(r.periods, std::memory_order_relaxed);
    return;
  }
  at->second += periods;
  if (r.timer_id == 0) return;
  try {
    timer_account& account = g_accounts[r.timer_id];
    account.periods += periods;
    account.last = at;
  } catch (...) {
    // Out of memory: this timer's end then counts the sample again.
  }
}

// A timer ended: the thread used cpu_nanos of CPU while it was armed, i.e. that many periods
// rounded to the nearest whole one (the first expiry's phase is uniform, so on average exactly
// cpu_nanos / period expiries fall in it). What its samples did not cover goes to its latest
// stack (or, never sampled, to its start routine): the expiries the kernel had not noticed yet,
// the signal still pending, the part of a period that had not ended. Whole periods keep
// samples/count and cpu/nanoseconds in step (cpu = samples x period in every sample, as Go has).
void count_timer_end(const record& r) {
  const auto found = g_accounts.find(r.timer_id);
  const std::int64_t covered = found != g_accounts.end() ? found->second.periods : 0;
  const std::int64_t extra = (r.cpu_nanos + g_period_nanos / 2) / g_period_nanos - covered;
  if (extra > 0 && found != g_accounts.end()) {
    found->second.last->second += extra;
  } else if (extra > 0 && r.depth > 0) {
    try {
      g_counts[std::vector<std::uint64_t>(r.frames, r.frames + r.depth)] += extra;
    } catch (...) {
      g_dropped.fetch_add(static_cast<std::uint64_t>(extra), std::memory_order_relaxed);
    }
  }
  if (found != g_accounts.end()) g_accounts.erase(found);
}

void drain() {
  for (;;) {
    const std::uint64_t tail = g_tail.load(std::memory_order_relaxed);
    if (tail == g_head.load(std::memory_order_acquire)) return;
    record& r = g_ring[tail % kRingSlots];
    if (r.state.load(std::memory_order_acquire) != 2) return;  // still being written
    if (r.generation == g_active_generation.load(std::memory_order_relaxed) ||
        g_active_generation.load(std::memory_order_relaxed) == 0) {
      if (r.kind == record_kind::sample) {
        count_sample(r);
      } else {
        count_timer_end(r);
      }
    }
    r.state.store(0, std::memory_order_relaxed);
    g_tail.store(tail + 1, std::memory_order_release);
  }
}

void* reader_main(void*) {
  heap::tls_sampler.busy = 1;  // the profiler's own allocations are not the program's
  g_reader_tid.store(current_tid(), std::memory_order_release);
  while (!g_reader_stop.load(std::memory_order_acquire)) {
    drain();
    timespec pause{0, 10'000'000};
    nanosleep(&pause, nullptr);
  }
  return nullptr;
}

void after_fork_in_child() noexcept {
  // Threads and timers did not survive: the child has no profile. It keeps our SIGPROF handler,
  // inactive, which hands any SIGPROF to the previous handler.
  pthread_mutex_init(&g_timers_mutex, nullptr);
  new (&g_session_mutex) std::mutex();
  if (g_active_generation.exchange(0) != 0) {
    new (&g_timers) std::vector<thread_timer>();  // the parent's timer ids mean nothing here
    new (&g_counts) stack_counts();               // leaked on purpose: another thread owned it
    new (&g_accounts) std::unordered_map<std::uint64_t, timer_account>();  // leaked, as g_counts
    g_out = nullptr;
  }
  g_in_handler.store(0);
  g_head.store(0);
  g_tail.store(0);
  for (record& r : g_ring) r.state.store(0, std::memory_order_relaxed);
}

std::int64_t wall_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void start(std::ostream& out, options opts) {
  if (opts.hz < 1 || opts.hz > kMaxHz) {
    throw std::invalid_argument("cpu profile rate must be 1.." + std::to_string(kMaxHz) + " Hz");
  }
  std::lock_guard session(g_session_mutex);
  if (g_active_generation.load() != 0) throw std::logic_error(kAlreadyInUse);
  heap::busy_scope busy;
  if (!g_fork_handler_installed) {
    g_fork_handler_installed = true;
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
  }
  g_hz = opts.hz;
  g_period_nanos = 1'000'000'000 / opts.hz;
  g_out = &out;
  g_counts.clear();
  g_accounts.clear();
  g_dropped.store(0);
  snapshot_regions();

  struct sigaction action {};
  action.sa_sigaction = on_sigprof;
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  if (sigaction(SIGPROF, &action, &previous) != 0) {
    throw std::runtime_error("cannot install the SIGPROF handler");
  }
  if (previous.sa_sigaction != on_sigprof) {
    g_previous_action = previous;
    g_previous_saved = true;
  }

  g_reader_stop.store(false);
  g_reader_tid.store(0);
  sigset_t all, old_mask;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old_mask);  // the reader takes no signal
  const int created = pthread_create(&g_reader, nullptr, reader_main, nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (created != 0) {
    sigaction(SIGPROF, &g_previous_action, nullptr);
    g_out = nullptr;
    throw std::runtime_error("cannot start the cpu profile reader thread");
  }
  pthread_setname_np(g_reader, "leakless-cpu");
  while (g_reader_tid.load(std::memory_order_acquire) == 0) sched_yield();
  const pid_t reader_tid = g_reader_tid.load();

  g_start_nanos = wall_nanos();
  g_start_steady = std::chrono::steady_clock::now();
  g_active_generation.store(++g_generation_counter, std::memory_order_release);

  pthread_mutex_lock(&g_timers_mutex);
  g_per_thread = !opts.process_timer && arm_thread_timer(current_tid());
  if (g_per_thread) {
    if (DIR* tasks = opendir("/proc/self/task")) {
      while (const dirent* entry = readdir(tasks)) {
        const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
        // A thread that exited since the listing is skipped (timer_create fails).
        if (tid > 0 && tid != reader_tid) arm_thread_timer(tid);
      }
      closedir(tasks);
    }
  }
  pthread_mutex_unlock(&g_timers_mutex);
  if (!g_per_thread) {
    itimerval spec{};
    spec.it_interval.tv_sec = static_cast<time_t>(g_period_nanos / 1'000'000'000);
    spec.it_interval.tv_usec = static_cast<suseconds_t>(g_period_nanos % 1'000'000'000 / 1000);
    spec.it_value = spec.it_interval;
    setitimer(ITIMER_PROF, &spec, nullptr);
  }
}

namespace {

// Stops the running profile if it writes to `only` (any profile when `only` is null).
bool stop_writing_to(const std::ostream* only) {
  std::lock_guard session(g_session_mutex);
  if (g_active_generation.load() == 0 || (only != nullptr && g_out != only)) return false;
  heap::busy_scope busy;
  const auto duration = std::chrono::steady_clock::now() - g_start_steady;

  // Each live thread's CPU clock is read just before its timer goes: the CPU time it used since
  // its last counted expiry (the signal still pending, discarded below; the part of a period
  // that had not ended) is added to its latest stack, as for a thread that exits. The lock is
  // held until those ends are in the ring, so a thread exiting meanwhile waits in
  // thread_exiting() (its clock stays readable) and then finds its timer gone.
  pthread_mutex_lock(&g_timers_mutex);
  for (thread_timer& t : g_timers) {
    t.ended_nanos = cpu_clock_nanos(t.clock);
    timer_delete(t.timer);
  }
  if (!g_per_thread) {
    itimerval off{};
    setitimer(ITIMER_PROF, &off, nullptr);
  }
  // Setting SIG_IGN discards SIGPROF signals still pending in every thread; then the previous
  // action comes back. Handlers already running finish before the ring is read for the last time.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPROF, &ignore, nullptr);
  sigaction(SIGPROF, &g_previous_action, nullptr);
  while (g_in_handler.load(std::memory_order_acquire) != 0) sched_yield();
  for (const thread_timer& t : g_timers) end_timer(t, t.ended_nanos, 0);
  g_timers.clear();
  pthread_mutex_unlock(&g_timers_mutex);

  g_reader_stop.store(true, std::memory_order_release);
  pthread_join(g_reader, nullptr);
  drain();
  g_active_generation.store(0, std::memory_order_release);
  g_accounts.clear();  // before g_counts, whose keys it points to, is handed over

  std::ostream* out = g_out;
  g_out = nullptr;
  stack_counts counts;
  counts.swap(g_counts);
  const pprof::profile p =
      build_profile(counts, static_cast<std::int64_t>(g_dropped.exchange(0)), g_hz, g_start_nanos,
                    std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count());
  const std::string bytes = pprof::encode_gzipped(p);
  out->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out->flush();
  return true;
}

}  // namespace

bool stop() { return stop_writing_to(nullptr); }

bool running() noexcept { return g_active_generation.load(std::memory_order_acquire) != 0; }

bool per_thread_timers() noexcept { return running() && g_per_thread; }

void thread_started() noexcept {
  // Threads that exist when a profile starts are found in the /proc/self/maps snapshot; only a
  // thread starting during a profile needs its own stack bounds (and its own timer).
  if (g_active_generation.load(std::memory_order_acquire) == 0) return;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* base = nullptr;
    std::size_t size = 0;
    if (pthread_attr_getstack(&attr, &base, &size) == 0) {
      const auto lo = reinterpret_cast<std::uintptr_t>(base);
      tls_stack.lo = lo;
      tls_stack.hi = lo + size;
    }
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_lock(&g_timers_mutex);
  // Checked again under the lock: stop() deletes every timer under it.
  bool armed = false;
  if (g_active_generation.load(std::memory_order_acquire) != 0 && g_per_thread) {
    armed = arm_thread_timer(current_tid());
  }
  pthread_mutex_unlock(&g_timers_mutex);
  if (armed) {
    // Libraries often start workers with every signal blocked (liblzma, for one) so that the
    // program's signals go elsewhere; SIGPROF from this thread's own timer is meant for it.
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &prof, nullptr);
  }
}

void thread_exiting(std::uintptr_t start_routine) noexcept {
  if (g_active_generation.load(std::memory_order_acquire) == 0) return;
  // SIGPROF stays blocked until the thread ends: a signal of its timer still pending is then never
  // delivered, and the CPU time it stood for is counted once, from the thread's clock.
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, nullptr);
  const pid_t tid = current_tid();
  pthread_mutex_lock(&g_timers_mutex);
  for (std::size_t i = 0; i < g_timers.size(); ++i) {
    if (g_timers[i].tid == tid) {
      const std::int64_t cpu_nanos = cpu_clock_nanos(g_timers[i].clock);
      timer_delete(g_timers[i].timer);
      end_timer(g_timers[i], cpu_nanos, start_routine);
      g_timers[i] = g_timers.back();
      g_timers.pop_back();
      break;
    }
  }
  pthread_mutex_unlock(&g_timers_mutex);
}

std::size_t timer_count() noexcept {
  pthread_mutex_lock(&g_timers_mutex);
  const std::size_t n = g_timers.size();
  pthread_mutex_unlock(&g_timers_mutex);
  return n;
}

pprof::profile build_profile(const stack_counts& counts, std::int64_t dropped, int hz,
                             std::int64_t time_nanos, std::int64_t duration_nanos) {
  const std::int64_t period = 1'000'000'000 / hz;
  pprof::profile_builder builder({{"samples", "count"}, {"cpu", "nanoseconds"}},
                                 {"cpu", "nanoseconds"}, period);
  builder.set_time(time_nanos, duration_nanos);
  for (const auto& [stack, count] : counts) {
    const std::int64_t values[2] = {count, count * period};
    builder.add_sample(stack, values);
  }
  // The pseudo-location of lost samples: an address no module holds, resolved by name below.
  constexpr std::uint64_t kLostAddress = 1;
  if (dropped > 0) {
    const std::uint64_t stack[1] = {kLostAddress};
    const std::int64_t values[2] = {dropped, dropped * period};
    builder.add_sample(stack, values);
  }
  static const pprof::symbolized lost{
      {pprof::frame{kLostSamplesFunction, kLostSamplesFunction, "", 0, 0}}, 0};
  pprof::symbolizer symbols;
  return builder.build(
      [&symbols](std::uint64_t address) -> const pprof::symbolized& {
        return address == kLostAddress ? lost : symbols.lookup(address);
      },
      stack::loaded_modules());
}

int hz_from_environment() noexcept {
  const char* v = std::getenv("LEAKLESS_CPU_HZ");
  if (v == nullptr) return kDefaultHz;
  const auto hz = heap::parse_u64(v);
  if (hz && *hz >= 1 && *hz <= static_cast<std::uint64_t>(kMaxHz)) return static_cast<int>(*hz);
  char text[256];
  std::snprintf(text, sizeof text,
                "LEAKLESS_CPU_HZ=%.64s is not a rate from 1 to %d samples per second; using %d", v,
                kMaxHz, kDefaultHz);
  heap::report(text);
  return kDefaultHz;
}

namespace {
std::ofstream* g_env_file = nullptr;  // never destroyed: it is written at exit
}  // namespace

void start_from_environment() noexcept {
  const char* path = std::getenv("LEAKLESS_CPU_PROFILE");
  if (path == nullptr || *path == '\0') return;
  const int hz = hz_from_environment();
  heap::busy_scope busy;
  try {
    auto* file = new std::ofstream(path, std::ios::binary | std::ios::trunc);
    if (!*file) {
      char text[512];
      std::snprintf(text, sizeof text, "cannot create %.400s: %s; no cpu profile", path,
                    strerrordesc_np(errno));
      heap::report(text);
      delete file;
      return;
    }
    g_env_file = file;
    start(*file, options{hz, false});
  } catch (const std::exception& e) {
    heap::report(std::string("cannot start the cpu profile: ") + e.what());
  }
}

void stop_at_exit() noexcept {
  if (g_env_file == nullptr) return;
  try {
    // Only the profile the environment started (a program's own may be running instead).
    if (stop_writing_to(g_env_file)) {
      g_env_file->close();
      if (!*g_env_file) heap::report("cannot write the cpu profile (LEAKLESS_CPU_PROFILE)");
    }
  } catch (const std::exception& e) {
    heap::report(std::string("cannot write the cpu profile: ") + e.what());
  }
}

}  // namespace leakless::cpu
