"""demo_build/thread_bench.py: it times real he→en training steps of the build's recipe (the private run
API it drives is the build's own, so a change there must show here)."""

from __future__ import annotations

import torch

from demo_build import data as dd
from demo_build.thread_bench import time_steps


def test_time_steps_trains_the_build_recipe_and_returns_seconds_per_step(tmp_path):
    splits = dd.split_verses()
    dd.write_jsonl(tmp_path / "train.jsonl", splits["train"][:800])  # ≥ 4 batches of ≤ 5,000 tokens
    dd.write_jsonl(tmp_path / "dev.jsonl", splits["dev"][:4])
    threads = torch.get_num_threads()
    seconds = time_steps(tmp_path, "checkpoints/demo/he-en", steps=1, threads=1, seed=1234)
    torch.set_num_threads(threads)
    assert 0 < seconds < 60
