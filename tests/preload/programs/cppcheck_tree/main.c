/* tests/preload/programs/cppcheck_tree/main.c — input for the preload suite's cppcheck case.
   It holds deliberate defects that cppcheck reports (an array index out of bounds, a memory
   leak, a null pointer dereference); it is never compiled. */
#include <stdlib.h>
#include <string.h>

#include "lib/buffer.h"

static int table[10];

int fill(void) {
  int i;
  for (i = 0; i <= 10; i++) table[i] = i; /* one past the end */
  return table[0];
}

char* duplicate(const char* s) {
  char* copy = malloc(strlen(s) + 1);
  char* scratch = malloc(64); /* never freed */
  if (copy == NULL) return NULL;
  strcpy(copy, s);
  scratch[0] = 0;
  return copy;
}

int main(void) {
  struct buffer* b = buffer_new(16);
  int* p = NULL;
  buffer_free(b);
  fill();
  free(duplicate("x"));
  return *p; /* null pointer dereference */
}
