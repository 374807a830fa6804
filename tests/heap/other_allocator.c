/* tests/heap/other_allocator.c — a program linked with another allocator (jemalloc), as
 * redis-server is, run preloaded by heap_program_test.
 *
 * How it works: with libleakless.so preloaded, malloc and friends are ours (glibc's blocks), while
 * the program's link map also holds jemalloc. Every call here must still agree on one allocator:
 * malloc_usable_size of our blocks must be glibc's answer, not jemalloc's (which crashes on a
 * block it does not own). Prints "ok" and exits 0 when all is consistent. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  for (int i = 0; i < 10000; ++i) {
    size_t n = (size_t)(i % 700) * 16 + 1;
    char* p = malloc(n);
    if (p == NULL || malloc_usable_size(p) < n) return 1;
    memset(p, 1, n);
    p = realloc(p, n * 2);
    if (p == NULL || malloc_usable_size(p) < n * 2) return 2;
    free(p);
  }
  puts("ok");
  return 0;
}
