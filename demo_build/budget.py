"""Training on a shared 2-core machine: the thread-count tuner of the training loops and the file that changes a
running stage's step budget."""

from __future__ import annotations

from pathlib import Path

import torch


class ThreadTuner:
    """The build machine is shared: with other processes on the 2 cores, 2 OpenMP threads can be ~2x *slower* than
    1 (threads wait for each other at every barrier).  Alternate: exploit the best thread count for `exploit_s`,
    then probe the other count for `probe_s`; keep whichever had the higher recent throughput."""

    def __init__(self, options=(2, 1), exploit_s: float = 90.0, probe_s: float = 20.0):
        self.options = tuple(dict.fromkeys(options))
        self.rate = {o: None for o in self.options}
        self.best = self.options[0]
        self.exploit_s, self.probe_s = exploit_s, probe_s
        self.cur = self.best
        self.phase_t = self.phase_n = 0.0
        self.switches = []
        torch.set_num_threads(self.cur)

    def update(self, seconds: float, units: float) -> None:
        if len(self.options) < 2:
            return
        self.phase_t += seconds
        self.phase_n += units
        limit = self.exploit_s if self.cur == self.best else self.probe_s
        if self.phase_t < limit:
            return
        self.rate[self.cur] = self.phase_n / max(1e-6, self.phase_t)
        if self.cur == self.best:
            nxt = next(o for o in self.options if o != self.best)  # probe the other
        else:
            known = {o: r for o, r in self.rate.items() if r is not None}
            new_best = max(known, key=known.get)
            if new_best != self.best:
                self.switches.append((self.best, new_best, {o: round(r) for o, r in known.items()}))
            self.best = nxt = new_best
        self.cur = nxt
        self.phase_t = self.phase_n = 0.0
        torch.set_num_threads(self.cur)


def read_steps_override(path: Path, steps: int) -> int:
    """The step count written in `path` (a running stage's new budget), else `steps` unchanged."""
    try:
        return int(path.read_text().strip()) if path.exists() else steps
    except ValueError:
        return steps
