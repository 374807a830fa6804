// src/server/debug_server.cpp — leakless::debug_server (<leakless/debug_server.hpp>): the HTTP
// side of the debug server on cpp-httplib, the leakless_* metrics, and LEAKLESS_HTTP.
//
// How it works:
// - Threads. The constructor binds (so a port in use is an error right away) and starts the
//   accept thread; httplib hands each connection to our worker pool (a fixed number of threads).
//   Every thread of ours is created with all signals blocked (the host program's signal handlers
//   never run on them) and then unblocks only the threads profile's signal, so it shows up in
//   /debug/pprof/threads; its allocations are the profiler's own (never sampled). Sockets are
//   close-on-exec.
// - Requests. Each request is checked against the token (401), then routed: /metrics, or
//   /debug/pprof/<name> through handlers.hpp. Waiting handlers (CPU and delta profiles) sleep on
//   a condition variable that stop() signals, so a stop never waits for a profile's full length.
//   Read and write timeouts drop clients that stall; they hold one worker at most.
// - Stopping. The destructor wakes sleeping handlers, stops httplib's accept loop and waits, a
//   bounded time, for the accept thread (which joins the workers). If a worker is still stuck (a
//   client that stopped reading, until the write timeout), the server's memory is left behind
//   rather than freed under it: the process goes on, or exits, without waiting.
// - LEAKLESS_HTTP=<host:port> (and LEAKLESS_HTTP_TOKEN): the library's constructor starts a server;
//   a bad value or a failure to listen is one "leakless: ..." line on stderr and no server. It is
//   stopped by an atexit handler registered by that constructor, which therefore runs after the
//   program's own static destructors and before the library's destructors (the exit dump).
// - Fork. A child has none of the server's threads; it never touches the parent's server (whose
//   listening socket it shares: closing or shutting it down would stop the parent's server too).
#include <fcntl.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include "heap/config.hpp"
#include "heap/sampler.hpp"
#include "server/handlers.hpp"
#include "server/metrics.hpp"
#include "server/request.hpp"
#include "threads/threads_profile.hpp"

#include <leakless/debug_server.hpp>
#include <leakless/metrics.hpp>
#include <leakless/profile.hpp>

namespace leakless {
namespace {

// Starts `body` on a new thread with every signal blocked but the threads profile's.
std::thread start_quiet_thread(const char* name, std::function<void()> body) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread t;
  try {
    t = std::thread([name, body = std::move(body)] {
      heap::tls_sampler.busy = 1;
      sigset_t profile;
      sigemptyset(&profile);
      sigaddset(&profile, threads::profile_signal());
      pthread_sigmask(SIG_UNBLOCK, &profile, nullptr);
      pthread_setname_np(pthread_self(), name);
      body();
    });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return t;
}

// httplib's task queue: a fixed pool of our quiet threads.
class worker_pool final : public httplib::TaskQueue {
 public:
  explicit worker_pool(int count) {
    for (int i = 0; i < count; ++i) {
      threads_.push_back(start_quiet_thread("leakless-http", [this] { run(); }));
    }
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(fn));
    }
    wake_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and every accepted connection served
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

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

void apply(httplib::Response& out, const server::http_response& in) {
  out.status = in.status;
  for (const auto& [name, value] : in.headers) out.set_header(name, value);
  out.set_content(in.body, in.content_type.c_str());
}

}  // namespace

struct debug_server::impl {
  httplib::Server http;
  std::string host;
  int port = 0;
  std::string token;
  server::handler_options handler_options;
  pid_t owner = getpid();

  std::mutex mutex;
  std::condition_variable wake;  // sleeping handlers; the end of the accept thread
  bool stopping = false;
  bool finished = false;
  std::thread accept_thread;

