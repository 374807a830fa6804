// src/threads/threads_profile.cpp — captures every thread's stack and writes the threads profile
// (see threads_profile.hpp for the design).
#define UNW_LOCAL_ONLY
#include "threads/threads_profile.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>

#include <sys/syscall.h>

#include "heap/sampler.hpp"
#include "pprof/builder.hpp"
#include "pprof/symbolizer.hpp"
#include "stack/modules.hpp"

namespace leakless::threads {
namespace {

constexpr std::uint32_t kMaxDepth = 128;

// Slot phases, in the low two bits of slot::state; the generation is in the bits above.
constexpr std::uint64_t kWaiting = 0, kWriting = 1, kDone = 2, kAbandoned = 3;

struct slot {
  std::atomic<std::uint64_t> state{0};
  pid_t tid = 0;
  std::uint32_t depth = 0;
  std::uintptr_t frames[kMaxDepth];
};

struct slot_array {
  std::size_t count;
  slot* slots;
};

// The current slot array; replaced by a larger one when needed, never freed.
std::atomic<slot_array*> g_slots{nullptr};

// The signal's payload: a tag, the request's generation (24 bits) and the slot index (24 bits).
constexpr std::uint64_t kTag = 0x11e5ull << 48;
constexpr std::uint64_t kTagMask = 0xffffull << 48;
constexpr std::uint64_t kField = (1ull << 24) - 1;

std::mutex g_request_mutex;  // one request at a time
std::uint64_t g_generation = 0;
struct sigaction g_previous;
bool g_installed = false;

std::uintptr_t interrupted_pc(const void* context) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
#error "the threads profile supports x86-64 and AArch64"
#endif
}

// The interrupted PC, then return addresses minus one.
std::uint32_t unwind_interrupted(void* context, std::uintptr_t* out) noexcept {
  out[0] = interrupted_pc(context);
  if (heap::tls_sampler.unwinding) return 1;
  unw_cursor_t cursor;
  if (unw_init_local2(&cursor, static_cast<unw_context_t*>(context), UNW_INIT_SIGNAL_FRAME) < 0) {
    return 1;
  }
  std::uint32_t depth = 0;
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0) break;
    out[depth] = depth == 0 ? ip : ip - 1;
    ++depth;
  } while (depth < kMaxDepth && unw_step(&cursor) > 0);
  return depth == 0 ? 1 : depth;
}

void on_signal(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const auto payload = reinterpret_cast<std::uint64_t>(info->si_value.sival_ptr);
  if (info->si_code != SI_QUEUE || info->si_pid != getpid() || (payload & kTagMask) != kTag) {
    if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
      g_previous.sa_sigaction(signal, info, context);
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
               g_previous.sa_handler != nullptr) {
      g_previous.sa_handler(signal);
    }
    errno = saved_errno;
    return;
  }
  const std::uint64_t generation = (payload >> 24) & kField;
  const std::uint64_t index = payload & kField;
  slot_array* array = g_slots.load(std::memory_order_acquire);
  if (array != nullptr && index < array->count) {
    slot& s = array->slots[index];
    std::uint64_t expected = generation << 2 | kWaiting;
    if (s.state.compare_exchange_strong(expected, generation << 2 | kWriting,
                                        std::memory_order_acquire)) {
      s.depth = unwind_interrupted(context, s.frames);
      s.state.store(generation << 2 | kDone, std::memory_order_release);
    }
  }
  errno = saved_errno;
}

// A request in another thread at fork() leaves the mutex locked in the child, which has one thread.
void after_fork_in_child() { new (&g_request_mutex) std::mutex(); }

void install_handler() {
  if (g_installed) return;
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  struct sigaction action {};
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(profile_signal(), &action, &g_previous) != 0) {
    throw std::runtime_error("cannot install the threads profile signal handler");
  }
  g_installed = true;
}

slot_array* slots_for(std::size_t count) {
  slot_array* current = g_slots.load(std::memory_order_acquire);
  if (current != nullptr && current->count >= count) return current;
  std::size_t capacity = current != nullptr ? current->count : 64;
  while (capacity < count) capacity *= 2;
  capacity = std::min<std::size_t>(capacity, kField);
  auto* fresh = new slot_array{capacity, new slot[capacity]};
  g_slots.store(fresh, std::memory_order_release);  // the old array stays for late handlers
  return fresh;
}

std::string read_small_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[4096];
  std::string text;
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return text;
}

std::string state_name(char code) {
  switch (code) {
    case 'R':
      return "running";
    case 'S':
      return "sleeping";
    case 'D':
      return "disk sleep";
    case 'T':
      return "stopped";
    case 't':
      return "tracing stop";
    case 'Z':
      return "zombie";
    case 'X':
      return "dead";
    case 'I':
      return "idle";
    default:
      return std::string(1, code);
  }
}

