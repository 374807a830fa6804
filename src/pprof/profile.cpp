// src/pprof/profile.cpp — the pprof wire codec: profile.proto encoding, gzip, and a validating
// decoder.
//
// How it works: protobuf's wire format is a sequence of (field number, wire type) keys followed by
// a varint, a fixed 64/32-bit value or a length-delimited payload. wire_writer appends those to a
// std::string; nested messages are written into a scratch writer and appended length-prefixed
// (messages here are small, so the copy is cheaper than precomputing sizes). Repeated integers
// are written packed, as Go's runtime/pprof does. wire_reader walks a byte range and checks every
// length against what remains; the decoder accepts packed and unpacked repeated integers, skips
// unknown fields, then resolves string-table indices and checks every id reference, so that a
// hostile file becomes a decode_error with a precise message and never an out-of-bounds read.
#include "pprof/profile.hpp"

#include <zlib.h>

#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/leb128.hpp"

namespace leakless::pprof {
namespace {

// Field numbers from google/pprof proto/profile.proto.
namespace field {
namespace profile {
constexpr int sample_type = 1, sample = 2, mapping = 3, location = 4, function = 5,
              string_table = 6, drop_frames = 7, keep_frames = 8, time_nanos = 9,
              duration_nanos = 10, period_type = 11, period = 12, comment = 13,
              default_sample_type = 14;
}
namespace value_type {
constexpr int type = 1, unit = 2;
}
namespace sample {
constexpr int location_id = 1, value = 2, label = 3;
}
namespace label {
constexpr int key = 1, str = 2, num = 3, num_unit = 4;
}
namespace mapping {
constexpr int id = 1, memory_start = 2, memory_limit = 3, file_offset = 4, filename = 5,
              build_id = 6, has_functions = 7, has_filenames = 8, has_line_numbers = 9,
              has_inline_frames = 10;
}
namespace location {
constexpr int id = 1, mapping_id = 2, address = 3, line = 4, is_folded = 5;
}
namespace line {
constexpr int function_id = 1, line = 2;
}
namespace function {
constexpr int id = 1, name = 2, system_name = 3, filename = 4, start_line = 5;
}
}  // namespace field

enum wire_type : unsigned { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// ---------------------------------------------------------------------------------------------
// Encoding

class wire_writer {
 public:
  void key(int number, wire_type type) {
    put_varint((static_cast<std::uint64_t>(number) << 3) | type);
  }
  void put_varint(std::uint64_t v) {
    std::uint8_t bytes[kMaxLeb128Bytes];
    out_.append(reinterpret_cast<const char*>(bytes),
                static_cast<std::size_t>(put_uleb128(v, bytes) - bytes));
  }
  // Proto3 scalars: zero is the default and is not written.
  void uint(int number, std::uint64_t v) {
    if (v == 0) return;
    key(number, varint);
    put_varint(v);
  }
  void sint(int number, std::int64_t v) { uint(number, static_cast<std::uint64_t>(v)); }
  void boolean(int number, bool v) { uint(number, v ? 1 : 0); }
  void bytes(int number, std::string_view data) {
    key(number, length_delimited);
    put_varint(data.size());
    out_.append(data);
  }
  template <class Int>
  void packed(int number, const std::vector<Int>& values) {
    if (values.empty()) return;
    wire_writer body;
    for (Int v : values) body.put_varint(static_cast<std::uint64_t>(v));
    bytes(number, body.out_);
  }
  void message(int number, const wire_writer& body) { bytes(number, body.out_); }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// The string table: index 0 is "", every other string once, in first-use order.
class string_table {
 public:
  string_table() { index(""); }
  std::int64_t index(const std::string& s) {
    auto [it, inserted] = indices_.try_emplace(s, static_cast<std::int64_t>(strings_.size()));
    if (inserted) strings_.push_back(&it->first);
    return it->second;
  }
  void write(wire_writer& w) const {
    for (const std::string* s : strings_) w.bytes(field::profile::string_table, *s);
  }

