"""The long fuzzing run: every property of tests/test_fuzz.py with the "long" hypothesis profile, in batches of
fresh random examples (each batch a new random seed) until every target has at least --examples passing examples,
or --minutes have passed; prints each target's totals from hypothesis' own statistics.

    python -m benchmarks.fuzz [--examples 10000] [--batch 1000] [--jobs 2] [--minutes 60]

New failing inputs are saved in tests/hypothesis-db (commit them with the fix: CI replays them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TARGETS = ("test_random_bytes", "test_random_unicode_in_any_encoding", "test_random_tables", "test_random_jsonl",
           "test_prefix_validation")


def run_batch(target: str, examples: int) -> dict:
    """One pytest run of `target` with `examples` random examples: hypothesis' counts, and the output on failure."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TALL_FUZZ_EXAMPLES=str(examples))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", f"tests/test_fuzz.py::{target}",
                           "--hypothesis-profile=long", "--hypothesis-show-statistics"],
                          env=env, capture_output=True, text=True, check=False)
    counts = {kind: sum(int(n) for n in re.findall(rf"(\d+) {kind} examples", proc.stdout))
              for kind in ("passing", "failing", "invalid")}
    counts["ok"] = proc.returncode == 0
    counts["log"] = "" if counts["ok"] else proc.stdout[-6000:]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="passing examples wanted per target")
    parser.add_argument("--batch", type=int, default=1_000, help="examples per pytest run")
    parser.add_argument("--jobs", type=int, default=2, help="pytest runs at a time")
    parser.add_argument("--minutes", type=float, default=60, help="start no batch after this")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated test names")
    args = parser.parse_args()
    totals = {t: {"passing": 0, "failing": 0, "invalid": 0, "batches": 0} for t in args.targets.split(",")}
    lock, busy = threading.Lock(), set()
    failures: list[str] = []
    start = time.perf_counter()

    def next_target() -> str | None:
        """The target with the fewest examples so far that still needs some (round robin in effect)."""
        with lock:
            open_ = [t for t in totals if t not in busy and totals[t]["passing"] < args.examples
                     and not any(f.startswith(t + ":") for f in failures)]
            if not open_ or time.perf_counter() - start > 60 * args.minutes:
                return None
            target = min(open_, key=lambda t: totals[t]["passing"])
            busy.add(target)
            return target

    def work(_worker: int) -> None:
        while (target := next_target()) is not None:
            result = run_batch(target, min(args.batch, args.examples - totals[target]["passing"]))
            with lock:
                for kind in ("passing", "failing", "invalid"):
                    totals[target][kind] += result[kind]
                totals[target]["batches"] += 1
                busy.discard(target)
                if not result["ok"]:
                    failures.append(f"{target}:\n{result['log']}")
            print(f"{time.perf_counter() - start:7.0f} s  {target}: {totals[target]['passing']:,} passing",
                  flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(work, range(args.jobs)))
    print(f"\n{'target':<40} {'passing':>8} {'failing':>8} {'invalid':>8} {'batches':>8}")
    for target, t in totals.items():
        print(f"{target:<40} {t['passing']:>8,} {t['failing']:>8} {t['invalid']:>8} {t['batches']:>8}")
    print(f"{(time.perf_counter() - start) / 60:.1f} min wall, {args.jobs} at a time; load average "
          f"{os.getloadavg()}")
    for failure in failures:
        print(failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
