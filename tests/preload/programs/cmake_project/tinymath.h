/* tests/preload/programs/cmake_project/tinymath.h — two small functions of the tiny library. */
#pragma once
unsigned long tiny_gcd(unsigned long a, unsigned long b);
unsigned long tiny_collatz_steps(unsigned long n);
