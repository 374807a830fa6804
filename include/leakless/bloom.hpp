// leakless/bloom.hpp — a split-block Bloom filter (the layout Apache Parquet specifies).
//
// Layout. The filter is an array of blocks; a block is 256 bits = eight 32-bit words, 32 bytes,
// aligned to 32 bytes. A key is hashed once to 64 bits with leakless::hash<K> (already 64 bits),
// which is passed through its own mixer once more (see remix()). The upper 32 bits of the result
// pick ONE block by multiply-shift,
//   block = (hash >> 32) * num_blocks >> 32,
// which maps uniformly onto any block count, so the count need not be a power of two: we use the
// smallest count that meets the requested false-positive rate (Parquet rounds up to a power of two
// bytes; we do not, which saves up to half the memory). The lower 32 bits, x, set one bit in each
// of the block's eight words: bit (x * SALT[i]) >> 27 of word i, with the eight odd SALT
// constants from the Parquet specification. A key is present only if all eight bits are set.
//
// Why one cache line. Every bit of a key lives in the same 32-byte block, and a 32-byte aligned
// block never straddles a 64-byte cache line, so insert and may_contain each touch exactly one
// cache line (a classic Bloom filter with k hash functions touches up to k). The price is a
// slightly higher false-positive rate for the same memory, because blocks fill unevenly.
//
// Sizing (Parquet's formula): with eight bits per key spread over 32-bit words, the expected
// false-positive rate is about (1 - exp(-8n/m))^8 for n keys in m bits; solved for m:
//   m = -8 n / ln(1 - fpr^(1/8)),
// rounded up to whole blocks. The formula ignores that blocks fill unevenly, so the filter's true
// rate is higher than requested: expected_false_positive_rate() gives the exact expected rate of
// the chosen size (binomial number of keys per block); it is 1.46% for a requested 1% and 0.21%
// for 0.1%. This is Parquet's behaviour too; ask for a lower fpr if the bound must hold.
//
// Guarantees: never a false negative. Not thread-safe for concurrent insert (plain words); any
// number of threads may call may_contain at once when nobody inserts.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <vector>

#include "leakless/hash.hpp"

namespace leakless {

class bloom_filter {
 public:
  static constexpr std::size_t kBlockBytes = 32;
  static constexpr std::size_t kBlockBits = kBlockBytes * 8;
  static constexpr std::size_t kWordsPerBlock = 8;

  // Sizes the filter for expected_keys keys at false-positive rate fpr (Parquet's formula above).
  // Throws std::invalid_argument for expected_keys == 0 or fpr outside (0, 1).
  bloom_filter(std::size_t expected_keys, double fpr) : blocks_(blocks_for(expected_keys, fpr)) {}

  // Any key type leakless::hash covers; strings of every kind (std::string, std::string_view,
  // const char*, literals) hash as their characters, so they all find each other.
  template <class K>
  void insert(const K& key) {
    insert_hash(hash_of(key));
  }
  template <class K>
  bool may_contain(const K& key) const {
    return may_contain_hash(hash_of(key));
  }

  // The same, for a 64-bit hash the caller already computed (leakless::hash's, or any other: it
  // is remixed here, so it only needs to tell keys apart).
  void insert_hash(std::uint64_t hash) noexcept {
    hash = remix(hash);
    block& b = blocks_[block_index(hash)];
    const std::uint32_t x = static_cast<std::uint32_t>(hash);
    for (std::size_t i = 0; i < kWordsPerBlock; ++i) b.words[i] |= mask_bit(x, i);
  }
  bool may_contain_hash(std::uint64_t hash) const noexcept {
    hash = remix(hash);
    const block& b = blocks_[block_index(hash)];
    const std::uint32_t x = static_cast<std::uint32_t>(hash);
    bool all = true;
    for (std::size_t i = 0; i < kWordsPerBlock; ++i) all &= (b.words[i] & mask_bit(x, i)) != 0;
    return all;
  }

  // Forgets every key; the size stays.
  void clear() noexcept {
    for (block& b : blocks_) std::memset(b.words, 0, sizeof b.words);
  }

  std::size_t size_in_blocks() const noexcept { return blocks_.size(); }
  std::size_t memory_bytes() const noexcept { return blocks_.size() * kBlockBytes; }

