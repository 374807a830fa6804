// src/heap/config.hpp — the heap profiler's settings from the environment, and their parsers.
//
// Variables (the same for a preloaded and a linked library):
//   LEAKLESS_SAMPLE_RATE=<bytes>      mean bytes between samples (default 524288; 1 = every
//                                     allocation; 0 = off). Suffixes k, m, g (KiB, MiB, GiB).
//   LEAKLESS_SAMPLE_SEED=<n>          makes the sampler's random stream reproducible.
//   LEAKLESS_HEAP_PROFILE=<prefix>    write <prefix>.<pid>.<seq>.heap.pb.gz at exit, on the dump
//                                     signal and every interval; a relative prefix is taken
//                                     relative to the directory the program started in.
//   LEAKLESS_DUMP_SIGNAL=<sig>        the dump signal: a number or a name (USR1, SIGUSR2, ...);
//                                     default SIGUSR2.
//   LEAKLESS_HEAP_INTERVAL=<seconds>  also dump periodically (decimals allowed).
// A bad value is reported once on stderr, prefixed "leakless:", and the default is used: the host
// program is never stopped by our configuration. The parsers are pure functions (tested alone);
// read_environment() only uses getenv and write(2), so it is safe before main and inside malloc.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace leakless::heap {

struct heap_config {
  std::size_t sample_rate = 512 * 1024;
  std::optional<std::uint64_t> sample_seed;
  char profile_prefix[PATH_MAX] = {};  // empty: no files
  int dump_signal = 0;                 // set from SIGUSR2 by read_environment
  double interval_seconds = 0;         // 0: no periodic dumps
};

// "524288", "512k", "1m", "2G": bytes; nullopt on anything else (including overflow).
std::optional<std::size_t> parse_byte_count(std::string_view text);
// "12345": an unsigned 64-bit number.
std::optional<std::uint64_t> parse_u64(std::string_view text);
// "12", "USR2", "SIGUSR2", "sigusr1": a catchable signal number (not KILL or STOP).
std::optional<int> parse_signal(std::string_view text);
// "30", "0.5": a positive, finite number of seconds.
std::optional<double> parse_seconds(std::string_view text);

// Reads every variable; reports bad values on stderr (once per call).
heap_config read_environment() noexcept;

// Writes "leakless: <message>\n" to stderr with write(2): no stdio, no allocation.
void report(std::string_view message) noexcept;

}  // namespace leakless::heap
