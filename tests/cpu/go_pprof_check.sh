#!/usr/bin/env bash
# tests/cpu/go_pprof_check.sh — Go 1.19's own `go tool pprof` reads the CPU profile that
# libleakless.so writes for LEAKLESS_CPU_PROFILE, with no binary at hand and no warnings.
#
# How it works: runs cpu_scenario (a program that knows nothing of leakless, spending 80% of its
# main thread's work in hot_function) preloaded for 1.5 s of CPU, with the binary then deleted
# so pprof must rely on the symbols inside the profile; `go tool pprof -top` must list
# hot_function first, report a CPU profile ("Type: cpu"), and print nothing else on stderr but its
# usual header lines. Usage: go_pprof_check.sh LIBLEAKLESS CPU_SCENARIO SCRATCH_DIR
set -euo pipefail

lib=$1
scenario=$2
# shellcheck source=../support/go_pprof.sh
source "$(dirname "$0")/../support/go_pprof.sh"
go_pprof_setup "$3"

cp "$scenario" "$scratch/bin/cpu_scenario"
(cd "$scratch" && env LD_PRELOAD="$lib" LEAKLESS_CPU_PROFILE="$scratch/cpu.pb.gz" \
  "$scratch/bin/cpu_scenario" burn 1.5 >/dev/null) || fail "cpu_scenario exited with status $?"
rm -rf "$scratch/bin"

go_pprof top -top -nodecount=5 "$scratch/cpu.pb.gz"
grep -q '^Type: cpu$' "$scratch/top.out" "$scratch/top.err" ||
  fail "pprof does not see a CPU profile: $(cat "$scratch/top.out" "$scratch/top.err")"
first=$(awk '/flat%/ {getline; print; exit}' "$scratch/top.out")
[[ "$first" == *hot_function* ]] || fail "-top does not list hot_function first: $(cat "$scratch/top.out")"
echo "go_pprof_check: ok ($first)"
