#!/usr/bin/env python3
"""bench/heap_compare.py — builds, runs and compares the heap profiler benchmark (driven by
run_heap_bench.sh).

How it works: it configures and builds libleakless.so and bench/alloc_bench.cpp with the project's
CMake (Release, -O2, its own build directory build/bench-heap, targets leakless and alloc_bench),
then, in one run:
  1. runs two programs, `alloc_bench churn` (an allocation-heavy microbenchmark) and cppcheck over
     googletest's source tree (a real program nobody here wrote, on a fixed input that a Debian
     package ships), under every setup: no profiler, leakless preloaded at its default 512 KiB
     sample rate and writing a heap profile at exit, jemalloc's profiler, gperftools' HEAPPROFILE,
     heaptrack, and, as references, jemalloc and tcmalloc with no profiling. Each run is wrapped
     in `/usr/bin/time -f '%e %M %U %S'` (wall s, peak RSS KiB, user and system CPU s) and pinned
     to CPU 1 with `taskset -c 1`; the setups take turns inside each repetition, so slow drifts of
     the machine hit them all alike; the median of --reps repetitions is reported. A run that
     takes longer than --timeout seconds is stopped, reported as a lower bound and not repeated.
  2. measures the ns that leakless adds per malloc+free pair that it does not sample
     (`alloc_bench pair` with no preload, with a sample rate so high that nothing is sampled, and
     at the default rate), the cost of one sample (`alloc_bench sample-cost` at
     LEAKLESS_SAMPLE_RATE=1 against no sampling, ~20 frames deep) and the accuracy of the inuse
     estimate for a known 100 MiB leak over 50 sampler seeds (`alloc_bench leak`).
Every run must exit 0 and print the same checksum (churn, pair, leak) or write the same findings
(cppcheck) under every setup, and every profiler must have written its profile: anything else is
an error, reported, and makes the script exit 1. It prints tables and a goals checklist; with
--markdown FILE it replaces the text between <!-- heap-profiler:begin --> and
<!-- heap-profiler:end --> in FILE (appending the section if the markers are missing).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import gzip
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine_load
from machine_load import children_cpu, cpu_jiffies
from reproduce import reproduce_command

REPO = Path(__file__).resolve().parent.parent
BEGIN_MARK = "<!-- heap-profiler:begin -->"
END_MARK = "<!-- heap-profiler:end -->"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
JEMALLOC = LIBDIR / "libjemalloc.so.2"
TCMALLOC = LIBDIR / "libtcmalloc.so.4"
GTEST_TREE = Path("/usr/src/googletest")
UNSAMPLED_RATE = "1024g"  # mean 1 TiB between samples: a run of a few GiB is almost never sampled

SETUPS = [
    ("none", "no profiler (glibc malloc)"),
    ("leakless", "leakless, 512 KiB"),
    ("none-again", "ref: no profiler, again (noise floor)"),
    ("leakless-nodump", "ref: leakless, 512 KiB, no profile written"),
    ("jemalloc", "jemalloc prof, lg_prof_sample:19"),
    ("gperftools", "gperftools HEAPPROFILE"),
    ("heaptrack", "heaptrack"),
    ("jemalloc-noprof", "ref: jemalloc, no profiling"),
    ("tcmalloc-noprof", "ref: tcmalloc, no profiling"),
]
NAMES = dict(SETUPS)
WORKLOADS = [("churn", "alloc_bench churn"), ("cppcheck", "cppcheck over googletest")]

FULL = {"churn_iters": 1_000_000, "pair_iters": 50_000_000, "sample_iters": 2_000_000,
        "seeds": 50}
QUICK = {"churn_iters": 300_000, "pair_iters": 10_000_000, "sample_iters": 400_000, "seeds": 10}

GOAL_REAL, GOAL_MICRO, GOAL_NS, GOAL_ACC, GOAL_MEM = 2.0, 5.0, 2.0, 3.0, 1.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- building -------------------------------------------------------------------------------------

def build(build_dir: Path) -> None:
    cfg = ["cmake", "-S", str(REPO), "-B", str(build_dir), "-G", "Ninja",
           "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG",
           "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG", "-DLEAKLESS_BUILD_BENCH=ON",
           "-DLEAKLESS_BUILD_TESTS=OFF", "-DLEAKLESS_BUILD_EXAMPLES=OFF"]
    if not shutil.which("ninja"):
        cfg = [c for c in cfg if c not in ("-G", "Ninja")]
    for cmd in (cfg, ["cmake", "--build", str(build_dir), "-j2", "--target", "leakless",
                      "alloc_bench"]):
        log("+ " + " ".join(cmd))
        subprocess.run(cmd, check=True, stdout=sys.stderr)


# ---- one run --------------------------------------------------------------------------------------

class Run:
    """What one process run gave: time(1)'s figures and the program's "key value" lines."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.rss_kib = 0
        self.timed_out = False
        self.kv: dict[str, str] = {}
        self.other_cpu = 0.0  # CPUs used by other processes meanwhile
        self.steal = 0.0      # CPUs the hypervisor gave to other guests meanwhile
        self.dump_bytes = 0   # profile files the profiler wrote

    def f(self, key: str) -> float | None:
        try:
            return float(self.kv[key])
        except (KeyError, ValueError):
            return None


