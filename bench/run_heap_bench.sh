#!/usr/bin/env bash
# bench/run_heap_bench.sh — the one command that benchmarks leakless's heap profiler against no
# profiler, jemalloc's profiler, gperftools' HEAPPROFILE and heaptrack.
#
# How it works: it hands every argument to bench/heap_compare.py, which builds libleakless.so and
# bench/alloc_bench with the project's CMake (Release, build/bench-heap), runs the allocation
# microbenchmark and cppcheck under every setup (wall time, CPU time and peak RSS through
# /usr/bin/time, pinned to one core), then the per-allocation, per-sample and accuracy
# measurements, and prints the tables and the goals checklist. Usage:
# bench/run_heap_bench.sh [--quick] [--markdown docs/benchmarks.md] (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/heap_compare.py" "$@"
