#!/usr/bin/env bash
# tests/preload/cases.sh — the real programs that the preload suite runs, one function per case.
#
# How it works: `bash cases.sh run NAME` runs case NAME in the current directory (an empty
# directory that run_program.sh makes, at the same path for the plain and the preloaded run, so
# that paths in the output are the same). run_program.sh starts it once plainly and once with
# CASE_LD_PRELOAD=libleakless.so, which this script exports as LD_PRELOAD before the case starts:
# every program the case runs and everything those start (compilers, linkers, git's helpers, a
# server) run preloaded, this script's own bash does not. run_program.sh then compares stdout,
# stderr and the exit status of the two runs.
#
# Each case writes only deterministic text: programs that print timings, pids or ports get options
# that make their output deterministic, or the case prints only the deterministic parts of it (the
# redis case says which). For every case this file also declares
#   REQUIRES[name]         the programs that must be installed (checked before running);
#   EXPECTED_STATUS[name]  the exit status of the plain run (default 0);
#   expect_<name> FILE     checks the plain run's stdout against what is known in advance, so the
#                          suite cannot pass by two runs failing in the same way; each miss is
#                          reported on stderr and counted in EXPECT_MISSES.
# Input files live in programs/ beside this script ($CASE_DATA).
#
# The case runs with `set -e`: a failing step ends it with that step's status, reported on stderr
# by the ERR trap. Sourcing this file (as run_program.sh does) only defines the tables.

# shellcheck disable=SC2034  # the tables are read by run_program.sh, which sources this file
declare -A REQUIRES EXPECTED_STATUS

# --- 1. python3: dicts, lists, JSON, sorting 200k items, a class hierarchy -----------------------
REQUIRES[python3]="python3"
case_python3() {
  python3 "$CASE_DATA/workload.py"
}
expect_python3() {
  expect_line "$1" "distinct words: 43260"
  expect_line "$1" "shapes kept: 6000"
  expect_line "$1" "json items: 20000"
  expect_line "$1" "sorted items: 200000"
  expect_match "$1" '^checksum: [0-9a-f]{64}$'
}

# --- 1b. python3 exiting with status 3 after writing to both streams ------------------------------
REQUIRES[python3_exit]="python3"
EXPECTED_STATUS[python3_exit]=3
case_python3_exit() {
  python3 -c '
import sys
rows = [{"n": i, "s": str(i) * 3} for i in range(100000)]
print("rows:", len(rows), sum(len(r["s"]) for r in rows))
print("leaving with status 3", file=sys.stderr)
sys.exit(3)'
}
expect_python3_exit() {
  expect_line "$1" "rows: 100000 1466670"
}

# --- 2. git: init, add, commit with fixed identities and dates, log --stat, gc ---------------------
REQUIRES[git]="git awk seq"
case_git() {
  export GIT_AUTHOR_NAME="Preload Suite" GIT_AUTHOR_EMAIL="suite@example.invalid"
  export GIT_COMMITTER_NAME="Preload Suite" GIT_COMMITTER_EMAIL="suite@example.invalid"
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  git init -q -b main repo
  cd repo
  mkdir -p src docs
  # One awk writes the 120 files (src/fileI.txt holds the numbers I..50*I), not 120 processes.
  awk 'BEGIN { for (i = 1; i <= 120; i++) { f = "src/file" i ".txt"
                 for (j = i; j <= 50 * i; j++) print j > f
                 close(f) } }'
  printf 'readme line %s\n' $(seq 1 40) >docs/README
  git add .
  GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z" \
    git commit -q -m "first: 121 files"
  local i
  for ((i = 1; i <= 120; i += 7)); do
    echo "changed $i" >>"src/file$i.txt"
  done
  git mv src/file2.txt src/renamed.txt
  git rm -q src/file3.txt
  git add .
  GIT_AUTHOR_DATE="2024-01-02T00:00:00Z" GIT_COMMITTER_DATE="2024-01-02T00:00:00Z" \
    git commit -q -m "second: change, rename, delete"
  git tag v1
  git log --stat --format='%H %an %ad %s' --date=iso-strict
  git gc -q
  git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
  git fsck --no-progress --full
  git rev-parse HEAD 'HEAD^{tree}' v1
  git show HEAD:src/renamed.txt | md5sum
}
expect_git() {
  expect_match "$1" '^[0-9a-f]{40} Preload Suite 2024-01-02T00:00:00\+00:00 second: change, rename, delete$'
  expect_line "$1" " src/{file2.txt => renamed.txt} |   0"
  expect_line "$1" " 20 files changed, 18 insertions(+), 148 deletions(-)"
  expect_line "$1" " 121 files changed, 355900 insertions(+)"
  # Fixed contents, identities and dates: the commit id is known.
  expect_line "$1" "04d3f24fbd7391dc59b258ead40416a7bc334574"
  expect_line "$1" "count: 0"
  expect_line "$1" "packs: 1"
}