def profile_comments(path: str) -> list[str]:
    """The comments of a gzipped pprof file: Profile.comment (field 13) holds indices into
    Profile.string_table (field 6). Only the protobuf wire format's framing is decoded."""
    data = gzip.decompress(Path(path).read_bytes())
    pos, strings, comments = 0, [], []

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            v = varint()
            if field == 13:
                comments.append(v)
        elif wire == 2:
            n = varint()
            chunk = data[pos:pos + n]
            pos += n
            if field == 6:
                strings.append(chunk.decode("utf-8", "replace"))
            elif field == 13:  # packed indices
                sub, data, pos0 = data, chunk, pos
                pos = 0
                while pos < len(chunk):
                    comments.append(varint())
                data, pos = sub, pos0
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"{path}: wire type {wire}")
    return [strings[i] for i in comments if i < len(strings)]


def wait_quiet(limit_s: float) -> None:
    """Waits (at most limit_s) until other processes use < 0.2 CPU over a 2-second window."""
    machine_load.wait_quiet(limit_s, 0.2, 2, log)

class Runner:
    def __init__(self, args: argparse.Namespace, lib: Path, work: Path) -> None:
        self.pin = []
        if not args.no_pin and shutil.which("taskset") and 1 in os.sched_getaffinity(0):
            self.pin = ["taskset", "-c", "1"]
        self.lib, self.work, self.timeout = lib, work, args.timeout
        self.errors: list[str] = []
        self.seq = 0
        self.env = {k: v for k, v in os.environ.items()
                    if not (k.startswith("LEAKLESS_") or k in ("LD_PRELOAD", "MALLOC_CONF",
                                                              "HEAPPROFILE"))}

    def wrap(self, setup: str, tag: str, extra_env: dict[str, str]) -> tuple[list[str], str]:
        """The env assignments and wrapper for a setup, and the glob of the files it writes."""
        p = str(self.work / tag)
        env: dict[str, str] = {}
        prefix: list[str] = []
        files = ""
        if setup == "leakless":
            env = {"LD_PRELOAD": str(self.lib), "LEAKLESS_HEAP_PROFILE": p}
            files = p + ".*.heap.pb.gz"
        elif setup == "leakless-nodump":
            env = {"LD_PRELOAD": str(self.lib)}
        elif setup == "jemalloc":
            env = {"LD_PRELOAD": str(JEMALLOC),
                   "MALLOC_CONF": f"prof:true,lg_prof_sample:19,prof_final:true,prof_prefix:{p}"}
            files = p + ".*.heap"
        elif setup == "gperftools":
            env = {"LD_PRELOAD": str(TCMALLOC), "HEAPPROFILE": p}
            files = p + ".*.heap"
        elif setup == "heaptrack":
            prefix = ["heaptrack", "-o", p]
            files = p + "*"
        elif setup == "jemalloc-noprof":
            env = {"LD_PRELOAD": str(JEMALLOC)}
        elif setup == "tcmalloc-noprof":
            env = {"LD_PRELOAD": str(TCMALLOC)}
        elif setup.startswith("leakless-rate="):  # the micro measurements
            env = {"LD_PRELOAD": str(self.lib), "LEAKLESS_SAMPLE_RATE": setup.split("=", 1)[1]}
        elif setup not in ("none", "none-again"):
            raise ValueError(setup)
        env.update(extra_env)
        return ["env"] + [f"{k}={v}" for k, v in env.items()] + prefix, files

    def run(self, setup: str, label: str, cmd: list[str],
            extra_env: dict[str, str] | None = None) -> Run:
        self.seq += 1
        tag = f"{setup}.{self.seq}"
        wrapper, files = self.wrap(setup, tag, extra_env or {})
        timefile = self.work / f"time.{self.seq}"
        full = (["/usr/bin/time", "-f", "%e %M %U %S", "-o", str(timefile)] + self.pin
                + wrapper + cmd)
        log("+ " + " ".join(full))
        r = Run()
        hz = os.sysconf("SC_CLK_TCK")
        (b0, s0), c0, t0 = cpu_jiffies(), children_cpu(), time.monotonic()
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, cwd=self.work, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=self.timeout if self.timeout > 0 else None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this call started
            out, err = proc.communicate()
            r.timed_out, r.wall = True, self.timeout
            log(f"  stopped after {self.timeout:g} s")
        wall = time.monotonic() - t0
        if wall > 0:
            b1, s1 = cpu_jiffies()
            r.other_cpu = max(0.0, ((b1 - b0) / hz - (children_cpu() - c0)) / wall)
            r.steal = (s1 - s0) / hz / wall
        for line in out.splitlines():
            k, _, v = line.partition(" ")
            if k and v and k not in r.kv:
                r.kv[k] = v.strip()
        if not r.timed_out:
            fields = timefile.read_text().split() if timefile.exists() else []
            nums = fields[-4:]
            if proc.returncode != 0 or len(nums) != 4:
                tail = err.strip().splitlines()[-3:]
                self.errors.append(f"{label} under {NAMES.get(setup, setup)}: exit status "
                                   f"{proc.returncode}; stderr ends: {' | '.join(tail)}")
            else:
                r.wall, r.rss_kib = float(nums[0]), int(nums[1])
                r.cpu = float(nums[2]) + float(nums[3])
            if files:
                written = glob.glob(files)
                r.dump_bytes = sum(os.path.getsize(f) for f in written)
                if setup == "leakless" and written:
                    # The profile written at exit carries the profiler's own figures, among them
                    # the most memory it held at any time ("leakless PeakProfilerBytes = N",
                    # which counts threads that have exited since), compared with peak RSS.
                    # How many stacks the CFI unwinder left to libunwind comes along.
                    for c in profile_comments(max(written, key=os.path.getmtime)):
                        m = re.fullmatch(r"leakless (PeakProfilerBytes|UnwinderFallbacks) = (\d+)", c)
                        if m:
                            key = {"PeakProfilerBytes": "peak_profiler_bytes",
                                   "UnwinderFallbacks": "unwinder_fallbacks"}[m.group(1)]
                            r.kv[key] = m.group(2)
                if not written:
                    self.errors.append(f"{label} under {NAMES.get(setup, setup)}: the profiler "
                                       "wrote no profile")
        for f in glob.glob(str(self.work / tag) + "*"):
            os.remove(f)  # heaptrack's files reach tens of MiB
        timefile.unlink(missing_ok=True)
        return r


