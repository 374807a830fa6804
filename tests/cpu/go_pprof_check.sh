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
scratch=$3

fail() {
  echo "go_pprof_check: FAIL: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "go is not installed (scripts/setup installs golang-go)"
rm -rf "$scratch"
mkdir -p "$scratch/home" "$scratch/bin"
export HOME="$scratch/home" GOCACHE="$scratch/home/gocache" GOFLAGS=-mod=mod GOPROXY=off \
  PPROF_TMPDIR="$scratch/home" PPROF_BINARY_PATH="$scratch/nowhere"

cp "$scenario" "$scratch/bin/cpu_scenario"
(cd "$scratch" && env LD_PRELOAD="$lib" LEAKLESS_CPU_PROFILE="$scratch/cpu.pb.gz" \
  "$scratch/bin/cpu_scenario" burn 1.5 >/dev/null) || fail "cpu_scenario exited with status $?"
rm -rf "$scratch/bin"

(cd "$scratch" && go tool pprof -top -nodecount=5 "$scratch/cpu.pb.gz") >"$scratch/top.out" \
  2>"$scratch/top.err" || fail "go tool pprof -top failed: $(cat "$scratch/top.err")"
if grep -v -E '^(File: |Type: |Time: |Duration: |Showing |Dropped |Main binary filename not available\.?$|$)' \
  "$scratch/top.err" | grep -q .; then
  fail "go tool pprof -top printed warnings: $(cat "$scratch/top.err")"
fi
grep -q '^Type: cpu$' "$scratch/top.out" "$scratch/top.err" ||
  fail "pprof does not see a CPU profile: $(cat "$scratch/top.out" "$scratch/top.err")"
first=$(awk '/flat%/ {getline; print; exit}' "$scratch/top.out")
[[ "$first" == *hot_function* ]] || fail "-top does not list hot_function first: $(cat "$scratch/top.out")"
echo "go_pprof_check: ok ($first)"
