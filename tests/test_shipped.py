"""What ships under checkpoints/ travels with any clone: no text file holds a machine's absolute path, and the demo's
TALL adapters are a current-format checkpoint that loads onto the backbones it names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "checkpoints"
# a POSIX home/system folder, or a Windows drive (also JSON-escaped: C:\\)
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:home|root|work|tmp|Users|mnt|opt|var|private|srv)/|\b[A-Z]:\\")


def _text_files() -> list[Path]:
    files = []
    for path in sorted(CHECKPOINTS.rglob("*")):
        if not path.is_file():
            continue
        head = path.read_bytes()[:4096]
        if b"\0" in head:  # weights, SentencePiece models
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def test_the_absolute_path_pattern():
    assert ABSOLUTE_PATH.search('"llm": "/work/main/checkpoints/demo/lm"')
    assert ABSOLUTE_PATH.search("/root/.pyenv/versions/3.11.7/bin/python -m x")
    assert ABSOLUTE_PATH.search('"C:\\\\Users\\\\me\\\\lm"') and ABSOLUTE_PATH.search("C:\\Users\\me")
    assert not ABSOLUTE_PATH.search("checkpoints/demo/lm and build/demo/data/he_test.jsonl")
    assert not ABSOLUTE_PATH.search("python -m evaluation.evaluate --out build/demo/eval-next-word")


def test_no_shipped_text_file_holds_an_absolute_path():
    files = _text_files()
    assert any(p.name == "config.json" for p in files) and any(p.suffix == ".md" for p in files)
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = ABSOLUTE_PATH.search(line)
            if match:
                found.append(f"{path.relative_to(REPO)}:{number}: …{line[max(0, match.start() - 40):match.end() + 40]}…")
    assert not found, "absolute paths in shipped files:\n" + "\n".join(found[:20])


def test_shipped_commands_are_python_dash_m():
    demo = CHECKPOINTS / "demo"
    commands = [json.loads((demo / "eval" / "metrics.json").read_text(encoding="utf-8"))["command"]]
    commands += [json.loads(p.read_text(encoding="utf-8"))["command"] for p in demo.glob("baselines/*/baseline.json")]
    assert len(commands) == 3
    for command in commands:
        assert command.startswith(("python -m evaluation.evaluate ", "python -m baselines.train ")), command


def test_demo_tall_config_is_format_2_and_loads():
    from tall_model import load
    from tall_model.backbones import ROLES
    from tall_model.checkpoint import FORMAT_VERSION, read_checkpoint_config

    directory = CHECKPOINTS / "demo" / "tall"
    if not (directory / "config.json").is_file():
        pytest.fail("checkpoints/demo/tall is missing: the demo is part of the product")
    meta = read_checkpoint_config(directory)
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert set(meta["backbone_fingerprints"]) == set(ROLES)
    assert isinstance(meta["config"]["decoding"], dict) and "seed" not in meta["config"]
    assert all(not Path(meta["config"][role]).is_absolute() for role in ROLES)
    model = load(directory)  # checks the fingerprints against the backbones it loads
    assert model.backbones.fingerprints() == meta["backbone_fingerprints"]


def test_the_demo_results_in_both_readmes_are_the_shipped_numbers():
    """Every number of the demo's results, in the README and the demo card, is generated from the shipped
    metrics.json (never typed), and the paired tests recompute from the shipped predictions."""
    from demo_build.results import load_metrics, readme_block, results_markdown
    from evaluation.significance import compare

    shipped = load_metrics(CHECKPOINTS / "demo")
    expected = results_markdown(shipped)
    assert readme_block(REPO / "README.md") == expected, "README.md: rerun `python -m demo_build --stages cards`"
    assert expected in (CHECKPOINTS / "demo" / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((CHECKPOINTS / "demo" / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert shipped["next_word"]["rows"] == metrics["rows"]
    records = [json.loads(line) for line in
               (CHECKPOINTS / "demo" / "eval" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [c.as_dict() for c in compare(records, resamples=metrics["significance"][0]["resamples"])] == \
        metrics["significance"]


def test_build_defaults_and_the_cards_rebuild_command_are_the_shipped_recipe():
    """`python -m demo_build` with no budget flags, and the REBUILD command the demo card prints, train the backbones
    the shipped build_log.json records (steps, en->he dropout), so the documented command rebuilds what ships."""
    import shlex

    from demo_build.build import parse_args
    from demo_build.cards import REBUILD

    log = json.loads((CHECKPOINTS / "demo" / "build_log.json").read_text())["stages"]
    shipped = {"steps_he_en": log["he-en"]["info"]["step_budget"], "steps_en_he": log["en-he"]["info"]["step_budget"],
               "steps_lm": log["lm"]["info"]["step_budget"], "en_he_dropout": log["en-he"]["info"]["dropout"]}
    for args in (parse_args([]), parse_args(shlex.split(REBUILD)[3:])):
        assert {k: getattr(args, k) for k in shipped} == shipped
