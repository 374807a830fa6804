// tests/server/fuzz_request.cpp — libFuzzer target for the debug server's own request parsing:
// listen addresses (LEAKLESS_HTTP), Go's integer parameters and symbol requests.
//
// How it works: every input goes through each parser; besides the sanitizers
// (-fsanitize=fuzzer,address,undefined, built by tests/support/run_fuzz.sh), the target checks
// what the parsers promise: an accepted address has a port in 0..65535 and a host, an error
// always says why, a parsed int prints back to itself (modulo a '+' sign and leading zeros), and
// no symbol address is 0. Built with LEAKLESS_FUZZ_SEED_WRITER, the file writes the seed corpus.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "server/request.hpp"

#ifndef LEAKLESS_FUZZ_SEED_WRITER

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  const auto address = leakless::server::parse_listen_address(text, &why);
  if (address) {
    if (address->port < 0 || address->port > 65535 || address->host.empty()) std::abort();
  } else if (why.empty()) {
    std::abort();
  }
  if (const auto v = leakless::server::parse_go_int(text)) {
    const auto again = leakless::server::parse_go_int(std::to_string(*v));
    if (!again || *again != *v) std::abort();
  }
  for (const std::uint64_t a : leakless::server::parse_symbol_request(text)) {
    if (a == 0) std::abort();
  }
  leakless::server::parse_go_uint_any_base(text);
  return 0;
}

#else

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* seeds[] = {
      "127.0.0.1:6060",      ":0",           "[::1]:80", "localhost:99999", "30",      "-5", "+7",
      "9223372036854775808", "0x4005d0+0x1", "0o17+0",   "0b101+junk",      "0x+0+017"};
  int n = 0;
  for (const char* s : seeds) {
    std::ofstream(std::string(argv[1]) + "/seed" + std::to_string(n++)) << s;
  }
  return 0;
}

#endif