# ---- the measurements -----------------------------------------------------------------------------

def cppcheck_cmd(outfile: Path) -> list[str]:
    return ["cppcheck", "-q", "--enable=all", "--std=c++17", f"--output-file={outfile}",
            str(GTEST_TREE)]


def measure_programs(rn: Runner, bench: Path, cfg: dict, setups: list[str], reps: int,
                     quiet_s: float, max_repeat_s: float) -> dict:
    """{(workload, setup): [Run]}; checks that every run's result is the same."""
    results: dict[tuple[str, str], list[Run]] = {}
    expected: dict[str, str] = {}
    stopped: set[tuple[str, str]] = set()
    for rep in range(reps):
        for wl, label in WORKLOADS:
            wait_quiet(quiet_s)
            # An unmeasured run first: the first run after an idle pause was measurably slower
            # (up to ~10%) than the same run a few seconds later, which would bias every ratio.
            warm = (["env", str(bench), "churn", "--iters", str(cfg["churn_iters"])]
                    if wl == "churn" else ["env"] + cppcheck_cmd(rn.work / "warm.txt"))
            subprocess.run(rn.pin + warm, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=rn.env, cwd=rn.work, check=False)
            for setup in setups:
                if (wl, setup) in stopped:
                    continue
                if wl == "churn":
                    r = rn.run(setup, label, [str(bench), "churn", "--iters",
                                              str(cfg["churn_iters"])])
                    result = r.kv.get("checksum", "")
                else:
                    out = rn.work / f"cppcheck.{setup}.{rep}.txt"
                    r = rn.run(setup, label, cppcheck_cmd(out))
                    text = out.read_text() if out.exists() else ""
                    result = hashlib.sha256(text.encode()).hexdigest()[:16] if text else ""
                    r.kv["findings"] = str(len(text.splitlines()))
                    out.unlink(missing_ok=True)
                results.setdefault((wl, setup), []).append(r)
                if r.timed_out or r.wall > max_repeat_s:
                    stopped.add((wl, setup))  # too slow to repeat within the run's budget
                if r.timed_out:
                    continue
                if not result:
                    rn.errors.append(f"{label} under {NAMES[setup]}: no result")
                elif expected.setdefault(wl, result) != result:
                    rn.errors.append(f"{label} under {NAMES[setup]}: result {result} differs "
                                     f"from {expected[wl]}")
    return results


def measure_pair(rn: Runner, bench: Path, cfg: dict, reps: int) -> dict:
    setups = ["none", f"leakless-rate={UNSAMPLED_RATE}", "leakless-rate=512k"]
    out: dict[str, list[Run]] = {s: [] for s in setups}
    for _ in range(reps):
        for s in setups:
            r = rn.run(s, "alloc_bench pair", [str(bench), "pair", "--size", "64", "--iters",
                                               str(cfg["pair_iters"])])
            if r.kv.get("checksum") != f"{cfg['pair_iters']:016x}":
                rn.errors.append(f"alloc_bench pair under {s}: wrong checksum")
            out[s].append(r)
    return out


def measure_sample_cost(rn: Runner, bench: Path, cfg: dict, reps: int) -> dict:
    setups = ["leakless-rate=1", f"leakless-rate={UNSAMPLED_RATE}"]
    out: dict[str, list[Run]] = {s: [] for s in setups}
    for _ in range(reps):
        for s in setups:
            r = rn.run(s, "alloc_bench sample-cost",
                       [str(bench), "sample-cost", "--size", "64", "--depth", "20", "--iters",
                        str(cfg["sample_iters"])])
            samples = r.f("stats.samples")
            if s == "leakless-rate=1" and (samples is None or samples < cfg["sample_iters"]):
                rn.errors.append(f"alloc_bench sample-cost at rate 1: only {samples} samples")
            out[s].append(r)
    return out


def measure_leak(rn: Runner, bench: Path, cfg: dict) -> tuple[list[Run], Run]:
    plain = rn.run("none", "alloc_bench leak", [str(bench), "leak"])
    runs = []
    for seed in range(1, cfg["seeds"] + 1):
        r = rn.run("leakless-rate=512k", "alloc_bench leak", [str(bench), "leak"],
                   {"LEAKLESS_SAMPLE_SEED": str(seed)})
        if r.kv.get("checksum") != plain.kv.get("checksum") or r.f("estimate_bytes") is None:
            rn.errors.append(f"alloc_bench leak, seed {seed}: wrong checksum or no estimate")
        runs.append(r)
    return runs, plain


# ---- formatting -----------------------------------------------------------------------------------

def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{(a / b - 1) * 100:+.1f}%"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def fmt_kib(k: float | None) -> str:
    if k is None:
        return "—"
    return f"{k / 1024:,.1f} MiB" if k >= 1024 else f"{k:,.0f} KiB"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "—"
    if b >= 1 << 20:
        return f"{b / (1 << 20):,.1f} MiB"
    if b >= 1 << 10:
        return f"{b / (1 << 10):,.1f} KiB"
    return f"{b:,.0f} B"


