"""Many people on one public app: runs have owners (browser session or signed-in user), Stop / Resume / Download
act only on your own runs, a disk quota removes the oldest unowned runs first, and one run is bounded in steps and
time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tall_app.owners import OWNER_FILE, NotYourRun, QuotaError, make_room, owner_key, recorded_owner
from tests.helpers import running_app, tiny_service, write_corpus

ALICE, BOB = owner_key(None, "session-alice"), owner_key("bob", "session-bob")


def waiting_runner(release: threading.Event):
    def run(config, sentences, callbacks):
        callbacks.on_start(10, 0)
        while not (release.is_set() or callbacks.should_stop()):
            time.sleep(0.01)
        (Path(config.out) / "last").mkdir(parents=True, exist_ok=True)
        return {"stopped": not release.is_set(), "max_steps": config.max_steps}
    return run


def test_only_the_owner_may_stop_resume_or_download(tmp_path):
    release = threading.Event()
    svc = tiny_service(tmp_path, runner=waiting_runner(release))
    corpus = str(write_corpus(tmp_path / "c.txt"))
    svc.train_start(corpus, "alices", "tiny", owner=ALICE)
    assert recorded_owner(svc.root / "alices") and "alice" not in (svc.root / "alices" / OWNER_FILE).read_text()
    with pytest.raises(NotYourRun, match="started by someone else: you can stop only your own runs"):
        svc.train_stop(BOB)
    assert svc.jobs.is_running()
    svc.train_stop(ALICE)
    assert svc.jobs.wait(10) and svc.train_snapshot().state == "stopped"
    with pytest.raises(NotYourRun, match="resume only"):
        svc.train_start(corpus, "alices", "tiny", resume=True, owner=BOB)
    with pytest.raises(NotYourRun, match="download only"):
        svc.run_zip("alices", BOB)
    assert svc.run_zip("alices", ALICE).name == "alices.zip"
    release.set()
    svc.train_start(corpus, "alices", "tiny", resume=True, owner=ALICE)
    assert svc.jobs.wait(10)
    assert svc.run_zip("alices").is_file()  # a local call from Python is trusted


def test_two_browser_sessions_over_the_server(tmp_path):
    from gradio_client import Client, handle_file

    release = threading.Event()
    svc = tiny_service(tmp_path, runner=waiting_runner(release))
    with running_app(tmp_path, svc) as (url, _, service):
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        args = [handle_file(str(write_corpus(tmp_path / "g.txt"))), "alices", "tiny", 1, 1e-3, 4, 200, 0, 0]
        status, *_ = alice.predict(*args, api_name="/train_start")
        assert "Started run alices" in status
        refused, _ = bob.predict(api_name="/train_stop")
        assert "started by someone else" in refused and service.jobs.is_running()
        with pytest.raises(Exception, match="download only your own runs"):
            bob.predict("alices", api_name="/train_download")
        stopped, _ = alice.predict(api_name="/train_stop")
        assert "Stopping" in stopped
        assert service.jobs.wait(10)
        assert str(alice.predict("alices", api_name="/train_download")).endswith("alices.zip")
        release.set()


def _run(root, name, size, age, owner=None):
    folder = root / name
    (folder / "last").mkdir(parents=True)
    (folder / "last" / "model.safetensors").write_bytes(b"\0" * size)
    if owner:
        from tall_app.owners import claim
        claim(folder, owner)
    past = time.time() - age
    os.utime(folder, (past, past))
    return folder


def test_quota_removes_the_oldest_unowned_runs_first(tmp_path):
    root = tmp_path / "checkpoints"
    _run(root, "old-unowned", 4000, 300)
    _run(root, "older-owned", 4000, 400, ALICE)
    _run(root, "new-unowned", 4000, 100)
    _run(root, "running", 4000, 500)
    (root / "demo").mkdir()  # shipped: never counted, never removed
    assert make_room(root, 13_000, keep={"running"}) == ["old-unowned"]
    assert sorted(p.name for p in root.iterdir()) == ["demo", "new-unowned", "older-owned", "running"]
    assert make_room(root, 8_500, keep={"running"}) == ["new-unowned"]
    with pytest.raises(QuotaError, match=r"full \(0.0 MB used, the quota is 0.0 MB\) and every remaining run "):
        make_room(root, 10, keep={"running"})
    assert (root / "older-owned").is_dir() and (root / "running").is_dir()


def test_quota_is_checked_when_a_run_starts(tmp_path):
    svc = tiny_service(tmp_path, runner=waiting_runner(threading.Event()))
    svc.quota_bytes = 1000
    _run(svc.root, "someone-elses", 5000, 100, BOB)
    with pytest.raises(QuotaError, match="disk space for training runs is full"):
        svc.train_start(str(write_corpus(tmp_path / "c.txt")), "mine", "tiny", owner=ALICE)
    assert not svc.jobs.is_running()


def test_one_run_is_bounded_in_steps_and_time(tmp_path):
    svc = tiny_service(tmp_path, runner=waiting_runner(threading.Event()))
    svc.max_run_steps, svc.jobs.max_seconds = 50, 0.3
    svc.train_start(str(write_corpus(tmp_path / "c.txt")), "long", "tiny", owner=ALICE)
    assert svc.jobs.wait(10)
    snap = svc.train_snapshot()
    assert snap.state == "stopped" and "trains at most 0.005 min at a time" in snap.message, snap.message
    assert snap.summary["max_steps"] == 50
