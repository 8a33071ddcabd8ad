"""A run's owner may mark it private (then only they can predict with it, compare or evaluate it; shipped
checkpoints and other people's public runs stay open), and on a Space with Hugging Face OAuth the run owner is the
signed-in user, with an optional OAuth-only mode for the Train tab. Nothing here reaches the Hub: the OAuth profile
is constructed as Gradio would inject it."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import gradio.routes
import pytest

from tall_app.blocks import build_app
from tall_app.models import NO_CHECKPOINT
from tall_app.owners import NotYourRun, PrivateRun, SignInRequired, claim, is_private, owner_key
from tall_app.service import AppService
from tall_app.ui import visitor
from tests.helpers import FAST, HE, running_app, tiny_service, write_corpus

ALICE, BOB = owner_key(None, "session-alice"), owner_key(None, "session-bob")
PRIVATE = "is private: only the person who started it can use it"


def _saved_run(svc: AppService, name: str, owner: str | None) -> str:
    """A real, loadable checkpoint `name/best` (the tiny preset's untrained adapters), owned by `owner`."""
    from tall_model.checkpoint import save_pretrained

    save_pretrained(svc.cache.get("tiny", None).model, svc.root / name / "best")
    claim(svc.root / name, owner)
    return f"{name}/best"


def _names(choices) -> list[str]:
    return [value for _, value in choices]


def test_a_private_run_is_only_for_its_owner(tmp_path):
    svc = tiny_service(tmp_path)
    mine, public = _saved_run(svc, "alices", ALICE), _saved_run(svc, "carols", owner_key(None, "session-carol"))
    assert svc.predict(HE, "tiny", mine, owner=BOB).details["word"]  # public by default
    with pytest.raises(NotYourRun, match="mark private or public only your own runs"):
        svc.set_run_private("alices", True, BOB)
    assert "only you can predict" in svc.set_run_private("alices", True, ALICE)
    assert is_private(svc.root / "alices")
    for refused in (lambda: svc.predict(HE, "tiny", mine, owner=BOB),
                    lambda: svc.compare(HE, "tiny", mine, owner=BOB),
                    lambda: svc.results(mine, BOB),
                    lambda: svc.after_checkpoint(mine, "tiny", "greedy", BOB),
                    lambda: svc.compare_checkpoints(HE, "tiny", public, "tiny", mine, owner=BOB),
                    lambda: svc.batch(str(write_corpus(tmp_path / "b.txt", verses=3)), "tiny", mine, owner=BOB)):
        with pytest.raises(PrivateRun, match=f"Run 'alices' {PRIVATE}"):
            refused()
    assert mine not in _names(svc.checkpoint_choices(BOB)) and mine not in _names(svc.checkpoint_choices())
    assert public in _names(svc.checkpoint_choices(BOB))  # other people's public runs stay open
    assert ("alices/best  (tiny) · private", mine) in svc.checkpoint_choices(ALICE)
    assert svc.predict(HE, "tiny", mine, owner=ALICE).details["word"]
    assert svc.predict(HE, "tiny", public, owner=BOB).details["word"]
    assert svc.predict(HE, "tiny", NO_CHECKPOINT, owner=BOB).details["word"]
    assert svc.predict(HE, "tiny", mine).details["word"]  # a local call from Python is trusted
    assert "public" in svc.set_run_private("alices", False, ALICE)
    assert svc.predict(HE, "tiny", mine, owner=BOB).details["word"]


def test_what_cannot_be_made_private(tmp_path):
    svc = tiny_service(tmp_path)
    _saved_run(svc, "made-outside", None)
    with pytest.raises(ValueError, match="not started from this app .* stays public"):
        svc.set_run_private("made-outside", True, ALICE)
    with pytest.raises(ValueError, match="does not exist yet: start it first"):
        svc.set_run_private("not-yet", True, ALICE)
    with pytest.raises(ValueError, match="reserved|shipped"):
        svc.set_run_private("demo", True, ALICE)


def test_private_run_over_the_server_for_two_sessions(tmp_path):
    from gradio_client import Client

    svc = tiny_service(tmp_path)
    model = svc.cache.get("tiny", None).model

    def saving_runner(config, sentences, callbacks):  # a "run" that saves one real checkpoint at once
        from tall_model.checkpoint import save_pretrained

        callbacks.on_start(1, 0)
        save_pretrained(model, Path(config.out) / "best")
        return {"stopped": False}

    svc.jobs.runner = saving_runner
    with running_app(tmp_path, svc) as (url, _, service):
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        from gradio_client import handle_file

        args = [handle_file(str(write_corpus(tmp_path / "g.txt"))), "alices", "tiny", 1, 1e-3, 4, 200, 0, 0]
        assert "Started run alices" in alice.predict(*args, api_name="/train_start")[0]
        assert service.jobs.wait(30)
        for client in (alice, bob):  # both pages list the new run while it is public
            assert "alices/best" in str(client.predict(NO_CHECKPOINT, api_name="/refresh_checkpoints"))
        assert "someone else" in bob.predict("alices", True, api_name="/train_private")
        assert "only you can predict" in alice.predict("alices", True, api_name="/train_private")
        predict = [HE, "tiny", "alices/best", "greedy", 0.7, 50, 0.95, 0, 1, 1, True, 1, 1, True]
        with pytest.raises(Exception, match=PRIVATE):  # bob's page still shows it: refused with the reason
            bob.predict(*predict, api_name="/predict")
        word_html, *_ = alice.predict(*predict, api_name="/predict")
        assert word_html
        assert "alices/best" not in str(bob.predict("alices/best", api_name="/refresh_checkpoints"))
        assert "alices/best" in str(alice.predict("alices/best", api_name="/refresh_checkpoints"))


def _profile(username: str) -> gr.OAuthProfile:
    """What Gradio injects for a user signed in with Hugging Face (its `userinfo`)."""
    return gr.OAuthProfile({"name": username.title(), "preferred_username": username,
                            "profile": f"https://huggingface.co/{username}", "picture": ""})


def test_the_owner_is_the_signed_in_hugging_face_user():
    browser = SimpleNamespace(username=None, session_hash="tab-1")
    other_tab = SimpleNamespace(username=None, session_hash="tab-2")
    assert visitor(browser) == "session:tab-1"  # the default, unchanged: the browser session
    assert visitor(browser, None) == "session:tab-1"  # not signed in
    assert visitor(browser, _profile("alice")) == visitor(other_tab, _profile("alice")) == "hf:alice"
    assert visitor(SimpleNamespace(username="bob", session_hash="t"), None) == "user:bob"  # --auth
    assert visitor(None) is None


def _handler(blocks: gr.Blocks, api_name: str):
    return next(f.fn for f in blocks.fns.values() if f.api_name == api_name)


def test_oauth_only_mode_refuses_the_train_tab_without_sign_in(tmp_path, monkeypatch):
    release = threading.Event()

    def waiting(config, sentences, callbacks):
        callbacks.on_start(10, 0)
        while not (release.is_set() or callbacks.should_stop()):
            release.wait(0.01)
        return {"stopped": True}

    svc = AppService("tiny", root=tmp_path / "checkpoints", overrides=FAST, demo_directory=tmp_path / "no-demo",
                     runner=waiting, auth_mode="oauth",
                     train_options={"translation_cache": str(tmp_path / "t.sqlite"), "model": {"decoding": FAST}})
    for name, value in (("SYSTEM", "spaces"), ("SPACE_ID", "someone/tall"), ("OAUTH_CLIENT_ID", "client-id")):
        monkeypatch.setenv(name, value)  # a Space with `hf_oauth: true`, as Gradio sees one
    attached = []
    monkeypatch.setattr(gradio.routes, "attach_oauth", attached.append)  # the real login routes talk to the Hub
    blocks = build_app(service=svc)
    assert any(isinstance(b, gr.LoginButton) for b in blocks.blocks.values()) and attached
    start, stop, download = (_handler(blocks, n) for n in ("train_start", "train_stop", "train_download"))
    private = _handler(blocks, "train_private")
    request = SimpleNamespace(username=None, session_hash="tab-1")
    form = [str(write_corpus(tmp_path / "c.txt")), "alices", "tiny", 1, 1e-3, 4, 200, 0, 0]
    status, *_ = start(*form, request, None)
    assert "Sign in with Hugging Face" in status and "to start a run" in status and not svc.jobs.is_running()
    assert "Sign in with Hugging Face" in stop(request, None)[0]
    assert "to mark a run private" in private("alices", True, request, None)
    with pytest.raises(gr.Error, match="Sign in with Hugging Face .* to download a run"):
        download("alices", request, None)
    for call in (lambda: svc.push_run("alices", "me/tall", BOB), lambda: svc.run_zip("alices", BOB)):
        with pytest.raises(SignInRequired):
            call()
    status, *_ = start(*form, request, _profile("alice"))  # signed in: the run is alice's, whatever the tab
    assert "Started run alices" in status and svc.jobs.is_running()
    other_tab = SimpleNamespace(username=None, session_hash="tab-2")
    assert "someone else" in stop(other_tab, _profile("bob"))[0] and svc.jobs.is_running()
    assert "Stopping" in stop(other_tab, _profile("alice"))[0]
    release.set()
    assert svc.jobs.wait(10)
    assert str(download("alices", other_tab, _profile("alice"))).endswith("alices.zip")
    assert "only you can predict" in private("alices", True, request, _profile("alice"))


def test_default_mode_is_unchanged_and_oauth_mode_needs_a_space(tmp_path, monkeypatch):
    for name in ("SYSTEM", "SPACE_ID", "OAUTH_CLIENT_ID", "TALL_APP_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    blocks = build_app(service=tiny_service(tmp_path))
    assert not any(isinstance(b, gr.LoginButton) for b in blocks.blocks.values())
    assert blocks.service.auth_mode == "session"
    with pytest.raises(ValueError, match="needs Hugging Face OAuth: run the app as a Space with `hf_oauth: true`"):
        build_app("tiny", auth_mode="oauth")
    with pytest.raises(ValueError, match="Unknown auth mode 'github'"):
        tiny_service(tmp_path).__class__("tiny", auth_mode="github")
