"""bench/reproduce.py — the command line that reproduces a benchmark run, for its report.

How it works: a driver passes the wrapper script it was started through, its parsed arguments and
the defaults of the options worth naming; reproduce_command() rebuilds the command from the
options that differ from their defaults (numbers printed short, as 60 rather than 60.0), names
the --markdown file relative to the repository (or as FILE when it lies elsewhere: a local path
means nothing to a reader), and appends any flags the driver adds itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def reproduce_command(script: str, args: argparse.Namespace, defaults: dict,
                      extra: list[str] | None = None) -> str:
    parts = [script]
    if args.quick:
        parts.append("--quick")
    if args.markdown:
        try:
            parts += ["--markdown", str(args.markdown.resolve().relative_to(REPO))]
        except ValueError:
            parts += ["--markdown", "FILE"]
    for key, default in defaults.items():
        value = getattr(args, key)
        if value == default:
            continue
        shown = f"{value:g}" if isinstance(default, (int, float)) else str(value)
        parts.append(f"--{key.replace('_', '-')}={shown}")
    return " ".join(parts + (extra or []))
