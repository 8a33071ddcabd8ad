"""Dropping the browser sessions Gradio keeps in memory after they are gone.

Gradio keeps, per session, a copy of every component's config with its last value and every `gr.State` (here a
Prediction with its attention maps): about 1 MiB per session for this app (benchmarks/RESULTS.md, "Load test").
It forgets a session only when 10,000 newer ones exist (`state_session_capacity`), and it deletes the State values,
not the session, an hour after the tab closed, so on a public Space every visitor adds to the process for good.
`SessionSweeper` drops whole sessions: one whose browser tab closed (Gradio marks it when the page's heartbeat
stops) after `closed_seconds`, any other (an API client never says goodbye) after `idle_seconds` without a request;
each State's `delete_callback` runs first. A dropped session that comes back starts afresh (a redraw then asks for a
new prediction). This reads Gradio's `StateHolder` (blocks.state_holder), pinned with gradio in requirements.txt;
tests/test_sessions.py fails if its shape changes.
"""

from __future__ import annotations

import datetime
import threading

from tall_model.memory import release_free_memory

IDLE_SECONDS = 1200.0  # 20 minutes without a request
CLOSED_SECONDS = 120.0  # after the tab closed: long enough for a reload to find its session


class SessionSweeper:
    def __init__(self, blocks, idle_seconds: float = IDLE_SECONDS, closed_seconds: float = CLOSED_SECONDS,
                 every: float = 15.0):
        self.blocks, self.idle_seconds, self.closed_seconds, self.every = blocks, idle_seconds, closed_seconds, every
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self, now: datetime.datetime | None = None) -> int:
        """Drop the sessions that are over their time now; how many."""
        holder = getattr(self.blocks, "state_holder", None)
        if holder is None:  # not launched yet
            return 0
        now = now or datetime.datetime.now()
        dropped = []
        with holder.lock:
            for session_id, last_used in list(holder.time_last_used.items()):
                session = holder.session_data.get(session_id)
                limit = self.closed_seconds if getattr(session, "is_closed", False) else self.idle_seconds
                if (now - last_used).total_seconds() > limit:
                    holder.time_last_used.pop(session_id, None)
                    if holder.session_data.pop(session_id, None) is not None:
                        dropped.append(session)
        for session in dropped:  # outside the lock: a callback may take its time
            for component, value, _ in session.state_components:
                component.delete_callback(value)
        if dropped:
            self.dropped += len(dropped)
            release_free_memory()  # what the sessions held goes back to the system, not only to malloc
        return len(dropped)

    def start(self) -> SessionSweeper:
        def loop():
            while not self._stop.wait(self.every):
                self.sweep()

        self._thread = threading.Thread(target=loop, name="tall-session-sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
