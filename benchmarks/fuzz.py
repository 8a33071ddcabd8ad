"""The long fuzzing run: every property of tests/test_fuzz.py with the "long" hypothesis profile (10,000 random
examples per target), printing each target's example counts from hypothesis' own statistics.

    python -m benchmarks.fuzz [--examples N]

New failing inputs are saved in tests/hypothesis-db (commit them with the fix: CI replays them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=None, help="override the long profile's 10,000 per target")
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if args.examples:
        env["TALL_FUZZ_EXAMPLES"] = str(args.examples)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/test_fuzz.py",
                           "--hypothesis-profile=long", "--hypothesis-show-statistics"],
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    print(proc.stdout[-20000:], proc.stderr[-4000:], sep="\n")
    print(f"\n{'target':<48} passing  failing  invalid")
    for name, body in re.findall(r"tests/test_fuzz.py::(\w+):\n(.*?)(?=\ntests/|\n=|\Z)", proc.stdout, re.S):
        counts = [re.search(rf"(\d+) {kind}", body) for kind in ("passing", "failing", "invalid")]
        print(f"{name:<48} " + "  ".join(f"{int(m.group(1)) if m else 0:>7}" for m in counts))
    print(f"exit status {proc.returncode}; {elapsed / 60:.1f} min wall; load average {os.getloadavg()}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
