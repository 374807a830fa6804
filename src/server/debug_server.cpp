// src/server/debug_server.cpp — leakless::debug_server (<leakless/debug_server.hpp>): the host side
// of the debug server in libleakless.so (token, routing, the leakless_* metrics, LEAKLESS_HTTP,
// the metrics C ABI); the HTTP side is the module libleakless_http.so (http_module.hpp).
//
// How it works:
// - The first server loads the module (dlopen, from the directory libleakless.so was loaded from)
//   and keeps it loaded. start() binds and serves; every request comes back to serve() here.
// - Threads. The module's threads call thread_started() first: their allocations are the
//   profiler's own (never sampled) and they take the threads profile's signal (they show up in
//   /debug/pprof/threads); every other signal stays blocked.
// - Requests are checked against the token (401), then routed: /metrics, or /debug/pprof/<name>
//   through handlers.hpp. Waiting handlers (CPU and delta profiles) sleep on a condition variable
//   that the destructor signals, so a stop never waits for a profile's full length.
// - Stopping. The destructor wakes sleeping handlers (a CPU or delta profile is cut short) and
//   asks the module to stop, which waits for the requests in flight: never freeing or, at exit,
//   letting exit() destroy what a request still uses. A stalled client delays it by the read or
//   write timeout at most.
// - LEAKLESS_HTTP=<host:port> (and LEAKLESS_HTTP_TOKEN): the library's constructor starts a server;
//   a bad value or a failure to listen is one "leakless: ..." line on stderr and no server. It is
//   stopped first thing by every destructor of the library (environment.hpp): after the
//   program's own static destructors, before the exit dump and the library's static objects.
// - Fork. A child has none of the server's threads; it never touches the parent's server (whose
//   listening socket it shares: closing or shutting it down would stop the parent's server too).
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "heap/config.hpp"
#include "heap/sampler.hpp"
#include "server/environment.hpp"
#include "server/handlers.hpp"
#include "server/http_module.hpp"
#include "server/metrics.hpp"
#include "server/request.hpp"
#include "threads/threads_profile.hpp"

#include <leakless/debug_server.hpp>
#include <leakless/metrics.hpp>
#include <leakless/profile.hpp>

namespace leakless {
namespace {

// First thing on every thread of the module.
void thread_started() {
  heap::tls_sampler.busy = 1;
  sigset_t profile;
  sigemptyset(&profile);
  sigaddset(&profile, threads::profile_signal());
  pthread_sigmask(SIG_UNBLOCK, &profile, nullptr);
}

// libleakless_http.so, loaded once and never unloaded.
const server::http_module* load_module() {
  static std::mutex m;
  static const server::http_module* module = nullptr;
  std::lock_guard lock(m);
  if (module != nullptr) return module;
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&thread_started), &self) == 0 || self.dli_fname == nullptr) {
    throw std::runtime_error("cannot find where libleakless.so was loaded from");
  }
  std::string path = self.dli_fname;
  const auto slash = path.rfind('/');
  path = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
         "libleakless_http.so";
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw std::runtime_error("cannot load " + path + ": " + (why != nullptr ? why : "?"));
  }
  using entry = const server::http_module* (*)();
  const auto get = reinterpret_cast<entry>(dlsym(handle, "leakless_http_module"));
  const server::http_module* found = get != nullptr ? get() : nullptr;
  if (found == nullptr || found->version != server::kHttpModuleVersion) {
    throw std::runtime_error(path + " is not this build's HTTP module");
  }
  module = found;
  return module;
}

bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

void collect_leakless_metrics(void*, leakless_metrics_emit_fn emit_fn, void* emit_context) {
  const metrics_emitter emit(emit_fn, emit_context);
  const heap_profile_stats s = heap_stats();
  const auto d = [](std::size_t v) { return static_cast<double>(v); };
  emit.gauge("leakless_heap_inuse_bytes", "Live heap bytes, estimated from the sampled profile.",
             d(s.inuse_bytes));
  emit.gauge("leakless_heap_inuse_objects",
             "Live heap allocations, estimated from the sampled profile.", d(s.inuse_objects));
  emit.counter("leakless_heap_allocated_bytes_total",
               "Bytes allocated since the profiler started, estimated from samples.",
               d(s.alloc_bytes));
  emit.counter("leakless_heap_allocated_objects_total",
               "Allocations since the profiler started, estimated from samples.",
               d(s.alloc_objects));
  emit.gauge("leakless_heap_sample_rate_bytes", "Mean bytes allocated between two samples.",
             d(s.sample_rate));
  emit.counter("leakless_profiler_samples_total", "Allocations sampled since the start.",
               d(s.samples));
  emit.counter("leakless_profiler_dropped_samples_total",
               "Samples the profiler could not record (no memory for its tables).",
               static_cast<double>(heap::totals().dropped));
  emit.gauge("leakless_profiler_live_samples", "Sampled allocations not freed yet.",
             d(s.live_samples));
  emit.gauge("leakless_profiler_memory_bytes", "Memory the profiler itself holds.",
             d(s.profiler_bytes));
}

void register_builtin_metrics() {
  static const std::uint64_t id = server::register_collector(collect_leakless_metrics, nullptr);
  (void)id;
}

}  // namespace

