// src/server/http_module.cpp — libleakless_http.so: the debug server's HTTP side on cpp-httplib
// (see http_module.hpp for why it is a module of its own).
//
// How it works: start() binds (so a port in use is an error right away) and starts the accept
// thread; httplib hands each connection to our worker pool (a fixed number of threads). Every
// thread is created with all signals blocked, so the host program's signal handlers never run on
// it, and first calls the host's thread_started() (which unblocks the threads profile's signal
// and marks the thread as the profiler's own). Sockets are close-on-exec; read and write timeouts
// drop clients that stall, which hold one worker at most. Each request becomes an http_call for
// the host's serve(). stop() stops httplib's accept loop and joins the accept thread, which joins
// the workers once the connections already accepted are served. It does not give up on a worker
// after some time: a worker still running when the process goes on to exit would use the
// profiler's state while exit() destroys it. A client that stalls holds its worker only until
// the read or write timeout.
#include "server/http_module.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/socket.h>

namespace leakless::server {
namespace {

// Starts `body` on a new thread with every signal blocked, after the host's thread_started().
std::thread start_quiet_thread(const http_host* host, const char* name,
                               std::function<void()> body) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread t;
  try {
    t = std::thread([host, name, body = std::move(body)] {
      pthread_setname_np(pthread_self(), name);
      host->thread_started();
      body();
    });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return t;
}

// httplib's task queue: a fixed pool of quiet threads.
class worker_pool final : public httplib::TaskQueue {
 public:
  worker_pool(const http_host* host, int count) {
    for (int i = 0; i < count; ++i) {
      threads_.push_back(start_quiet_thread(host, "leakless-http", [this] { run(); }));
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

struct server {
  httplib::Server http;
  std::thread accept_thread;
  std::atomic<bool> accept_loop_ended{false};
};

void* start(const http_host* host, void* context, const http_settings& settings, int* port,
            std::string* error) {
  auto s = std::make_unique<server>();
  httplib::Server& http = s->http;
  const int workers = settings.workers > 0 ? settings.workers : 1;
  http.new_task_queue = [host, workers] { return new worker_pool(host, workers); };
  http.set_socket_options([](int fd) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  });
  const time_t timeout = settings.io_timeout_seconds > 0 ? settings.io_timeout_seconds : 10;
  http.set_read_timeout(timeout, 0);
  http.set_write_timeout(timeout, 0);
  http.set_keep_alive_timeout(2);
  http.set_keep_alive_max_count(100);
  http.set_payload_max_length(1 << 20);
  const auto handler = [host, context](const httplib::Request& req, httplib::Response& res) {
    http_call call;
    call.method = req.method;
    call.path = req.path;
    call.target = req.target;
    call.authorization = req.get_header_value("Authorization");
    for (const auto& [k, v] : req.params) call.params.emplace(k, v);
    call.body = req.body;
    http_reply reply;
    host->serve(context, call, reply);
    res.status = reply.status;
    for (const auto& [name, value] : reply.headers) res.set_header(name, value);
    if (!reply.content_type.empty() || !reply.body.empty()) {
      res.set_content(reply.body, reply.content_type.c_str());
    }
  };
  http.Get(".*", handler);
  http.Post(".*", handler);

  errno = 0;
  int bound = -1;
  if (settings.port == 0) {
    bound = http.bind_to_any_port(settings.host);
  } else if (http.bind_to_port(settings.host, settings.port)) {
    bound = settings.port;
  }
  if (bound <= 0) {
    *error = std::strerror(errno != 0 ? errno : EADDRNOTAVAIL);
    return nullptr;
  }
  server* raw = s.get();
  try {
    raw->accept_thread = start_quiet_thread(host, "leakless-http", [raw] {
      raw->http.listen_after_bind();
      raw->accept_loop_ended = true;
    });
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
  *port = bound;
  return s.release();
}

void stop(void* handle) {
  auto* s = static_cast<server*>(handle);
  // httplib's stop() closes the listening socket only once the accept loop has marked the server
  // running; a stop that comes before (a server destroyed right after it was made) would be lost
  // and the join below would wait forever on accept(). So wait for the loop to start, or to end.
  while (!s->http.is_running() && !s->accept_loop_ended) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  s->http.stop();
  s->accept_thread.join();
  delete s;
}

const http_module g_module{kHttpModuleVersion, start, stop};

}  // namespace
}  // namespace leakless::server

extern "C" __attribute__((visibility("default"))) const leakless::server::http_module*
leakless_http_module() {
  return &leakless::server::g_module;
}
