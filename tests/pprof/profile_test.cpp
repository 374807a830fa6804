// tests/pprof/profile_test.cpp — the pprof wire codec: round trips, what the bytes look like, and
// that malformed, truncated or hostile input is a decode_error, never a crash or a wrong profile.
//
// How it works: a profile using every field is encoded and decoded back (raw and gzipped) and
// must compare equal. Hand-built protobuf bytes exercise the decoder's unpacked-field path and
// each validation rule. Every prefix of a valid encoding and thousands of seeded random
// corruptions are decoded to check that nothing but decode_error comes out (the sanitizer builds
// turn any stray read into a failure).
#include "pprof/profile.hpp"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace leakless::pprof {
namespace {

profile full_profile() {
  profile p;
  p.sample_types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}};
  p.mappings = {
      {1, 0x400000, 0x500000, 0x1000, "/usr/bin/prog", "abcdef0123", true, true, true, true},
      {2, 0x7f0000000000, 0x7f0000100000, 0, "/lib/libc.so.6", "", true, false, false, false}};
  p.functions = {{1, "ns::grow(int)", "_ZN2ns4growEi", "/src/grow.cpp", 10},
                 {2, "main", "main", "/src/main.cpp", 3},
                 {3, "std::vector<int>::push_back(int const&)", "_ZNSt6vectorIiE9push_backERKi",
                  "/usr/include/c++/12/bits/stl_vector.h", 1280}};
  p.locations = {{1, 1, 0x401234, {{3, 1287}, {1, 12}}, false},
                 {2, 1, 0x400100, {{2, 5}}, false},
                 {3, 2, 0x7f0000000123, {}, true},
                 {4, 0, 0x10, {}, false}};
  p.samples = {{{1, 2}, {3, 300}, {{"bytes", "", 100, "bytes"}, {"thread", "worker", 0, ""}}},
               {{3, 4, 2}, {1, -7}, {}},
               {{}, {0, 0}, {}}};
  p.drop_frames = "std::.*";
  p.keep_frames = "keep";
  p.time_nanos = 1'700'000'000'123'456'789;
  p.duration_nanos = 5'000'000'000;
  p.period_type = {"space", "bytes"};
  p.period = 524288;
  p.comments = {"first comment", "second"};
  p.default_sample_type = "alloc_space";
  return p;
}

TEST(PprofCodec, RoundTripKeepsEveryField) {
  const profile p = full_profile();
  EXPECT_EQ(decode(encode(p)), p);
  EXPECT_EQ(decode(encode_gzipped(p)), p);
}

TEST(PprofCodec, EmptyProfileRoundTrips) {
  EXPECT_EQ(decode(encode(profile{})), profile{});
  EXPECT_EQ(decode(""), profile{});
}

TEST(PprofCodec, EncodingIsDeterministicAndGzipped) {
  const profile p = full_profile();
  EXPECT_EQ(encode(p), encode(p));
  const std::string gz = encode_gzipped(p);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
}

TEST(PprofCodec, StringTableStartsEmptyAndHoldsEachStringOnce) {
  profile p;
  p.sample_types = {{"a", "x"}, {"a", "x"}};
  p.period_type = {"a", "x"};
  const std::string bytes = encode(p);
  // Field 6 (string_table), wire type 2: key 0x32. Three strings: "", "a", "x".
  std::size_t count = 0;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (bytes[i] == 0x32 && (bytes[i + 1] == 0 || bytes[i + 1] == 1)) ++count;
  }
  EXPECT_EQ(count, 3u);
  EXPECT_NE(bytes.find(std::string("\x32\x00", 2)), std::string::npos);
}

// Minimal protobuf writer for hand-made inputs.
std::string varint(std::uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string key(int field, int type) {
  return varint(static_cast<std::uint64_t>(field << 3 | type));
}
std::string bytes_field(int field, const std::string& data) {
  return key(field, 2) + varint(data.size()) + data;
}
std::string int_field(int field, std::uint64_t v) { return key(field, 0) + varint(v); }
std::string strings(std::initializer_list<const char*> list) {
  std::string out;
  for (const char* s : list) out += bytes_field(6, s);
  return out;
}

TEST(PprofCodec, AcceptsUnpackedRepeatedFieldsAndSkipsUnknownOnes) {
  std::string data = strings({"", "objects", "count"});
  data += bytes_field(1, int_field(1, 1) + int_field(2, 2));  // sample_type objects/count
  data += bytes_field(4, int_field(1, 7));                    // location 7
  // A sample with location_id and value written one per key (unpacked), plus unknown fields of
  // every wire type.
  data += bytes_field(2, int_field(1, 7) + int_field(2, 42) + int_field(15, 9) + key(16, 1) +
                             std::string(8, '\0') + key(17, 5) + std::string(4, '\0'));
  data += int_field(99, 1);
  const profile p = decode(data);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].location_ids, std::vector<std::uint64_t>{7});
  EXPECT_EQ(p.samples[0].values, std::vector<std::int64_t>{42});
  EXPECT_EQ(p.sample_types[0], (value_type{"objects", "count"}));
}

