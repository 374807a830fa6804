// src/server/request.hpp — the debug server's own parsing of what a client or the environment
// sends: listen addresses (LEAKLESS_HTTP, debug_server's argument), integer query parameters as
// Go's strconv reads them, and the /debug/pprof/symbol request (addresses joined by '+').
//
// How it works: pure functions over string_view, no I/O and no allocation beyond their results,
// so they are unit-tested and fuzzed (tests/server/fuzz_request.cpp) on their own. Go's rules are
// followed where net/http/pprof has them: ParseInt for `seconds` (base 10, optional sign, no
// spaces), Atoi for `debug` (a bad value is 0), ParseUint(word, 0, 64) for symbol addresses
// (0x/0o/0b prefixes and a leading 0 for octal; a word that does not parse is skipped).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leakless::server {

struct listen_address {
  std::string host;  // an IPv4 or IPv6 literal or a host name, without brackets
  int port = 0;      // 0: any free port
};

// "host:port", "[v6]:port", ":port" and "port" (the last two bind 127.0.0.1: safe by default; any
// other interface must be named, e.g. "0.0.0.0:6060"). nullopt with `error` set when malformed.
std::optional<listen_address> parse_listen_address(std::string_view text, std::string* error);

// Go's strconv.ParseInt(text, 10, 64): nullopt on an empty string, a stray character or overflow.
std::optional<std::int64_t> parse_go_int(std::string_view text);

// Go's strconv.ParseUint(text, 0, 64).
std::optional<std::uint64_t> parse_go_uint_any_base(std::string_view text);

// The addresses of a symbol request: the body of a POST or the raw query of a GET, words split at
// '+'; words that do not parse, and 0, are skipped (as Go does).
std::vector<std::uint64_t> parse_symbol_request(std::string_view text);

}  // namespace leakless::server
