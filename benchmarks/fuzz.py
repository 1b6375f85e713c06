"""Fuzz mode: the suite's wire fuzzer (tests/test_fuzz.py) with many more examples.

    python benchmarks/fuzz.py --examples 2000            # per hypothesis test (8 targets)
    python benchmarks/fuzz.py --examples 500 --shrink -k anthropic

Runs pytest on tests/test_fuzz.py with RXSTREAM_FUZZ_EXAMPLES=N, every wrong value for
every field (RXSTREAM_FUZZ_EVERY_VALUE=1), no per-test timeout and, with --shrink,
hypothesis shrinking of the first failure found. A new seed (--seed) draws different
examples; the default is the suite's derandomized sequence extended to N examples.
Prints pytest's summary and the wall time; exits with pytest's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000, help="examples per hypothesis test")
    parser.add_argument("--shrink", action="store_true", help="shrink failures to a minimal case")
    parser.add_argument("--seed", type=int, default=None, help="random seed instead of derandomized runs")
    parser.add_argument("--deadline", type=float, default=5.0, help="seconds a case may take to end")
    parser.add_argument("-k", default=None, help="pytest -k expression (e.g. 'bedrock or sync')")
    args = parser.parse_args()
    env = dict(
        os.environ,
        RXSTREAM_FUZZ_EXAMPLES=str(args.examples),
        RXSTREAM_FUZZ_EVERY_VALUE="1",
        RXSTREAM_FUZZ_DEADLINE=str(args.deadline),
    )
    if args.shrink:
        env["RXSTREAM_FUZZ_SHRINK"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:nbmake", "-o", "addopts=", "-o", "timeout=0"]
    command += ["-W", "error", "tests/test_fuzz.py", "-rfxX"]
    if args.seed is not None:
        command += [f"--hypothesis-seed={args.seed}"]
    if args.k:
        command += ["-k", args.k]
    started = time.perf_counter()
    status = subprocess.call(command, cwd=ROOT, env=env)
    print(f"fuzz: {args.examples} examples per hypothesis test, {time.perf_counter() - started:.1f} s wall")
    return status


if __name__ == "__main__":
    sys.exit(main())