 private:
  std::unordered_map<std::string, std::int64_t> indices_;
  std::vector<const std::string*> strings_;  // node-based map: pointers stay valid
};

wire_writer encode_value_type(const value_type& vt, string_table& strings) {
  wire_writer w;
  w.sint(field::value_type::type, strings.index(vt.type));
  w.sint(field::value_type::unit, strings.index(vt.unit));
  return w;
}

// ---------------------------------------------------------------------------------------------
// Decoding

[[noreturn]] void fail(const std::string& what) { throw decode_error("pprof: " + what); }

class wire_reader {
 public:
  explicit wire_reader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}

  bool done() const { return p_ == end_; }

  // Reads a field key; returns false at the end of the message.
  bool next(int& number, wire_type& type) {
    if (done()) return false;
    std::uint64_t k = read_varint();
    if (k >> 3 == 0 || k >> 3 > std::numeric_limits<int>::max()) fail("invalid field number");
    number = static_cast<int>(k >> 3);
    type = static_cast<wire_type>(k & 7);
    return true;
  }

  std::uint64_t read_varint() {
    const auto* p = reinterpret_cast<const std::uint8_t*>(p_);
    std::uint64_t v = 0;
    switch (read_uleb128(p, reinterpret_cast<const std::uint8_t*>(end_), v)) {
      case leb128_status::ok:
        break;
      case leb128_status::truncated:
        fail("truncated varint");
      case leb128_status::overflow:
        fail("varint overflows 64 bits");
    }
    p_ = reinterpret_cast<const char*>(p);
    return v;
  }

  std::string_view read_bytes() {
    std::uint64_t n = read_varint();
    if (n > static_cast<std::uint64_t>(end_ - p_)) fail("length past the end of the message");
    std::string_view s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }

  void skip(wire_type type) {
    switch (type) {
      case varint:
        read_varint();
        return;
      case fixed64:
        advance(8);
        return;
      case length_delimited:
        read_bytes();
        return;
      case fixed32:
        advance(4);
        return;
      default:
        fail("unsupported wire type " + std::to_string(static_cast<unsigned>(type)));
    }
  }

  // A scalar integer field (varint only: profile.proto has no fixed-width integers).
  std::uint64_t scalar(wire_type type, const char* name) {
    if (type != varint) fail(std::string("field ") + name + " is not a varint");
    return read_varint();
  }

  // A signed integer or string-table index.
  std::int64_t integer(wire_type type, const char* name) {
    return static_cast<std::int64_t>(scalar(type, name));
  }

  // A repeated integer, packed (length-delimited) or one value per key.
  template <class Int>
  void repeated(wire_type type, std::vector<Int>& out, const char* name) {
    if (type == varint) {
      out.push_back(static_cast<Int>(read_varint()));
    } else if (type == length_delimited) {
      wire_reader packed(read_bytes());
      while (!packed.done()) out.push_back(static_cast<Int>(packed.read_varint()));
    } else {
      fail(std::string("field ") + name + " has the wrong wire type");
    }
  }

  std::string_view message(wire_type type, const char* name) {
    if (type != length_delimited) fail(std::string("field ") + name + " is not a message");
    return read_bytes();
  }

 private:
  void advance(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) fail("truncated fixed-width field");
    p_ += n;
  }

