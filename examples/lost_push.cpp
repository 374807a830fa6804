// examples/lost_push.cpp — unsynchronised pushes onto a shared list lose nodes (a data race leak).
//
// How it works: as in the story's C example, four threads push nodes onto one singly linked list
// with `node->next = head; head = node;` and no lock. Two threads that read the same head both
// link their node to it, and the second store of head drops the first node: it is allocated,
// unreachable and never freed. Every round the threads push 20,000 nodes each, then the main
// thread drains the list, frees what it finds and reports how many nodes were lost. The program
// runs until killed, or for `--seconds N`.
//
// This is undefined behaviour, and the sanitizers say so. Built with -fsanitize=thread (the tsan
// preset; CTest runs this check there), the first round reports:
//
//   WARNING: ThreadSanitizer: data race (pid=...)
//     Read of size 8 at 0x... by thread T2:
//       #0 push examples/lost_push.cpp:44
//     Previous write of size 8 at 0x... by thread T1:
//       #0 push examples/lost_push.cpp:45
//     Location is global '(anonymous namespace)::head' of size 8 at 0x...
//
// and with -fsanitize=address (the asan preset) LeakSanitizer lists the lost nodes at exit:
//
//   ERROR: LeakSanitizer: detected memory leaks
//   Direct leak of 33344 byte(s) in 521 object(s) allocated from:
//       #0 0x... in operator new(unsigned long)
//       #1 0x... in push examples/lost_push.cpp:43
//
// The fix, fixed_lost_push.cpp, makes the push a compare-and-swap loop.
#include <cstdio>

#include "example_common.hpp"

namespace {

struct node {
  long value;
  node* next;
  char payload[48];
};

node* head = nullptr;  // shared by every thread, protected by nothing

void push(long value) {
  node* n = new node{value, nullptr, {}};
  n->next = head;
  head = n;  // race: another thread may have replaced head since we read it
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = examples::seconds_option(argc, argv);
  std::printf(
      "lost_push: %d threads push %ld nodes each onto one list without a lock, every "
      "round\n",
      examples::kPushThreads, examples::kPushesPerThread);
  std::fflush(stdout);
  long total_lost = 0;
  examples::run_for(
      seconds, std::chrono::milliseconds(200), 5,
      [&](long round) {
        examples::push_from_threads(push);
        long found = 0;
        while (head != nullptr) {
          node* n = head;
          head = n->next;
          delete n;
          ++found;
        }
        const long lost = examples::kPushThreads * examples::kPushesPerThread - found;
        total_lost += lost;
        if (round == 0 || lost > 0) {
          std::printf("  round %ld: %ld of %ld nodes reachable, %ld lost (%zu bytes leaked)\n",
                      round, found, examples::kPushThreads * examples::kPushesPerThread, lost,
                      static_cast<std::size_t>(lost) * sizeof(node));
        }
      },
      [&](double elapsed) {
        std::printf("  %3.0f s: %ld nodes lost so far\n", elapsed, total_lost);
        std::fflush(stdout);
      });
  std::printf("lost_push: done, %ld nodes lost (%zu bytes)\n", total_lost,
              static_cast<std::size_t>(total_lost) * sizeof(node));
  return 0;
}
