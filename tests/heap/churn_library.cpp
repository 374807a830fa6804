// tests/heap/churn_library.cpp — a tiny shared library that heap_linked_test loads and unloads
// hundreds of times while the profiler samples allocations made from inside it.
#include <cstdlib>

extern "C" __attribute__((visibility("default"))) void* churn_allocate(std::size_t bytes) {
  return std::malloc(bytes);
}