  const char* p_;
  const char* end_;
};

// The profile as it is on the wire: strings as indices, resolved once the table is known.
struct raw_value_type {
  std::int64_t type = 0, unit = 0;
};
struct raw_label {
  std::int64_t key = 0, str = 0, num = 0, num_unit = 0;
};
struct raw_sample {
  std::vector<std::uint64_t> location_ids;
  std::vector<std::int64_t> values;
  std::vector<raw_label> labels;
};
struct raw_mapping {
  mapping m;
  std::int64_t filename = 0, build_id = 0;
};
struct raw_function {
  function f;
  std::int64_t name = 0, system_name = 0, filename = 0;
};
struct raw_profile {
  std::vector<raw_value_type> sample_types;
  std::vector<raw_sample> samples;
  std::vector<raw_mapping> mappings;
  std::vector<location> locations;
  std::vector<raw_function> functions;
  std::vector<std::string_view> strings;
  std::int64_t drop_frames = 0, keep_frames = 0, default_sample_type = 0;
  raw_value_type period_type;
  std::vector<std::int64_t> comments;
  profile p;  // the scalar fields
};

// Calls on_field(reader, number, type) for each field of the message; a field it does not take
// (it returns false) is skipped by its wire type.
template <class OnField>
void read_fields(std::string_view data, OnField&& on_field) {
  wire_reader r(data);
  int number;
  wire_type type;
  while (r.next(number, type)) {
    if (!on_field(r, number, type)) r.skip(type);
  }
}

raw_value_type decode_value_type(std::string_view data) {
  raw_value_type vt;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    if (number == field::value_type::type) {
      vt.type = r.integer(type, "ValueType.type");
    } else if (number == field::value_type::unit) {
      vt.unit = r.integer(type, "ValueType.unit");
    } else {
      return false;
    }
    return true;
  });
  return vt;
}

raw_label decode_label(std::string_view data) {
  raw_label l;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    switch (number) {
      case field::label::key:
        l.key = r.integer(type, "Label.key");
        return true;
      case field::label::str:
        l.str = r.integer(type, "Label.str");
        return true;
      case field::label::num:
        l.num = r.integer(type, "Label.num");
        return true;
      case field::label::num_unit:
        l.num_unit = r.integer(type, "Label.num_unit");
        return true;
      default:
        return false;
    }
  });
  return l;
}

raw_sample decode_sample(std::string_view data) {
  raw_sample s;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    switch (number) {
      case field::sample::location_id:
        r.repeated(type, s.location_ids, "Sample.location_id");
        return true;
      case field::sample::value:
        r.repeated(type, s.values, "Sample.value");
        return true;
      case field::sample::label:
        s.labels.push_back(decode_label(r.message(type, "Sample.label")));
        return true;
      default:
        return false;
    }
  });
  return s;
}

raw_mapping decode_mapping(std::string_view data) {
  raw_mapping m;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    auto value = [&](const char* name) { return r.scalar(type, name); };
    switch (number) {
      case field::mapping::id:
        m.m.id = value("Mapping.id");
        return true;
      case field::mapping::memory_start:
        m.m.memory_start = value("Mapping.memory_start");
        return true;
      case field::mapping::memory_limit:
        m.m.memory_limit = value("Mapping.memory_limit");
        return true;
      case field::mapping::file_offset:
        m.m.file_offset = value("Mapping.file_offset");
        return true;
      case field::mapping::filename:
        m.filename = static_cast<std::int64_t>(value("Mapping.filename"));
        return true;
      case field::mapping::build_id:
        m.build_id = static_cast<std::int64_t>(value("Mapping.build_id"));
        return true;
      case field::mapping::has_functions:
        m.m.has_functions = value("Mapping.has_functions") != 0;
        return true;
      case field::mapping::has_filenames:
        m.m.has_filenames = value("Mapping.has_filenames") != 0;
        return true;
      case field::mapping::has_line_numbers:
        m.m.has_line_numbers = value("Mapping.has_line_numbers") != 0;
        return true;
      case field::mapping::has_inline_frames:
        m.m.has_inline_frames = value("Mapping.has_inline_frames") != 0;
        return true;
      default:
        return false;
    }
  });
  return m;
}

struct line decode_line(std::string_view data) {
  struct line l;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    if (number == field::line::function_id) {
      l.function_id = r.scalar(type, "Line.function_id");
    } else if (number == field::line::line) {
      l.line = r.integer(type, "Line.line");
    } else {
      return false;
    }
    return true;
  });
  return l;
}