class Table:
    def __init__(self, title: str, header: list[str], note: str = "") -> None:
        self.title, self.header, self.note = title, header, note
        self.rows: list[list[str]] = []

    def add(self, row: list[str]) -> None:
        self.rows.append(row)

    def text(self) -> str:
        widths = [max(len(r[i]) for r in [self.header] + self.rows)
                  for i in range(len(self.header))]

        def line(r: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        out = [self.title] + ([self.note] if self.note else [])
        out += [line(self.header), "  ".join("-" * w for w in widths)]
        return "\n".join(out + [line(r) for r in self.rows])

    def markdown(self) -> str:
        out = [f"#### {self.title}", ""] + ([self.note, ""] if self.note else [])
        out.append("| " + " | ".join(self.header) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(self.header) - 1)) + "|")
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in self.rows])


def paired(res: dict, wl: str, setup: str, attr: str) -> float | None:
    """Median over the rounds of setup/none, each setup run against the no-profiler run of its own
    round: neighbours in time, so slow drifts of a shared machine cancel out."""
    base = res.get((wl, "none"), [])
    ratios = [getattr(r, attr) / getattr(b, attr)
              for r, b in zip(res.get((wl, setup), []), base)
              if not r.timed_out and not b.timed_out and getattr(b, attr) > 0]
    return statistics.median(ratios) if ratios else None


def paired_range(res: dict, wl: str, setup: str, attr: str) -> str:
    base = res.get((wl, "none"), [])
    ratios = sorted(getattr(r, attr) / getattr(b, attr)
                    for r, b in zip(res.get((wl, setup), []), base)
                    if not r.timed_out and not b.timed_out and getattr(b, attr) > 0)
    if not ratios:
        return "—"
    return f"{(ratios[0] - 1) * 100:+.1f}%..{(ratios[-1] - 1) * 100:+.1f}%"


def vs(x: float | None, times: bool = False) -> str:
    if x is None:
        return "—"
    return f"{(x - 1) * 100:+.1f}%" + (f" ({x:.2f}×)" if times else "")


def program_tables(res: dict, setups: list[str], timeout: float) -> list[Table]:
    tables = []
    for wl, label in WORKLOADS:
        bw = med([r.wall for r in res.get((wl, "none"), []) if not r.timed_out])
        t = Table(label, ["setup", "wall (s)", "wall vs none", "CPU (s)", "CPU vs none",
                          "peak RSS", "RSS vs none", "profile written", "runs",
                          "other CPUs busy / steal"])
        for s in setups:
            runs = res.get((wl, s), [])
            if not runs:
                continue
            load = (f"{med([r.other_cpu for r in runs]):.2f} / "
                    f"{med([r.steal for r in runs]):.2f}")
            if any(r.timed_out for r in runs):
                t.add([NAMES[s], f"> {timeout:g} (stopped)",
                       "—" if bw is None else f"> {timeout / bw:.1f}×", "—", "—", "—", "—", "—",
                       str(len(runs)), "—"])
                continue
            w = med([r.wall for r in runs])
            c = med([r.cpu for r in runs])
            k = med([r.rss_kib for r in runs])
            d = med([r.dump_bytes for r in runs])
            base = s == "none"
            t.add([NAMES[s], f"{w:.2f}", "—" if base else vs(paired(res, wl, s, "wall"), True),
                   f"{c:.2f}", "—" if base else vs(paired(res, wl, s, "cpu")), fmt_kib(k),
                   "—" if base else vs(paired(res, wl, s, "rss_kib")),
                   fmt_bytes(d) if s in ("leakless", "jemalloc", "gperftools", "heaptrack")
                   else "—", str(len(runs)), load])
        tables.append(t)
    return tables


def micro_figures(pair: dict, sc: dict) -> dict:
    f: dict[str, float | None] = {}
    f["none"] = med([r.f("ns_per_pair") for r in pair["none"]])
    f["unsampled"] = med([r.f("ns_per_pair") for r in pair[f"leakless-rate={UNSAMPLED_RATE}"]])
    f["default"] = med([r.f("ns_per_pair") for r in pair["leakless-rate=512k"]])
    f["unsampled_samples"] = max((r.f("stats.samples") or 0)
                                 for r in pair[f"leakless-rate={UNSAMPLED_RATE}"])
    f["default_samples"] = med([r.f("stats.samples") for r in pair["leakless-rate=512k"]])
    f["rate1"] = med([r.f("ns_per_pair") for r in sc["leakless-rate=1"]])
    f["rate1_unsampled"] = med([r.f("ns_per_pair") for r in sc[f"leakless-rate={UNSAMPLED_RATE}"]])
    f["rate1_profiler_bytes"] = med([r.f("stats.profiler_bytes") for r in sc["leakless-rate=1"]])

    def diff(a: list[Run], b: list[Run]) -> float | None:
        # Median over the rounds of a run minus the run of the other setup in the same round.
        return med([x.f("ns_per_pair") - y.f("ns_per_pair") for x, y in zip(a, b)
                    if x.f("ns_per_pair") is not None and y.f("ns_per_pair") is not None])
    f["added_unsampled"] = diff(pair[f"leakless-rate={UNSAMPLED_RATE}"], pair["none"])
    f["added_default"] = diff(pair["leakless-rate=512k"], pair["none"])
    f["per_sample"] = diff(sc["leakless-rate=1"], sc[f"leakless-rate={UNSAMPLED_RATE}"])
    return f


