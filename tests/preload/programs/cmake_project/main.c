/* tests/preload/programs/cmake_project/main.c — prints the generated version and values from the
   tiny library; the preload suite checks this exact output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymath.h"
#include "version.h"

int main(void) {
  unsigned long longest = 0, at = 0;
  for (unsigned long n = 1; n < 10000; ++n) {
    unsigned long s = tiny_collatz_steps(n);
    if (s > longest) {
      longest = s;
      at = n;
    }
  }
  char* copy = strdup("tiny " TINY_VERSION);
  printf("%s\n", copy);
  free(copy);
  printf("gcd(1071, 462) = %lu\n", tiny_gcd(1071, 462));
  printf("longest Collatz chain below 10000: %lu steps from %lu\n", longest, at);
  return 0;
}
