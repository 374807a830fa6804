#!/usr/bin/env python3
"""bench/compare.py — builds, runs and compares the hash-map benchmark (driven by run_hmap_bench.sh).

How it works: it configures and builds the C++ harness (bench/hmap_bench.cpp) with the project's
CMake in Release as target hmap_bench, and the Go program (bench/go) with `go build` (no network:
GOPROXY=off, caches under the build directory). Then it runs, one after the other and pinned to
one core with `taskset -c 1` when there are at least two, hmap_bench once per C++ map
(hmap, std, absl, boost) and the Go program once. Every program prints TSV lines
"impl<TAB>N<TAB>metric<TAB>value"; this script collects them, prints for each N and operation the
ns/op of every implementation and its ratio to hmap (other/hmap: above 1 means hmap is faster),
then the longest single insert, bytes per entry, memory after erasing 99%, and a checklist of the
goals computed from the figures. With --markdown FILE it writes the same report as Markdown: if
FILE already holds the markers <!-- bench-results:begin --> and <!-- bench-results:end -->, only
the text between them is replaced (that is how docs/benchmarks.md is refreshed).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine_load
from machine_load import children_cpu, cpu_jiffies
from reproduce import reproduce_command

REPO = Path(__file__).resolve().parent.parent
BEGIN_MARK = "<!-- bench-results:begin -->"
END_MARK = "<!-- bench-results:end -->"

IMPLS = [
    ("hmap", "leakless::hmap"),
    ("go", "Go 1.19 map"),
    ("std", "std::unordered_map"),
    ("absl", "absl::flat_hash_map"),
    ("boost", "boost::unordered_flat_map"),
]
NAMES = dict(IMPLS)
CPP_IMPLS = ["hmap", "std", "absl", "boost"]
OPS = [
    ("insert", "insert"),
    ("insert_reserve", "insert after reserve"),
    ("hit", "lookup hit"),
    ("miss", "lookup miss"),
    ("erase", "erase"),
    ("iterate", "iterate (per element)"),
]

FULL = {"sizes": [1_000, 1_000_000, 10_000_000], "grow": 10_000_000,
        "mem": [1_000_000, 10_000_000], "erase99": 1_000_000}
QUICK = {"sizes": [1_000, 100_000], "grow": 100_000, "mem": [100_000], "erase99": 100_000}
GROW_GOAL_N = 10_000_000
ERASE_GOAL_N = 1_000_000


# ---- building -------------------------------------------------------------------------------------

def run_checked(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=sys.stderr)  # keep stdout for tables


def build(build_dir: Path) -> tuple[Path, Path]:
    run_checked(["cmake", "-S", str(REPO), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DLEAKLESS_BUILD_BENCH=ON", "-DLEAKLESS_BUILD_TESTS=OFF",
                 "-DLEAKLESS_BUILD_EXAMPLES=OFF"])
    run_checked(["cmake", "--build", str(build_dir), "--target", "hmap_bench", "-j",
                 str(os.cpu_count() or 1)])
    cpp_bin = build_dir / "bench" / "hmap_bench"

    go_dir = build_dir / "go"
    env = dict(os.environ)
    env.update({"GOCACHE": str(go_dir / "cache"), "GOPATH": str(go_dir / "path"),
                "GOPROXY": "off", "GOFLAGS": "", "GO111MODULE": "on", "CGO_ENABLED": "0"})
    go_bin = go_dir / "go_map_bench"
    run_checked(["go", "build", "-o", str(go_bin), "."], cwd=REPO / "bench" / "go", env=env)
    return cpp_bin, go_bin


# ---- running --------------------------------------------------------------------------------------

class Results:
    def __init__(self) -> None:
        self.values: dict[tuple[str, int, str], float] = {}
        self.errors: list[str] = []
        self.meta: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.load: list[str] = []  # CPU used by other processes while each program ran

    def get(self, impl: str, n: int, metric: str) -> float | None:
        return self.values.get((impl, n, metric))


def wait_quiet(limit_s: float) -> None:
    """Waits (at most limit_s) until other processes use < 0.1 CPU over a 3-second window."""
    machine_load.wait_quiet(limit_s, 0.1, 3)

def run_impl(impl: str, cmd: list[str], res: Results, quiet_s: float) -> None:
    if quiet_s > 0:
        wait_quiet(quiet_s)
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    hz = os.sysconf("SC_CLK_TCK")
    busy0, steal0 = cpu_jiffies()
    cpu0 = children_cpu()
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    busy1, steal1 = cpu_jiffies()
    res.seconds[impl] = wall
    if wall > 0 and busy1 > 0:
        other = max(0.0, ((busy1 - busy0) / hz - (children_cpu() - cpu0)) / wall)
        steal = (steal1 - steal0) / hz / wall
        res.load.append(f"{NAMES[impl]} {other:.2f} (steal {steal:.2f})")
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        if line.startswith("#meta") and len(fields) >= 3:
            res.meta[fields[1]] = fields[2]
            continue
        if len(fields) != 4:
            continue
        name, n, metric, value = fields
        if metric == "error":
            res.errors.append(f"{NAMES.get(name, name)}, N={int(n):,}: {value}")
            continue
        try:
            res.values[(name, int(n), metric)] = float(value)
        except ValueError:
            res.errors.append(f"{NAMES.get(name, name)}: unparsable line {line!r}")
    if proc.returncode < 0:
        res.errors.append(f"{NAMES[impl]}: the benchmark process died of signal {-proc.returncode}"
                          " (results after that point are missing)")
    elif proc.returncode not in (0, 1):  # 1 means "an error line was printed"
        res.errors.append(f"{NAMES[impl]}: the benchmark process exited with code "
                          f"{proc.returncode}")


# ---- formatting -----------------------------------------------------------------------------------

def fmt_ns(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 10:
        return f"{x:.2f}"
    if x < 100:
        return f"{x:.1f}"
    return f"{x:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def fmt_us(ns: float | None) -> str:
    if ns is None:
        return "—"
    us = ns / 1000
    if us < 10:
        return f"{us:.2f}"
    if us < 1000:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "—"
    if b >= 1 << 20:
        return f"{b / (1 << 20):,.2f} MiB"
    if b >= 1 << 10:
        return f"{b / (1 << 10):,.1f} KiB"
    return f"{b:,.0f} B"


def fmt_bpe(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def fmt_n(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


class Table:
    def __init__(self, title: str, header: list[str], note: str = "",
                 numeric: bool = True) -> None:
        self.title, self.header, self.note, self.numeric = title, header, note, numeric
        self.rows: list[list[str]] = []

    def add(self, row: list[str]) -> None:
        self.rows.append(row)

    def text(self) -> str:
        widths = [max(len(r[i]) for r in [self.header] + self.rows) for i in range(len(self.header))]
        def line(r: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        out = [self.title]
        if self.note:
            out.append(self.note)
        out += [line(self.header), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"#### {self.title}", ""]
        if self.note:
            out += [self.note, ""]
        out.append("| " + " | ".join(self.header) + " |")
        cell = " ---: " if self.numeric else " --- "
        out.append("|" + "|".join([" --- "] + [cell] * (len(self.header) - 1)) + "|")
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)


# ---- the report -----------------------------------------------------------------------------------

def timing_tables(res: Results, cfg: dict, impls: list[str]) -> list[Table]:
    others = [i for i in impls if i != "hmap"]
    header = ["operation"] + (["hmap"] if "hmap" in impls else [])
    for o in others:
        header += [o, f"{o}/hmap"] if "hmap" in impls else [o]
    tables = []
    for n in cfg["sizes"]:
        t = Table(f"N = {n:,} random 64-bit keys — ns/op", header)
        for op, label in OPS:
            h = res.get("hmap", n, op)
            row = [label] + ([fmt_ns(h)] if "hmap" in impls else [])
            for o in others:
                v = res.get(o, n, op)
                row += [fmt_ns(v), fmt_ratio(v, h)] if "hmap" in impls else [fmt_ns(v)]
            t.add(row)
        tables.append(t)
    return tables


def grow_table(res: Results, cfg: dict, impls: list[str], grow_runs: int) -> Table:
    n = cfg["grow"]
    t = Table(f"Longest single insert while growing from empty to {n:,} entries",
              ["map", "max (µs)", "worst max (µs)", "p99.99 (µs)", "p99.9 (µs)",
               "mean incl. timer (ns/insert)", "noise floor max (µs)",
               "page-fault floor max (µs)"],
              f"Every insert is timed on its own by two clock reads; {grow_runs} runs from empty, "
              "the median run's figures are shown, and the worst maximum of all runs. The noise "
              "floor is the largest gap between two back-to-back clock reads over as many "
              "iterations in the same process: what the machine (timer, interrupts, the VM) adds "
              "to any single measurement. The page-fault floor is the slowest first touch of "
              "one page of fresh memory, over as many pages as 32 bytes an entry take: a map "
              "that grows must fault its pages in, whatever its design.")
    for i in impls:
        t.add([NAMES[i], fmt_us(res.get(i, n, "grow_max_insert_ns")),
               fmt_us(res.get(i, n, "grow_worst_max_insert_ns")),
               fmt_us(res.get(i, n, "grow_p9999_insert_ns")),
               fmt_us(res.get(i, n, "grow_p999_insert_ns")),
               fmt_ns(res.get(i, n, "grow_total_ns_per_op")),
               fmt_us(res.get(i, n, "grow_floor_max_ns")),
               fmt_us(res.get(i, n, "grow_fault_max_ns"))])
    return t


def bytes_table(res: Results, cfg: dict, impls: list[str]) -> Table:
    header = ["map"]
    for n in cfg["mem"]:
        header += [f"N={fmt_n(n)}: allocator", f"N={fmt_n(n)}: malloc-level"]
    t = Table("Bytes per entry (map grown from empty by inserts)", header,
              "allocator = live bytes requested through a counting allocator (C++) or the "
              "HeapAlloc delta after runtime.GC() (Go); malloc-level = glibc mallinfo2() delta, "
              "which adds malloc's chunk headers and rounding. Keys and values are 16 bytes.")
    for i in impls:
        row = [NAMES[i]]
        for n in cfg["mem"]:
            row += [fmt_bpe(res.get(i, n, "bytes_per_entry")),
                    fmt_bpe(res.get(i, n, "bytes_per_entry_malloc"))]
        t.add(row)
    if "hmap" in impls:
        row = ["leakless::hmap memory_bytes()"]
        for n in cfg["mem"]:
            row += [fmt_bpe(res.get("hmap", n, "bytes_per_entry_self")), "—"]
        t.add(row)
    return t


def erase_table(res: Results, cfg: dict, impls: list[str]) -> Table:
    n = cfg["erase99"]
    s = n // 100
    t = Table(f"Memory after erasing 99% of {n:,} entries ({n - s:,} random erases, "
              f"{s:,} survivors)",
              ["map", "full map", "after erase", f"after +{s:,} write pairs",
               "after shrink_to_fit()", "fresh map of survivors", "after/fresh",
               "pairs/fresh", "shrunk/fresh"],
              f"Write pairs = {s:,} times (insert a new key, erase it). C++: live bytes through "
              "the counting allocator; Go: HeapAlloc delta after runtime.GC(); "
              "hmap memory_bytes() is shown on its own row.")
    rows = [(i, NAMES[i], "") for i in impls]
    if "hmap" in impls:
        rows.append(("hmap", "leakless::hmap memory_bytes()", "_self"))
    for i, label, suffix in rows:
        def g(what: str) -> float | None:
            return res.get(i, n, f"erase99_{what}{suffix}_bytes")
        fresh = g("fresh")
        t.add([label, fmt_bytes(g("full")), fmt_bytes(g("after")), fmt_bytes(g("pairs")),
               fmt_bytes(g("shrink")) if i == "hmap" else "n/a", fmt_bytes(fresh),
               fmt_ratio(g("after"), fresh), fmt_ratio(g("pairs"), fresh),
               fmt_ratio(g("shrink"), fresh) if i == "hmap" else "n/a"])
    return t


def goals(res: Results, cfg: dict, quick: bool) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    sizes = cfg["sizes"]

    def status(ok_list: list[bool | None]) -> str:
        if not ok_list or any(x is None for x in ok_list):
            return "NOT MEASURED"
        return "MET" if all(ok_list) else "NOT MET"

    def ratio(a: str, b: str, n: int, op: str) -> float | None:
        x, y = res.get(a, n, op), res.get(b, n, op)
        return None if x is None or y is None or y == 0 else x / y

    for op, label in (("insert", "insert"), ("hit", "lookup hit")):
        rs = [ratio("go", "hmap", n, op) for n in sizes]
        detail = ", ".join(f"N={fmt_n(n)}: {'—' if r is None else f'{r:.2f}×'}"
                           for n, r in zip(sizes, rs))
        out.append((f"≥ 2× faster than Go 1.19 on {label} (go/hmap ≥ 2 at every N)",
                    status([None if r is None else r >= 2.0 for r in rs]), detail))

    slower, checks = [], []
    for n in sizes:
        for op, label in OPS:
            r = ratio("go", "hmap", n, op)
            checks.append(None if r is None else r >= 1.0)
            if r is not None and r < 1.0:
                slower.append(f"{label} at N={fmt_n(n)} (go/hmap {r:.2f}×)")
    worst = min(((ratio("go", "hmap", n, op), f"{label} at N={fmt_n(n)}")
                 for n in sizes for op, label in OPS
                 if ratio("go", "hmap", n, op) is not None), default=None)
    detail = ("slower on: " + "; ".join(slower)) if slower else (
        f"closest: {worst[1]} (go/hmap {worst[0]:.2f}×)" if worst else "")
    out.append(("Never slower than Go on any operation (go/hmap ≥ 1 everywhere)",
                status(checks), detail))

    rs = [(n, op, ratio("hmap", "absl", n, op)) for n in sizes for op in ("hit", "miss")]
    detail = ", ".join(f"{op} N={fmt_n(n)}: {'—' if r is None else f'{r:.2f}×'}"
                       for n, op, r in rs)
    out.append(("Lookups within 1.3× of absl (hmap/absl ≤ 1.3 for hit and miss at every N)",
                status([None if r is None else r <= 1.3 for _, _, r in rs]), detail))

    gn = cfg["grow"]
    mx = res.get("hmap", gn, "grow_max_insert_ns")
    worst_mx = res.get("hmap", gn, "grow_worst_max_insert_ns")
    floor_mx = res.get("hmap", gn, "grow_floor_max_ns")
    absl_mx = res.get("absl", gn, "grow_max_insert_ns")
    label = f"Longest single insert while growing to {gn:,} ≤ 50 µs (median of the runs' maxima)"
    if gn != GROW_GOAL_N:
        label += f" (quick mode: the goal is stated for {GROW_GOAL_N:,})"
    fault_mx = res.get("hmap", gn, "grow_fault_max_ns")
    detail = (f"hmap max {fmt_us(mx)} µs (worst run {fmt_us(worst_mx)} µs; machine noise floor "
              f"{fmt_us(floor_mx)} µs, slowest single page fault {fmt_us(fault_mx)} µs)")
    if absl_mx is not None:
        detail += f"; absl max {fmt_us(absl_mx)} µs"
    out.append((label, status([None if mx is None else mx <= 50_000]), detail))

    en = cfg["erase99"]
    after = res.get("hmap", en, "erase99_after_self_bytes")
    fresh = res.get("hmap", en, "erase99_fresh_self_bytes")
    pairs = res.get("hmap", en, "erase99_pairs_self_bytes")
    go_after, go_fresh = res.get("go", en, "erase99_after_bytes"), res.get("go", en,
                                                                         "erase99_fresh_bytes")
    label = (f"After erasing 99% of {en:,}, memory_bytes() ≤ 2× a fresh map of the survivors "
             "(measured right after the erases)")
    if en != ERASE_GOAL_N:
        label += f" (quick mode: the goal is stated for {ERASE_GOAL_N:,})"
    r = None if after is None or not fresh else after / fresh
    detail = f"hmap after/fresh {'—' if r is None else f'{r:.2f}×'}"
    if pairs is not None and fresh:
        detail += f"; after {en // 100:,} write pairs {pairs / fresh:.2f}×"
    if go_after is not None and go_fresh:
        detail += f"; Go after/fresh {go_after / go_fresh:.1f}×"
    out.append((label, status([None if r is None else r <= 2.0]), detail))
    return out


def header_version() -> str:
    """Which hmap.hpp was measured: the repository commit and the header's own git blob id."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    header = "include/leakless/hmap.hpp"
    commit = git("rev-parse", "--short", "HEAD") or "no commit"
    blob = git("hash-object", header)[:10] or "?"
    dirty = git("status", "--porcelain", "--", header)
    return (f"hmap.hpp measured: blob {blob} at commit {commit}"
            + (" (the header had uncommitted changes)" if dirty else ""))


