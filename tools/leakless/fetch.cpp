// tools/leakless/fetch.cpp — HTTP fetches of profiles; see the header.
//
// How it works: the URL is split into scheme://host:port and path+query by hand (httplib's client
// takes them apart); the client follows redirects and has connection and read timeouts, so a
// stuck server ends in an error rather than a hang.
#include "fetch.hpp"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace leakless::cli {

std::string heap_profile_url(const std::string& url) {
  std::string full = url;
  if (full.find("://") == std::string::npos) full = "http://" + full;
  const std::size_t host_start = full.find("://") + 3;
  if (full.find('/', host_start) == std::string::npos) full += "/debug/pprof/heap";
  return full;
}

std::string fetch_bytes(const std::string& url, int timeout_seconds) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw std::runtime_error(url + ": not a URL");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    throw std::runtime_error(url + ": unsupported scheme '" + scheme + "' (use http or https)");
  }
  const std::size_t path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (origin.size() <= scheme_end + 3) throw std::runtime_error(url + ": no host in the URL");

  httplib::Client client(origin);
  if (!client.is_valid()) throw std::runtime_error(url + ": not a valid URL");
  client.set_connection_timeout(std::chrono::seconds(timeout_seconds));
  client.set_read_timeout(std::chrono::seconds(timeout_seconds));
  client.set_follow_location(true);
  const httplib::Result result = client.Get(path);
  if (!result) {
    const httplib::Error error = result.error();
    std::string why = "request failed (" + httplib::to_string(error) + ")";
    if (error == httplib::Error::Connection) why = "cannot connect to the server";
    if (error == httplib::Error::Read) why = "the server sent no complete answer";
    throw std::runtime_error(url + ": " + why);
  }
  if (result->status != 200) {
    throw std::runtime_error(url + ": the server answered HTTP " + std::to_string(result->status));
  }
  return result->body;
}

heap_snapshot fetch_snapshot(const std::string& url, int timeout_seconds) {
  return snapshot_from_bytes(fetch_bytes(url, timeout_seconds), url);
}

double parse_duration(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("'" + text + "' is not a duration (e.g. 5s, 500ms, 2m)");
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1e-3;
  } else if (unit == "m" || unit == "min") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  }
  if (scale == 0 || !std::isfinite(value) || value < 0) {
    throw std::invalid_argument("'" + text + "' is not a duration (e.g. 5s, 500ms, 2m)");
  }
  return value * scale;
}

heap_snapshot snapshot_from_bytes(const std::string& bytes, const std::string& url) {
  heap_snapshot s{url, 0, decode_profile(bytes, url)};
  s.time_nanos = s.profile.time_nanos;
  if (s.time_nanos == 0) {
    s.time_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  }
  return s;
}

}  // namespace leakless::cli
