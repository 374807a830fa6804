// src/cpu/interpose/threads.cpp — pthread_create as exported by libleakless.so: every new thread
// runs its start routine between cpu::thread_started() and cpu::thread_exiting().
//
// How it works: the wrapper allocates a small record holding the start routine and its argument
// and starts glibc's own pthread_create (looked up in libc itself with dlopen(LIBC_SO,
// RTLD_NOLOAD) + dlsym, as malloc.cpp does, so another interposer between us and libc is not
// skipped by accident: RTLD_NEXT could find a second wrapper of ours in a linked + preloaded
// program) on a trampoline. The trampoline records the thread's stack bounds and, while a CPU
// profile runs, arms the thread's CPU timer; a cleanup handler (run on return, pthread_exit and
// cancellation) deletes that timer, so exiting threads leak no timer ids, and has the CPU time
// its samples did not cover counted (cpu::thread_exiting, given the start routine). If the record
// cannot be allocated the thread is started unwrapped (it is then profiled only if it exists at a
// start).
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>

#include <gnu/lib-names.h>

#include "cpu/profiler.hpp"

#include <leakless/export.hpp>

namespace {

using create_function = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
std::atomic<create_function> g_glibc_create{nullptr};

create_function glibc_create() noexcept {
  create_function f = g_glibc_create.load(std::memory_order_acquire);
  if (f == nullptr) {
    void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);  // kept: libc is never unloaded
    if (libc == nullptr) return nullptr;
    f = reinterpret_cast<create_function>(dlsym(libc, "pthread_create"));
    g_glibc_create.store(f, std::memory_order_release);
  }
  return f;
}

struct start_record {
  void* (*routine)(void*);
  void* argument;
};

void on_exit_cleanup(void* record) {
  // The start routine stands for a thread that used CPU time but was never sampled.
  leakless::cpu::thread_exiting(
      reinterpret_cast<std::uintptr_t>(static_cast<const start_record*>(record)->routine));
}

void* trampoline(void* raw) {
  const start_record record = *static_cast<start_record*>(raw);
  delete static_cast<start_record*>(raw);
  leakless::cpu::thread_started();
  void* result = nullptr;
  pthread_cleanup_push(on_exit_cleanup, const_cast<start_record*>(&record));
  result = record.routine(record.argument);
  pthread_cleanup_pop(1);
  return result;
}

}  // namespace

extern "C" LEAKLESS_API int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                           void* (*routine)(void*), void* argument) {
  const create_function create = glibc_create();
  if (create == nullptr) return EAGAIN;
  auto* record = new (std::nothrow) start_record{routine, argument};
  if (record == nullptr) return create(thread, attr, routine, argument);
  const int r = create(thread, attr, trampoline, record);
  if (r != 0) delete record;
  return r;
}
