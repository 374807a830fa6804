// leakless/hash.hpp — the default hash for leakless containers.
//
// leakless::hash<K> answers two questions a hash table asks: "where does this key go" and "is
// this the same key", and it must answer the first with every input bit spread over every output
// bit, because hmap uses the low bits to pick a bucket and the top 8 bits as the tophash byte.
//
// Integers, enums and pointers go through one folded 64x64→128-bit multiply (the "mum" mix used
// by wyhash): multiply, then xor the two halves, so that high input bits reach low output bits.
// Strings are hashed as bytes by the standard library's string_view hash and then mixed the same
// way; the string hash is transparent (is_transparent), so a map keyed by std::string can be
// searched with a std::string_view or a const char* without building a std::string. Anything else
// that std::hash covers is hashed by std::hash and mixed, since std::hash is often the identity.
//
// Every hash has a seeded form, operator()(key, seed): hmap keeps a random per-map seed (as Go
// does) and passes it here, so the seed costs no extra multiply.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

namespace leakless {

namespace hash_detail {

inline constexpr std::uint64_t kMix0 = 0xa0761d6478bd642full;
inline constexpr std::uint64_t kMix1 = 0xe7037ed1a0b428dbull;

// The two 64-bit halves of a*b, xor'ed together.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using u128 = unsigned __int128;
  const u128 product = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

// Mixes an already-computed 64-bit value with a seed.
inline std::uint64_t mix(std::uint64_t value, std::uint64_t seed) noexcept {
  return fold_mul(value ^ seed ^ kMix0, kMix1);
}

}  // namespace hash_detail

// Primary template: std::hash, then mixed.
template <class K, class = void>
struct hash {
  std::size_t operator()(const K& key, std::uint64_t seed = 0) const
      noexcept(noexcept(std::hash<K>{}(key))) {
    return hash_detail::mix(static_cast<std::uint64_t>(std::hash<K>{}(key)), seed);
  }
};

// Integers, enums and pointers: one folded multiply.
template <class K>
struct hash<K,
            std::enable_if_t<std::is_integral_v<K> || std::is_enum_v<K> || std::is_pointer_v<K>>> {
  std::size_t operator()(K key, std::uint64_t seed = 0) const noexcept {
    std::uint64_t bits;
    if constexpr (std::is_pointer_v<K>) {
      bits = reinterpret_cast<std::uintptr_t>(key);
    } else if constexpr (std::is_enum_v<K>) {
      bits = static_cast<std::uint64_t>(static_cast<std::underlying_type_t<K>>(key));
    } else {
      bits = static_cast<std::uint64_t>(key);
    }
    return hash_detail::mix(bits, seed);
  }
};

// Strings: transparent over everything that converts to std::string_view.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text, std::uint64_t seed = 0) const noexcept {
    return hash_detail::mix(static_cast<std::uint64_t>(std::hash<std::string_view>{}(text)), seed);
  }
};

template <>
struct hash<std::string> : string_hash {};
template <>
struct hash<std::string_view> : string_hash {};

}  // namespace leakless
