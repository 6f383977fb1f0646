"""The long fuzz run: tests/fuzz under hypothesis's `long` profile, counted.

    .venv/bin/python bench/fuzz_entry_points.py                    # ~10^5 inputs, embedded defaults
    .venv/bin/python bench/fuzz_entry_points.py --per-test 500     # a shorter run
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/fuzz_entry_points.py                # against the real servers

It runs the same properties as CI (never a 5xx, never a traceback in the log, a refused input
changes nothing), only with random rather than derandomized examples and many more of them, and
prints the inputs tried per entry point, the failures, the wall time and the peak RSS of the
test process. The figures go in the session note; nothing here is a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-test", type=int, default=2_700,
                        help="examples per fuzz test (37 tests: the default makes about 10^5 inputs)")
    parser.add_argument("-k", default="", help="only the fuzz tests matching this pytest expression")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "counts.json"
        env = {**os.environ, "HYPOTHESIS_PROFILE": "long", "FUZZ_EXAMPLES": str(args.per_test),
               "FUZZ_REPORT": str(report)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging",
                   "tests/fuzz", "--hypothesis-profile", "long"] + (["-k", args.k] if args.k else [])
        started = time.monotonic()
        result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        elapsed = time.monotonic() - started
        counts = json.loads(report.read_text()) if report.exists() else {}
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
               or " passed" in line or " failed" in line]
    print(f"configuration: {'Postgres' if os.environ.get('DATABASE_URL') else 'embedded SQLite'}, "
          f"{'Redis' if os.environ.get('REDIS_URL') else 'in-process Redis'}; {args.per_test} examples per test")
    for entry, n in sorted(counts.items()):
        print(f"  {entry:<52} {n:>8,} inputs")
    print(f"inputs tried: {sum(counts.values()):,} in {elapsed:,.0f} s; peak RSS of the test process: {peak_mib:,.0f} MiB")
    print("\n".join(summary[-12:]))
    if result.returncode != 0:
        print(result.stdout[-6000:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
