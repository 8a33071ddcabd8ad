"""The app's Gradio Blocks: a header, the four tabs (`tab_predict`, `tab_compare`, `tab_train`, `tab_batch`) around one
`AppService`, and what the page does when it loads. `app.py` holds the module-level `demo`; tests and the screenshot
script serve their own with `serving(service)`.

API name: on_load (the tabs name their own events).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
from gradio.utils import get_space

from tall_model.memory import limit_arenas

from .figures import empty_figure
from .jobs import progress_html
from .service import AppService
from .sessions import IDLE_SECONDS, SessionSweeper
from .tab_batch import build_batch_tab
from .tab_compare import CompareTab, build_compare_tab
from .tab_predict import PredictTab, build_predict_tab
from .tab_train import TrainTab, build_train_tab
from .ui import CSS, TITLE, USER_ERRORS, checkpoint_dropdown, user_message, visitor

INTRO = ("TALL (arXiv 2506.05057) reads a Hebrew prefix with a frozen he→en translator, passes it through an English "
         "LLM between two trainable bridges, and writes the next word with a frozen en→he decoder.")
NO_ATTENTION = "Predict a word to see the attention."
MAX_UPLOAD = "25mb"
MALLOC_ARENAS = 2  # glibc's default is 8 per core: each keeps its own freed memory (tall_model/memory.py)
SESSION_CAPACITY = 1000  # sessions Gradio keeps at most (its default 10,000 is ~10 GB for this app)


def oauth_on_space() -> bool:
    """Whether this process runs as a Hugging Face Space (as Gradio tells: SYSTEM=spaces and SPACE_ID) with OAuth
    enabled (`hf_oauth: true` in the Space's README metadata sets OAUTH_CLIENT_ID)."""
    return bool(get_space() and os.environ.get("OAUTH_CLIENT_ID"))


def build_app(preset: str | None = None, *, service: AppService | None = None, device: str | None = None,
              dtype: str | None = None, auth_mode: str | None = None, **inference) -> gr.Blocks:
    """The Gradio Blocks of the app around one AppService (tests pass their own, on the tiny preset). `auth_mode`
    (default TALL_APP_AUTH_MODE, else "session"): "oauth" lets only users signed in with Hugging Face use the Train
    tab, and needs a Space with OAuth (ValueError otherwise: off a Space, Gradio's login button would need a local
    Hugging Face login and the network). `inference`: translation_engine and quantize, as tall_model.load's."""
    requested = preset or os.environ.get("TALL_APP_PRESET", "demo")
    mode = service.auth_mode if service is not None else auth_mode or os.environ.get("TALL_APP_AUTH_MODE") or "session"
    if mode == "oauth" and not oauth_on_space():
        raise ValueError("The oauth auth mode needs Hugging Face OAuth: run the app as a Space with `hf_oauth: true` "
                         "in its README metadata (the Space then sets OAUTH_CLIENT_ID).")
    svc = service or AppService(requested, device=device, dtype=dtype, auth_mode=mode, **inference)
    with gr.Blocks(title=TITLE) as blocks:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        if svc.auth_mode == "oauth" or oauth_on_space():  # runs are then owned by the signed-in Hugging Face user
            gr.LoginButton(elem_id="hf-login")
        if svc.notice:
            gr.Markdown(f"⚠️ {svc.notice}", elem_id="preset-notice")
        with gr.Tabs():
            predict = build_predict_tab(svc)
            compare = build_compare_tab(svc, predict.controls)
            train = build_train_tab(svc, predict.controls)
            build_batch_tab(svc, predict.controls)
        _wire_load(blocks, svc, predict, compare, train)
    blocks.service = svc  # for tests and benchmarks
    blocks.requested_preset = svc.preset if service is not None else requested
    return blocks


def _wire_load(blocks: gr.Blocks, svc: AppService, predict: PredictTab, compare: CompareTab,
               train: TrainTab) -> None:
    """On (re)load: the checkpoints found now, a running job's progress, the selected checkpoint's evaluation."""
    def on_load(ckpt, request: gr.Request, profile: gr.OAuthProfile | None):
        snap, owner = svc.train_snapshot(), visitor(request, profile)
        try:
            rows, note = svc.results(ckpt, owner) if ckpt else ([], "")
        except USER_ERRORS as err:  # a checkpoint made private since the page was built
            rows, note = [], user_message(err, svc)
        return (checkpoint_dropdown(svc, ckpt, owner), gr.Timer(active=snap.active), progress_html(snap), note, rows,
                empty_figure(NO_ATTENTION), empty_figure(NO_ATTENTION))

    checkpoint = predict.controls.checkpoint
    blocks.load(on_load, checkpoint, [checkpoint, train.timer, train.progress, compare.results_note,
                                      compare.results_table, predict.bridge.plot, predict.decoder.plot],
                api_name="on_load", show_progress="hidden")


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, *,
           session_idle_seconds: float = IDLE_SECONDS, **kwargs):
    """Launch with the app's queue settings and CSS (Gradio 6 takes css at launch), at most two malloc arenas, and a
    sweeper that drops sessions gone for good (`blocks.sweeper`; see tall_app.sessions)."""
    limit_arenas(MALLOC_ARENAS)  # before the server's worker threads exist
    blocks.queue(default_concurrency_limit=1, max_size=64)
    blocks.sweeper = SessionSweeper(blocks, idle_seconds=session_idle_seconds).start()  # launch() may block
    return blocks.launch(server_name=host, server_port=port, css=CSS, max_file_size=MAX_UPLOAD,
                         state_session_capacity=SESSION_CAPACITY, **kwargs)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def serving(service: AppService, host: str = "127.0.0.1") -> Iterator[tuple[str, gr.Blocks]]:
    """(url, blocks) of the app around `service`, launched in this process on a free port; on exit a running
    training job is stopped and waited for, and the server closed."""
    blocks = build_app(service=service)
    port = free_port(host)
    launch(blocks, host, port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://{host}:{port}/", blocks
    finally:
        service.jobs.stop()
        service.jobs.wait(120)
        blocks.sweeper.stop()
        blocks.close()
