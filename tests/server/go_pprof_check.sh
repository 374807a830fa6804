#!/usr/bin/env bash
# tests/server/go_pprof_check.sh — Go 1.19's own `go tool pprof` fetches live profiles from the
# debug server of a preloaded program, as it would from a Go program's net/http/pprof.
#
# How it works: starts server_scenario (a program that knows nothing of leakless: a growing cache
# in grow_request_cache, four threads parked in park_worker_thread, one busy in
# burn_cpu_in_known_function) with LD_PRELOAD and LEAKLESS_HTTP on a free loopback port, waits
# (bounded) until it answers, then runs `go tool pprof -top` on /debug/pprof/heap, on
# /debug/pprof/profile?seconds=3, on /debug/pprof/threads and with `-seconds 5` on heap (a delta
# profile); each must be read without warnings, be of the right type, and name the expected
# function. The program is stopped by its pid at the end, whatever happens.
# Usage: go_pprof_check.sh LIBLEAKLESS SERVER_SCENARIO SCRATCH_DIR
set -euo pipefail

lib=$1
program=$2
# shellcheck source=../support/go_pprof.sh
source "$(dirname "$0")/../support/go_pprof.sh"
go_pprof_setup "$3"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/debug/pprof"
env LD_PRELOAD="$lib" LEAKLESS_HTTP="127.0.0.1:$port" LEAKLESS_SAMPLE_RATE=64k \
  "$program" >"$scratch/program.out" 2>"$scratch/program.err" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

heap_text=""
for _ in $(seq 300); do
  heap_text=$(curl -sf "$base/heap?debug=1" 2>/dev/null || true)
  [[ "$heap_text" == *grow_request_cache* ]] && break
  sleep 0.1
done
[[ "$heap_text" == *grow_request_cache* ]] ||
  fail "the program's debug server does not answer: $(cat "$scratch/program.err")"

# check NAME TYPE FUNCTION PPROF-ARGS...: pprof reads it, sees TYPE, lists FUNCTION.
check() {
  local name=$1 type=$2 function=$3
  shift 3
  go_pprof "$name" -top "$@"
  grep -q "^Type: $type\$" "$scratch/$name.out" "$scratch/$name.err" ||
    fail "$name: pprof does not see a $type profile: $(cat "$scratch/$name.out" "$scratch/$name.err")"
  grep -q "$function" "$scratch/$name.out" ||
    fail "$name: -top does not list $function: $(cat "$scratch/$name.out")"
  echo "go_pprof_check: $name ok ($(grep -m1 "$function" "$scratch/$name.out" | tr -s ' '))"
}

check heap inuse_space grow_request_cache "$base/heap"
check cpu cpu burn_cpu_in_known_function "$base/profile?seconds=3"
check threads threads park_worker_thread "$base/threads"
check heap_delta inuse_space grow_request_cache -seconds 5 "$base/heap"
grep -q '^Duration: 5' "$scratch/heap_delta.err" "$scratch/heap_delta.out" ||
  fail "heap_delta: not a 5 s delta profile: $(cat "$scratch/heap_delta.err")"
echo "go_pprof_check: ok"
