/* tests/stack/test_library.c — a library the module-list test loads and unloads with dlopen. */
int leakless_modules_test_function(int x);
int leakless_modules_test_function(int x) { return x * 3 + 1; }
