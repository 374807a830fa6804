// leakless::bloom_filter tests: the split-block filter never gives a false negative (1M integer
// and 1M string keys), its measured false-positive rate over 10M absent keys stays within 1.15x of
// the design rate, its size follows Parquet's formula, bad arguments throw, clear() empties it,
// and every way of naming a key (typed key, precomputed hash, any string type) finds it.
//
// "Design rate" here is the EXACT expected false-positive rate of a split-block filter of the
// size that was chosen (bloom_filter::expected_false_positive_rate: binomial keys per block, then
// eight 32-bit words), not the requested fpr; the sizing formula ignores the uneven filling of
// blocks, so the exact rate sits above the request (1.46% for 1%, 0.21% for 0.1%; the test bounds
// that gap too).
#include "leakless/bloom.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "leakless/hash.hpp"

namespace {

constexpr std::uint64_t kInserted = 1'000'000;
constexpr std::uint64_t kAbsent = 10'000'000;

std::string string_key(std::uint64_t i) { return "key-" + std::to_string(i); }

std::size_t parquet_blocks(std::size_t n, double fpr) {
  const double bits = -8.0 * static_cast<double>(n) / std::log(1.0 - std::pow(fpr, 1.0 / 8.0));
  return static_cast<std::size_t>(std::ceil(bits / 256.0));
}

TEST(BloomFilter, NoFalseNegativesForIntegers) {
  leakless::bloom_filter filter(kInserted, 0.01);
  for (std::uint64_t i = 0; i < kInserted; ++i) filter.insert(i * 7919 + 13);
  std::uint64_t missing = 0;
  for (std::uint64_t i = 0; i < kInserted; ++i) missing += !filter.may_contain(i * 7919 + 13);
  EXPECT_EQ(missing, 0u);
}

TEST(BloomFilter, NoFalseNegativesForStrings) {
  leakless::bloom_filter filter(kInserted, 0.001);
  for (std::uint64_t i = 0; i < kInserted; ++i) filter.insert(string_key(i));
  std::uint64_t missing = 0;
  for (std::uint64_t i = 0; i < kInserted; ++i) missing += !filter.may_contain(string_key(i));
  EXPECT_EQ(missing, 0u);
}

// Fills a filter with kInserted integers and counts the false positives among kAbsent others.
void check_integer_fpr(double fpr) {
  leakless::bloom_filter filter(kInserted, fpr);
  for (std::uint64_t i = 0; i < kInserted; ++i) filter.insert(i);
  std::uint64_t positives = 0;
  for (std::uint64_t i = kInserted; i < kInserted + kAbsent; ++i)
    positives += filter.may_contain(i);
  const double measured = static_cast<double>(positives) / static_cast<double>(kAbsent);
  const double design = filter.expected_false_positive_rate(kInserted);
  SCOPED_TRACE("fpr=" + std::to_string(fpr) + " design=" + std::to_string(design) + " measured=" +
               std::to_string(measured) + " blocks=" + std::to_string(filter.size_in_blocks()));
  EXPECT_LE(measured, design * 1.15);
  EXPECT_GE(measured, design / 1.15);
  // Parquet's formula under-sizes a little (uneven blocks): the exact rate is 1.4x-2.1x the
  // request.
  EXPECT_GE(design, fpr);
  EXPECT_LE(design, fpr * 2.2);
}

TEST(BloomFilter, FalsePositiveRateAtOnePercent) { check_integer_fpr(0.01); }
TEST(BloomFilter, FalsePositiveRateAtOnePerMille) { check_integer_fpr(0.001); }

TEST(BloomFilter, FalsePositiveRateForStrings) {
  leakless::bloom_filter filter(kInserted, 0.01);
  for (std::uint64_t i = 0; i < kInserted; ++i) filter.insert(string_key(i));
  std::uint64_t positives = 0;
  std::string key;
  for (std::uint64_t i = kInserted; i < kInserted + kAbsent; ++i) {
    key = "key-";
    key += std::to_string(i);
    positives += filter.may_contain(key);
  }
  const double measured = static_cast<double>(positives) / static_cast<double>(kAbsent);
  const double design = filter.expected_false_positive_rate(kInserted);
  EXPECT_LE(measured, design * 1.15) << "design " << design;
  EXPECT_GE(measured, design / 1.15) << "design " << design;
}

TEST(BloomFilter, SizeFollowsParquetFormula) {
  for (const double fpr : {0.1, 0.01, 0.001, 0.0001}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{123457}}) {
      leakless::bloom_filter filter(n, fpr);
      EXPECT_EQ(filter.size_in_blocks(), std::max<std::size_t>(1, parquet_blocks(n, fpr)))
          << "n=" << n << " fpr=" << fpr;
      EXPECT_EQ(filter.memory_bytes(), filter.size_in_blocks() * 32);
    }
  }
  // The formula gives about 9.7 bits per key at 1% and 14.6 at 0.1%.
  const auto bits_per_key = [](double fpr) {
    return static_cast<double>(leakless::bloom_filter(kInserted, fpr).memory_bytes()) * 8.0 /
           static_cast<double>(kInserted);
  };
  EXPECT_NEAR(bits_per_key(0.01), 9.7, 0.1);
  EXPECT_NEAR(bits_per_key(0.001), 14.6, 0.1);
}

