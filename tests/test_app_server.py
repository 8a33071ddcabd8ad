"""The app served over HTTP (tiny preset, free port, in this process), called with gradio_client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tall_app.paths import CHECKPOINTS_ROOT, SHIPPED_CHECKPOINTS
from tall_model import Decoding
from tests.helpers import HE, running_app, tiny_service, tree_hashes, write_corpus

NONE = "(none: untrained adapters)"
D = Decoding()  # the decoding controls' defaults
API_NAMES = {"predict", "load_example", "bridge_attention", "decoder_attention", "decoding_mode", "select_checkpoint",
             "refresh_checkpoints", "compare", "evaluation_results", "check_corpus", "train_start", "train_resume",
             "train_stop", "train_poll", "train_download", "on_load",  # benchmarks/bench_app.py and clients use them
             "attribution", "attribute_word", "export_figure", "download_analysis", "compare_checkpoints",
             "batch_predict", "train_private"}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*future.no_silent_downcasting",
                                        "ignore:The copy keyword is deprecated")
PREFIXES = [HE, "קום לך אל נינוה העיר הגדולה", "וימת אלימלך איש נעמי", "ויאמר אלהים יהי אור"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from gradio_client import Client

    tmp = tmp_path_factory.mktemp("app")
    with running_app(tmp) as (url, blocks, service):
        yield Client(url, verbose=False), service, tmp


def call_predict(client, prefix=HE, checkpoint=NONE, mode="greedy", seed=0):
    return client.predict(prefix, "tiny", checkpoint, mode, D.temperature, D.top_k, D.top_p, seed, 1, 1, True, 2, 1,
                          False, api_name="/predict")


def plot(value) -> dict:
    return json.loads(value["plot"])


def test_every_api_name_is_served(served):
    import app  # the module-level Blocks a Space serves

    assert {fn.api_name for fn in app.demo.fns.values() if fn.api_name} == API_NAMES
    client, _, _ = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert API_NAMES - {"load_example"} <= {name.lstrip("/") for name in endpoints}  # Examples' event is unlisted


def test_the_decoding_radio_starts_on_the_default_models_own_choice():
    import app  # the demo's adapters choose the best whole word (the demo preset); the paper's presets go by pieces

    radios = [b for b in app.demo.blocks.values() if type(b).__name__ == "Radio" and b.label == "Decoding"]
    expected = "greedy, best whole word" if app.demo.service.preset == "demo" else "greedy"
    assert radios and all(r.value == expected for r in radios)


def test_predict_returns_a_word_and_heatmap_data(served):
    client, _, _ = served
    word_html, pipeline, notes, candidates, pieces, bridge, decoder, details, *sliders = call_predict(client)
    assert details["word"] and details["word"] in word_html and details["translation"] in pipeline
    assert pieces["data"][0][0] == details["pieces"][0]["piece"]
    heat = plot(bridge)["data"][0]
    z = np.asarray(heat["z"], dtype=float)
    q, k = details["bridge_in_attention"]["shape"][2:]
    assert heat["type"] == "heatmap" and z.shape == (q, k)
    assert np.allclose(z.sum(axis=1), 1.0, atol=1e-4)
    assert len(set(heat["x"])) == k and all(x[0] in "\u2066\u2067" for x in heat["x"])  # isolated, unique labels
    dec = plot(decoder)
    assert "head 1" in dec["layout"]["title"]["text"] and "layer 2" in dec["layout"]["title"]["text"]
    assert plot(candidates)["data"][0]["type"] == "bar"
    assert [s["maximum"] for s in sliders] == [2, 4, 2, 4]


def test_ten_concurrent_predicts_all_succeed(served):
    client, _, _ = served
    jobs = [client.submit(PREFIXES[i % len(PREFIXES)], "tiny", NONE, "sampling" if i % 2 else "greedy",
                          D.temperature, D.top_k, D.top_p, i, 1, 1, True, 1, 1, True, api_name="/predict")
            for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda job: job.result(timeout=300), jobs))
    assert len(results) == 10
    for i, result in enumerate(results):
        details = result[7]
        assert details["word"] and details["prefix"] == PREFIXES[i % len(PREFIXES)]
        assert details["sampled"] == bool(i % 2)


@pytest.mark.parametrize("prefix, checkpoint, message", [
    ("", NONE, "empty"), ("hello world", NONE, "no Hebrew letter"),
    (HE, "../../etc", "not in the list of choices|not a"),
])
def test_bad_input_is_a_clear_error(served, prefix, checkpoint, message):
    from gradio_client.exceptions import AppError

    client, _, _ = served
    with pytest.raises(AppError, match=message):
        call_predict(client, prefix, checkpoint)


def test_bad_corpus_is_reported(served, tmp_path):
    from gradio_client import handle_file

    client, _, _ = served
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    report = client.predict(handle_file(str(empty)), 200, api_name="/check_corpus")
    assert "Cannot use this file" in report and "empty" in report


def test_train_over_the_api_then_predict_with_the_new_checkpoint(served, tmp_path):
    from gradio_client import handle_file

    client, service, _ = served
    corpus = handle_file(str(write_corpus(tmp_path / "genesis.txt")))
    report = client.predict(corpus, 200, api_name="/check_corpus")
    assert "**16 kept**" in report
    args = [corpus, "api run", "tiny", 1, 1e-3, 4, 200, 0, 0]
    status, progress, *_ = client.predict(*args, api_name="/train_start")
    assert "Started run api-run" in status and "running" in progress
    busy, *_ = client.predict(*args[:1], "other", *args[2:], api_name="/train_start")  # one job at a time
    assert "already running" in busy
    assert service.jobs.wait(300)
    progress, loss, status, dropdown, archive, *_ = client.predict(NONE, api_name="/train_poll")
    assert 'data-state="finished"' in progress and "finished" in status, (progress, status)
    assert any(trace["name"] == "training loss" for trace in plot(loss)["data"])
    assert archive and str(archive).endswith("api-run.zip")
    assert "api-run/best" in [c[1] for c in dropdown["choices"]]
    again, *_ = client.predict(*args, api_name="/train_start")
    assert "already exists" in again  # a finished run is not overwritten
    client.predict(NONE, api_name="/refresh_checkpoints")
    # choosing the run sets its preset and its own greedy word choice (tiny: piece by piece)
    assert client.predict("api-run/best", "mid", "greedy, best whole word", api_name="/select_checkpoint") == \
        ("tiny", "greedy")
    details = call_predict(client, HE, "api-run/best")[7]
    assert details["word"]


def test_stop_keeps_a_resumable_checkpoint_and_resume_finishes(served, tmp_path):
    import time

    from gradio_client import handle_file

    client, service, _ = served
    corpus = handle_file(str(write_corpus(tmp_path / "genesis31.txt", 31)))
    args = [corpus, "stop-me", "tiny", 2, 1e-3, 1, 200, 0, 0]  # 2 epochs of batch 1: ~60 steps
    client.predict(*args, api_name="/train_start")
    assert service.jobs.is_running()
    assert call_predict(client, PREFIXES[1])[7]["word"]  # predictions keep working while a job trains
    deadline = time.time() + 300
    while service.train_snapshot().step < 1 and time.time() < deadline:
        time.sleep(0.1)
    status, _ = client.predict(api_name="/train_stop")
    assert "Stopping" in status
    assert service.jobs.wait(300)
    stopped = service.train_snapshot()
    assert stopped.state == "stopped" and stopped.step < stopped.total_steps, stopped
    assert (service.root / "stop-me" / "last" / "model.safetensors").is_file()
    status, *_ = client.predict(*args, api_name="/train_resume")
    assert "Resumed run stop-me" in status
    assert service.jobs.wait(300)
    done = service.train_snapshot()
    assert done.state == "finished" and done.step == done.total_steps == stopped.total_steps, done.error
    assert done.steps[0]["step"] == 1  # the loss curve continues from before the stop


def test_a_run_named_like_a_shipped_checkpoint_is_refused(tmp_path):
    """The app on the repository's own checkpoints/ folder: starting, resuming or zipping a run called like a
    shipped checkpoint is a clear error, the trainer never runs, and the shipped folder stays byte-identical."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    shipped = CHECKPOINTS_ROOT / SHIPPED_CHECKPOINTS[0]
    assert shipped.is_dir()
    before = tree_hashes(shipped)
    calls = []
    service = tiny_service(tmp_path, root=CHECKPOINTS_ROOT, runner=lambda *args: calls.append(args) or {})
    with running_app(tmp_path, service) as (url, _, _):
        client = Client(url, verbose=False)
        corpus = handle_file(str(write_corpus(tmp_path / "genesis.txt")))
        for api in ("/train_start", "/train_resume"):
            for name in ("demo", "Demo", " demo/"):
                status, *_ = client.predict(corpus, name, "tiny", 1, 1e-3, 4, 200, 0, 0, api_name=api)
                assert "reserved" in status and "checkpoints/demo/" in status and "another run name" in status
        with pytest.raises(AppError, match="reserved"):
            client.predict("demo", api_name="/train_download")
    assert calls == [] and not service.jobs.is_running() and service.train_snapshot().state == "idle"
    assert tree_hashes(shipped) == before


def test_predict_on_the_shipped_demo_whose_bridges_have_one_layer(tmp_path):
    """The app's default model is the shipped demo, whose depth-1 bridges give attention maps of a single layer.
    Predict must still answer over the API (Gradio refuses a slider whose range is one value): that layer slider is
    fixed at 1, and the decoder's, with several layers, stays movable."""
    from gradio_client import Client

    from tall_app.service import AppService

    service = AppService("demo", train_options={"translation_cache": str(tmp_path / "translations.sqlite")})
    with running_app(tmp_path, service) as (url, _, _):
        client = Client(url, verbose=False)
        out = client.predict("ויהי דבר יהוה אל יונה בן", "demo", service.default_checkpoint(),
                             "greedy, best whole word", D.temperature, D.top_k, D.top_p, 0, 1, 1, True, 1, 1, True,
                             api_name="/predict")
    details, sliders = out[7], out[8:]
    assert details["word"] and details["bridge_in_attention"]["shape"][0] == 1  # one bridge-in layer
    bridge_layer, _, decoder_layer, _ = sliders
    assert (bridge_layer["value"], bridge_layer["interactive"]) == (1, False)
    assert decoder_layer["maximum"] > 1 and decoder_layer["interactive"] is True
