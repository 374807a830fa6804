// src/pprof/profile.hpp — the pprof profile (google/pprof proto/profile.proto) as plain C++ values,
// and its wire codec: encode to protobuf bytes, gzip, and decode (gzipped or raw) back.
//
// How it works: the model holds strings, not string-table indices; encode() builds the string
// table (index 0 is ""), writes every message field by field with a small hand-written protobuf
// writer (as Go's runtime/pprof does: no generated code, few allocations) and decode() reverses it,
// resolving indices back to strings. decode() validates what it reads (lengths, varints, string
// indices, id references) and throws decode_error with a message naming the problem; it never
// reads out of bounds, whatever the input.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace leakless::pprof {

struct value_type {
  std::string type;  // e.g. "inuse_space"
  std::string unit;  // e.g. "bytes"
  friend bool operator==(const value_type&, const value_type&) = default;
};

struct label {
  std::string key;
  std::string str;       // string value; empty when numeric
  std::int64_t num = 0;  // numeric value
  std::string num_unit;  // e.g. "bytes"; may be empty
  friend bool operator==(const label&, const label&) = default;
};

struct sample {
  std::vector<std::uint64_t> location_ids;  // leaf first
  std::vector<std::int64_t> values;         // one per sample type
  std::vector<label> labels;
  friend bool operator==(const sample&, const sample&) = default;
};

struct mapping {
  std::uint64_t id = 0;
  std::uint64_t memory_start = 0;
  std::uint64_t memory_limit = 0;
  std::uint64_t file_offset = 0;
  std::string filename;
  std::string build_id;  // lowercase hex
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
  friend bool operator==(const mapping&, const mapping&) = default;
};

struct line {
  std::uint64_t function_id = 0;
  std::int64_t line = 0;
  friend bool operator==(const struct line&, const struct line&) = default;
};

struct location {
  std::uint64_t id = 0;
  std::uint64_t mapping_id = 0;  // 0: no mapping
  std::uint64_t address = 0;
  std::vector<struct line> lines;  // innermost (inlined) function first
  bool is_folded = false;
  friend bool operator==(const location&, const location&) = default;
};

struct function {
  std::uint64_t id = 0;
  std::string name;         // demangled
  std::string system_name;  // mangled
  std::string filename;
  std::int64_t start_line = 0;
  friend bool operator==(const function&, const function&) = default;
};

struct profile {
  std::vector<value_type> sample_types;
  std::vector<sample> samples;
  std::vector<mapping> mappings;
  std::vector<location> locations;
  std::vector<function> functions;
  std::string drop_frames;
  std::string keep_frames;
  std::int64_t time_nanos = 0;
  std::int64_t duration_nanos = 0;
  value_type period_type;
  std::int64_t period = 0;
  std::vector<std::string> comments;
  std::string default_sample_type;
  friend bool operator==(const profile&, const profile&) = default;
};

class decode_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Serialises `p` as an uncompressed profile.proto message.
std::string encode(const profile& p);

// gzip-compresses `data` (RFC 1952, as pprof files are stored).
std::string gzip(std::string_view data);

// encode() then gzip(): the bytes of a .pb.gz file.
std::string encode_gzipped(const profile& p);

// Decodes a profile from gzipped or raw profile.proto bytes. Throws decode_error on anything
// malformed, truncated or inconsistent (bad varint, length past the end, string index out of
// range, a sample referring to a missing location, ...). Input size is bounded by `max_bytes`
// after decompression, so a gzip bomb is an error, not an out-of-memory.
profile decode(std::string_view data, std::size_t max_bytes = std::size_t{1} << 30);

}  // namespace leakless::pprof
