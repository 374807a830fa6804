"""bench/machine_load.py — how busy the machine is, for the benchmark drivers (compare.py,
heap_compare.py).

How it works: /proc/stat's first line gives the machine's busy and steal jiffies since boot;
getrusage(RUSAGE_CHILDREN) gives the CPU our own finished children used, so the difference over a
run is what other processes used meanwhile. wait_quiet() samples the busy jiffies over a window
until other processes use less than a threshold of one CPU, or a time limit passes. LoadMeter
measures the same over a part of a run (CPUs used by other processes on average, and steal).
machine_line() describes the machine (CPU model, cores, memory, kernel) for a report.
"""
from __future__ import annotations

import os
import platform
import re
import resource
import sys
import time
from pathlib import Path
from typing import Callable


def cpu_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine since boot, from /proc/stat."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def children_cpu() -> float:
    """CPU seconds used by this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_quiet(limit_s: float, threshold: float, window_s: float,
               log: Callable[[str], None] | None = None) -> None:
    """Waits (at most limit_s) until other processes use < threshold CPU over window_s."""
    if limit_s <= 0:
        return
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + limit_s
    while True:
        b0 = cpu_jiffies()[0]
        time.sleep(window_s)
        busy = (cpu_jiffies()[0] - b0) / hz / window_s
        if busy < threshold or time.monotonic() > deadline:
            return
        message = f"waiting for the machine to be quiet (other processes use {busy:.2f} CPU)"
        if log is not None:
            log(message)
        else:
            print(message, file=sys.stderr, flush=True)


class LoadMeter:
    """CPUs other processes used (and the hypervisor stole) from creation until line()."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.busy, self.steal = cpu_jiffies()
        self.mine = children_cpu()
        self.start = time.monotonic()

    def line(self) -> str:
        busy, steal = cpu_jiffies()
        wall = max(time.monotonic() - self.start, 1e-9)
        others = ((busy - self.busy) / self.hz - (children_cpu() - self.mine)) / wall
        return (f"other processes used {max(others, 0):.2f} CPUs on average over {wall:.0f} s "
                f"(steal {(steal - self.steal) / self.hz / wall:.2f})")


def machine_line() -> str:
    """'Machine: <CPU model>, <n> cores, <m> GiB RAM, Linux <release>' from /proc."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / (1 << 20):.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"Machine: {cpu}, {os.cpu_count()} cores{mem}, Linux {platform.release()}"