  bool sleep(std::chrono::seconds duration) {
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, duration, [this] { return stopping; });
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    if (!token.empty()) {
      const std::string given = req.get_header_value("Authorization");
      if (given.rfind("Bearer ", 0) != 0 || !same_secret(given.substr(7), token)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer realm=\"leakless\"");
        res.set_content("Unauthorized\n", "text/plain; charset=utf-8");
        return;
      }
    }
    constexpr std::string_view prefix = "/debug/pprof/";
    if (req.path == "/metrics") {
      res.status = 200;
      res.set_content(server::scrape(), server::kMetricsContentType);
      return;
    }
    if (req.path == "/debug/pprof") {
      res.status = 301;
      res.set_header("Location", "/debug/pprof/");
      return;
    }
    if (req.path.rfind(prefix, 0) != 0) {
      res.status = 404;
      res.set_content("404 page not found\n", "text/plain; charset=utf-8");
      return;
    }
    server::http_request r;
    r.method = req.method;
    r.name = req.path.substr(prefix.size());
    const auto question = req.target.find('?');
    if (question != std::string::npos) r.raw_query = req.target.substr(question + 1);
    for (const auto& [k, v] : req.params) r.params.emplace(k, v);
    r.body = req.body;
    apply(res, server::handle_pprof(r, handler_options));
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    http.stop();
  }

  // Waits up to `limit` for the accept thread (and so every worker) to end.
  bool wait_finished(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex);
    return wake.wait_for(lock, limit, [this] { return finished; });
  }
};

debug_server::debug_server(std::string_view address, debug_server_options options)
    : impl_(nullptr) {
  std::string why;
  const auto parsed = server::parse_listen_address(address, &why);
  if (!parsed) {
    throw std::invalid_argument("debug server address \"" + std::string(address) + "\": " + why);
  }
  auto state = std::make_unique<impl>();
  heap::busy_scope busy;
  register_builtin_metrics();
  state->host = parsed->host;
  state->token = options.token;
  if (state->token.empty()) {
    if (const char* env = std::getenv("LEAKLESS_HTTP_TOKEN")) state->token = env;
  }
  state->handler_options.max_profile_seconds = options.max_profile_seconds;
  impl* self = state.get();
  state->handler_options.sleep = [self](std::chrono::seconds d) { return self->sleep(d); };

  httplib::Server& http = state->http;
  const int workers = options.workers > 0 ? options.workers : 1;
  http.new_task_queue = [workers] { return new worker_pool(workers); };
  http.set_socket_options([](int fd) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  });
  const time_t timeout = options.io_timeout_seconds > 0 ? options.io_timeout_seconds : 10;
  http.set_read_timeout(timeout, 0);
  http.set_write_timeout(timeout, 0);
  http.set_keep_alive_timeout(2);
  http.set_keep_alive_max_count(100);
  http.set_payload_max_length(1 << 20);
  const auto handler = [self](const httplib::Request& req, httplib::Response& res) {
    self->serve(req, res);
  };
  http.Get(".*", handler);
  http.Post(".*", handler);

  errno = 0;
  if (parsed->port == 0) {
    state->port = http.bind_to_any_port(state->host);
  } else {
    state->port = http.bind_to_port(state->host, parsed->port) ? parsed->port : -1;
  }
  if (state->port <= 0) {
    const int error = errno != 0 ? errno : EADDRNOTAVAIL;
    throw std::system_error(error, std::generic_category(),
                            "cannot listen on " + std::string(address));
  }
  state->accept_thread = start_quiet_thread("leakless-http", [self] {
    self->http.listen_after_bind();
    {
      std::lock_guard lock(self->mutex);
      self->finished = true;
    }
    self->wake.notify_all();
  });
  impl_ = state.release();
}

debug_server::~debug_server() {
  if (impl_ == nullptr) return;
  if (impl_->owner != getpid()) return;  // a forked child: the server is the parent's
  impl_->stop();
  if (impl_->wait_finished(std::chrono::milliseconds(2000))) {
    impl_->accept_thread.join();
    delete impl_;
  } else {
    impl_->accept_thread.detach();  // a worker is stuck on a client: leave it the memory
  }
  impl_ = nullptr;
}

int debug_server::port() const noexcept { return impl_->port; }

std::string debug_server::address() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

namespace {

debug_server* g_environment_server = nullptr;

void stop_environment_server() {
  debug_server* s = g_environment_server;
  g_environment_server = nullptr;
  delete s;
}

void forget_server_in_child() { g_environment_server = nullptr; }

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
    g_environment_server = new debug_server(address);
    pthread_atfork(nullptr, nullptr, forget_server_in_child);
    std::atexit(stop_environment_server);
  } catch (const std::exception& e) {
    heap::report(std::string("cannot start the debug server (LEAKLESS_HTTP): ") + e.what());
  }
}

}  // namespace
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