TEST(BloomFilter, InvalidArgumentsThrow) {
  EXPECT_THROW(leakless::bloom_filter(0, 0.01), std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, 0.0), std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, 1.0), std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, -0.5), std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, 1.5), std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, std::numeric_limits<double>::quiet_NaN()),
               std::invalid_argument);
  EXPECT_THROW(leakless::bloom_filter(100, std::numeric_limits<double>::infinity()),
               std::invalid_argument);
  EXPECT_NO_THROW(leakless::bloom_filter(1, 0.5));
}

TEST(BloomFilter, ClearEmpties) {
  leakless::bloom_filter filter(10'000, 0.01);
  const std::size_t bytes = filter.memory_bytes();
  for (std::uint64_t i = 0; i < 10'000; ++i) filter.insert(i);
  ASSERT_TRUE(filter.may_contain(std::uint64_t{42}));
  filter.clear();
  EXPECT_EQ(filter.memory_bytes(), bytes);
  std::uint64_t positives = 0;
  for (std::uint64_t i = 0; i < 100'000; ++i) positives += filter.may_contain(i);
  EXPECT_EQ(positives, 0u);  // an empty filter has no bit set, so nothing can match
  filter.insert(std::uint64_t{7});
  EXPECT_TRUE(filter.may_contain(std::uint64_t{7}));
}

TEST(BloomFilter, EmptyFilterContainsNothing) {
  leakless::bloom_filter filter(1000, 0.01);
  for (std::uint64_t i = 0; i < 10'000; ++i) EXPECT_FALSE(filter.may_contain_hash(i * 0x9e37ULL));
}

TEST(BloomFilter, PrecomputedHashMatchesTypedKey) {
  leakless::bloom_filter filter(1000, 0.01);
  filter.insert(std::uint64_t{12345});
  EXPECT_TRUE(filter.may_contain_hash(leakless::hash<std::uint64_t>{}(12345)));
  const std::uint64_t h = leakless::hash<std::string>{}(std::string("precomputed"));
  filter.insert_hash(h);
  EXPECT_TRUE(filter.may_contain(std::string("precomputed")));
  EXPECT_TRUE(filter.may_contain_hash(h));
}

TEST(BloomFilter, EveryStringTypeFindsTheSameKey) {
  leakless::bloom_filter filter(1000, 0.0001);
  filter.insert(std::string("alpha"));
  filter.insert("beta");
  filter.insert(std::string_view("gamma"));
  for (const char* k : {"alpha", "beta", "gamma"}) {
    EXPECT_TRUE(filter.may_contain(k)) << k;
    EXPECT_TRUE(filter.may_contain(std::string(k))) << k;
    EXPECT_TRUE(filter.may_contain(std::string_view(k))) << k;
  }
}

TEST(BloomFilter, ExactRateAgreesWithPoissonApproximation) {
  // For many blocks the number of keys per block is nearly Poisson(n / B): recompute the rate that
  // way, independently of the binomial code, and compare. The rate at the mean load alone is lower
  // (uneven filling only hurts), which the comparison also shows.
  const std::size_t blocks = 100'000;
  const std::size_t n = 2'000'000;
  const double lambda = static_cast<double>(n) / blocks;
  double poisson = 0.0;
  double term = std::exp(-lambda);  // P(j = 0)
  for (int j = 0; j < 200; ++j) {
    poisson += term * std::pow(1.0 - std::pow(31.0 / 32.0, j), 8.0);
    term *= lambda / (j + 1);
  }
  const double exact = leakless::bloom_filter::split_block_fpr(n, blocks);
  EXPECT_NEAR(exact / poisson, 1.0, 0.01) << exact << " vs " << poisson;
  EXPECT_GT(exact, std::pow(1.0 - std::pow(31.0 / 32.0, lambda), 8.0));
  EXPECT_EQ(leakless::bloom_filter::split_block_fpr(0, blocks), 0.0);
}

}  // namespace
