#!/usr/bin/env bash
# tests/support/run_fuzz.sh — builds a libFuzzer target with clang++ and runs it (the pprof
# decoder's, the debug server's request parsing).
#
# How it works: compiles the given sources twice with clang++ (-fsanitize=fuzzer,address,undefined
# for the fuzzer; plainly with LEAKLESS_FUZZ_SEED_WRITER for the seed writer, a small program the
# target's own file becomes, which writes the seed corpus), writes the seed corpus, then fuzzes
# for a fixed number of runs (bounded in time too, so a slow machine still finishes). Any crash,
# sanitizer report or abort fails the test and leaves the crashing input in the scratch directory.
# Usage: run_fuzz.sh SOURCE_DIR SCRATCH_DIR RUNS MAX_LEN SOURCE... (sources relative to SOURCE_DIR)
set -euo pipefail
source_dir=$1
scratch=$2
runs=$3
max_len=$4
shift 4
sources=()
for s in "$@"; do sources+=("$source_dir/$s"); done

clang=$(command -v clang++ || command -v clang++-14 || true)
[[ -n "$clang" ]] || { echo "run_fuzz: clang++ is not installed (scripts/setup installs clang)" >&2; exit 1; }

rm -rf "$scratch"
mkdir -p "$scratch/corpus"
common=(-std=c++20 -g -O1 -I"$source_dir/src" "${sources[@]}" -lz)
"$clang" -DLEAKLESS_FUZZ_SEED_WRITER "${common[@]}" -o "$scratch/seed_writer"
"$clang" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all "${common[@]}" \
  -o "$scratch/fuzz_target"
"$scratch/seed_writer" "$scratch/corpus"

cd "$scratch"
./fuzz_target -runs="$runs" -max_total_time=120 -max_len="$max_len" -print_final_stats=1 corpus \
  2>fuzz.log || { tail -50 fuzz.log >&2; echo "run_fuzz: FAILED (input saved in $scratch)" >&2; exit 1; }
grep -E '^stat::number_of_executed_units' fuzz.log
echo "run_fuzz: ok"