# --- 3. cmake: configure and build a tiny C project with the Makefile generator -------------------
# cmake 3.25 prints no timings and the build directory is at the same path in both runs, so its
# whole output is compared (the C compiler checks, the generated build files, make's progress).
REQUIRES[cmake]="cmake make cc"
case_cmake() {
  cmake -S "$CASE_DATA/cmake_project" -B build -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release
  cmake --build build
  ./build/tiny
}
expect_cmake() {
  expect_line "$1" "[100%] Built target tiny"
  expect_line "$1" "tiny 1.2.3"
  expect_line "$1" "gcd(1071, 462) = 21"
  expect_line "$1" "longest Collatz chain below 10000: 261 steps from 6171"
}

# --- 4. g++ compiling a few hundred lines of template-heavy C++, then the program it built --------
REQUIRES[gxx]="g++"
case_gxx() {
  g++ -std=c++20 -O1 -Wall -Wextra -Werror -o templates "$CASE_DATA/templates.cpp"
  ./templates
}
expect_gxx() {
  expect_line "$1" "big types: 5"
  expect_line "$1" "fib(89): 1779979416004714189"
  expect_line "$1" "fib(80) by matrix: 23416728348467685"
  expect_line "$1" "primes below 2000: 303"
  expect_line "$1" "apple#2 pear#1"
  expect_line "$1" "((6 * 7) + -(2 + 3)) = 37"
  expect_line "$1" "group sizes: 1429 1429 1429 1429 1428 1428 1428"
  expect_line "$1" "sum 1..1000: 500500, first 1000"
}

# --- 5. sqlite3: 100k rows from a recursive CTE, indexes, aggregates, joins, window functions -----
REQUIRES[sqlite3]="sqlite3"
case_sqlite3() {
  sqlite3 data.db <"$CASE_DATA/workload.sql"
}
expect_sqlite3() {
  expect_line "$1" "rows|100000|500303582|0|10006"
  expect_line "$1" "notes|97|16"
  expect_line "$1" "after|66667|333527263"
  expect_line "$1" "ok"
}

# --- 6. node: objects, Maps, Sets, JSON and string building ---------------------------------------
REQUIRES[node]="node"
case_node() {
  node "$CASE_DATA/workload.js"
}
expect_node() {
  expect_line "$1" "distinct keys: 39047"
  expect_line "$1" "distinct pairs: 139427"
  expect_line "$1" "joined length: 1049999"
  expect_match "$1" '^checksum: [0-9a-f]{64}$'
}