def micro_table(f: dict, cfg: dict) -> Table:
    def sub(x: float | None) -> str:
        return "—" if x is None else f"{x:+.2f}"
    t = Table("malloc(64)+free pairs and the cost of a sample",
              ["measurement", "ns per malloc+free", "added by leakless (ns)", "samples taken"],
              "Thread CPU time of the loop divided by the iterations; median of the repetitions. "
              "*Added* is the median over the repetitions of the difference between the two "
              "runs of the same repetition.")
    t.add([f"no profiler ({cfg['pair_iters']:,} pairs)", f"{f['none']:.2f}", "—", "—"])
    t.add([f"leakless, nothing sampled (rate {UNSAMPLED_RATE})", f"{f['unsampled']:.2f}",
           sub(f["added_unsampled"]), f"{f['unsampled_samples']:,.0f}"])
    t.add(["leakless, default rate 512 KiB (one 64 B pair in ~8,192 sampled)",
           f"{f['default']:.2f}", sub(f["added_default"]),
           f"{f['default_samples']:,.0f}"])
    t.add([f"20 frames deep, 4 call stacks, nothing sampled ({cfg['sample_iters']:,} pairs)",
           f"{f['rate1_unsampled']:.2f}", "—", "0"])
    t.add(["same, every allocation sampled (LEAKLESS_SAMPLE_RATE=1)", f"{f['rate1']:.2f}",
           sub(f["per_sample"]) + " = cost per sample", f"{cfg['sample_iters']:,}"])
    return t


def leak_figures(runs: list[Run]) -> dict:
    truth = runs[0].f("truth_bytes") or 1
    errs = sorted(((r.f("estimate_bytes") or 0) / truth - 1) * 100 for r in runs)
    n = len(errs)
    prof = [r.f("stats.profiler_bytes") for r in runs]
    rss = [(r.f("rss_kib") or 0) * 1024 for r in runs]
    return {"truth": truth, "n": n, "median": statistics.median(errs),
            "p10": errs[max(0, round(0.1 * (n - 1)))], "p90": errs[min(n - 1, round(0.9 * (n - 1)))],
            "maxabs": max(abs(e) for e in errs), "min": errs[0], "max": errs[-1],
            "samples": med([r.f("stats.live_samples") for r in runs]),
            "prof": med(prof), "rss": med(rss),
            "prof_pct": med([(p or 0) / r * 100 for p, r in zip(prof, rss) if r])}


def leak_table(lf: dict, plain: Run) -> Table:
    t = Table(f"Inuse estimate of a {lf['truth'] / (1 << 20):.0f} MiB leak over {lf['n']} "
              "sampler seeds (LEAKLESS_SAMPLE_SEED=1..N, rate 512 KiB)",
              ["figure", "value"],
              "error = estimate / truth − 1; estimate = heap_stats().inuse_bytes after the leak "
              "minus before it; truth = the exact bytes requested.")
    t.add(["median error", f"{lf['median']:+.2f}%"])
    t.add(["p10 / p90 error", f"{lf['p10']:+.2f}% / {lf['p90']:+.2f}%"])
    t.add(["min / max error", f"{lf['min']:+.2f}% / {lf['max']:+.2f}%"])
    t.add(["max abs error", f"{lf['maxabs']:.2f}%"])
    t.add(["live samples (median)", f"{lf['samples']:.0f}"])
    t.add(["objects in the leak", plain.kv.get("objects", "?")])
    t.add(["profiler_bytes (median)", fmt_bytes(lf["prof"])])
    t.add(["program RSS with the profiler (median)", fmt_bytes(lf["rss"])])
    t.add(["program RSS with no profiler", fmt_bytes((plain.f("rss_kib") or 0) * 1024)])
    t.add(["profiler_bytes / RSS", f"{lf['prof_pct']:.2f}%"])
    return t