location decode_location(std::string_view data) {
  location loc;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    switch (number) {
      case field::location::id:
        loc.id = r.scalar(type, "Location.id");
        return true;
      case field::location::mapping_id:
        loc.mapping_id = r.scalar(type, "Location.mapping_id");
        return true;
      case field::location::address:
        loc.address = r.scalar(type, "Location.address");
        return true;
      case field::location::line:
        loc.lines.push_back(decode_line(r.message(type, "Location.line")));
        return true;
      case field::location::is_folded:
        loc.is_folded = r.scalar(type, "Location.is_folded") != 0;
        return true;
      default:
        return false;
    }
  });
  return loc;
}

raw_function decode_function(std::string_view data) {
  raw_function f;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    switch (number) {
      case field::function::id:
        f.f.id = r.scalar(type, "Function.id");
        return true;
      case field::function::name:
        f.name = r.integer(type, "Function.name");
        return true;
      case field::function::system_name:
        f.system_name = r.integer(type, "Function.system_name");
        return true;
      case field::function::filename:
        f.filename = r.integer(type, "Function.filename");
        return true;
      case field::function::start_line:
        f.f.start_line = r.integer(type, "Function.start_line");
        return true;
      default:
        return false;
    }
  });
  return f;
}

raw_profile decode_raw(std::string_view data) {
  raw_profile raw;
  read_fields(data, [&](wire_reader& r, int number, wire_type type) {
    namespace f = field::profile;
    switch (number) {
      case f::sample_type:
        raw.sample_types.push_back(decode_value_type(r.message(type, "Profile.sample_type")));
        return true;
      case f::sample:
        raw.samples.push_back(decode_sample(r.message(type, "Profile.sample")));
        return true;
      case f::mapping:
        raw.mappings.push_back(decode_mapping(r.message(type, "Profile.mapping")));
        return true;
      case f::location:
        raw.locations.push_back(decode_location(r.message(type, "Profile.location")));
        return true;
      case f::function:
        raw.functions.push_back(decode_function(r.message(type, "Profile.function")));
        return true;
      case f::string_table:
        raw.strings.push_back(r.message(type, "Profile.string_table"));
        return true;
      case f::drop_frames:
        raw.drop_frames = r.integer(type, "Profile.drop_frames");
        return true;
      case f::keep_frames:
        raw.keep_frames = r.integer(type, "Profile.keep_frames");
        return true;
      case f::time_nanos:
        raw.p.time_nanos = r.integer(type, "Profile.time_nanos");
        return true;
      case f::duration_nanos:
        raw.p.duration_nanos = r.integer(type, "Profile.duration_nanos");
        return true;
      case f::period_type:
        raw.period_type = decode_value_type(r.message(type, "Profile.period_type"));
        return true;
      case f::period:
        raw.p.period = r.integer(type, "Profile.period");
        return true;
      case f::comment:
        r.repeated(type, raw.comments, "Profile.comment");
        return true;
      case f::default_sample_type:
        raw.default_sample_type = r.integer(type, "Profile.default_sample_type");
        return true;
      default:
        return false;
    }
  });
  return raw;
}

// A message with no fields at all is the empty profile, which needs no string table.
bool data_is_empty(const raw_profile& raw) {
  return raw.sample_types.empty() && raw.samples.empty() && raw.mappings.empty() &&
         raw.locations.empty() && raw.functions.empty() && raw.comments.empty() &&
         raw.drop_frames == 0 && raw.keep_frames == 0 && raw.default_sample_type == 0 &&
         raw.period_type.type == 0 && raw.period_type.unit == 0;
}

