// tests/pprof/fuzz_decode.cpp — libFuzzer target for the pprof decoder.
//
// How it works: every input is decoded (gzipped or raw); decode_error is the only acceptable way
// to fail, and a profile that decodes must encode and decode again to the same value. The target
// is built with clang++ -fsanitize=fuzzer,address,undefined by run_fuzz.sh, so an out-of-bounds
// read, a leak or undefined behaviour stops the run. Built with LEAKLESS_FUZZ_SEED_WRITER instead,
// the same file is a small program that writes the seed corpus: real profiles, raw and gzipped.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "pprof/profile.hpp"

using leakless::pprof::decode;
using leakless::pprof::decode_error;
using leakless::pprof::encode;

#ifndef LEAKLESS_FUZZ_SEED_WRITER

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto p = decode(std::string_view(reinterpret_cast<const char*>(data), size), 16u << 20);
    if (!(decode(encode(p)) == p)) std::abort();  // what decodes must survive a round trip
  } catch (const decode_error&) {
  }
  return 0;
}

#else

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  using namespace leakless::pprof;
  profile p;
  p.sample_types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}};
  p.period_type = {"space", "bytes"};
  p.period = 524288;
  p.mappings = {{1, 0x400000, 0x500000, 0, "/usr/bin/prog", "abcd", true, true, true, true}};
  p.functions = {{1, "f()", "_Z1fv", "/src/f.cpp", 3}, {2, "main", "main", "/src/m.cpp", 1}};
  p.locations = {{1, 1, 0x401000, {{1, 4}, {2, 9}}, false}, {2, 0, 0x10, {}, false}};
  p.samples = {{{1, 2}, {1, 100}, {{"bytes", "", 100, "bytes"}}}, {{2}, {3, 7}, {}}};
  p.comments = {"seed"};
  p.default_sample_type = "alloc_space";
  const std::string dir = argv[1];
  std::ofstream(dir + "/raw.pb", std::ios::binary) << encode(p);
  std::ofstream(dir + "/gzipped.pb.gz", std::ios::binary) << encode_gzipped(p);
  return 0;
}

#endif
