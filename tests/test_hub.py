"""Adapters through the Hub, the PEFT way: load by repo id from the local Hugging Face cache, push with
upload_folder. The Hub cannot be reached here: the upload is the one call a test records instead of making; the
folder it is handed is checked file by file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest

from tall_model import load, preset_config
from tall_model.backbones import load_backbones
from tall_model.checkpoint import CheckpointError, save_pretrained
from tall_model.hub import push_to_hub
from tall_model.predict import predict
from tall_model.standins import install_snapshot
from training import train as train_module

PREFIX = "ויהי דבר יהוה אל יונה"
REPO_ID = "someone/tall-tiny-adapters"


class RecordingApi:
    """Stands in for HfApi at the network boundary: records the calls and what the uploaded folder held."""

    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        self.calls.append(("upload_folder", repo_id, kwargs, files))
        return f"https://huggingface.co/{repo_id}/commit/0"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    model = load(preset_config("tiny").changed({"decoding": {"translation_max_new_tokens": 6}}), seed=3)
    return save_pretrained(model, tmp_path_factory.mktemp("ckpt") / "adapters")


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch, tiny_checkpoint) -> Path:
    """A Hugging Face cache holding the checkpoint under REPO_ID, the way `hf download` leaves it."""
    cache = tmp_path / "hub"
    files = tmp_path / "files"
    files.mkdir()
    for p in tiny_checkpoint.iterdir():
        (files / p.name).write_bytes(p.read_bytes())
    install_snapshot(files, cache, REPO_ID)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_load_by_repo_id_from_the_local_cache(hub_cache, tiny_checkpoint):
    by_id, by_folder = load(REPO_ID), load(tiny_checkpoint)
    assert REPO_ID in by_id.source
    a, b = predict(by_id, PREFIX), predict(by_folder, PREFIX)
    assert (a.word, [c.prob for c in a.candidates]) == (b.word, [c.prob for c in b.candidates])


def test_a_repo_id_missing_offline_is_named(hub_cache):
    with pytest.raises(CheckpointError, match="someone/not-there.*HF_HUB_OFFLINE=1"):
        load("someone/not-there")


def test_a_repo_for_other_backbones_is_refused_naming_both_sides(hub_cache):
    other = load_backbones(preset_config("tiny-qwen"))
    with pytest.raises(CheckpointError, match="other backbones.*in the checkpoint.*as loaded from"):
        load(REPO_ID, backbones=other)


def test_push_uploads_exactly_the_checkpoint_with_a_card_for_the_repo(tiny_checkpoint, tmp_path):
    last = tmp_path / "last"  # a resumable last/ also holds optimizer and RNG state: those stay home
    shutil.copytree(tiny_checkpoint, last)
    (last / "optimizer.safetensors").write_bytes(b"state")
    RecordingApi.calls = []
    url = push_to_hub(last, REPO_ID, api=RecordingApi())
    (create, repo, _), (upload, repo2, kwargs, files) = RecordingApi.calls
    assert (create, repo, upload, repo2) == ("create_repo", REPO_ID, "upload_folder", REPO_ID) and REPO_ID in url
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert files["model.safetensors"] == (tiny_checkpoint / "model.safetensors").read_bytes()
    card = files["README.md"].decode()
    assert f"load('{REPO_ID}')" in card and "load('PATH')" not in card
    config = json.loads(files["config.json"])
    for role in ("lr_hr_translator", "llm", "hr_lr_translator"):
        assert f"`{config['config'][role]}`" in card and config["backbone_fingerprints"][role] in card
    with pytest.raises(ValueError):
        push_to_hub(tiny_checkpoint, "not a repo id", api=RecordingApi())


def test_training_cli_pushes_the_best_checkpoint(tmp_path, monkeypatch):
    from tall_model.tiny import bible_lines

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(bible_lines(40)[0][:10]), encoding="utf-8")
    monkeypatch.setattr("tall_model.hub.HfApi", RecordingApi)
    RecordingApi.calls = []
    code = train_module.main(["--preset", "tiny", "--data", str(corpus), "--out", str(tmp_path / "run"),
                              "--max-steps", "1", "--batch-size", "2", "--threads", "1", "--device", "cpu",
                              "--model", '{"decoding": {"translation_max_new_tokens": 6}}',
                              "--translation-cache", str(tmp_path / "t.sqlite"), "--push-to-hub", REPO_ID])
    assert code == 0
    upload = [c for c in RecordingApi.calls if c[0] == "upload_folder"]
    assert len(upload) == 1 and upload[0][1] == REPO_ID
    assert upload[0][3]["model.safetensors"] == (tmp_path / "run" / "best" / "model.safetensors").read_bytes()
    assert train_module.main(["--preset", "tiny", "--data", str(corpus), "--push-to-hub", "a/b/c"]) == 2


def test_the_app_pushes_a_run_only_with_a_token(tmp_path, monkeypatch, tiny_checkpoint):
    from tall_app.blocks import build_app
    from tests.helpers import tiny_service

    svc = tiny_service(tmp_path)
    shutil.copytree(tiny_checkpoint, svc.root / "my-run" / "best")
    svc.hub_api = RecordingApi()
    RecordingApi.calls = []
    assert REPO_ID in svc.push_run("my-run", REPO_ID)
    assert RecordingApi.calls[-1][0] == "upload_folder"
    with pytest.raises(ValueError, match="not a Hub repo id"):
        svc.push_run("my-run", "../../etc")
    with pytest.raises(ValueError, match="no saved checkpoint"):
        svc.push_run("other-run", REPO_ID)
    monkeypatch.setattr("tall_model.hub.get_token", lambda: None)
    assert "train_push" not in {d.get("api_name") for d in build_app(service=svc).config["dependencies"]}
    monkeypatch.setattr("tall_model.hub.get_token", lambda: "hf_test")
    assert "train_push" in {d.get("api_name") for d in build_app(service=svc).config["dependencies"]}
