"""The server's memory under many visitors: Gradio's sessions are dropped when they are gone for good
(tall_app.sessions.SessionSweeper, which reads Gradio's StateHolder: these tests fail if its shape changes), and
glibc's free memory goes back to the system (tall_model.memory)."""

from __future__ import annotations

import datetime
import subprocess
import sys

import gradio as gr
import pytest

from tall_app.blocks import free_port, launch
from tall_model.config import REPO_ROOT
from tall_model.memory import Trimmer, allocator_stats
from tests.helpers import HE, running_app


def _later(seconds: float) -> datetime.datetime:
    return datetime.datetime.now() + datetime.timedelta(seconds=seconds)


def test_idle_and_closed_sessions_are_dropped_with_their_state():
    from gradio_client import Client

    deleted = []
    with gr.Blocks() as blocks:
        box = gr.Textbox()
        memory = gr.State(None, delete_callback=deleted.append)
        box.submit(lambda text, _: (text, text), [box, memory], [box, memory], api_name="remember")
    launch(blocks, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True, session_idle_seconds=600)
    try:
        clients = [Client(blocks.local_url, verbose=False) for _ in range(3)]
        for i, client in enumerate(clients):
            client.predict(f"value {i}", api_name="/remember")
        holder, sweeper = blocks.state_holder, blocks.sweeper
        assert len(holder.session_data) == 3
        assert sweeper.sweep() == 0  # all three just used
        holder.session_data[clients[0].session_hash].is_closed = True  # its tab closed (the heartbeat stopped)
        assert sweeper.sweep(_later(sweeper.closed_seconds + 1)) == 1
        assert clients[0].session_hash not in holder.session_data and deleted == ["value 0"]
        assert sweeper.sweep(_later(599)) == 0  # the open ones stay while under the idle limit
        assert sweeper.sweep(_later(601)) == 2
        assert len(holder.session_data) == 0 and len(holder.time_last_used) == 0
        assert sorted(deleted) == ["value 0", "value 1", "value 2"]
        assert clients[1].predict("again", api_name="/remember") == "again"  # a dropped session starts afresh
        assert len(holder.session_data) == 1
    finally:
        blocks.sweeper.stop()
        blocks.close()


def test_the_app_drops_a_gone_visitors_prediction(tmp_path):
    from gradio_client import Client

    with running_app(tmp_path) as (url, blocks, _):
        visitor = Client(url, verbose=False)
        visitor.predict(HE, "tiny", "(none: untrained adapters)", "greedy", 0.7, 50, 0.95, 0, 1, 1, True, 1, 1, True,
                        api_name="/predict")
        session = blocks.state_holder.session_data[visitor.session_hash]
        assert any(type(v).__name__ == "Prediction" for v in session.state_data.values())
        assert blocks.sweeper.sweep(_later(blocks.sweeper.idle_seconds + 1)) >= 1
        assert visitor.session_hash not in blocks.state_holder.session_data


FREED_BUT_KEPT = """
import psutil
from tall_model.memory import release_free_memory
process, chunks, pins = psutil.Process(), [], []
for _ in range(2000):  # 200 MB in 100 kB blocks (under the mmap threshold), each followed by a small live one, so
    chunks.append(bytearray(b"x" * 100_000))  # the freed blocks are holes malloc keeps, not the top of its heap
    pins.append(bytearray(b"p" * 600))
before = process.memory_info().rss
del chunks
freed = process.memory_info().rss
assert release_free_memory()
print(before, freed, process.memory_info().rss)
"""


@pytest.mark.skipif(allocator_stats() is None, reason="glibc only")
def test_free_memory_goes_back_to_the_system():
    # in a fresh process: what this one allocated before would decide where the blocks land
    out = subprocess.run([sys.executable, "-c", FREED_BUT_KEPT], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT)
    before, freed, trimmed = (int(v) for v in out.stdout.split())
    assert freed > before - 100 * 2**20  # freed, but glibc keeps (most of) it
    assert trimmed < before - 150 * 2**20  # malloc_trim(0) hands it back


def test_trimming_is_throttled():
    trim = Trimmer(min_interval=60)
    assert trim() is (allocator_stats() is not None)
    assert trim() is False and trim.count <= 1