// Name, state and whether the thread blocks our signal, from /proc/self/task/<tid>.
bool describe(thread_record& r, bool* blocks_signal) {
  const std::string base = "/proc/self/task/" + std::to_string(r.tid);
  const std::string stat = read_small_file(base + "/stat");
  if (stat.empty()) return false;  // gone
  r.name = read_small_file(base + "/comm");
  while (!r.name.empty() && r.name.back() == '\n') r.name.pop_back();
  const auto paren = stat.rfind(')');
  r.state = paren != std::string::npos && paren + 2 < stat.size() ? state_name(stat[paren + 2])
                                                                  : "unknown";
  *blocks_signal = false;
  const std::string status = read_small_file(base + "/status");
  const auto at = status.find("SigBlk:");
  if (at != std::string::npos) {
    const std::uint64_t mask = std::strtoull(status.c_str() + at + 7, nullptr, 16);
    *blocks_signal = (mask >> (profile_signal() - 1) & 1) != 0;
  }
  return true;
}

std::vector<pid_t> list_threads() {
  std::vector<pid_t> tids;
  if (DIR* tasks = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(tasks)) {
      const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
      if (tid > 0) tids.push_back(tid);
    }
    closedir(tasks);
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

// Pseudo-addresses (no module holds them) for threads whose stack is unknown.
constexpr std::uint64_t kBlockedAddress = 1, kNoAnswerAddress = 2;
constexpr const char* kBlockedFunction = "leakless::signal_blocked";
constexpr const char* kNoAnswerFunction = "leakless::no_answer";

std::vector<std::uint64_t> stack_of(const thread_record& r) {
  switch (r.status) {
    case capture_status::captured:
      return r.addresses;
    case capture_status::blocked:
      return {kBlockedAddress};
    case capture_status::no_answer:
      return {kNoAnswerAddress};
  }
  return {};
}

const pprof::symbolized& lookup(pprof::symbolizer& symbols, std::uint64_t address) {
  static const pprof::symbolized blocked{
      {pprof::frame{kBlockedFunction, kBlockedFunction, "", 0, 0}}, 0};
  static const pprof::symbolized no_answer{
      {pprof::frame{kNoAnswerFunction, kNoAnswerFunction, "", 0, 0}}, 0};
  if (address == kBlockedAddress) return blocked;
  if (address == kNoAnswerAddress) return no_answer;
  return symbols.lookup(address);
}

// Distinct stacks with their thread counts, most frequent first (ties: by stack), as Go sorts.
std::vector<std::pair<std::vector<std::uint64_t>, std::int64_t>> grouped(
    const std::vector<thread_record>& records) {
  std::map<std::vector<std::uint64_t>, std::int64_t> counts;
  for (const thread_record& r : records) counts[stack_of(r)] += 1;
  std::vector<std::pair<std::vector<std::uint64_t>, std::int64_t>> out(counts.begin(),
                                                                       counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

}  // namespace

int profile_signal() noexcept { return SIGRTMAX - 3; }

std::vector<thread_record> capture_all(std::chrono::milliseconds timeout) {
  std::lock_guard request(g_request_mutex);
  heap::busy_scope busy;  // our allocations are the profiler's, not the program's
  install_handler();
  // libunwind initialises its globals on first use; do it here, not in many handlers at once (the
  // slots' release/acquire then orders it before every handler's unwinding).
  {
    unw_context_t context;
    unw_cursor_t cursor;
    if (unw_getcontext(&context) == 0) unw_init_local(&cursor, &context);
  }

  std::vector<thread_record> records;
  std::vector<bool> blocked;
  for (const pid_t tid : list_threads()) {
    thread_record r;
    r.tid = tid;
    bool blocks = false;
    if (!describe(r, &blocks)) continue;
    records.push_back(std::move(r));
    blocked.push_back(blocks);
  }
  slot_array* array = slots_for(records.size());
  const std::size_t n = std::min(records.size(), array->count);
  records.resize(n);
  const std::uint64_t generation = (++g_generation) & kField;
  for (std::size_t i = 0; i < n; ++i) {
    slot& s = array->slots[i];
    s.tid = records[i].tid;
    s.depth = 0;
    s.state.store(generation << 2 | (blocked[i] ? kAbandoned : kWaiting),
                  std::memory_order_release);
  }
  const pid_t pid = getpid();
  std::vector<bool> gone(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    if (blocked[i]) {
      records[i].status = capture_status::blocked;
      continue;
    }
    siginfo_t info{};
    info.si_signo = profile_signal();
    info.si_code = SI_QUEUE;
    info.si_pid = pid;
    info.si_uid = getuid();
    info.si_value.sival_ptr = reinterpret_cast<void*>(kTag | generation << 24 | i);
    if (syscall(SYS_rt_tgsigqueueinfo, pid, records[i].tid, profile_signal(), &info) != 0) {
      std::uint64_t expected = generation << 2 | kWaiting;
      array->slots[i].state.compare_exchange_strong(expected, generation << 2 | kAbandoned);
      gone[i] = errno == ESRCH;  // exited since the listing
    }
  }

  // Wait for the answers, polling; then abandon the slots still waiting.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool pending = false;
    for (std::size_t i = 0; i < n && !pending; ++i) {
      const std::uint64_t phase = array->slots[i].state.load(std::memory_order_acquire) & 3;
      pending = phase == kWaiting || phase == kWriting;
    }
    if (!pending || std::chrono::steady_clock::now() >= deadline) break;
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
  }
  for (std::size_t i = 0; i < n; ++i) {
    slot& s = array->slots[i];
    std::uint64_t expected = generation << 2 | kWaiting;
    s.state.compare_exchange_strong(expected, generation << 2 | kAbandoned);
    // A handler that has claimed its slot is running and finishes without waiting for anything.
    while ((s.state.load(std::memory_order_acquire) & 3) == kWriting) sched_yield();
    if ((s.state.load(std::memory_order_acquire) & 3) == kDone) {
      records[i].status = capture_status::captured;
      records[i].addresses.assign(s.frames, s.frames + s.depth);
    }
  }
  std::vector<thread_record> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (!gone[i]) out.push_back(std::move(records[i]));
  }
  return out;
}