def goals(res: dict, mf: dict, lf: dict) -> list[tuple[str, str, str]]:
    def overhead(wl: str) -> tuple[float | None, float | None, bool]:
        w, c = paired(res, wl, "leakless", "wall"), paired(res, wl, "leakless", "cpu")
        if w is None or c is None:
            return None, None, False
        return (w - 1) * 100, (c - 1) * 100, True

    def spread(wl: str) -> str:
        out = f"; rounds {paired_range(res, wl, 'leakless', 'wall')}"
        n = paired(res, wl, "none-again", "wall")
        if n is not None:
            out += (f"; noise floor (no profiler, run twice): {(n - 1) * 100:+.1f}%, rounds "
                    f"{paired_range(res, wl, 'none-again', 'wall')}")
        return out

    def status(ok: bool | None) -> str:
        return "NOT MEASURED" if ok is None else ("MET" if ok else "NOT MET")

    out = []
    for wl, label, goal in (("cppcheck", "the real program (cppcheck)", GOAL_REAL),
                            ("churn", "the microbenchmark (churn)", GOAL_MICRO)):
        w, c, ok = overhead(wl)
        out.append((f"≤ {goal:g}% wall overhead on {label} at 512 KiB",
                    status(None if not ok else w <= goal),
                    "—" if not ok else f"wall {w:+.1f}%, CPU {c:+.1f}% (median of the rounds' "
                    "ratios)" + spread(wl)))
    added = mf["added_unsampled"]
    out.append((f"≤ {GOAL_NS:g} ns added per unsampled malloc+free",
                status(None if added is None else added <= GOAL_NS),
                "—" if added is None else
                f"{added:+.2f} ns ({mf['none']:.2f} → {mf['unsampled']:.2f}); at the default "
                f"rate {mf['added_default']:+.2f} ns; one sample costs {mf['per_sample']:.0f} ns"))
    out.append((f"median inuse estimate within ±{GOAL_ACC:g}% of a 100 MiB leak "
                f"({lf['n']} seeds)", status(abs(lf["median"]) <= GOAL_ACC),
                f"median {lf['median']:+.2f}%, p10 {lf['p10']:+.2f}%, p90 {lf['p90']:+.2f}%, "
                f"max abs {lf['maxabs']:.2f}%"))
    def own_memory(wl: str) -> tuple[float, float, float | None] | None:
        """Median profiler_bytes of a program's leakless runs, its median share of peak RSS, and
        the median number of stacks left to libunwind."""
        runs = [r for r in res.get((wl, "leakless"), [])
                if not r.timed_out and r.f("peak_profiler_bytes") is not None and r.rss_kib]
        if not runs:
            return None
        fallbacks = [r.f("unwinder_fallbacks") for r in runs
                     if r.f("unwinder_fallbacks") is not None]
        return (med([r.f("peak_profiler_bytes") for r in runs]),
                med([r.f("peak_profiler_bytes") / (r.rss_kib * 1024) * 100 for r in runs]),
                med(fallbacks) if fallbacks else None)

    shares = [("leak", lf["prof"], lf["prof_pct"], None)]
    for wl in ("churn", "cppcheck"):
        m = own_memory(wl)
        if m is not None:
            shares.append((wl, *m))

    def share_text(wl: str, b: float, pct: float, fallbacks: float | None) -> str:
        text = f"{wl}: {fmt_bytes(b)} = {pct:.2f}%"
        return text if fallbacks is None else f"{text} ({fallbacks:.0f} stacks left to libunwind)"

    worst = max(pct for _, _, pct, _ in shares)
    out.append((f"profiler memory (its own data: profiler_bytes, with the unwinder's rule cache "
                f"and libunwind's frame cache of each thread that fell back to it) ≤ "
                f"{GOAL_MEM:g}% of the program's peak RSS",
                status(worst <= GOAL_MEM),
                "; ".join(share_text(*share) for share in shares)))
    parts, oks = [], []
    for wl, label in WORKLOADS:
        b = [r for r in res.get((wl, "none"), []) if not r.timed_out]
        l = [r for r in res.get((wl, "leakless"), []) if not r.timed_out]
        if b and l:
            d = med([r.rss_kib for r in l]) - med([r.rss_kib for r in b])
            p = ((paired(res, wl, "leakless", "rss_kib") or 0) - 1) * 100
            parts.append(f"{label}: {d:+,.0f} KiB ({p:+.1f}%)")
            oks.append(p <= GOAL_MEM)
    out.append((f"peak RSS increase under leakless ≤ {GOAL_MEM:g}% (whole process: also the "
                "library's code and the libraries it loads)",
                status(all(oks) if oks else None), "; ".join(parts)))
    return out


# ---- machine facts and the report -----------------------------------------------------------------

def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_lines(compiler: str, pinned: bool) -> list[str]:
    pkgs = []
    for p in ("libjemalloc2", "libgoogle-perftools4", "heaptrack", "cppcheck", "libgtest-dev",
              "libc6", "libunwind8"):
        v = sh("dpkg-query", "-W", "-f=${Version}", p)
        pkgs.append(f"{p} {v or 'not installed'}")
    commit = sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD") or "no commit"
    dirty = sh("git", "-C", str(REPO), "status", "--porcelain", "--", "src", "include", "bench")
    return [machine_load.machine_line(),
            f"Compiler: {compiler}, -O2 -DNDEBUG",
            "Packages: " + ", ".join(pkgs),
            f"leakless measured at commit {commit}"
            + (" (with uncommitted changes)" if dirty else ""),
            "Each run pinned to CPU 1 with taskset (heaptrack's helper processes share that CPU)"
            if pinned else "Not pinned to a core."]


def report(args, cfg, setups, res, mf, lf, plain, errors, compiler, pinned, command,
           elapsed) -> tuple[str, str]:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"Run: {when}, {'QUICK mode (fewer iterations and seeds)' if args.quick else 'full run'}"
            f", {elapsed / 60:.1f} minutes",
            f"Command: {command}"] + machine_lines(compiler, pinned) + [
            f"Program figures: median of {args.reps} repetitions (setups take turns within each); "
            f"a run over {args.timeout:g} s is stopped, one over {args.max_repeat:g} s is not "
            "repeated (see *runs*); 'other CPUs busy' is the "
            "median number of CPUs that other processes on the machine used meanwhile "
            "(0 = quiet) and the CPUs the hypervisor gave to other guests (steal). *vs none*: "
            "the median over the rounds of each run against the no-profiler run of its round."]
    tables = program_tables(res, setups, args.timeout) + [micro_table(mf, cfg),
                                                          leak_table(lf, plain)]
    gl = goals(res, mf, lf)
    txt = ["=" * 100] + head + [""]
    md = ["### Results", ""] + [f"- {h}" for h in head] + [""]
    if errors:
        txt += ["ERRORS (the figures below may be incomplete or wrong):"]
        txt += [f"  * {e}" for e in errors] + [""]
        md += ["**Errors reported by the run:**", ""] + [f"- {e}" for e in errors] + [""]
    for t in tables:
        txt += [t.text(), ""]
        md += [t.markdown(), ""]
    txt += ["Goals (computed from the figures above):"]
    txt += [f"  [{st}] {g}\n           {d}" for g, st, d in gl] + [""]
    gt = Table("Goals (computed from the figures above)", ["goal", "status", "figures"])
    for g, st, d in gl:
        gt.add([g, st, d])
    md += [gt.markdown().replace("| ---: | ---: |", "| --- | --- |"), ""]
    return "\n".join(txt), "\n".join(md)


