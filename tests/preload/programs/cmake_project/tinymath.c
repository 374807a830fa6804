/* tests/preload/programs/cmake_project/tinymath.c — Euclid's gcd and Collatz step counts. */
#include "tinymath.h"

unsigned long tiny_gcd(unsigned long a, unsigned long b) {
  while (b != 0) {
    unsigned long t = a % b;
    a = b;
    b = t;
  }
  return a;
}

unsigned long tiny_collatz_steps(unsigned long n) {
  unsigned long steps = 0;
  while (n != 1) {
    n = (n % 2 == 0) ? n / 2 : 3 * n + 1;
    ++steps;
  }
  return steps;
}
