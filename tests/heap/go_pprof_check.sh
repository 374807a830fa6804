#!/usr/bin/env bash
# tests/heap/go_pprof_check.sh — Go 1.19's own `go tool pprof` reads the heap profiles that
# libleakless.so writes, with no binary at hand and no symbolization warnings.
#
# How it works: runs heap_scenario (a program that knows nothing of leakless) preloaded, leaking
# 24 MiB in grow_cache(), with a 64 KiB sample rate and a fixed seed, and keeps the profile it
# writes at exit; a second run leaking 8 MiB gives the -base. Then it checks, with the binary
# deleted (so pprof must rely on the symbols inside the profile):
#   -top          grow_cache is the first row, inuse_space within 10% of the 24 MiB it holds;
#   -list         shows grow_cache's source with the line that allocates;
#   -traces       prints stacks that go through grow_cache and main;
#   -sample_index=alloc_space -top   works and names grow_cache;
#   -base         the difference of the two runs is about 16 MiB in grow_cache;
# and that pprof printed nothing on stderr but its usual header lines.
# Usage: go_pprof_check.sh LIBLEAKLESS HEAP_SCENARIO SCRATCH_DIR
set -euo pipefail

lib=$1
scenario=$2
# shellcheck source=../support/go_pprof.sh
source "$(dirname "$0")/../support/go_pprof.sh"
go_pprof_setup "$3"

# A private copy of the program that is deleted after the runs: pprof cannot open it.
cp "$scenario" "$scratch/bin/heap_scenario"
run_leak() {
  local mib=$1 prefix=$2
  (cd "$scratch" && env LD_PRELOAD="$lib" LEAKLESS_HEAP_PROFILE="$prefix" \
    LEAKLESS_SAMPLE_RATE=64k LEAKLESS_SAMPLE_SEED=7 "$scratch/bin/heap_scenario" leak "$mib" \
    >/dev/null) || fail "heap_scenario leak $mib exited with status $?"
}
run_leak 24 "$scratch/big"
run_leak 8 "$scratch/small"
rm -rf "$scratch/bin"
big=$(ls "$scratch"/big.*.heap.pb.gz)
small=$(ls "$scratch"/small.*.heap.pb.gz)


# -top: grow_cache first, with ~24 MiB.
go_pprof top -top -nodecount=5 "$big"
first=$(awk '/flat%/ {getline; print; exit}' "$scratch/top.out")
[[ "$first" == *grow_cache* ]] || fail "-top does not list grow_cache first: $(cat "$scratch/top.out")"
inuse_mb=$(awk '{print $1}' <<<"$first")
python3 - "$inuse_mb" <<'EOF' || fail "-top: grow_cache holds $inuse_mb, expected 24MB +-10%"
import re, sys
m = re.fullmatch(r"([0-9.]+)(B|kB|MB|GB)", sys.argv[1])
value = float(m.group(1)) * {"B": 1, "kB": 2**10, "MB": 2**20, "GB": 2**30}[m.group(2)]
sys.exit(0 if abs(value / (24 * 2**20) - 1) <= 0.10 else 1)
EOF

# -list: the source of grow_cache with its allocating line.
go_pprof list -list 'grow_cache' "$big"
grep -q 'ROUTINE ======================== .*grow_cache' "$scratch/list.out" ||
  fail "-list has no routine for grow_cache: $(cat "$scratch/list.out")"
grep -q 'make_unique<char\[\]>(64 \* 1024)' "$scratch/list.out" ||
  fail "-list does not show the allocating source line: $(cat "$scratch/list.out")"

# -traces: full stacks with main below grow_cache.
go_pprof traces -traces "$big"
grep -q 'grow_cache' "$scratch/traces.out" || fail "-traces does not mention grow_cache"
grep -q -E '^ +main$|[[:space:]]main$' "$scratch/traces.out" || fail "-traces has no main frame"

# -sample_index=alloc_space
go_pprof alloc -sample_index=alloc_space -top -nodecount=5 "$big"
grep -q 'grow_cache' "$scratch/alloc.out" || fail "alloc_space -top does not name grow_cache"

# -base: what grew between the 8 MiB and the 24 MiB run.
go_pprof base -top -nodecount=5 -base "$small" "$big"
growth=$(awk '/flat%/ {getline; print; exit}' "$scratch/base.out")
[[ "$growth" == *grow_cache* ]] || fail "-base does not show grow_cache first: $(cat "$scratch/base.out")"

echo "go_pprof_check: ok (grow_cache $inuse_mb in -top; -list, -traces, alloc_space and -base work)"
