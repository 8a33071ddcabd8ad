"""The paper presets through their ordinary hub-id path, on tiny stand-ins written by `python -m tall_model.standins
--size tiny` (published configs, tokenizer formats and vocabulary sizes; small widths). The full-size run of the
same code is `python -m benchmarks.bench_paper` (see benchmarks/RESULTS.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from transformers import AutoTokenizer

from tall_model.known_configs import (
    KNOWN_CONFIGS,
    KNOWN_GENERATION_CONFIGS,
    KNOWN_TOKENIZER_SIZES,
    QWEN_SPECIAL_TOKENS,
)
from tall_model.standins import TINY_SHAPES, installed_snapshot, preset_repos, write_standins

REPO = Path(__file__).resolve().parent.parent
PREFIX = "ויהי דבר יהוה אל יונה בן אמתי"
FORMATS = {"marian": {"source.spm", "target.spm", "vocab.json", "tokenizer_config.json"},
           "bloom": {"tokenizer.json", "tokenizer_config.json"},
           "qwen2": {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"}}


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("hf-home")
    write_standins("paper-bloomz", home, size="tiny", log=lambda message: None)
    write_standins("paper-qwen", home, size="tiny", log=lambda message: None)  # adds Qwen; reuses the translators
    return home


def run(args: list[str], hf_home: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("repo", list(KNOWN_CONFIGS))
def test_standins_have_the_hub_cache_layout_and_published_files(hf_home, repo):
    snapshot = installed_snapshot(hf_home / "hub", repo)
    assert snapshot is not None and snapshot.parent.parent.name == "models--" + repo.replace("/", "--")
    assert (snapshot.parent.parent / "refs" / "main").read_text() == snapshot.name
    for link in snapshot.iterdir():  # every file a relative link to a blob named by its content
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve().name == hashlib.sha256(link.read_bytes()).hexdigest()
    known = dict(KNOWN_CONFIGS[repo])
    kind = known.pop("model_type")
    config = json.loads((snapshot / "config.json").read_text())
    assert config["model_type"] == kind
    nested = config.get("rope_parameters") or {}  # transformers 5 keeps rope_theta there
    assert {k: config.get(k, nested.get(k)) for k in known if k not in TINY_SHAPES[kind]} == {
        k: v for k, v in known.items() if k not in TINY_SHAPES[kind]}
    generation = json.loads((snapshot / "generation_config.json").read_text())
    assert {k: generation.get(k) for k in KNOWN_GENERATION_CONFIGS[repo]} == KNOWN_GENERATION_CONFIGS[repo]
    names = {p.name for p in snapshot.iterdir()}
    assert FORMATS[kind] | {"config.json", "generation_config.json", "model.safetensors"} <= names
    tokenizer = AutoTokenizer.from_pretrained(snapshot)
    specials = len(QWEN_SPECIAL_TOKENS) if kind == "qwen2" else 0
    assert len(tokenizer) == KNOWN_TOKENIZER_SIZES[repo] + specials
    if kind == "marian":
        assert (tokenizer.eos_token_id, tokenizer.pad_token_id) == (known["eos_token_id"], known["pad_token_id"])
        assert tokenizer.convert_ids_to_tokens(known["pad_token_id"]) == "<pad>"
    else:
        assert tokenizer.eos_token_id == known["eos_token_id"]


def test_hub_cache_lookup_finds_them_by_repo_id(hf_home, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    for preset in ("paper-bloomz", "paper-qwen"):
        for repo in preset_repos(preset):
            found = huggingface_hub.try_to_load_from_cache(repo, "model.safetensors")
            assert isinstance(found, str) and found.startswith(str(hf_home / "hub"))


def test_paper_bloomz_round_trip_through_the_hub_id_path(hf_home):
    """Load by hub id, predict, one training step, load its checkpoint, save, reload afresh: same prediction."""
    proc = run(["-m", "benchmarks.bench_paper", "--stage", "roundtrip", "--batch", "2", "--words", "9"], hf_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["trained_weights_changed"] and report["same_output"] and report["steps"] == 1
    assert report["after"]["word"] and report["after"]["candidates"]
    assert all(folder.startswith(str(hf_home / "hub")) for folder in report["folders"].values())


def test_paper_qwen_predicts_from_the_cli(hf_home):
    proc = run(["-m", "tall_model", "--preset", "paper-qwen", "--device", "cpu", "--json", PREFIX], hf_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["word"] and answer["pieces"] and answer["prefix"] == PREFIX


def test_a_missing_backbone_is_named_and_the_cli_exits_nonzero(tmp_path):
    proc = run(["-m", "tall_model", "--preset", "paper-bloomz", PREFIX], tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Helsinki-NLP/opus-mt-tc-big-he-en" in proc.stderr and "HF_HUB_OFFLINE=1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_app_lists_a_paper_preset_only_when_its_backbones_resolve(hf_home, tmp_path, monkeypatch):
    from tall_app.models import available_presets, choose_preset, missing_presets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert "paper-bloomz" not in available_presets() and "tiny" in available_presets()
    assert "Helsinki-NLP/opus-mt-tc-big-he-en" in missing_presets()["paper-bloomz"]
    preset, notice = choose_preset("paper-bloomz")
    assert preset in ("demo", "tiny") and "paper-bloomz" in notice and "not available" in notice
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    assert {"paper-bloomz", "paper-qwen"} <= set(available_presets())
    assert choose_preset("paper-qwen") == ("paper-qwen", "")