std::size_t thread_count() { return list_threads().size(); }

std::string threads_profile_bytes() {
  const std::vector<thread_record> records = capture_all();
  heap::busy_scope busy;
  pprof::profile_builder builder({{"threads", "count"}}, {"threads", "count"}, 1);
  builder.set_time(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count(),
                   0);
  for (const auto& [stack, count] : grouped(records)) {
    const std::int64_t values[1] = {count};
    builder.add_sample(stack, values);
  }
  pprof::symbolizer symbols;
  const pprof::profile p = builder.build(
      [&symbols](std::uint64_t address) -> const pprof::symbolized& {
        return lookup(symbols, address);
      },
      stack::loaded_modules());
  return pprof::encode_gzipped(p);
}

std::string threads_profile_text(int debug) {
  const std::vector<thread_record> records = capture_all();
  heap::busy_scope busy;
  pprof::symbolizer symbols;
  std::string out;
  char line[256];
  if (debug == 1) {
    std::snprintf(line, sizeof line, "threads profile: total %zu\n", records.size());
    out += line;
    for (const auto& [stack, count] : grouped(records)) {
      std::snprintf(line, sizeof line, "%" PRId64 " @", count);
      out += line;
      for (const std::uint64_t address : stack) {
        std::snprintf(line, sizeof line, " %#" PRIx64, address);
        out += line;
      }
      out += '\n';
      for (const std::uint64_t address : stack) {
        if (address == kBlockedAddress || address == kNoAnswerAddress) {
          out += "#\t";
          out += lookup(symbols, address).frames.front().function;
          out += '\n';
        } else {
          pprof::append_legacy_frames(out, address, symbols);
        }
      }
      out += '\n';
    }
    return out;
  }
  // debug >= 2: every thread, as Go's goroutine dump ("goroutine 1 [running]:").
  for (const thread_record& r : records) {
    std::snprintf(line, sizeof line, "thread %d (%.32s) [%s]:\n", static_cast<int>(r.tid),
                  r.name.c_str(), r.state.c_str());
    out += line;
    if (r.status != capture_status::captured) {
      out += r.status == capture_status::blocked ? "stack unavailable: the thread blocks signal "
                                                 : "stack unavailable: no answer to signal ";
      out += std::to_string(profile_signal());
      out += "\n\n";
      continue;
    }
    for (const std::uint64_t address : r.addresses) {
      const pprof::symbolized& sym = symbols.lookup(address);
      if (sym.frames.empty()) {
        std::snprintf(line, sizeof line, "??\n\t?? %#" PRIx64 "\n", address);
        out += line;
        continue;
      }
      for (const pprof::frame& f : sym.frames) {
        out += f.function.empty() ? "??" : f.function;
        out += "\n\t";
        out += f.file.empty() ? "??" : f.file;
        std::snprintf(line, sizeof line, ":%" PRId64 " +%#" PRIx64 "\n", f.line, sym.symbol_offset);
        out += line;
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace leakless::threads
