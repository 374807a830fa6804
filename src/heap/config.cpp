// src/heap/config.cpp — environment parsing for the heap profiler (see config.hpp).
#include "heap/config.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace leakless::heap {
namespace {

struct signal_name {
  std::string_view name;
  int number;
};

constexpr std::array<signal_name, 20> kSignals = {{
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"SYS", SIGSYS},
}};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Appends to a fixed buffer without allocating; truncates silently.
class message {
 public:
  message& operator<<(std::string_view s) {
    const std::size_t n = std::min(s.size(), sizeof buffer_ - 1 - length_);
    memcpy(buffer_ + length_, s.data(), n);
    length_ += n;
    return *this;
  }
  message& operator<<(std::size_t v) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    return *this << std::string_view(digits, static_cast<std::size_t>(r.ptr - digits));
  }
  std::string_view view() const { return {buffer_, length_}; }

 private:
  char buffer_[PATH_MAX + 256];
  std::size_t length_ = 0;
};

void report_bad(std::string_view variable, std::string_view value, std::string_view expected,
                std::string_view fallback) {
  message m;
  m << variable << "=" << value << " is not " << expected << "; using " << fallback;
  report(m.view());
}

}  // namespace

void report(std::string_view text) noexcept {
  message m;
  m << "leakless: " << text << "\n";
  const std::string_view out = m.view();
  std::size_t written = 0;
  while (written < out.size()) {
    const ssize_t n = write(STDERR_FILENO, out.data() + written, out.size() - written);
    if (n <= 0) break;  // nowhere to report to: stay quiet rather than disturb the program
    written += static_cast<std::size_t>(n);
  }
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, value);
  if (text.empty() || r.ec != std::errc{} || r.ptr != end) return std::nullopt;
  return value;
}

std::optional<std::size_t> parse_byte_count(std::string_view text) {
  std::size_t shift = 0;
  if (!text.empty()) {
    switch (std::tolower(static_cast<unsigned char>(text.back()))) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) text.remove_suffix(1);
  }
  const std::optional<std::uint64_t> value = parse_u64(text);
  if (!value || *value > (std::numeric_limits<std::size_t>::max() >> shift)) return std::nullopt;
  return static_cast<std::size_t>(*value) << shift;
}

std::optional<int> parse_signal(std::string_view text) {
  if (const std::optional<std::uint64_t> number = parse_u64(text)) {
    if (*number == 0 || *number >= static_cast<std::uint64_t>(NSIG) || *number == SIGKILL ||
        *number == SIGSTOP) {
      return std::nullopt;
    }
    return static_cast<int>(*number);
  }
  if (text.size() > 3 && equal_ignoring_case(text.substr(0, 3), "SIG")) text.remove_prefix(3);
  for (const signal_name& s : kSignals) {
    if (equal_ignoring_case(text, s.name)) return s.number;
  }
  return std::nullopt;
}

std::optional<double> parse_seconds(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, value);
  if (text.empty() || r.ec != std::errc{} || r.ptr != end || !std::isfinite(value) || value <= 0) {
    return std::nullopt;
  }
  return value;
}

heap_config read_environment() noexcept {
  heap_config config;
  config.dump_signal = SIGUSR2;

  if (const char* v = std::getenv("LEAKLESS_SAMPLE_RATE")) {
    if (const auto rate = parse_byte_count(v)) {
      config.sample_rate = *rate;
    } else {
      report_bad("LEAKLESS_SAMPLE_RATE", v, "a byte count (e.g. 524288 or 512k)", "524288");
    }
  }
  if (const char* v = std::getenv("LEAKLESS_SAMPLE_SEED")) {
    if (const auto seed = parse_u64(v)) {
      config.sample_seed = *seed;
    } else {
      report_bad("LEAKLESS_SAMPLE_SEED", v, "an unsigned integer", "a random seed");
    }
  }
  if (const char* v = std::getenv("LEAKLESS_HEAP_PROFILE"); v != nullptr && *v != '\0') {
    const std::size_t length = strlen(v);
    char cwd[PATH_MAX];
    const bool relative = v[0] != '/';
    const std::size_t cwd_length = relative && getcwd(cwd, sizeof cwd) != nullptr ? strlen(cwd) : 0;
    // Room for the prefix, "/", and the ".<pid>.<seq>.heap.pb.gz" suffix.
    if (relative && cwd_length == 0) {
      report_bad("LEAKLESS_HEAP_PROFILE", v, "usable (the current directory is unknown)",
                 "no profile files");
    } else if (cwd_length + 1 + length + 64 >= sizeof config.profile_prefix) {
      report_bad("LEAKLESS_HEAP_PROFILE", v, "a path short enough", "no profile files");
    } else {
      char* out = config.profile_prefix;
      if (relative) {
        memcpy(out, cwd, cwd_length);
        out += cwd_length;
        *out++ = '/';
      }
      memcpy(out, v, length + 1);
    }
  }
  if (const char* v = std::getenv("LEAKLESS_DUMP_SIGNAL")) {
    if (const auto sig = parse_signal(v)) {
      config.dump_signal = *sig;
    } else {
      report_bad("LEAKLESS_DUMP_SIGNAL", v, "a signal (a number or a name such as USR2)",
                 "SIGUSR2");
    }
  }
  if (const char* v = std::getenv("LEAKLESS_HEAP_INTERVAL")) {
    if (const auto seconds = parse_seconds(v)) {
      config.interval_seconds = *seconds;
    } else {
      report_bad("LEAKLESS_HEAP_INTERVAL", v, "a positive number of seconds", "no periodic dumps");
    }
  }
  return config;
}

}  // namespace leakless::heap
