#!/usr/bin/env bash
# tests/preload/run_program.sh — runs one real program's case plainly and preloaded with
# libleakless.so and checks that the program cannot tell the difference.
#
# How it works: the case (a function in cases.sh) runs twice, each time in a fresh, empty
# directory WORK_DIR/run (the same path both times, so paths in the output agree), with a clean
# environment (env -i: a fixed PATH of Debian's directories, HOME and TMPDIR inside the run
# directory, LC_ALL=C, TZ=UTC) and stdin from /dev/null:
#   1. plainly;
#   2. with LD_PRELOAD=LIBRARY, LEAKLESS_SAMPLE_RATE=4096 (a sample every 4 KiB on average, so
#      many allocations are sampled, their stacks taken and the sampled blocks freed) and
#      LEAKLESS_HEAP_PROFILE=WORK_DIR/profiles/p. cases.sh exports LD_PRELOAD (passed to it as
#      CASE_LD_PRELOAD) before the case starts, so every program of the case and everything
#      those start run preloaded, while the bash running cases.sh does not: each profile file
#      then comes from a process the case started.
# Then it checks that
#   - the plain run ended with the case's expected status and its stdout holds what the case
#     knows in advance (cases.sh: expect_<case>), so two runs failing alike cannot pass;
#   - stdout, stderr and the exit status of the two runs are identical, byte for byte (nothing
#     is filtered here: cases.sh makes output deterministic);
#   - the preloaded run really was profiled: at least one WORK_DIR/profiles/p.<pid>.<seq>.heap.pb.gz
#     exists and is non-empty (profiles are written when a preloaded process exits). This is the
#     only evidence of LD_PRELOAD taking effect that the suite relies on.
# Each run is stopped after RUN_TIMEOUT seconds (a hang guard, not a speed check). The outputs of
# both runs stay in WORK_DIR/plain and WORK_DIR/preload for inspection.
#
# Usage: run_program.sh CASE LIBRARY WORK_DIR
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 CASE LIBRARY WORK_DIR" >&2
  exit 2
fi
name=$1
library=$2
work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly RUN_TIMEOUT=80
readonly SAMPLE_RATE=4096
readonly SYSTEM_PATH=/usr/sbin:/usr/bin:/sbin:/bin

fail() {
  echo "preload.$name: FAIL: $*" >&2
  exit 1
}

# shellcheck source=SCRIPTDIR/cases.sh
source "$here/cases.sh"
declare -F "case_$name" >/dev/null || fail "cases.sh has no case named '$name'"
[[ -f "$library" ]] || fail "the preload library $library does not exist (build target leakless)"
case "$library" in
  /*) ;;
  *) fail "the preload library must be given by an absolute path, not $library" ;;
esac

missing=()
for program in ${REQUIRES[$name]}; do
  PATH=$SYSTEM_PATH command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if ((${#missing[@]} > 0)); then
  fail "not installed: ${missing[*]} (scripts/setup installs the programs of this suite)"
fi
command -v timeout >/dev/null || fail "timeout (coreutils) is not installed"

rm -rf "$work"
mkdir -p "$work"
run_dir="$work/run"

# run_once MODE: runs the case in a fresh $run_dir, keeps stdout, stderr, status and the run
# directory in $work/MODE.
run_once() {
  local mode=$1
  local out="$work/$mode"
  local -a environment=(PATH="$SYSTEM_PATH" HOME="$run_dir/home" TMPDIR="$run_dir/tmp"
    LC_ALL=C TZ=UTC TERM=dumb CASE_DATA="$here/programs")
  if [[ "$mode" == preload ]]; then
    mkdir -p "$work/profiles"
    environment+=(CASE_LD_PRELOAD="$library" LEAKLESS_SAMPLE_RATE="$SAMPLE_RATE"
      LEAKLESS_HEAP_PROFILE="$work/profiles/p")
  fi
  rm -rf "$run_dir"
  mkdir -p "$run_dir/home" "$run_dir/tmp" "$out"
  local status=0
  (cd "$run_dir" && exec timeout --kill-after=5 "$RUN_TIMEOUT" \
    env -i "${environment[@]}" bash "$here/cases.sh" run "$name") \
    </dev/null >"$out/stdout" 2>"$out/stderr" || status=$?
  echo "$status" >"$out/status"
  mv "$run_dir" "$out/run"
  if ((status == 124 || status == 137)); then
    echo "--- stderr of the $mode run ---" >&2
    tail -n 30 "$out/stderr" >&2
    fail "the $mode run did not finish within $RUN_TIMEOUT s (status $status)"
  fi
}

show_difference() {
  local what=$1
  echo "--- $what: plain (-) versus preloaded (+), first 60 lines of the difference ---" >&2
  diff -u --label plain --label preloaded "$work/plain/$what" "$work/preload/$what" | head -n 60 >&2 || true
}

run_once plain
plain_status=$(cat "$work/plain/status")
expected_status=${EXPECTED_STATUS[$name]:-0}
if [[ "$plain_status" != "$expected_status" ]]; then
  echo "--- stderr of the plain run ---" >&2
  tail -n 40 "$work/plain/stderr" >&2
  fail "the plain run ended with status $plain_status, expected $expected_status"
fi
"expect_$name" "$work/plain/stdout"
if ((EXPECT_MISSES > 0)); then
  echo "--- stdout of the plain run ---" >&2
  head -n 60 "$work/plain/stdout" >&2
  fail "the plain run's output is not what the case expects (see above)"
fi

run_once preload
preload_status=$(cat "$work/preload/status")

problems=()
if ! cmp -s "$work/plain/stdout" "$work/preload/stdout"; then
  show_difference stdout
  problems+=("stdout differs")
fi
if ! cmp -s "$work/plain/stderr" "$work/preload/stderr"; then
  show_difference stderr
  problems+=("stderr differs")
fi
if [[ "$plain_status" != "$preload_status" ]]; then
  echo "--- last lines of the preloaded run's stderr ---" >&2
  tail -n 30 "$work/preload/stderr" >&2
  problems+=("exit status $plain_status plain, $preload_status preloaded")
fi

shopt -s nullglob
profiles=("$work"/profiles/p.*.heap.pb.gz)
non_empty=0
largest=0
for profile in "${profiles[@]}"; do
  size=$(stat -c %s "$profile")
  if ((size > 0)); then non_empty=$((non_empty + 1)); fi
  if ((size > largest)); then largest=$size; fi
done
if ((${#profiles[@]} == 0)); then
  problems+=("the preloaded run wrote no heap profile: LD_PRELOAD did not take effect")
elif ((non_empty == 0)); then
  problems+=("the preloaded run wrote ${#profiles[@]} heap profile(s), all empty")
fi

if ((${#problems[@]} > 0)); then
  fail "$(IFS=';'; echo "${problems[*]}") (outputs kept in $work)"
fi
echo "preload.$name: plain and preloaded runs agree: stdout $(wc -c <"$work/plain/stdout") bytes," \
  "stderr $(wc -c <"$work/plain/stderr") bytes, exit status $plain_status;" \
  "${#profiles[@]} heap profile(s) written, $non_empty non-empty, largest $largest bytes"
