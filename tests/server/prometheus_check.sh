#!/usr/bin/env bash
# tests/server/prometheus_check.sh — a real Prometheus server scrapes the debug server's /metrics,
# and promtool accepts the page.
#
# How it works: starts server_scenario_linked (it starts leakless::debug_server on a free port and
# registers a collector of its own, scenario_cache_blocks), runs `promtool check metrics` on its
# /metrics page, then starts Debian's prometheus on loopback with a generated configuration
# (scrape_interval 1s, one target: the program) and asks its HTTP API, polling with a bounded
# wait, for leakless_heap_inuse_bytes and scenario_cache_blocks until each has a value.
# Both processes are stopped by pid at the end, whatever happens.
# Usage: prometheus_check.sh LIBLEAKLESS SERVER_SCENARIO_LINKED SCRATCH_DIR
set -euo pipefail

program=$2
scratch=$3
fail() {
  echo "prometheus_check: FAIL: $*" >&2
  exit 1
}
command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/setup installs it)"
command -v promtool >/dev/null || fail "promtool is not installed (scripts/setup installs it)"
rm -rf "$scratch"
mkdir -p "$scratch/data"

pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done' EXIT

"$program" --listen 127.0.0.1:0 "$scratch/port" >"$scratch/program.out" 2>"$scratch/program.err" &
pids+=($!)
for _ in $(seq 300); do
  [[ -s "$scratch/port" ]] && break
  sleep 0.1
done
[[ -s "$scratch/port" ]] || fail "the program did not start its server: $(cat "$scratch/program.err")"
port=$(cat "$scratch/port")

curl -sf "http://127.0.0.1:$port/metrics" >"$scratch/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$scratch/metrics.txt" >"$scratch/promtool.out" 2>&1 ||
  fail "promtool check metrics: $(cat "$scratch/promtool.out")"
echo "prometheus_check: promtool check metrics accepts $(grep -c -v '^#' "$scratch/metrics.txt") samples"

prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$scratch/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: leakless
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
prometheus --config.file="$scratch/prometheus.yml" --storage.tsdb.path="$scratch/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$scratch/prometheus.log" 2>&1 &
pids+=($!)

# query NAME: waits (at most 90 s) until Prometheus has a value for NAME; prints it.
query() {
  local answer=""
  for _ in $(seq 180); do
    answer=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query?query=$1" 2>/dev/null || true)
    if [[ "$answer" == *'"result":[{'* ]]; then
      echo "$answer"
      return 0
    fi
    sleep 0.5
  done
  fail "Prometheus has no value for $1 (last answer: $answer); log: $(tail -5 "$scratch/prometheus.log")"
}

answer=$(query leakless_heap_inuse_bytes)
echo "prometheus_check: leakless_heap_inuse_bytes: $answer"
answer=$(query scenario_cache_blocks)
[[ "$answer" == *'"cache":"requests"'* ]] || fail "scenario_cache_blocks lost its label: $answer"
echo "prometheus_check: scenario_cache_blocks: $answer"
echo "prometheus_check: ok"