# --- 7. redis-server under load from redis-benchmark ----------------------------------------------
# The server listens on a free loopback port without persistence. redis-benchmark's figures are
# timings, so only the names of the tests it completed are printed (from its --csv output); the
# port, the server's log and its pid never reach stdout. After the benchmark, redis-cli checks the
# key count, sets and reads known keys and a list, then shuts the server down without saving, and
# the server's exit status is printed.
REQUIRES[redis]="redis-server redis-benchmark redis-cli python3 paste"
case_redis() {
  local port server status=0
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --save '' --appendonly no --port "$port" --bind 127.0.0.1 --daemonize no \
    --dir "$PWD" --logfile "$PWD/redis.log" </dev/null &
  server=$!
  # If the case stops early, the server must not outlive it.
  trap 'kill "$server" 2>/dev/null || true' EXIT
  trap 'exit 143' TERM INT
  local tries=0
  until [[ "$(redis-cli -p "$port" ping 2>/dev/null)" == "PONG" ]]; do
    if ! kill -0 "$server" 2>/dev/null; then
      wait "$server" && status=0 || status=$?
      echo "redis-server exited before answering, status $status" >&2
      return 1
    fi
    tries=$((tries + 1))
    if ((tries > 300)); then
      echo "redis-server did not answer PING" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "server answers PING"
  cli() { redis-cli -p "$port" "$@" </dev/null; }
  timeout 40 redis-benchmark --csv -n 20000 -t set,get,lpush,lpop -p "$port" </dev/null >bench.csv
  echo "benchmark tests completed: $(tail -n +2 bench.csv | cut -d, -f1 | tr -d '"' | paste -sd ' ')"
  echo "dbsize after benchmark: $(cli dbsize)"
  cli set known:key "value under preload"
  cli get known:key
  cli rpush known:list one two three four five
  cli lrange known:list 1 3
  cli incrby known:counter 41
  cli incr known:counter
  cli info keyspace | tr -d '\r' | grep '^db0:'
  cli shutdown nosave
  status=0
  wait "$server" || status=$?
  trap - EXIT
  echo "redis-server exit status: $status"
}
expect_redis() {
  expect_line "$1" "server answers PING"
  expect_line "$1" "benchmark tests completed: SET GET LPUSH LPOP"
  expect_line "$1" "dbsize after benchmark: 1"
  expect_line "$1" "value under preload"
  expect_line "$1" "42"
  expect_line "$1" "db0:keys=4,expires=0,avg_ttl=0"
  expect_line "$1" "redis-server exit status: 0"
}

# --- 8. cppcheck over a small source tree with known defects --------------------------------------
REQUIRES[cppcheck]="cppcheck"
EXPECTED_STATUS[cppcheck]=7
case_cppcheck() {
  cp -r "$CASE_DATA/cppcheck_tree" tree
  # cppcheck reports on stderr; both streams go to stdout so that expect_cppcheck sees them.
  cppcheck --quiet -j1 --enable=warning,style --error-exitcode=7 \
    --template='{file}:{line}:{severity}:{id}:{message}' tree 2>&1
}
expect_cppcheck() {
  expect_line "$1" "tree/lib/buffer.c:25:error:resourceLeak:Resource leak: f"
  expect_line "$1" "tree/main.c:13:error:arrayIndexOutOfBounds:Array 'table[10]' accessed at index 10, which is out of bounds."
  expect_line "$1" "tree/main.c:32:error:nullPointer:Null pointer dereference: p"
}

# --- 9. fork+exec chains: bash -c pipelines of coreutils -----------------------------------------
REQUIRES[pipeline]="bash seq sort md5sum awk xargs wc tr"
case_pipeline() {
  bash -c 'seq 1 200000 | sort -r | md5sum'
  bash -c 'seq 1 200000 | sort -n -k1,1 -S 1M | awk "{ s += \$1 } END { printf \"%.0f\\n\", s }"'
  bash -c 'seq 1 5000 | xargs -n 500 echo | wc -l'
  bash -c 'echo "$(seq 1 1000 | tr "\n" " " | wc -c) $(bash -c "seq 1 10 | sort -nr | head -1")"'
}
expect_pipeline() {
  expect_match "$1" '^[0-9a-f]{32}  -$'
  expect_line "$1" "20000100000"
  expect_line "$1" "10"
  expect_line "$1" "3893 10"
}

