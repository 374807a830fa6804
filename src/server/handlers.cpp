// src/server/handlers.cpp — the /debug/pprof/* endpoints (see handlers.hpp).
#include "server/handlers.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "core/xml_escape.hpp"
#include "cpu/profiler.hpp"
#include "heap/heap_profile.hpp"
#include "heap/lifecycle.hpp"
#include "heap/sampler.hpp"
#include "pprof/delta.hpp"
#include "pprof/profile.hpp"
#include "pprof/symbolizer.hpp"
#include "server/request.hpp"
#include "threads/threads_profile.hpp"

namespace leakless::server {
namespace {

constexpr int kDefaultCpuSeconds = 30;

std::string param(const http_request& r, const std::string& name) {
  const auto it = r.params.find(name);
  return it != r.params.end() ? it->second : std::string();
}

// Go's strconv.Atoi with the error ignored: 0 for anything that is not an int.
int atoi_or_zero(const std::string& text) {
  const auto v = parse_go_int(text);
  if (!v || *v > 1'000'000 || *v < -1'000'000) return 0;
  return static_cast<int>(*v);
}

http_response nosniff(http_response r) {
  for (const auto& [name, value] : r.headers) {
    if (name == "X-Content-Type-Options") return r;
  }
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

http_response attachment(std::string body, const std::string& filename) {
  http_response r;
  r.content_type = "application/octet-stream";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.body = std::move(body);
  return r;
}

http_response text(std::string body) {
  http_response r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

enum class kind { heap, allocs, threads };

bool profile_kind(const std::string& name, kind* out) {
  if (name == "heap") {
    *out = kind::heap;
  } else if (name == "allocs") {
    *out = kind::allocs;
  } else if (name == "threads" || name == "goroutine") {
    *out = kind::threads;
  } else {
    return false;
  }
  return true;
}

std::string profile_bytes(kind k) {
  switch (k) {
    case kind::heap:
      return heap::heap_profile_bytes(heap::profile_kind::heap);
    case kind::allocs:
      return heap::heap_profile_bytes(heap::profile_kind::allocs);
    case kind::threads:
      return threads::threads_profile_bytes();
  }
  return {};
}

std::string profile_text(kind k, int debug) {
  switch (k) {
    case kind::heap:
      return heap::heap_profile_text(heap::profile_kind::heap);
    case kind::allocs:
      return heap::heap_profile_text(heap::profile_kind::allocs);
    case kind::threads:
      return threads::threads_profile_text(debug);
  }
  return {};
}

std::int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Go's serveDeltaProfile.
http_response delta_profile(const http_request& r, kind k, const std::string& seconds_text,
                            const handler_options& options) {
  const auto seconds = parse_go_int(seconds_text);
  if (!seconds || *seconds <= 0) {
    return error_response(400, R"(invalid value for "seconds" - must be a positive integer)");
  }
  if (*seconds > options.max_profile_seconds) {
    return error_response(400, "profile duration exceeds server's limit of " +
                                   std::to_string(options.max_profile_seconds) + " seconds");
  }
  if (atoi_or_zero(param(r, "debug")) != 0) {
    return error_response(400, "seconds and debug params are incompatible");
  }
  pprof::profile before;
  const std::int64_t start = now_nanos();
  try {
    before = pprof::decode(profile_bytes(k));
  } catch (const std::exception&) {
    return error_response(500, "failed to collect profile");
  }
  if (!options.sleep(std::chrono::seconds(*seconds))) {
    return error_response(500, "context canceled");
  }
  try {
    pprof::profile after = pprof::decode(profile_bytes(k));
    const std::int64_t end = now_nanos();
    pprof::profile delta = pprof::subtract(before, after);
    delta.time_nanos = end;
    delta.duration_nanos = end - start;
    return attachment(pprof::encode_gzipped(delta), r.name + "-delta");
  } catch (const std::exception&) {
    return error_response(500, "failed to compute delta");
  }
}

http_response serve_profile(const http_request& r, kind k, const handler_options& options) {
  const std::string seconds = param(r, "seconds");
  if (!seconds.empty()) return delta_profile(r, k, seconds, options);
  const int debug = atoi_or_zero(param(r, "debug"));
  if (debug != 0) return text(profile_text(k, debug));
  return attachment(profile_bytes(k), r.name);
}

// Go's Profile handler: a CPU profile of `seconds` (default 30 when missing or not positive).
http_response cpu_profile(const http_request& r, const handler_options& options) {
  auto seconds = parse_go_int(param(r, "seconds"));
  if (!seconds || *seconds <= 0) seconds = kDefaultCpuSeconds;
  if (*seconds > options.max_profile_seconds) {
    return error_response(400, "profile duration exceeds server's limit of " +
                                   std::to_string(options.max_profile_seconds) + " seconds");
  }
  std::ostringstream out;
  try {
    cpu::start(out, cpu::options{cpu::hz_from_environment(), false});
  } catch (const std::exception& e) {
    return error_response(500, std::string("Could not enable CPU profiling: ") + e.what());
  }
  // Stopped whatever happens; the wait is bounded by `seconds` and cut short by a server stop.
  try {
    options.sleep(std::chrono::seconds(*seconds));
  } catch (...) {
  }
  cpu::stop();
  return attachment(out.str(), "profile");
}

std::string read_proc(const char* path) {
  std::string data;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return data;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return data;
}

http_response cmdline() {
  std::string args = read_proc("/proc/self/cmdline");
  if (!args.empty() && args.back() == '\0') args.pop_back();  // Go joins with NUL, no trailer
  return text(std::move(args));
}

http_response symbol(const http_request& r) {
  const std::vector<std::uint64_t> addresses =
      parse_symbol_request(r.method == "POST" ? r.body : r.raw_query);
  std::string body = "num_symbols: 1\n";
  heap::busy_scope busy;
  pprof::symbolizer symbols;
  char line[32];
  for (const std::uint64_t address : addresses) {
    const pprof::symbolized& s = symbols.lookup(address);
    if (s.frames.empty() || s.frames.back().function.empty()) continue;
    std::snprintf(line, sizeof line, "%#" PRIx64 " ", address);
    body += line;
    body += s.frames.back().function;  // the outermost frame: the function the address is in
    body += '\n';
  }
  return text(std::move(body));
}

http_response index_page() {
  struct entry {
    std::string name;
    std::size_t count;
    std::string description;
  };
  std::size_t buckets = 0;
  {
    heap::busy_scope busy;
    for (const heap::bucket_snapshot& s : heap::snapshot_buckets()) {
      if (s.counts.allocs != 0) ++buckets;
    }
  }
  const std::size_t thread_count = threads::thread_count();
  const std::vector<entry> entries = {
      {"allocs", buckets, "A sampling of all past memory allocations"},
      {"cmdline", 0, "The command line invocation of the current program"},
      {"goroutine", thread_count, "Stack traces of all current threads (the same as threads)"},
      {"heap", buckets, "A sampling of memory allocations of live objects."},
      {"profile", 0,
       "CPU profile. You can specify the duration in the seconds GET parameter. After you get "
       "the profile file, use the go tool pprof command to investigate the profile."},
      {"symbol", 0, "Function names of program counters (0xADDR+0xADDR in the query or body)"},
      {"threads", thread_count, "Stack traces of all current threads"},
  };
  std::string b = R"(<html>
<head>
<title>/debug/pprof/</title>
<style>
.profile-name{
	display:inline-block;
	width:6rem;
}
</style>
</head>
<body>
/debug/pprof/<br>
<br>
Types of profiles available:
<table>
<thead><td>Count</td><td>Profile</td></thead>
)";
  for (const entry& e : entries) {
    b += "<tr><td>" + std::to_string(e.count) + "</td><td><a href='" + e.name + "?debug=1'>";
    append_xml_escaped(b, e.name);
    b += "</a></td></tr>\n";
  }
  b += R"(</table>
<a href="threads?debug=2">full thread stack dump</a>
<br>
<p>
Profile Descriptions:
<ul>
)";
  for (const entry& e : entries) {
    b += "<li><div class=profile-name>";
    append_xml_escaped(b, e.name);
    b += ": </div> ";
    append_xml_escaped(b, e.description);
    b += "</li>\n";
  }
  b +=
      "</ul>\n</p>\n<p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p>\n</body>\n</html>";
  http_response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(b);
  return r;
}

}  // namespace

http_response error_response(int status, const std::string& message) {
  http_response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.headers.emplace_back("X-Go-Pprof", "1");
  r.body = message + "\n";
  return nosniff(std::move(r));
}

http_response handle_pprof(const http_request& r, const handler_options& options) {
  heap::ensure_configured();
  try {
    if (r.name.empty()) return nosniff(index_page());
    if (r.name == "cmdline") return nosniff(cmdline());
    if (r.name == "symbol") return nosniff(symbol(r));
    if (r.name == "profile") return nosniff(cpu_profile(r, options));
    kind k;
    if (!profile_kind(r.name, &k)) return error_response(404, "Unknown profile");
    return nosniff(serve_profile(r, k, options));
  } catch (const std::bad_alloc&) {
    return error_response(500, "out of memory");
  } catch (const std::exception& e) {
    return error_response(500, e.what());
  }
}

}  // namespace leakless::server