struct debug_server::impl {
  const server::http_module* module = nullptr;
  void* http = nullptr;  // the module's server
  std::string host;
  int port = 0;
  std::string token;
  server::handler_options handler_options;
  pid_t owner = getpid();

  std::mutex mutex;
  std::condition_variable wake;  // sleeping handlers
  bool stopping = false;

  bool sleep(std::chrono::seconds duration) {
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, duration, [this] { return stopping; });
  }

  static void serve(void* context, const server::http_call& call, server::http_reply& reply) {
    try {
      static_cast<impl*>(context)->route(call, reply);
    } catch (...) {
      reply = server::http_reply{};
      reply.status = 500;
      reply.content_type = "text/plain; charset=utf-8";
      reply.body = "internal error\n";
    }
  }

  void route(const server::http_call& call, server::http_reply& reply) {
    if (!token.empty()) {
      const std::string& given = call.authorization;
      if (given.rfind("Bearer ", 0) != 0 || !same_secret(given.substr(7), token)) {
        reply.status = 401;
        reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"leakless\"");
        reply.content_type = "text/plain; charset=utf-8";
        reply.body = "Unauthorized\n";
        return;
      }
    }
    constexpr std::string_view prefix = "/debug/pprof/";
    if (call.path == "/metrics") {
      reply.content_type = server::kMetricsContentType;
      reply.body = server::scrape();
      return;
    }
    if (call.path == "/debug/pprof") {
      reply.status = 301;
      reply.headers.emplace_back("Location", "/debug/pprof/");
      return;
    }
    if (call.path.rfind(prefix, 0) != 0) {
      reply.status = 404;
      reply.content_type = "text/plain; charset=utf-8";
      reply.body = "404 page not found\n";
      return;
    }
    server::http_request r;
    r.method = call.method;
    r.name = call.path.substr(prefix.size());
    const auto question = call.target.find('?');
    if (question != std::string::npos) r.raw_query = call.target.substr(question + 1);
    r.params = call.params;
    r.body = call.body;
    server::http_response response = server::handle_pprof(r, handler_options);
    reply.status = response.status;
    reply.content_type = std::move(response.content_type);
    reply.headers = std::move(response.headers);
    reply.body = std::move(response.body);
  }
};

debug_server::debug_server(std::string_view address, debug_server_options options)
    : impl_(nullptr) {
  std::string why;
  const auto parsed = server::parse_listen_address(address, &why);
  if (!parsed) {
    throw std::invalid_argument("debug server address \"" + std::string(address) + "\": " + why);
  }
  heap::busy_scope busy;
  auto state = std::make_unique<impl>();
  state->module = load_module();
  register_builtin_metrics();
  state->host = parsed->host;
  state->token = options.token;
  if (state->token.empty()) {
    if (const char* env = std::getenv("LEAKLESS_HTTP_TOKEN")) state->token = env;
  }
  state->handler_options.max_profile_seconds = options.max_profile_seconds;
  impl* self = state.get();
  state->handler_options.sleep = [self](std::chrono::seconds d) { return self->sleep(d); };

  server::http_settings settings;
  settings.host = parsed->host;
  settings.port = parsed->port;
  settings.workers = options.workers;
  settings.io_timeout_seconds = options.io_timeout_seconds;
  std::string error;
  static const server::http_host host{thread_started, impl::serve};
  state->http = state->module->start(&host, self, settings, &state->port, &error);
  if (state->http == nullptr) {
    throw std::runtime_error("cannot listen on " + std::string(address) + ": " + error);
  }
  impl_ = state.release();
}

debug_server::~debug_server() {
  if (impl_ == nullptr) return;
  if (impl_->owner != getpid()) return;  // a forked child: the server is the parent's
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->module->stop(impl_->http);
  delete impl_;
  impl_ = nullptr;
}

int debug_server::port() const noexcept { return impl_->port; }

std::string debug_server::address() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

namespace {

std::atomic<debug_server*> g_environment_server{nullptr};

void forget_server_in_child() { g_environment_server.store(nullptr); }

[[gnu::constructor]] void start_server_from_environment() {
  const char* address = std::getenv("LEAKLESS_HTTP");
  if (address == nullptr || *address == '\0') return;
  heap::busy_scope busy;
  std::string why;
  if (!server::parse_listen_address(address, &why)) {
    heap::report("LEAKLESS_HTTP=" + std::string(address).substr(0, 200) + " is not host:port (" +
                 why + "); no debug server");
    return;
  }
  try {
    g_environment_server.store(new debug_server(address));
    pthread_atfork(nullptr, nullptr, forget_server_in_child);
  } catch (const std::exception& e) {
    heap::report(std::string("cannot start the debug server (LEAKLESS_HTTP): ") + e.what());
  }
}

[[gnu::destructor]] void stop_server_at_exit() { server::stop_environment_server(); }

}  // namespace

void server::stop_environment_server() noexcept { delete g_environment_server.exchange(nullptr); }

}  // namespace leakless

// The metrics registry's C ABI (<leakless/metrics.hpp>).
extern "C" std::uint64_t leakless_metrics_register(leakless_metrics_collect_fn collect,
                                                   void* context) {
  try {
    return leakless::server::register_collector(collect, context);
  } catch (...) {
    return 0;
  }
}

extern "C" void leakless_metrics_unregister(std::uint64_t id) {
  leakless::server::unregister_collector(id);
}
