/* tests/preload/programs/cppcheck_tree/lib/buffer.h — a tiny buffer type for the cppcheck case. */
#pragma once
#include <stddef.h>

struct buffer {
  char* data;
  size_t size;
};

struct buffer* buffer_new(size_t size);
void buffer_free(struct buffer* b);
