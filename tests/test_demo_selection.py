"""Which checkpoint the demo ships (demo_build.selection): best/ or last/ by greedy, then top-5 hits on every dev
verse; without scoring when there is one checkpoint or one step. The run that scores real checkpoints is in
test_demo_build.py (it needs a built work folder)."""

from __future__ import annotations

import json

import pytest


def _fake_checkpoint(run, name: str, step: int, golds: list[str], greedy: list[str], lists: list[list[str]]):
    (run / name).mkdir(parents=True)
    (run / name / "config.json").write_text(json.dumps({"extra": {"step": step}}))
    out = run / "selection" / name
    out.mkdir(parents=True)
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for g, w, c in zip(golds, greedy, lists):
            fh.write(json.dumps({"gold": g, "greedy": w, "candidates": c}, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("last_greedy, last_lists, expected", [
    (["א", "ב", "ז"], [["ז"]] * 3, "last"),  # more greedy hits
    (["א", "ז", "ז"], [["ז"], ["ב"], ["ג"]], "last"),  # as many greedy hits, more top-5 hits
    (["א", "ז", "ז"], [["ז"], ["ז"], ["ג"]], "best"),  # a tie keeps best
    (["ז", "ז", "ז"], [["א"], ["ב"], ["ג"]], "best"),  # fewer greedy hits, more top-5: greedy decides
])
def test_best_or_last_is_chosen_by_greedy_then_top5_hits(tmp_path, last_greedy, last_lists, expected):
    from demo_build.selection import choose_checkpoint

    golds = ["א", "ב", "ג"]
    _fake_checkpoint(tmp_path, "best", 4, golds, ["א", "ז", "ז"], [["ז"], ["ז"], ["ג"]])
    _fake_checkpoint(tmp_path, "last", 6, golds, last_greedy, last_lists)
    chosen = choose_checkpoint(tmp_path, tmp_path / "dev.jsonl", tmp_path / "cache.sqlite")
    assert chosen["selected"] == expected and chosen["steps"] == {"best": 4, "last": 6} and chosen["examples"] == 3


def test_one_checkpoint_or_one_step_is_chosen_without_scoring(tmp_path):
    from demo_build.selection import choose_checkpoint

    for name in ("best", "last"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"extra": {"step": 5}}))
    chosen = choose_checkpoint(tmp_path, tmp_path / "missing.jsonl", tmp_path / "cache.sqlite")
    assert chosen["selected"] == "best" and chosen["hits"] is None and not (tmp_path / "selection").exists()
    with pytest.raises(RuntimeError, match="neither best/ nor last/"):
        choose_checkpoint(tmp_path / "empty", tmp_path / "missing.jsonl", tmp_path / "cache.sqlite")