def machine_lines(res: Results, pinned: bool) -> list[str]:
    m = res.meta
    lines = [machine_load.machine_line()]
    if "compiler" in m:
        lines.append(f"C++: {m['compiler']}, -O2 -DNDEBUG (optimized: {m.get('optimized', '?')}, "
                     f"NDEBUG: {m.get('ndebug', '?')}), Abseil LTS {m.get('absl', '?')} (Debian "
                     f"shared libraries), Boost {m.get('boost', '?').replace('_', '.')}")
    if "go" in m:
        lines.append(f"Go: {m['go']}, GOMAXPROCS={m.get('gomaxprocs', '?')}, "
                     f"GOGC={m.get('gogc') or 'default (100)'}")
    return lines + [
        m.get("header", "hmap.hpp measured: unknown version"),
        "Pinned to CPU 1 with taskset; programs run one after the other." if pinned else
        "Not pinned to a core.",
    ]


def report(res: Results, cfg: dict, impls: list[str], quick: bool, pinned: bool,
           command: str, grow_runs: int) -> tuple[str, str]:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tables = timing_tables(res, cfg, impls)
    extra = [grow_table(res, cfg, impls, grow_runs), bytes_table(res, cfg, impls),
             erase_table(res, cfg, impls)]
    gl = goals(res, cfg, quick) if "hmap" in impls else []
    head = [f"Run: {when}, {'QUICK mode (not the reference sizes)' if quick else 'full run'}",
            f"Command: {command}"] + machine_lines(res, pinned)
    head.append("Runtime per program: " + ", ".join(
        f"{NAMES[i]} {res.seconds[i]:.0f} s" for i in impls if i in res.seconds))
    if res.load:
        head.append("CPUs used by other processes while each program ran (0 = a quiet machine; "
                    "steal = time the hypervisor gave to other guests): " + ", ".join(res.load))
    method = ("ns/op: median of "
              f"{res.meta.get('reps', '3')} repetitions of ≥ 0.2 s of timed work each "
              "(N ≥ 5M: a single run); ratio = other/hmap, above 1 means hmap is faster.")

    txt = ["=" * 100] + head + [method, ""]
    md = [f"### Results ({when})", ""] + [f"- {h}" for h in head] + [f"- {method}", ""]
    if res.errors:
        txt += ["ERRORS (the figures below may be incomplete or wrong):"]
        txt += [f"  * {e}" for e in res.errors] + [""]
        md += ["**Errors reported by the run:**", ""] + [f"- {e}" for e in res.errors] + [""]
    for t in tables + extra:
        txt += [t.text(), ""]
        md += [t.markdown(), ""]
    if gl:
        gt = Table("Goals (computed from the figures above)", ["goal", "status", "figures"],
                   numeric=False)
        for g, st, d in gl:
            gt.add([g, st, d])
        txt += ["Goals (computed from the figures above):"]
        txt += [f"  [{st}] {g}\n           {d}" for g, st, d in gl] + [""]
        md += [gt.markdown(), ""]
    return "\n".join(txt), "\n".join(md)


