"""Hostile files and names: links in a run folder, corrupt or truncated checkpoints, simultaneous Start requests,
and server paths in messages for the browser."""

from __future__ import annotations

import threading
import time
import zipfile

import pytest

from tall_app.blocks import build_app
from tall_app.jobs import JobBusy
from tall_app.paths import list_checkpoints, public_message, zip_checkpoint
from tall_model.checkpoint import save_pretrained
from tests.helpers import HE, tiny_service, write_corpus


def test_zip_export_does_not_follow_links(tmp_path):
    root = tmp_path / "checkpoints"
    run = root / "mine"
    (run / "last").mkdir(parents=True)
    (run / "last" / "model.safetensors").write_bytes(b"weights")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd").write_text("root:x:0:0")
    (run / "history.json").symlink_to(secret / "passwd")  # a file link out of the run
    (run / "last" / "more").symlink_to(secret, target_is_directory=True)  # a folder link out of the run
    (run / ".last.staging").mkdir()
    archive = zip_checkpoint(run, out_dir=tmp_path / "zips", root=root)
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        assert names == ["mine/", "mine/last/", "mine/last/model.safetensors"]
        assert all(b"root:x" not in zf.read(n) for n in names if not n.endswith("/"))


@pytest.fixture(scope="module")
def broken_tree(tmp_path_factory):
    """A service whose checkpoints/ holds a good checkpoint and three broken ones."""
    tmp = tmp_path_factory.mktemp("hostile")
    svc = tiny_service(tmp)
    model = svc.cache.get("tiny", None).model
    for name in ("good", "cut", "garbled", "noconfig"):
        save_pretrained(model, svc.root / name / "best")
    weights = svc.root / "cut" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy that stopped half-way
    (svc.root / "garbled" / "best" / "model.safetensors").write_bytes(b"\xff" * 64)
    config = svc.root / "noconfig" / "best" / "config.json"
    config.write_text(config.read_text()[:100])  # truncated JSON
    return tmp, svc


def test_broken_checkpoints_are_listed_as_unusable_with_their_reason(broken_tree):
    _, svc = broken_tree
    problems = {c.name: c.problem for c in list_checkpoints(svc.root)}
    assert problems["good/best"] == ""
    assert problems["cut/best"].startswith("model.safetensors is truncated:")
    assert "model.safetensors is truncated or not a safetensors file" in problems["garbled/best"]
    assert problems["noconfig/best"] == "config.json is damaged (not a JSON object)"
    labels = dict((value, label) for label, value in svc.checkpoint_choices())
    assert labels["cut/best"].startswith("cut/best  (unusable: model.safetensors is truncated")
    assert labels["good/best"] == "good/best  (tiny)"


def test_broken_checkpoints_break_nothing_else(broken_tree):
    from tall_app.ui import user_message

    tmp, svc = broken_tree
    build_app(service=svc)  # the page builds (selector included) with broken checkpoints in the tree
    for name in ("cut/best", "garbled/best", "noconfig/best"):
        with pytest.raises(ValueError) as caught:
            svc.predict(HE, "tiny", name)
        shown = user_message(caught.value, svc)
        assert f"The checkpoint '{name}' is unusable:" in shown and str(tmp) not in shown
    assert svc.predict(HE, "tiny", "good/best").details["word"] is not None  # the others still predict


def test_no_server_path_reaches_the_browser(tmp_path):
    root = tmp_path / "srv" / "checkpoints"
    text = (f"{root}/run-1/last/model.safetensors is not readable; upload {tmp_path}/gradio/abc/corpus.txt "
            f"failed; see {root.resolve()}/run-1 and 3/4 http://example.org/x")
    shown = public_message(text, root)
    assert str(tmp_path) not in shown
    assert shown == ("checkpoints/run-1/last/model.safetensors is not readable; upload corpus.txt failed; see "
                     "checkpoints/run-1 and 3/4 http://example.org/x")


def test_two_simultaneous_starts_make_exactly_one_job(tmp_path):
    release, runs = threading.Event(), []

    def slow_runner(config, sentences, callbacks):
        runs.append(config.out)
        release.wait(30)
        return {"step": 1}

    svc = tiny_service(tmp_path, runner=slow_runner)
    corpus = write_corpus(tmp_path / "corpus.txt")
    barrier, outcomes = threading.Barrier(2), []

    def start(name):
        barrier.wait()
        try:
            outcomes.append(("started", svc.train_start(str(corpus), name, "tiny").run_name))
        except JobBusy as err:
            outcomes.append(("busy", str(err)))

    threads = [threading.Thread(target=start, args=(name,)) for name in ("same", "same")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    time.sleep(0.2)
    release.set()
    assert svc.jobs.wait(30)
    assert sorted(kind for kind, _ in outcomes) == ["busy", "started"]
    assert len(runs) == 1 and "already running" in dict(outcomes)["busy"]


def test_backbones_loaded_by_two_threads_at_once_are_right():
    """The app predicts while its training job starts: both load backbones at the same time (found by the load test:
    a concurrently loaded LM came out with an untied head and the checkpoint was refused)."""
    from tall_model import preset_config
    from tall_model.backbones import load_backbones

    config = preset_config("tiny")
    expected = load_backbones(config).dims()
    barrier, dims = threading.Barrier(3), []

    def load_one():
        barrier.wait()
        dims.append(load_backbones(config).dims())

    threads = [threading.Thread(target=load_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert dims == [expected] * 3
