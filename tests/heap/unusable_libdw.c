/* tests/heap/unusable_libdw.c — a library named libdw.so.1 that has none of libdw's functions.
 *
 * How it works: heap_program_test puts its directory first on LD_LIBRARY_PATH, so the symbolizer's
 * dlopen("libdw.so.1") finds this one and its dlsym lookups fail: the profiler must then still
 * write its profile (addresses and mappings, no names) and say so once on stderr. */
int leakless_unusable_libdw_marker = 1;
