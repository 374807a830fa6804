// examples/fixed_lost_push.cpp — lost_push.cpp with the push made atomic: no node is ever lost.
//
// How it works: the list head is a std::atomic<node*>, and push() is the classic lock-free stack
// push: read head, link the new node to it, and compare-and-swap head from the value read to the
// new node; when another thread got in first, compare_exchange_weak reloads the current head into
// n->next and the loop tries again. (A mutex around the two lines is the simpler fix and just as
// correct.) The main thread drains the list after the threads are joined. Each round checks that
// every pushed node was found; the program exits with status 1 if one was lost. It runs until
// killed, or for `--seconds N`; it is clean under ThreadSanitizer and AddressSanitizer.
#include <atomic>
#include <cstdio>

#include "example_common.hpp"

namespace {

struct node {
  long value;
  node* next;
  char payload[48];
};

std::atomic<node*> head{nullptr};

void push(long value) {
  node* n = new node{value, head.load(std::memory_order_relaxed), {}};
  while (!head.compare_exchange_weak(n->next, n, std::memory_order_release,
                                     std::memory_order_relaxed)) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "fixed_lost_push: %d threads push %ld nodes each onto one list with a CAS loop, "
      "every round\n",
      examples::kPushThreads, examples::kPushesPerThread);
  std::fflush(stdout);
  long rounds = 0, total_lost = 0;
  examples::run_for(
      seconds, std::chrono::milliseconds(200), 5,
      [&](long) {
        examples::push_from_threads(push);
        long found = 0;
        for (node* n = head.exchange(nullptr, std::memory_order_acquire); n != nullptr;) {
          node* next = n->next;
          delete n;
          n = next;
          ++found;
        }
        total_lost += examples::kPushThreads * examples::kPushesPerThread - found;
        ++rounds;
      },
      [&](double elapsed) {
        std::printf("  %3.0f s: %ld rounds, %ld nodes lost\n", elapsed, rounds, total_lost);
        std::fflush(stdout);
      });
  std::printf("fixed_lost_push: done, %ld rounds of %ld nodes, %ld lost\n", rounds,
              examples::kPushThreads * examples::kPushesPerThread, total_lost);
  return total_lost == 0 ? 0 : 1;
}