SECTION_INTRO = """\
## The heap profiler against jemalloc, gperftools and heaptrack

What leakless's heap profiler costs, in one run on one machine, next to the profilers people use
today. Setups (all preloaded into unchanged programs, except heaptrack, which wraps them):

| setup | how | note |
| --- | --- | --- |
| no profiler | the program as it is, glibc malloc | the baseline |
| leakless, 512 KiB | `LD_PRELOAD=libleakless.so LEAKLESS_HEAP_PROFILE=<tmp prefix>` (default rate 512 KiB), writing its heap profile at exit | glibc stays the allocator |
| ref: no profiler, again | the baseline run a second time in each repetition | the noise floor: what the machine alone changes between two identical runs |
| ref: leakless, no profile written | `LD_PRELOAD=libleakless.so`, no `LEAKLESS_HEAP_PROFILE` | sampling only: the difference to the row above is the profile written at exit (symbolization, encoding) |
| jemalloc prof | `LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=prof:true,lg_prof_sample:19,prof_final:true,prof_prefix:<tmp prefix>` | also replaces the allocator: the figure mixes jemalloc's speed with its profiler's cost (the *ref: jemalloc* row is jemalloc alone); `prof_final` makes it write a profile at exit like the others |
| gperftools HEAPPROFILE | `LD_PRELOAD=libtcmalloc.so.4 HEAPPROFILE=<tmp prefix>` | also replaces the allocator (*ref: tcmalloc* is tcmalloc alone); it does not sample: it records every allocation and dumps every 1 GiB allocated and at exit |
| heaptrack | `heaptrack -o <tmp prefix> program args` | records every allocation and streams it to a helper process (`heaptrack_interpret`) and a compressor; peak RSS is GNU time's maximum over the whole process tree, i.e. the largest single process: normally the profiled program |

### Reproduce

```sh
scripts/setup                                           # once: cppcheck, jemalloc, gperftools, heaptrack, ...
bench/run_heap_bench.sh --markdown docs/benchmarks.md   # full run, about 10 minutes; refreshes the results below
bench/run_heap_bench.sh --quick                         # about 2 minutes: 1 repetition, fewer iterations and seeds
```

The script (`bench/heap_compare.py` does the work) builds `libleakless.so` and `bench/alloc_bench`
with CMake in `build/bench-heap` (Release, `-O2 -DNDEBUG`), runs everything below one after the
other, prints the tables and the goals checklist, and exits non-zero if any run crashed, printed
a different result from the others or, for a profiler, wrote no profile. Options: `--reps N`
(default 7; `--quick`: 1), `--timeout SECONDS` (default 60, `--quick`: 20: a slower run is stopped and shown as a lower
bound), `--max-repeat SECONDS` (default 20: a setup whose run took longer is measured once, which
keeps gperftools and heaptrack within the run's budget), `--setups none,leakless,...`,
`--no-build`, `--no-pin`, `--wait-quiet SECONDS` (default 10: before each round, wait that long
at most for other processes to go quiet).

### What each figure means

- **alloc_bench churn**: one thread keeps 32,768 live objects (`std::string`, `std::vector`
  grown by `push_back`, `std::map`, raw `new[]` buffers; sizes log-uniform 16 B..4 KiB, one
  allocation in 256 a 64 KiB buffer) and replaces a random one per iteration, reading it into a
  checksum; 1,000,000 iterations. The checksum must be the same under every setup.
- **order of the runs**: in each repetition, for each program, one unmeasured warm-up run, then
  every setup once, in the order of the tables; a setup's *vs none* uses the no-profiler run of
  the same repetition.
- **cppcheck over googletest**: `cppcheck -q --enable=all --std=c++17 /usr/src/googletest` (the
  sources of Debian's libgtest-dev, fixed by its version); its findings must be identical under
  every setup.
- **wall / CPU / peak RSS**: `/usr/bin/time -f '%e %M %U %S'` around each run: elapsed seconds,
  peak resident set in KiB, user + system CPU seconds. *vs none* is the median, over the
  repetitions, of each run against the no-profiler run of the same repetition (runs next to each
  other in time, so slow drifts of a shared machine cancel out). CPU time is shown because it is less disturbed than wall time by
  other processes on a shared machine. *profile written* is the size of the profile files the
  profiler wrote (removed after each run).
- **ns per malloc+free**: `alloc_bench pair` runs `malloc(64)`/`free` in a loop; thread CPU time
  over iterations. *Nothing sampled* uses a mean sample interval of 1 TiB, so only the fast
  path runs: that is the cost leakless adds to every allocation it does not sample. At the
  default rate a 64-byte pair is sampled about once per 8,192 pairs.
- **cost per sample**: the same loop at the bottom of 20 frames of recursion, on 4 distinct call
  stacks, with `LEAKLESS_SAMPLE_RATE=1` (every allocation sampled: stack capture, the live table,
  the stack bucket, and the free of a sampled block) minus the same with nothing sampled.
- **inuse estimate**: `alloc_bench leak` allocates exactly 100 MiB (log-uniform 100 B..64 KiB,
  fixed sizes) and keeps it; it finds `leakless::heap_stats()` with `dlsym` (it is not linked to
  leakless) and prints the change of `inuse_bytes` across the leak, once per sampler seed.
  `profiler_bytes` (memory the profiler holds for its tables) is compared with the program's RSS.
- **profiler memory**: `profiler_bytes` counts the profiler's tables (the hash tables whole, the
  record arena up to its last page written), the CFI unwinder's rule cache (one for the process:
  32 KiB, replaced by a 4x larger one each time it is half full; the tables it replaced still
  count), and, for each live thread that has fallen back to libunwind's `unw_backtrace` (a stack
  through a signal frame or code with no unwind table), the frame cache libunwind makes for it
  (2^14 entries of 16 bytes, all written when it is made). *stacks left to libunwind* is the
  exit profile's "leakless UnwinderFallbacks" comment. The linked programs print it, and a program's exit profile carries it, and its largest value over the run, as
  comments ("leakless PeakProfilerBytes = N", shown by `go tool pprof -comments`). For churn and
  cppcheck the peak is compared with the same run's peak RSS; for the leak, the value after the
  leak with the RSS then.
"""