// Turns indices into strings and checks every reference.
profile resolve(raw_profile&& raw) {
  if (raw.strings.empty()) {
    if (!data_is_empty(raw)) fail("string table is missing");
  } else if (!raw.strings[0].empty()) {
    fail("string table entry 0 is not empty");
  }
  auto str = [&](std::int64_t index, const char* what) -> std::string {
    if (index == 0) return {};
    if (index < 0 || static_cast<std::uint64_t>(index) >= raw.strings.size()) {
      fail(std::string(what) + " refers to string " + std::to_string(index) + " of " +
           std::to_string(raw.strings.size()));
    }
    return std::string(raw.strings[static_cast<std::size_t>(index)]);
  };
  auto vt = [&](const raw_value_type& v, const char* what) {
    return value_type{str(v.type, what), str(v.unit, what)};
  };

  profile p = std::move(raw.p);
  for (const auto& t : raw.sample_types) p.sample_types.push_back(vt(t, "sample type"));
  p.period_type = vt(raw.period_type, "period type");
  p.drop_frames = str(raw.drop_frames, "drop_frames");
  p.keep_frames = str(raw.keep_frames, "keep_frames");
  p.default_sample_type = str(raw.default_sample_type, "default_sample_type");
  for (std::int64_t c : raw.comments) p.comments.push_back(str(c, "comment"));

  auto check_ids = [](const auto& items, auto id_of, const char* what) {
    std::unordered_set<std::uint64_t> ids;
    for (const auto& item : items) {
      std::uint64_t id = id_of(item);
      if (id == 0) fail(std::string(what) + " with id 0");
      if (!ids.insert(id).second)
        fail(std::string("duplicate ") + what + " id " + std::to_string(id));
    }
    return ids;
  };
  auto mapping_ids = check_ids(
      raw.mappings, [](const raw_mapping& m) { return m.m.id; }, "mapping");
  auto function_ids = check_ids(
      raw.functions, [](const raw_function& f) { return f.f.id; }, "function");
  auto location_ids = check_ids(
      raw.locations, [](const location& l) { return l.id; }, "location");

  for (auto& m : raw.mappings) {
    m.m.filename = str(m.filename, "mapping filename");
    m.m.build_id = str(m.build_id, "mapping build_id");
    p.mappings.push_back(std::move(m.m));
  }
  for (auto& f : raw.functions) {
    f.f.name = str(f.name, "function name");
    f.f.system_name = str(f.system_name, "function system_name");
    f.f.filename = str(f.filename, "function filename");
    p.functions.push_back(std::move(f.f));
  }
  for (auto& loc : raw.locations) {
    if (loc.mapping_id != 0 && !mapping_ids.contains(loc.mapping_id)) {
      fail("location " + std::to_string(loc.id) + " refers to missing mapping " +
           std::to_string(loc.mapping_id));
    }
    for (const auto& l : loc.lines) {
      if (!function_ids.contains(l.function_id)) {
        fail("location " + std::to_string(loc.id) + " refers to missing function " +
             std::to_string(l.function_id));
      }
    }
    p.locations.push_back(std::move(loc));
  }
  for (auto& s : raw.samples) {
    if (s.values.size() != p.sample_types.size()) {
      fail("a sample has " + std::to_string(s.values.size()) + " values for " +
           std::to_string(p.sample_types.size()) + " sample types");
    }
    for (std::uint64_t id : s.location_ids) {
      if (!location_ids.contains(id))
        fail("a sample refers to missing location " + std::to_string(id));
    }
    sample out{std::move(s.location_ids), std::move(s.values), {}};
    for (const auto& l : s.labels) {
      out.labels.push_back(label{str(l.key, "label key"), str(l.str, "label str"), l.num,
                                 str(l.num_unit, "label num_unit")});
    }
    p.samples.push_back(std::move(out));
  }
  return p;
}

// gunzip with an output bound; several concatenated members are accepted, as gzip(1) does.
std::string gunzip(std::string_view data, std::size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail("zlib: cannot initialise inflate");
  struct guard {
    z_stream* s;
    ~guard() { inflateEnd(s); }
  } cleanup{&zs};

  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  if (data.size() > std::numeric_limits<uInt>::max()) fail("compressed input too large");
  char buffer[64 * 1024];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof buffer;
    int rc = inflate(&zs, Z_NO_FLUSH);
    std::size_t produced = sizeof buffer - zs.avail_out;
    if (produced > max_bytes - out.size()) {
      fail("decompressed profile is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buffer, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) return out;
      if (inflateReset(&zs) != Z_OK) fail("zlib: cannot reset inflate");
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) fail("truncated gzip data");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      fail(std::string("corrupt gzip data: ") + (zs.msg != nullptr ? zs.msg : "zlib error"));
    }
  }
}

}  // namespace

