#!/usr/bin/env bash
# tests/install/check_install.sh — checks that `cmake --install` produces a usable leakless package.
#
# How it works: installs the given build tree into <work>/prefix, checks the installed files
# (bin/leakless, lib/libleakless.so, headers, CMake package files), runs the installed
# `leakless --version`, checks that libleakless.so exports only the leakless:: API and the
# allocation entry points it interposes, then configures, builds and runs the consumer project
# (find_package(leakless) + leakless::leakless) against the prefix and checks its output. Every failure prints what was expected and what was found.
#
# Usage: check_install.sh CMAKE BUILD_DIR CONSUMER_SRC WORK_DIR CXX_COMPILER GENERATOR VERSION
set -euo pipefail

if [[ $# -ne 7 ]]; then
  echo "usage: $0 CMAKE BUILD_DIR CONSUMER_SRC WORK_DIR CXX_COMPILER GENERATOR VERSION" >&2
  exit 2
fi
cmake_bin=$1
build_dir=$2
consumer_src=$3
work=$4
cxx=$5
generator=$6
version=$7

prefix="$work/prefix"
consumer_build="$work/consumer-build"

fail() {
  echo "check_install: FAIL: $*" >&2
  exit 1
}
step() { echo "check_install: $*"; }

rm -rf "$work"
mkdir -p "$work"

step "installing $build_dir into $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install failed (log above)"; }

for f in bin/leakless lib/libleakless.so include/leakless/version.hpp include/leakless/export.hpp \
  include/leakless/hmap.hpp include/leakless/hash.hpp include/leakless/profile.hpp \
  include/leakless/cache.hpp include/leakless/sync_map.hpp include/leakless/bloom.hpp \
  lib/cmake/leakless/leaklessConfig.cmake lib/cmake/leakless/leaklessConfigVersion.cmake \
  lib/cmake/leakless/leaklessTargets.cmake; do
  [[ -e "$prefix/$f" ]] || fail "expected $f in the install prefix, it is missing"
done
[[ -x "$prefix/bin/leakless" ]] || fail "bin/leakless is not executable"

step "running the installed leakless --version (no LD_LIBRARY_PATH; relies on RPATH)"
got=$(env -u LD_LIBRARY_PATH "$prefix/bin/leakless" --version) ||
  fail "installed bin/leakless --version exited with status $?"
[[ "$got" == "leakless $version" ]] ||
  fail "bin/leakless --version printed '$got', expected 'leakless $version'"

set +e
env -u LD_LIBRARY_PATH "$prefix/bin/leakless" --no-such-option >/dev/null 2>"$work/usage.err"
status=$?
set -e
[[ $status -eq 2 ]] || fail "leakless --no-such-option exited $status, expected 2"
grep -q -- "--no-such-option" "$work/usage.err" ||
  fail "leakless --no-such-option did not name the bad option on stderr: $(cat "$work/usage.err")"

if command -v nm >/dev/null 2>&1; then
  step "checking exported symbols of libleakless.so"
  exported=$(nm -D --defined-only -C "$prefix/lib/libleakless.so" | awk '$2 ~ /^[TWDBVR]$/')
  grep -q "leakless::version()" <<<"$exported" ||
    fail "libleakless.so does not export leakless::version(); exported: $exported"
  grep -q "leakless::write_heap_profile" <<<"$exported" ||
    fail "libleakless.so does not export leakless::write_heap_profile; exported: $exported"
  # Besides the leakless:: API, exactly the allocation entry points it interposes (and dlclose and
  # pthread_create, wrapped for the profilers) and the metrics registry's C ABI.
  for entry in malloc free calloc realloc reallocarray memalign aligned_alloc posix_memalign \
    valloc pvalloc malloc_usable_size; do
    grep -q -E "[[:space:]]$entry\$" <<<"$exported" ||
      fail "libleakless.so does not export $entry"
  done
  unexpected=$(grep -v -E "leakless::|operator new|operator delete| (malloc|free|calloc|realloc|reallocarray|memalign|aligned_alloc|posix_memalign|valloc|pvalloc|malloc_usable_size|dlclose|pthread_create|leakless_metrics_register|leakless_metrics_unregister)\$" <<<"$exported" || true)
  [[ -z "$unexpected" ]] ||
    fail "libleakless.so exports symbols beyond its API and allocation entry points:
$unexpected"
fi

step "configuring the consumer project against $prefix"
"$cmake_bin" -S "$consumer_src" -B "$consumer_build" -G "$generator" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DEXPECTED_LEAKLESS_VERSION="$version" >"$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log" >&2; fail "configuring the consumer failed (log above)"; }

step "building the consumer"
"$cmake_bin" --build "$consumer_build" >"$work/consumer-build.log" 2>&1 ||
  { cat "$work/consumer-build.log" >&2; fail "building the consumer failed (log above)"; }

step "running the consumer"
out=$(env -u LD_LIBRARY_PATH "$consumer_build/consumer") ||
  fail "consumer exited with status $?; output: $out"
echo "$out"
[[ "$out" == *"consumer ok: version=$version"* ]] ||
  fail "consumer output lacks 'consumer ok: version=$version'"

step "PASS"