# --- 10. perl: hashes, regular expressions and sorting --------------------------------------------
REQUIRES[perl]="perl"
case_perl() {
  perl -e '
use strict; use warnings; use Digest::MD5 qw(md5_hex);
my ($x, %h, @words) = (12345);
for my $i (1 .. 150000) {
  $x = ($x * 1103515245 + 12345) % 2147483648;
  my $w = join "", map { chr(97 + ($x >> (3 * $_)) % 26) } 0 .. 5;
  $h{$w}++; push @words, $w;
}
my @sorted = sort { $h{$b} <=> $h{$a} || $a cmp $b } keys %h;
my $vowels = grep { /^[aeiou]/ } @words;
(my $joined = join " ", @sorted[0 .. 999]) =~ s/([aeiou])/uc $1/ge;
printf "words: %d distinct: %d starting with a vowel: %d\n", scalar @words, scalar keys %h, $vowels;
print "md5: ", md5_hex($joined), "\n";'
}
expect_perl() {
  expect_match "$1" '^words: 150000 distinct: [0-9]+ starting with a vowel: [0-9]+$'
  expect_match "$1" '^md5: [0-9a-f]{32}$'
}

# --- 11. tar and gzip: a reproducible archive of a generated tree, extracted and compared --------
REQUIRES[tar_gzip]="tar gzip diff md5sum awk"
case_tar_gzip() {
  mkdir -p tree/a/b tree/c
  # tree/a/b/fI holds the numbers 1..300*I, tree/c/gI the lines "line I" .. "line 400".
  awk 'BEGIN { for (i = 1; i <= 60; i++) {
                 f = "tree/a/b/f" i; for (j = 1; j <= 300 * i; j++) print j > f; close(f)
                 g = "tree/c/g" i; for (j = i; j <= 400; j++) print "line " j > g; close(g) } }'
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf tree.tar tree
  gzip -n -9 -k tree.tar
  md5sum tree.tar tree.tar.gz
  mkdir out
  tar -xzf tree.tar.gz -C out
  diff -r tree out/tree && echo "extracted tree is identical"
  tar -tzf tree.tar.gz | wc -l
}
expect_tar_gzip() {
  expect_line "$1" "extracted tree is identical"
  expect_line "$1" "124"
}

# --- the driver's own check: output that depends on the preload must be caught -----------------
# Not a program under test: CTest's preload.driver_detects_difference runs this case and passes
# only if run_program.sh reports that stdout differs.
REQUIRES[driver_check]="printenv"
case_driver_check() {
  if printenv LD_PRELOAD >/dev/null; then echo "LD_PRELOAD is set"; else echo "LD_PRELOAD is not set"; fi
}
expect_driver_check() {
  expect_line "$1" "LD_PRELOAD is not set"
}

# --- helpers for the expect_ functions: each miss is reported and counted in EXPECT_MISSES -------
EXPECT_MISSES=0
expect_line() {
  if ! grep -qxF -- "$2" "$1"; then
    echo "expected this line in the plain run's stdout: $2" >&2
    EXPECT_MISSES=$((EXPECT_MISSES + 1))
  fi
}
expect_match() {
  if ! grep -qxE -- "$2" "$1"; then
    echo "expected a line matching /$2/ in the plain run's stdout" >&2
    EXPECT_MISSES=$((EXPECT_MISSES + 1))
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  if [[ $# -ne 2 || "$1" != run ]]; then
    echo "usage: $0 run CASE" >&2
    exit 2
  fi
  : "${CASE_DATA:?CASE_DATA must name the programs/ directory}"
  if ! declare -F "case_$2" >/dev/null; then
    echo "cases.sh: no case named $2" >&2
    exit 2
  fi
  if [[ -n "${CASE_LD_PRELOAD:-}" ]]; then
    export LD_PRELOAD=$CASE_LD_PRELOAD
    unset CASE_LD_PRELOAD
  fi
  # -E: the ERR trap also fires inside the case function. It names the first failing step,
  # except when the status is the one the case is expected to end with.
  set -Eeo pipefail
  case_name=$2
  err_reported=
  err_status=0
  trap 'err_status=$?
        if [[ -z $err_reported && $err_status != "${EXPECTED_STATUS[$case_name]:-0}" ]]; then
          err_reported=1
          echo "cases.sh: step failed with status $err_status: $BASH_COMMAND" >&2
        fi' ERR
  "case_$case_name"
fi
