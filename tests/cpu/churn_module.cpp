// tests/cpu/churn_module.cpp — a tiny shared object that the CPU profiler tests dlopen and
// dlclose in a loop while profiling (the loader's lock is taken and released all the time).
extern "C" int churn_module_value() { return 42; }
