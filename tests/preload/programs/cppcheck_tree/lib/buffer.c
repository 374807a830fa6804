/* tests/preload/programs/cppcheck_tree/lib/buffer.c — buffer functions, one with a use after
   free and one with a resource leak, for the cppcheck case; never compiled. */
#include "buffer.h"

#include <stdio.h>
#include <stdlib.h>

struct buffer* buffer_new(size_t size) {
  struct buffer* b = malloc(sizeof *b);
  if (b == NULL) return NULL;
  b->data = malloc(size);
  b->size = size;
  return b;
}

void buffer_free(struct buffer* b) {
  free(b->data);
  free(b);
  b->size = 0; /* use after free */
}

int buffer_save(const struct buffer* b, const char* path) {
  FILE* f = fopen(path, "w");
  if (f == NULL) return -1;
  if (fwrite(b->data, 1, b->size, f) != b->size) return -1; /* f leaks */
  return fclose(f);
}
