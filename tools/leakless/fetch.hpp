// tools/leakless/fetch.hpp — getting a heap profile from a running program's debug server.
//
// How it works: fetch_profile_bytes() sends one HTTP GET with cpp-httplib's client and returns the
// body (a gzipped pprof profile when the server is Go's or ours). A URL may be given whole
// ("http://host:port/debug/pprof/heap") or as just "host:port" (the heap endpoint is assumed).
// Every failure — bad URL, refused connection, timeout, an HTTP status other than 200 — is a
// std::runtime_error whose message names the URL.
#pragma once

#include <string>

#include "analysis.hpp"

namespace leakless::cli {

// "host:port" -> "http://host:port/debug/pprof/heap"; a full URL is returned as it is.
std::string heap_profile_url(const std::string& url);

// The body of GET url; throws std::runtime_error naming the URL.
std::string fetch_bytes(const std::string& url, int timeout_seconds = 30);

// Decodes fetched bytes into a snapshot whose source is `url` and whose time is the profile's (or
// now, when the profile has none); throws std::runtime_error naming the URL.
heap_snapshot snapshot_from_bytes(const std::string& bytes, const std::string& url);

// fetch_bytes() then snapshot_from_bytes().
heap_snapshot fetch_snapshot(const std::string& url, int timeout_seconds = 30);

// "5s", "500ms", "2m", "1h", "1.5s" or a plain number of seconds, in seconds; throws
// std::invalid_argument on anything else.
double parse_duration(const std::string& text);

}  // namespace leakless::cli