def write_markdown(path: Path, body: str) -> None:
    block = f"{BEGIN_MARK}\n{body}\n{END_MARK}"
    if path.exists():
        text = path.read_text()
        if BEGIN_MARK in text and END_MARK in text:
            pre = text.split(BEGIN_MARK, 1)[0]
            post = text.split(END_MARK, 1)[1]
            path.write_text(pre + block + post)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# leakless::hmap benchmark results\n\n" + block + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/run_hmap_bench.sh",
                                 description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true",
                    help="N = 1k and 100k only (growth, bytes and erase-99%% at 100k)")
    ap.add_argument("--markdown", metavar="FILE", type=Path,
                    help="also write the report as Markdown (between the markers if present)")
    ap.add_argument("--build-dir", type=Path, default=REPO / "build" / "bench")
    ap.add_argument("--no-build", action="store_true", help="reuse the binaries already built")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to a core with taskset")
    ap.add_argument("--impls", default=",".join(i for i, _ in IMPLS),
                    help="comma-separated subset of hmap,go,std,absl,boost")
    ap.add_argument("--min-time-ms", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--grow-runs", type=int, default=3,
                    help="runs of the longest-single-insert measurement (median reported)")
    ap.add_argument("--wait-quiet", metavar="SECONDS", type=float, default=60,
                    help="before each program, wait up to SECONDS for other processes to go "
                         "quiet (< 0.1 CPU)")
    ap.add_argument("--raw", metavar="FILE", type=Path, help="also save the raw TSV lines")
    args = ap.parse_args()

    impls = [i for i, _ in IMPLS if i in args.impls.split(",")]
    cfg = QUICK if args.quick else FULL
    args.header_version = header_version()  # taken before building, as what gets compiled
    build_dir = args.build_dir.resolve()
    if args.no_build:
        cpp_bin, go_bin = build_dir / "bench" / "hmap_bench", build_dir / "go" / "go_map_bench"
    else:
        try:
            cpp_bin, go_bin = build(build_dir)
        except subprocess.CalledProcessError as err:
            print(f"build failed: {' '.join(err.cmd)} exited with {err.returncode}",
                  file=sys.stderr)
            return 2

    # Run private copies, so a concurrent clean of the build tree cannot pull them away mid-run.
    private = Path(tempfile.mkdtemp(prefix="hmap_bench."))
    try:
        cpp_bin = Path(shutil.copy2(cpp_bin, private / "hmap_bench"))
        go_bin = Path(shutil.copy2(go_bin, private / "go_map_bench"))
    except OSError as err:
        print(f"cannot find the benchmark binaries: {err}", file=sys.stderr)
        return 2
    try:
        return run_and_report(args, cfg, impls, cpp_bin, go_bin)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def command_line(args: argparse.Namespace) -> str:
    """The command as run, minus options that only name local paths."""
    defaults = {"impls": ",".join(i for i, _ in IMPLS), "min_time_ms": 200, "reps": 3,
                "grow_runs": 3, "wait_quiet": 60}
    return reproduce_command("bench/run_hmap_bench.sh", args, defaults)


