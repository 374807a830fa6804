// tests/pprof/builder_test.cpp — profile_builder: addresses in, locations, functions and mappings
// out, as pprof expects them.
//
// How it works: a table stands in for the symbolizer and a hand-made module list for the process,
// so every expectation is exact: one location per distinct address, one function per distinct
// (name, file, start line), inline frames as several lines of one location, the main program as
// mapping 1 whatever its address, has_* flags from what the symbols gave, and addresses outside
// every module left without a mapping.
#include "pprof/builder.hpp"

#include <map>

#include <gtest/gtest.h>

namespace leakless::pprof {
namespace {

struct fixture {
  std::vector<stack::module> modules{
      {0x1000, 0x2000, 0x0, "/lib/libfoo.so", "aa11", false},
      {0x5000, 0x6000, 0x1000, "/usr/bin/prog", "bb22", true},
  };
  std::map<std::uint64_t, symbolized> table{
      {0x5100,
       {{{"inner()", "_Z5innerv", "/src/a.h", 7, 5},
         {"outer()", "_Z5outerv", "/src/a.cpp", 20, 15}},
        0x10}},
      {0x5200, {{{"outer()", "_Z5outerv", "/src/a.cpp", 22, 15}}, 0x20}},
      {0x1100, {{{"foo", "foo", "", 0, 0}}, 0x4}},
  };
  symbolized unknown;
  profile_builder::resolver resolve() {
    return [this](std::uint64_t address) -> const symbolized& {
      auto it = table.find(address);
      return it == table.end() ? unknown : it->second;
    };
  }
};

profile build_sample_profile(fixture& f) {
  profile_builder b({{"objects", "count"}, {"space", "bytes"}}, {"space", "bytes"}, 4096);
  b.set_default_sample_type("space");
  b.set_time(123, 456);
  b.add_comment("hello");
  b.set_drop_frames("std::.*");
  const std::uint64_t stack1[] = {0x5100, 0x5200, 0x1100};
  const std::uint64_t stack2[] = {0x5200, 0x9999};
  const std::int64_t values1[] = {1, 100};
  const std::int64_t values2[] = {2, 200};
  b.add_sample(stack1, values1, {label{"bytes", "", 100, ""}});
  b.add_sample(stack2, values2);
  return b.build(f.resolve(), f.modules);
}

TEST(ProfileBuilder, ScalarsAndSampleValues) {
  fixture f;
  const profile p = build_sample_profile(f);
  EXPECT_EQ(p.sample_types, (std::vector<value_type>{{"objects", "count"}, {"space", "bytes"}}));
  EXPECT_EQ(p.period_type, (value_type{"space", "bytes"}));
  EXPECT_EQ(p.period, 4096);
  EXPECT_EQ(p.default_sample_type, "space");
  EXPECT_EQ(p.time_nanos, 123);
  EXPECT_EQ(p.duration_nanos, 456);
  EXPECT_EQ(p.comments, std::vector<std::string>{"hello"});
  EXPECT_EQ(p.drop_frames, "std::.*");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].values, (std::vector<std::int64_t>{1, 100}));
  EXPECT_EQ(p.samples[0].labels, (std::vector<label>{{"bytes", "", 100, ""}}));
  EXPECT_EQ(p.samples[1].values, (std::vector<std::int64_t>{2, 200}));
}

TEST(ProfileBuilder, OneLocationPerAddressLeafFirst) {
  fixture f;
  const profile p = build_sample_profile(f);
  ASSERT_EQ(p.locations.size(), 4u);  // 0x5100, 0x5200, 0x1100, 0x9999
  EXPECT_EQ(p.samples[0].location_ids, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(p.samples[1].location_ids, (std::vector<std::uint64_t>{2, 4}));
  EXPECT_EQ(p.locations[0].address, 0x5100u);
  EXPECT_EQ(p.locations[3].address, 0x9999u);
}

TEST(ProfileBuilder, InlineFramesAreLinesOfOneLocationInnermostFirst) {
  fixture f;
  const profile p = build_sample_profile(f);
  const location& loc = p.locations[0];
  ASSERT_EQ(loc.lines.size(), 2u);
  const function& inner = p.functions.at(loc.lines[0].function_id - 1);
  const function& outer = p.functions.at(loc.lines[1].function_id - 1);
  EXPECT_EQ(inner.name, "inner()");
  EXPECT_EQ(inner.system_name, "_Z5innerv");
  EXPECT_EQ(inner.filename, "/src/a.h");
  EXPECT_EQ(inner.start_line, 5);
  EXPECT_EQ(loc.lines[0].line, 7);
  EXPECT_EQ(outer.name, "outer()");
  EXPECT_EQ(loc.lines[1].line, 20);
  // outer() at another line is the same function.
  ASSERT_EQ(p.locations[1].lines.size(), 1u);
  EXPECT_EQ(p.locations[1].lines[0].function_id, loc.lines[1].function_id);
  EXPECT_EQ(p.locations[1].lines[0].line, 22);
  EXPECT_EQ(p.functions.size(), 3u);
  for (std::size_t i = 0; i < p.functions.size(); ++i) EXPECT_EQ(p.functions[i].id, i + 1);
}

TEST(ProfileBuilder, MainProgramIsMappingOneAndFlagsFollowSymbols) {
  fixture f;
  const profile p = build_sample_profile(f);
  ASSERT_EQ(p.mappings.size(), 2u);
  const mapping& prog = p.mappings[0];
  EXPECT_EQ(prog.id, 1u);
  EXPECT_EQ(prog.filename, "/usr/bin/prog");
  EXPECT_EQ(prog.build_id, "bb22");
  EXPECT_EQ(prog.memory_start, 0x5000u);
  EXPECT_EQ(prog.memory_limit, 0x6000u);
  EXPECT_EQ(prog.file_offset, 0x1000u);
  EXPECT_TRUE(prog.has_functions);
  EXPECT_TRUE(prog.has_filenames);
  EXPECT_TRUE(prog.has_line_numbers);
  EXPECT_TRUE(prog.has_inline_frames);
  const mapping& lib = p.mappings[1];
  EXPECT_EQ(lib.id, 2u);
  EXPECT_EQ(lib.filename, "/lib/libfoo.so");
  EXPECT_TRUE(lib.has_functions);  // looked up: pprof must not try again from the file
  EXPECT_FALSE(lib.has_filenames);
  EXPECT_FALSE(lib.has_line_numbers);
  EXPECT_EQ(p.locations[0].mapping_id, 1u);
  EXPECT_EQ(p.locations[2].mapping_id, 2u);
  EXPECT_EQ(p.locations[3].mapping_id, 0u);  // outside every module
  EXPECT_TRUE(p.locations[3].lines.empty());
}

TEST(ProfileBuilder, OutputSurvivesTheCodec) {
  fixture f;
  const profile p = build_sample_profile(f);
  EXPECT_EQ(decode(encode_gzipped(p)), p);
}

}  // namespace
}  // namespace leakless::pprof
