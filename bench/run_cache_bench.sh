#!/usr/bin/env bash
# bench/run_cache_bench.sh — the one command that benchmarks leakless::cache: hit ratios beside
# Caffeine's on the same traces, throughput against a mutex-guarded LRU, and bytes per entry.
#
# How it works: it hands every argument to bench/cache_compare.py, which builds bench/cache_bench
# (release preset) and the Java harness bench/caffeine/HitRatio.java, generates each trace once,
# replays it through both caches, runs the throughput and memory measurements and prints markdown
# tables and the goals checklist. Usage: bench/run_cache_bench.sh [--quick] (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/cache_compare.py" "$@"