def run_and_report(args: argparse.Namespace, cfg: dict, impls: list[str], cpp_bin: Path,
                   go_bin: Path) -> int:
    pin: list[str] = []
    if not args.no_pin and shutil.which("taskset") and 1 in os.sched_getaffinity(0):
        pin = ["taskset", "-c", "1"]
    sizes = ",".join(str(n) for n in cfg["sizes"])
    mem = ",".join(str(n) for n in cfg["mem"])
    res = Results()
    res.meta["reps"] = str(args.reps)
    res.meta["header"] = args.header_version
    for impl in impls:
        if impl == "go":
            cmd = [str(go_bin), f"-sizes={sizes}", f"-grow={cfg['grow']}", f"-mem-sizes={mem}",
                   f"-erase99={cfg['erase99']}", f"-min-time={args.min_time_ms}ms",
                   f"-reps={args.reps}", f"-grow-runs={args.grow_runs}"]
        else:
            cmd = [str(cpp_bin), f"--impl={impl}", f"--sizes={sizes}", f"--grow={cfg['grow']}",
                   f"--mem-sizes={mem}", f"--erase99={cfg['erase99']}",
                   f"--min-time-ms={args.min_time_ms}", f"--reps={args.reps}",
                   f"--grow-runs={args.grow_runs}"]
        run_impl(impl, pin + cmd, res, args.wait_quiet)

    if args.raw:
        args.raw.write_text("".join(f"{i}\t{n}\t{m}\t{v!r}\n"
                                    for (i, n, m), v in sorted(res.values.items())))
    command = command_line(args)
    text, md = report(res, cfg, impls, args.quick, bool(pin), command, args.grow_runs)
    print(text)
    if args.markdown:
        write_markdown(args.markdown, md)
        print(f"Markdown written to {args.markdown}", file=sys.stderr)
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