std::string encode(const profile& p) {
  string_table strings;
  wire_writer out;

  for (const auto& t : p.sample_types) {
    out.message(field::profile::sample_type, encode_value_type(t, strings));
  }
  for (const auto& s : p.samples) {
    wire_writer w;
    w.packed(field::sample::location_id, s.location_ids);
    w.packed(field::sample::value, s.values);
    for (const auto& l : s.labels) {
      wire_writer lw;
      lw.sint(field::label::key, strings.index(l.key));
      lw.sint(field::label::str, strings.index(l.str));
      lw.sint(field::label::num, l.num);
      lw.sint(field::label::num_unit, strings.index(l.num_unit));
      w.message(field::sample::label, lw);
    }
    out.message(field::profile::sample, w);
  }
  for (const auto& m : p.mappings) {
    wire_writer w;
    w.uint(field::mapping::id, m.id);
    w.uint(field::mapping::memory_start, m.memory_start);
    w.uint(field::mapping::memory_limit, m.memory_limit);
    w.uint(field::mapping::file_offset, m.file_offset);
    w.sint(field::mapping::filename, strings.index(m.filename));
    w.sint(field::mapping::build_id, strings.index(m.build_id));
    w.boolean(field::mapping::has_functions, m.has_functions);
    w.boolean(field::mapping::has_filenames, m.has_filenames);
    w.boolean(field::mapping::has_line_numbers, m.has_line_numbers);
    w.boolean(field::mapping::has_inline_frames, m.has_inline_frames);
    out.message(field::profile::mapping, w);
  }
  for (const auto& loc : p.locations) {
    wire_writer w;
    w.uint(field::location::id, loc.id);
    w.uint(field::location::mapping_id, loc.mapping_id);
    w.uint(field::location::address, loc.address);
    for (const auto& l : loc.lines) {
      wire_writer lw;
      lw.uint(field::line::function_id, l.function_id);
      lw.sint(field::line::line, l.line);
      w.message(field::location::line, lw);
    }
    w.boolean(field::location::is_folded, loc.is_folded);
    out.message(field::profile::location, w);
  }
  for (const auto& f : p.functions) {
    wire_writer w;
    w.uint(field::function::id, f.id);
    w.sint(field::function::name, strings.index(f.name));
    w.sint(field::function::system_name, strings.index(f.system_name));
    w.sint(field::function::filename, strings.index(f.filename));
    w.sint(field::function::start_line, f.start_line);
    out.message(field::profile::function, w);
  }
  // Scalars that refer to strings are indexed before the table is written.
  std::int64_t drop = strings.index(p.drop_frames);
  std::int64_t keep = strings.index(p.keep_frames);
  std::vector<std::int64_t> comments;
  for (const auto& c : p.comments) comments.push_back(strings.index(c));
  std::int64_t default_type = strings.index(p.default_sample_type);
  wire_writer period_type = encode_value_type(p.period_type, strings);

  strings.write(out);
  out.sint(field::profile::drop_frames, drop);
  out.sint(field::profile::keep_frames, keep);
  out.sint(field::profile::time_nanos, p.time_nanos);
  out.sint(field::profile::duration_nanos, p.duration_nanos);
  out.message(field::profile::period_type, period_type);
  out.sint(field::profile::period, p.period);
  out.packed(field::profile::comment, comments);
  out.sint(field::profile::default_sample_type, default_type);
  return out.take();
}

std::string gzip(std::string_view data) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("zlib: cannot initialise deflate");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate did not finish");
  return out;
}

std::string encode_gzipped(const profile& p) { return gzip(encode(p)); }

profile decode(std::string_view data, std::size_t max_bytes) {
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    std::string raw = gunzip(data, max_bytes);
    return resolve(decode_raw(raw));
  }
  if (data.size() > max_bytes) {
    fail("profile is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return resolve(decode_raw(data));
}

}  // namespace leakless::pprof
