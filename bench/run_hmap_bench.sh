#!/usr/bin/env bash
# bench/run_hmap_bench.sh — the one command that benchmarks leakless::hmap against Go 1.19's map,
# std::unordered_map, absl::flat_hash_map and boost::unordered_flat_map.
#
# How it works: it hands every argument to bench/compare.py, which builds the C++ harness with the
# project's CMake (Release, target hmap_bench) and the Go program with `go build`, runs them one
# after the other pinned to one core, and prints the tables, the extra measurements and the goals
# checklist. Usage: bench/run_hmap_bench.sh [--quick] [--markdown FILE] (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/compare.py" "$@"