  // The exact expected false-positive rate of this filter's size after n distinct keys: a block
  // receives j keys with probability Binomial(n, 1/B); each of its words then has a given bit
  // clear with probability (31/32)^j, and an absent key is accepted when all eight of its bits
  // are set: sum_j P(j) * (1 - (31/32)^j)^8.
  double expected_false_positive_rate(std::size_t n) const noexcept {
    return split_block_fpr(n, blocks_.size());
  }

  // Same, for any block count (used by the sizing code and the tests).
  static double split_block_fpr(std::size_t n, std::size_t num_blocks) noexcept {
    if (n == 0 || num_blocks == 0) return 0.0;
    const double p = 1.0 / static_cast<double>(num_blocks);
    const double nd = static_cast<double>(n);
    const double mean = nd * p;
    // Sum the binomial terms around the mean until they vanish (about mean ± 40 sigma).
    const double sigma = std::sqrt(mean * (1.0 - p)) + 1.0;
    const double lo = std::max(0.0, std::floor(mean - 40.0 * sigma));
    const double hi = std::min(nd, std::ceil(mean + 40.0 * sigma));
    const double log_p = std::log(p);
    const double log_q = std::log1p(-p);
    const double lg_n1 = std::lgamma(nd + 1.0);
    double total = 0.0;
    for (double j = lo; j <= hi; j += 1.0) {
      const double log_pj =
          lg_n1 - std::lgamma(j + 1.0) - std::lgamma(nd - j + 1.0) + j * log_p + (nd - j) * log_q;
      const double set = 1.0 - std::pow(31.0 / 32.0, j);
      total += std::exp(log_pj) * std::pow(set, 8.0);
    }
    return total;
  }

  // Parquet's SALT constants (the specification's "salt" array).
  static constexpr std::uint32_t kSalt[kWordsPerBlock] = {0x47b6137bU, 0x44974d91U, 0x8824ad5bU,
                                                          0xa2b7289dU, 0x705495c7U, 0x2df1424bU,
                                                          0x9efc4947U, 0x5c6bfb31U};

 private:
  struct alignas(kBlockBytes) block {
    std::uint32_t words[kWordsPerBlock] = {};
  };
  static_assert(sizeof(block) == kBlockBytes && alignof(block) == kBlockBytes);

  template <class K>
  static std::uint64_t hash_of(const K& key) {
    if constexpr (std::is_convertible_v<const K&, std::string_view>) {
      return static_cast<std::uint64_t>(leakless::string_hash{}(std::string_view(key)));
    } else {
      return static_cast<std::uint64_t>(leakless::hash<K>{}(key));
    }
  }

  static std::size_t blocks_for(std::size_t expected_keys, double fpr) {
    if (expected_keys == 0) throw std::invalid_argument("bloom_filter: expected_keys must be > 0");
    if (!(fpr > 0.0 && fpr < 1.0))
      throw std::invalid_argument("bloom_filter: fpr must be in (0,1)");
    const double bits =
        -8.0 * static_cast<double>(expected_keys) / std::log(1.0 - std::pow(fpr, 1.0 / 8.0));
    const double blocks = std::ceil(bits / static_cast<double>(kBlockBits));
    // The block index is a 32-bit multiply-shift, so at most 2^32 blocks (128 GiB).
    constexpr double kMaxBlocks = 4294967296.0;
    if (!(blocks <= kMaxBlocks)) throw std::invalid_argument("bloom_filter: filter too large");
    return std::max<std::size_t>(1, static_cast<std::size_t>(blocks));
  }

  // leakless::hash spends one folded multiply, enough for a hash table but not enough to make
  // the two 32-bit halves independent for sequential integers: with it alone the measured false-
  // positive rate for keys 0..1M was 1.75x the design rate. A second round of the same mixer
  // (hash_detail::mix) brings it to the design rate (see tests/containers/bloom_test.cpp).
  static std::uint64_t remix(std::uint64_t hash) noexcept { return hash_detail::mix(hash, 0); }

  std::size_t block_index(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(((hash >> 32) * static_cast<std::uint64_t>(blocks_.size())) >>
                                    32);
  }

  static std::uint32_t mask_bit(std::uint32_t x, std::size_t i) noexcept {
    return std::uint32_t{1} << ((x * kSalt[i]) >> 27);
  }

  std::vector<block> blocks_;
};

}  // namespace leakless