void expect_error(const std::string& data, const std::string& fragment) {
  try {
    decode(data);
    ADD_FAILURE() << "decoded without error; expected: " << fragment;
  } catch (const decode_error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << fragment;
  }
}

TEST(PprofCodec, RejectsBrokenReferences) {
  const std::string base =
      strings({"", "objects", "count"}) + bytes_field(1, int_field(1, 1) + int_field(2, 2));
  expect_error(base + bytes_field(1, int_field(1, 9)), "refers to string 9");
  expect_error(base + bytes_field(2, int_field(1, 5) + int_field(2, 1)), "missing location 5");
  expect_error(base + bytes_field(2, int_field(2, 1) + int_field(2, 2)), "2 values for 1");
  expect_error(base + bytes_field(4, int_field(1, 1) + int_field(2, 3)), "missing mapping 3");
  expect_error(base + bytes_field(4, int_field(1, 1) + bytes_field(4, int_field(1, 8))),
               "missing function 8");
  expect_error(base + bytes_field(4, int_field(1, 1)) + bytes_field(4, int_field(1, 1)),
               "duplicate location id 1");
  expect_error(base + bytes_field(5, int_field(2, 1)), "function with id 0");
  expect_error(strings({"x"}), "entry 0 is not empty");
  expect_error(bytes_field(1, int_field(1, 0)), "string table is missing");
}

TEST(PprofCodec, RejectsBrokenWireData) {
  // Field 20 is unknown to profile.proto, so the decoder skips it by its wire type.
  const std::string unknown_varint = key(20, 0);
  expect_error(unknown_varint, "truncated varint");
  expect_error(unknown_varint + std::string(10, '\xff') + "\x01", "varint");
  expect_error(key(20, 2) + "\x05\x01", "past the end");
  expect_error(key(20, 3), "unsupported wire type 3");
  expect_error(key(20, 1) + "\x01\x02", "truncated fixed-width");
  expect_error(std::string(1, '\0'), "invalid field number");
  expect_error(int_field(1, 1), "not a message");
  expect_error(bytes_field(9, "x"), "not a varint");
}

TEST(PprofCodec, RejectsBrokenGzip) {
  const std::string gz = encode_gzipped(full_profile());
  expect_error(gz.substr(0, gz.size() / 2), "truncated gzip");
  std::string corrupt = gz;
  corrupt[gz.size() / 2] = static_cast<char>(corrupt[gz.size() / 2] ^ 0x55);
  corrupt[gz.size() / 2 + 1] = static_cast<char>(corrupt[gz.size() / 2 + 1] ^ 0x55);
  EXPECT_THROW(decode(corrupt), decode_error);
}

TEST(PprofCodec, DecompressionIsBounded) {
  // 64 MiB of zeros compress to about 64 KiB: a small file that would expand without bound.
  const std::string bomb = gzip(std::string(64u << 20, '\0'));
  EXPECT_LT(bomb.size(), 1u << 20);
  try {
    decode(bomb, 1u << 20);
    ADD_FAILURE() << "a 64 MiB expansion passed a 1 MiB bound";
  } catch (const decode_error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than 1048576 bytes"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(decode(encode(full_profile()), 16), decode_error);  // raw input is bounded too
}

TEST(PprofCodec, ConcatenatedGzipMembersAreOneStream) {
  const std::string raw = encode(full_profile());
  const std::string two = gzip(raw.substr(0, 10)) + gzip(raw.substr(10));
  EXPECT_EQ(decode(two), full_profile());
}

// Every prefix of a valid encoding decodes or fails cleanly.
TEST(PprofCodec, EveryTruncationFailsCleanly) {
  const std::string raw = encode(full_profile());
  const std::string gz = encode_gzipped(full_profile());
  for (const std::string* data : {&raw, &gz}) {
    for (std::size_t n = 0; n < data->size(); ++n) {
      try {
        decode(std::string_view(*data).substr(0, n));
      } catch (const decode_error&) {
      }
    }
  }
}

TEST(PprofCodec, RandomCorruptionFailsCleanly) {
  const std::string raw = encode(full_profile());
  std::mt19937_64 random(12345);
  std::size_t errors = 0;
  constexpr int kRounds = 5000;
  for (int round = 0; round < kRounds; ++round) {
    std::string data = raw;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      data[random() % data.size()] = static_cast<char>(random());
    }
    try {
      decode(data);
    } catch (const decode_error&) {
      ++errors;
    }
  }
  // Most corruptions break something the decoder checks.
  EXPECT_GT(errors, kRounds / 4);
}

}  // namespace
}  // namespace leakless::pprof
