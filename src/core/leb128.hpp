// src/core/leb128.hpp — LEB128 numbers: protobuf's varints and DWARF's ULEB128/SLEB128.
//
// How it works: a number is written 7 bits at a time, low bits first, each byte's top bit saying
// whether another byte follows; a signed (SLEB128) number's last byte carries the sign in bit 6.
// The compressed stacks store signed differences as unsigned numbers by zigzag, as protobuf's
// sint64 does (0, -1, 1, -2, ... become 0, 1, 2, 3, ...), so that small magnitudes stay short.
// The functions neither allocate nor throw, so the heap sampler (inside malloc) and the unwinder
// (possibly in a signal handler) use them as the pprof codec does. One implementation for the
// pprof wire format, the stack buckets' compressed frames and the DWARF unwind tables.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakless {

// The most bytes a 64-bit number takes.
inline constexpr std::size_t kMaxLeb128Bytes = 10;

// Writes `value` at `out` (room for kMaxLeb128Bytes); returns the end of what was written.
inline std::uint8_t* put_uleb128(std::uint64_t value, std::uint8_t* out) noexcept {
  while (value >= 0x80) {
    *out++ = static_cast<std::uint8_t>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<std::uint8_t>(value);
  return out;
}

enum class leb128_status : std::uint8_t {
  ok,
  truncated,  // the input ended inside the number
  overflow,   // more than 64 bits
};

// Reads an unsigned number from [p, end) into `value`, advancing p past it.
inline leb128_status read_uleb128(const std::uint8_t*& p, const std::uint8_t* end,
                                  std::uint64_t& value) noexcept {
  value = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (p == end) return leb128_status::truncated;
    const std::uint8_t byte = *p++;
    if (shift == 63 && byte > 1) return leb128_status::overflow;
    value |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return leb128_status::ok;
  }
}

// Reads a signed (SLEB128) number, as read_uleb128 does.
inline leb128_status read_sleb128(const std::uint8_t*& p, const std::uint8_t* end,
                                  std::int64_t& value) noexcept {
  std::uint64_t bits = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (p == end) return leb128_status::truncated;
    const std::uint8_t byte = *p++;
    if (shift == 63 && byte != 0 && byte != 0x7f) return leb128_status::overflow;
    bits |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      if (shift + 7 < 64 && (byte & 0x40) != 0) bits |= ~std::uint64_t{0} << (shift + 7);
      value = static_cast<std::int64_t>(bits);
      return leb128_status::ok;
    }
  }
}

inline std::uint64_t zigzag(std::int64_t value) noexcept {
  return (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
}

inline std::int64_t unzigzag(std::uint64_t value) noexcept {
  return static_cast<std::int64_t>(value >> 1) ^ -static_cast<std::int64_t>(value & 1);
}

}  // namespace leakless