def write_markdown(path: Path, body: str) -> None:
    block = f"{BEGIN_MARK}\n{SECTION_INTRO}\n{body}\n{END_MARK}"
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK in text and END_MARK in text:
        text = text.split(BEGIN_MARK, 1)[0] + block + text.split(END_MARK, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def command_line(args: argparse.Namespace) -> str:
    defaults = {"reps": 1 if args.quick else 7, "timeout": 20.0 if args.quick else 60.0,
                "wait_quiet": 10.0, "max_repeat": 20.0,
                "setups": ",".join(s for s, _ in SETUPS)}
    return reproduce_command("bench/run_heap_bench.sh", args, defaults,
                             ["--no-pin"] if args.no_pin else [])


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/run_heap_bench.sh",
                                 description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations and seeds")
    ap.add_argument("--markdown", metavar="FILE", type=Path,
                    help="also write the report as Markdown between the heap-profiler markers")
    ap.add_argument("--build-dir", type=Path, default=REPO / "build" / "bench-heap")
    ap.add_argument("--no-build", action="store_true", help="reuse the binaries already built")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to a core with taskset")
    ap.add_argument("--reps", type=int, help="repetitions (default 7; --quick: 1)")
    ap.add_argument("--timeout", type=float,
                    help="stop a program run after SECONDS (0: never; default 60, --quick: 20); "
                         "it is not repeated")
    ap.add_argument("--max-repeat", metavar="SECONDS", type=float, default=20.0,
                    help="a setup whose run took longer than SECONDS is not repeated")
    ap.add_argument("--setups", default=",".join(s for s, _ in SETUPS),
                    help="comma-separated subset of " + ",".join(s for s, _ in SETUPS))
    ap.add_argument("--wait-quiet", metavar="SECONDS", type=float, default=10.0,
                    help="before each round of runs, wait up to SECONDS for other processes to "
                         "go quiet")
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 7
    if args.timeout is None:
        args.timeout = 20.0 if args.quick else 60.0
    cfg = QUICK if args.quick else FULL
    setups = [s for s, _ in SETUPS if s in args.setups.split(",")]
    if "none" not in setups or "leakless" not in setups:
        ap.error("--setups must include none and leakless")
    missing = [str(p) for p in (JEMALLOC, TCMALLOC, GTEST_TREE) if not p.exists()]
    missing += [t for t in ("cppcheck", "heaptrack", "taskset") if not shutil.which(t)]
    if not Path("/usr/bin/time").exists():
        missing.append("/usr/bin/time")
    if missing:
        log("missing (run scripts/setup): " + ", ".join(missing))
        return 2

    build_dir = args.build_dir.resolve()
    if not args.no_build:
        try:
            build(build_dir)
        except subprocess.CalledProcessError as err:
            log(f"build failed: {' '.join(err.cmd)} exited with {err.returncode}")
            return 2
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="heap_bench."))
    try:
        # Private copies, so a concurrent rebuild cannot change the binaries mid-run.
        bench = Path(shutil.copy2(build_dir / "bench" / "alloc_bench", work / "alloc_bench"))
        lib = Path(shutil.copy2(build_dir / "src" / "libleakless.so", work / "libleakless.so"))
        rn = Runner(args, lib, work)
        res = measure_programs(rn, bench, cfg, setups, args.reps, args.wait_quiet,
                               args.max_repeat)
        wait_quiet(args.wait_quiet)
        pair = measure_pair(rn, bench, cfg, args.reps)
        sc = measure_sample_cost(rn, bench, cfg, args.reps)
        leak_runs, plain = measure_leak(rn, bench, cfg)
    except OSError as err:
        log(f"cannot run the benchmark: {err}")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)

    compiler = plain.kv.get("compiler", "unknown compiler")
    mf = micro_figures(pair, sc)
    lf = leak_figures(leak_runs)
    text, md = report(args, cfg, setups, res, mf, lf, plain, rn.errors, compiler,
                      bool(rn.pin), command_line(args), time.monotonic() - start)
    print(text)
    if args.markdown:
        write_markdown(args.markdown, md)
        log(f"Markdown written to {args.markdown}")
    return 1 if rn.errors else 0


if __name__ == "__main__":
    sys.exit(main())
