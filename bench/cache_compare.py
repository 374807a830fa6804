"""bench/cache_compare.py — the leakless::cache benchmark: hit ratios side by side with Caffeine,
throughput against a mutex-guarded LRU, and the cache's own bytes per entry.

How it works: it builds bench/cache_bench with the project's CMake (release preset) and compiles
bench/caffeine/HitRatio.java against Caffeine's jar. Each request trace is generated once by
`cache_bench trace` (fixed seed) into a temporary directory; `cache_bench hitratio` replays it
through leakless::cache (W-TinyLFU as configured by default, W-TinyLFU on one shard with a fixed 1%
window, LRU) and computes Belady's optimum, and `java HitRatio` replays the very same file through
Caffeine. Then `cache_bench throughput` and one `cache_bench memory` process per cache variant run,
after waiting (bounded) for the machine to be quiet; how much CPU other processes used meanwhile
is measured from /proc/stat (bench/machine_load.py) and reported. Output: markdown tables and the
goals checklist on stdout, progress on stderr. Usage: bench/run_cache_bench.sh [--quick]
[--caffeine-jar JAR] [--wait-quiet SECONDS] (see --help).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_load  # noqa: E402
from machine_load import LoadMeter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "build" / "release" / "bench" / "cache_bench"

# name, cache_bench trace pattern (requests last), warm-up requests, cache sizes, what it is.
TRACES = [
    ("zipf-1e4", "zipf:10000:{r}", 2_000_000, [100, 1_000], "Zipf(0.99) over 10^4 keys"),
    ("zipf-1e6", "zipf:1000000:{r}", 10_000_000, [10_000, 100_000], "Zipf(0.99) over 10^6 keys"),
    ("loop-1000", "loop:1000:{r}", 1_000_000, [512], "keys 0..999 in a loop"),
    ("loop-600", "loop:600:{r}", 1_000_000, [512], "keys 0..599 in a loop"),
    ("scan", "scan:100000:{r}:50000:5000", 4_000_000, [1_000, 10_000],
     "Zipf(0.99) over 10^5 keys, and after every 50,000 of its requests a scan of 5,000 new keys"),
]
WARMUP_SHARE = 10  # the first 1/10 of each trace warms the caches up and is not counted
MEMORY_VARIANTS = ["tinylfu", "lru", "tinylfu+expiry", "lru+expiry", "mutex-lru"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str]) -> str:
    log("+ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def hit_ratios(java: list[str], work: Path, quick: bool) -> tuple[list[list[str]], dict]:
    rows, got = [], {}
    for name, pattern, requests, sizes, what in TRACES:
        requests //= 10 if quick else 1
        trace = work / name
        run([str(BENCH), "trace", pattern.format(r=requests), str(trace)])
        warmup = str(requests // WARMUP_SHARE)
        ours = {int(f[0]): [float(x) for x in f[1:]] for f in
                (line.split() for line in run([str(BENCH), "hitratio", str(trace), warmup]
                                              + [str(s) for s in sizes]).splitlines())}
        theirs = {int(f[0]): float(f[1]) for f in
                  (line.split() for line in run(java + [str(trace), warmup]
                                                + [str(s) for s in sizes]).splitlines())}
        trace.unlink()
        for size in sizes:
            tiny, fixed, lru, opt = ours[size]
            caf = theirs[size]
            got[(name, size)] = {"tinylfu": tiny, "caffeine": caf, "lru": lru, "optimum": opt}
            rows.append([what, f"{requests:,}", f"{size:,}", pct(tiny), pct(fixed), pct(caf),
                         f"{100 * (tiny - caf):+.2f}", pct(lru), pct(opt)])
    return rows, got


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="traces and runs 10x shorter")
    ap.add_argument("--caffeine-jar", default="/usr/share/java/caffeine.jar")
    ap.add_argument("--wait-quiet", type=float, default=60,
                    help="wait at most this long for a quiet machine before timed parts")
    args = ap.parse_args()

    if not (ROOT / "build" / "release").is_dir():
        run(["cmake", "--preset", "release"])
    run(["cmake", "--build", "--preset", "release", "-j2", "--target", "cache_bench"])
    work = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    try:
        run(["javac", "-d", str(work), "-cp", args.caffeine_jar,
             str(ROOT / "bench" / "caffeine" / "HitRatio.java")])
        java = ["java", "-cp", f"{args.caffeine_jar}{os.pathsep}{work}", "HitRatio"]
        load = LoadMeter()
        hit_rows, got = hit_ratios(java, work, args.quick)
        hit_load = load.line()

        machine_load.wait_quiet(args.wait_quiet, 0.3, 3, log)
        load = LoadMeter()
        ops = "1000000" if args.quick else "5000000"
        tput = run([str(BENCH), "throughput", "--threads", "1,2", "--ops", ops])
        tput_load = load.line()
        per_thread = {}
        tput_rows = []
        for line in tput.splitlines()[1:]:
            w, cache, threads, total, each = line.split()
            per_thread[(w, cache, int(threads))] = float(each)
            tput_rows.append([w, cache, threads, f"{float(total) / 1e6:.2f}",
                              f"{float(each) / 1e6:.2f}"])

        load = LoadMeter()
        n = "100000" if args.quick else "1000000"
        mem = {}
        for v in MEMORY_VARIANTS:
            name, value = run([str(BENCH), "memory", n, v]).split()
            mem[name] = float(value)
        mem_load = load.line()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    jar = os.path.realpath(args.caffeine_jar)
    m = re.search(r"caffeine-([\d.]+)\.jar", jar)
    java_version = subprocess.run(["java", "-version"], stderr=subprocess.PIPE,
                                  text=True).stderr.splitlines()[0]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"### Results ({when}{', QUICK mode' if args.quick else ''})\n")
    print(f"- Command: bench/run_cache_bench.sh{' --quick' if args.quick else ''}")
    print(f"- {machine_load.machine_line()}")
    print(f"- Caffeine {m.group(1) if m else '(unknown version)'} ({os.path.basename(jar)}, "
          f"Debian's libcaffeine-java), {java_version}")
    print(f"- Load while the hit ratios ran: {hit_load}; throughput: {tput_load}; "
          f"memory: {mem_load}\n")

    print("#### Hit ratio (the same trace file for every cache; the first 10% of each trace is "
          "warm-up and not counted)\n")
    print(table(["trace", "requests", "cache size", "leakless tinylfu",
                 "leakless tinylfu, 1 shard, fixed 1% window", "Caffeine", "leakless − Caffeine "
                 "(points)", "leakless lru", "optimum (Belady)"], hit_rows))
    print("\n#### Throughput (millions of operations per second; best of 3 runs)\n")
    print(table(["workload", "cache", "threads", "total", "per thread"], tput_rows))
    print(f"\n#### Memory per entry ({int(n):,} uint64 → uint64 entries; bytes beyond the 16 of "
          "key and value)\n")
    print(table(["cache", "bytes per entry"], [[v, f"{mem[v]:.1f}"] for v in MEMORY_VARIANTS]))

    def status(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    z = got[("zipf-1e4", 100)]
    loop = got[("loop-1000", 512)]
    reads = per_thread[("read-zipf", "tinylfu", 1)]
    reads2 = per_thread[("read-zipf", "tinylfu", 2)]
    goals = [
        ("Zipf(0.99), 10^4 keys, cache 1%: ≥ 48.5%", pct(z["tinylfu"]),
         status(z["tinylfu"] >= 0.485)),
        ("… and within 0.5 points of Caffeine", f"{100 * (z['tinylfu'] - z['caffeine']):+.2f} "
         f"points ({pct(z['caffeine'])})", status(z["tinylfu"] >= z["caffeine"] - 0.005)),
        ("Loop (1,000 keys), cache 512: ≥ 48% (LRU 0%)", pct(loop["tinylfu"]),
         status(loop["tinylfu"] >= 0.48)),
        ("≥ 20 M reads/s per core (read-zipf, tinylfu, 1 thread)", f"{reads / 1e6:.2f} M",
         status(reads >= 20e6)),
        ("… with 2 threads, per thread", f"{reads2 / 1e6:.2f} M", status(reads2 >= 20e6)),
        ("Memory per entry ≤ 48 B (tinylfu)", f"{mem['tinylfu']:.1f} B",
         status(mem["tinylfu"] <= 48)),
        ("Memory per entry with expiry ≤ 64 B (tinylfu+expiry)", f"{mem['tinylfu+expiry']:.1f} B",
         status(mem["tinylfu+expiry"] <= 64)),
    ]
    print("\n#### Goals (computed from the figures above)\n")
    print(table(["goal", "measured", ""], [list(g) for g in goals]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
