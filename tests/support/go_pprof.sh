# tests/support/go_pprof.sh — shared part of the tests that run Go 1.19's `go tool pprof` on our
# profiles; sourced by tests/heap/go_pprof_check.sh and tests/cpu/go_pprof_check.sh.
#
# How it works: go_pprof_setup SCRATCH makes a fresh scratch directory with a private HOME and Go
# cache (no network: GOPROXY=off) and a pprof binary path that holds nothing, so pprof must rely
# on the symbols inside the profile. go_pprof NAME ARGS... runs `go tool pprof ARGS` from the
# scratch directory (pprof guesses a prefix to trim from source paths from the name of the
# directory it runs in; our absolute paths need none), keeps stdout in SCRATCH/NAME.out, and fails
# on anything pprof prints on stderr beyond its usual header lines, and those of a profile fetched
# over HTTP (a symbolization warning, a missing binary, a parse complaint).

fail() {
  echo "go_pprof_check: FAIL: $*" >&2
  exit 1
}

go_pprof_setup() {
  scratch=$1
  command -v go >/dev/null || fail "go is not installed (scripts/setup installs golang-go)"
  rm -rf "$scratch"
  mkdir -p "$scratch/home" "$scratch/bin"
  export HOME="$scratch/home" GOCACHE="$scratch/home/gocache" GOFLAGS=-mod=mod GOPROXY=off \
    PPROF_TMPDIR="$scratch/home" PPROF_BINARY_PATH="$scratch/nowhere"
}

go_pprof() {
  local name=$1
  shift
  (cd "$scratch" && go tool pprof "$@") >"$scratch/$name.out" 2>"$scratch/$name.err" ||
    fail "go tool pprof $* failed: $(cat "$scratch/$name.err")"
  if grep -v -E '^(File: |Type: |Time: |Duration: |Showing |Dropped |Main binary filename not available\.?$|Fetching profile over HTTP from |Saved profile in |Please wait\.\.\. |$)' \
    "$scratch/$name.err" | grep -q .; then
    fail "go tool pprof $* printed warnings: $(cat "$scratch/$name.err")"
  fi
}
