#!/usr/bin/env bash
# bench/run_cpu_bench.sh — the one command that benchmarks leakless's CPU profiler: overhead
# against no profiler and gperftools' CPUPROFILE, a known 70/30 split, per-thread totals of 200
# threads, and a dlopen/dlclose loop during profiling.
#
# How it works: it hands every argument to bench/cpu_compare.py, which builds libleakless.so and
# bench/cpu_bench (release preset), runs the workloads under the profilers, reads the profiles with
# `go tool pprof` and prints markdown tables and the goals checklist. Usage:
# bench/run_cpu_bench.sh [--quick] (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/cpu_compare.py" "$@"
