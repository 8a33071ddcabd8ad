"""Locust users for benchmarks/load_test.py: visitors of the app speaking Gradio's own queue protocol (POST
/gradio_api/queue/join, then the session's event stream /gradio_api/queue/data), as the browser does, so a
session keeps its state (the attention redraws reuse the session's last prediction).

Request names are the app's api_names; a refusal because the queue is full (HTTP 503 "Queue is full") is reported
under its own name, "<api> (queue full)", not as a failure. Run by `python -m benchmarks.load_test`, not alone.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid

from locust import HttpUser, between, events, task

PREFIXES = ["ויהי דבר יהוה אל יונה בן אמתי", "ויאמר אלהים יהי", "בראשית ברא אלהים את השמים ואת",
            "ויהי בימי שפט השפטים ויהי רעב", "שיר השירים אשר"]
CHECKPOINT = os.environ.get("TALL_LOAD_CHECKPOINT", "demo/tall")
OWNER_SESSION = os.environ.get("TALL_LOAD_OWNER_SESSION", "loadtest-owner")
_FN: dict[str, int] = {}


def fn_index(client, api_name: str) -> int:
    if not _FN:
        config = client.get("/config", name="config").json()
        for dep in config["dependencies"]:
            if dep.get("api_name"):
                _FN[dep["api_name"]] = dep["id"]
    return _FN[api_name]


class GradioUser(HttpUser):
    """A browser session of the app."""

    abstract = True
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.session = uuid.uuid4().hex[:11]
        self.predicted = False

    def call(self, api_name: str, data: list, expect_error: str | None = None) -> dict | None:
        """Join the queue and read this session's stream until our event completes; fires one locust event."""
        start = time.perf_counter()
        body = {"data": data, "fn_index": fn_index(self.client, api_name), "session_hash": self.session,
                "trigger_id": None, "event_data": None}
        with self.client.post("/gradio_api/queue/join", json=body, name=f"{api_name} (join)",
                              catch_response=True) as joined:
            if joined.status_code == 503:
                joined.success()
                events.request.fire(request_type="QUEUE", name=f"{api_name} (queue full)", response_time=0,
                                    response_length=0, exception=None, context={})
                return None
            if joined.status_code != 200:
                joined.failure(f"join {joined.status_code}: {joined.text[:200]}")
                return None
            event_id = joined.json()["event_id"]
        output, error = None, None
        with self.client.get(f"/gradio_api/queue/data?session_hash={self.session}", stream=True,
                             name="(event stream)", catch_response=True) as stream:
            for line in stream.iter_lines():
                if not line or not line.startswith(b"data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                    continue
                output = msg.get("output") or {}
                if not msg.get("success"):
                    error = str(output.get("error") or output)[:300]
                break
            stream.success()
        elapsed = 1000 * (time.perf_counter() - start)
        failed = None
        if output is None:
            failed = RuntimeError("the stream ended without the result")
        elif error and not (expect_error and expect_error in error):
            failed = RuntimeError(error)
        events.request.fire(request_type="API", name=api_name, response_time=elapsed, response_length=0,
                            exception=failed, context={})
        return output



class Visitor(GradioUser):
    """A person using Predict and Compare: greedy and sampled predictions, attention redraws, comparisons, the
    evaluation results table."""

    weight = 48

    def predict_args(self, sampled: bool) -> list:
        mode = "sampling" if sampled else "greedy"
        return [random.choice(PREFIXES), "demo", CHECKPOINT, mode, 0.7, 50, 0.95, random.randrange(1000)]

    @task(5)
    def predict_greedy(self) -> None:
        if self.call("predict", [*self.predict_args(False), 1, 1, True, 2, 1, False]) is not None:
            self.predicted = True

    @task(3)
    def predict_sampled(self) -> None:
        if self.call("predict", [*self.predict_args(True), 1, 1, True, 2, 1, False]) is not None:
            self.predicted = True

    @task(4)
    def redraw_attention(self) -> None:
        if self.predicted:
            which = random.choice(["bridge", "decoder"])
            self.call(f"{which}_attention", [None, random.randint(1, 2), random.randint(1, 4), random.random() < 0.3])

    @task(1)
    def compare(self) -> None:
        self.call("compare", self.predict_args(False))

    @task(2)
    def evaluation_results(self) -> None:
        self.call("evaluation_results", [CHECKPOINT])


class Trainer(GradioUser):
    """The owner of the running training job: watches its progress."""

    fixed_count = 1

    def on_start(self) -> None:
        self.session, self.predicted = OWNER_SESSION, False

    @task
    def poll(self) -> None:
        self.call("train_poll", [0, CHECKPOINT])


class Intruder(GradioUser):
    """Another visitor who tries to stop and download the owner's run: every attempt must be refused."""

    fixed_count = 1
    wait_time = between(3, 6)

    @task
    def stop_someone_elses_job(self) -> None:
        out = self.call("train_stop", [])  # answered with a refusal in the status box, not an error
        if out is not None and "started by someone else" not in json.dumps(out, ensure_ascii=False):
            events.request.fire(request_type="CHECK", name="train_stop was NOT refused", response_time=0,
                                response_length=0, exception=RuntimeError("an intruder stopped the job"), context={})

    @task
    def download_someone_elses_run(self) -> None:
        self.call("train_download", [os.environ.get("TALL_LOAD_RUN", "owner-run")],
                  expect_error="started by someone else")
