"""The app's plain functions (tall_app/): figures, formatting, names, checkpoints, and one real tiny-model
prediction path. No server here (the Train side is in test_app_jobs.py; the Decoding radio's choices in
test_app_decoding.py)."""

from __future__ import annotations

import json
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tall_app import figures, formatting, jobs, paths
from tall_app.examples import BUILTIN_EXAMPLES, example_prefixes
from tall_app.models import NO_CHECKPOINT, choose_preset
from tall_app.predicting import check_prefix
from tall_model import preset_config
from tall_model.predict import AttentionMap
from tall_model.word_list import demo_word_list

from helpers import fake_checkpoint

REPO = Path(__file__).resolve().parent.parent

HE = "ויהי דבר יהוה אל יונה בן אמתי"
RLI, LRI, PDI = "\u2067", "\u2066", "\u2069"


def softmax_map(layers=2, heads=3, queries=4, keys=5, seed=0, q_tokens=None, k_tokens=None) -> AttentionMap:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(layers, heads, queries, keys, generator=g).softmax(-1)
    return AttentionMap(w, q_tokens or [f"q{i}" for i in range(queries)],
                        k_tokens or ["בר", "א", "בר", "▁", "ית"][:keys] + [f"k{i}" for i in range(max(0, keys - 5))])


# --------------------------------------------------------------------------- labels and figures

def test_labels_are_isolated_unique_and_directional():
    labels = figures.axis_labels(["בר", "בר", " Israel", "", "12"])
    assert len(set(labels)) == 5  # duplicates stay separate categories
    assert labels[0].startswith(RLI) and PDI in labels[0]  # Hebrew: right-to-left isolate
    assert labels[2].startswith(LRI) and "·Israel" in labels[2]  # spaces made visible
    assert figures.strip_isolates(labels[3]).startswith("∅")  # empty token still visible
    assert labels[4].endswith(" 5")  # position index makes a numeric-looking token a unique category
    assert figures.clean_token("a\u202eb") == "ab"  # bidi overrides inside tokens are dropped
    assert "&lt;/s&gt;" in figures.axis_labels(["</s>"])[0]  # not read as Plotly markup


def test_heatmap_rows_sum_to_one_and_mean_over_heads():
    amap = softmax_map()
    fig, note = figures.attention_figure(amap, 1, None, title="t", query_name="q", key_name="k", keys_rtl=True)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (4, 5) and note == ""
    assert np.allclose(z.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(z, amap.weights[1].mean(0).numpy(), atol=1e-6)
    assert fig.layout.xaxis.autorange == "reversed"  # Hebrew keys read right to left
    assert len(set(fig.data[0].x)) == 5 and all(x.startswith((RLI, LRI)) for x in fig.data[0].x)
    fig2, _ = figures.attention_figure(amap, 0, 2, title="t", query_name="q", key_name="k")
    assert np.allclose(np.asarray(fig2.data[0].z), amap.weights[0, 2].numpy(), atol=1e-6)
    assert "head 3" in fig2.layout.title.text and "layer 1" in fig2.layout.title.text


def test_long_maps_are_capped_and_rows_still_sum_to_one():
    amap = softmax_map(1, 2, queries=60, keys=90)
    fig, note = figures.attention_figure(amap, 0, None, title="t", query_name="q", key_name="k", max_tokens=20)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (20, 20)
    assert np.allclose(z.sum(axis=1), 1.0, atol=1e-5)  # earlier keys summed into one column
    assert "last 20 of 60" in note and "first 71 of 90" in note
    assert note in fig.layout.title.text


def test_attention_matrix_refuses_missing_layer_or_head():
    amap = softmax_map()
    with pytest.raises(ValueError, match="layer 3"):
        figures.attention_matrix(amap.weights, 2, None)
    with pytest.raises(ValueError, match="head 4"):
        figures.attention_matrix(amap.weights, 0, 3)


def test_candidate_and_training_figures():
    fig = figures.candidate_figure([("לאמר", 0.5), ("אל", 0.2), ("לאמר", 0.1)])
    assert list(fig.data[0].x) == [0.5, 0.2, 0.1] and len(set(fig.data[0].y)) == 3
    assert fig.layout.yaxis.autorange == "reversed"
    tf = figures.training_figure([{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}],
                                 [{"step": 2, "metrics": {"accuracy": 0.25}}])
    assert [t.name for t in tf.data] == ["training loss", "held-out accuracy (%)"]
    assert list(tf.data[1].y) == [25.0]
    assert figures.accuracy_of({"dev_exact_match_pct": 12.5}) == pytest.approx(0.125)
    assert figures.training_figure([], []).layout.annotations  # an empty plot says so


# --------------------------------------------------------------------------- formatting

def test_html_is_escaped_and_hebrew_is_rtl():
    class P:  # the fields pipeline_html reads
        prefix_used, translation, word, truncated = "<b>שלום</b>", "<script>x</script>", "עולם", True
        llm_next = [(" the", 0.5), ("<i>", 0.1)]

    html = formatting.pipeline_html(P)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert html.count('dir="rtl"') >= 2 and "cut from the left" in html
    assert 'dir="rtl"' in formatting.word_html("עולם", 0.25) and "25.00%" in formatting.word_html("עולם", 0.25)
    assert "(no word)" in formatting.word_html("")
    assert "&lt;" in formatting.status_html("<x>", "error")


# --------------------------------------------------------------------------- names and checkpoints

@pytest.mark.parametrize("raw, expected", [
    ("my run 1", "my-run-1"), ("../../etc/passwd", "etc-passwd"), ("a/../b", "a-b"), ("run_2-x", "run_2-x"),
    ("..", None), ("", None), ("ריצה", None), ("x" * 100, "x" * 64), ("-_-ok-_-", "ok"),
])
def test_sanitize_run_name(raw, expected):
    if expected is None:
        with pytest.raises(paths.RunNameError, match="run name"):
            paths.sanitize_run_name(raw)
    else:
        assert paths.sanitize_run_name(raw) == expected


def test_checkpoints_are_listed_by_safe_name_and_never_resolved_from_paths(tmp_path):
    root = tmp_path / "checkpoints"
    fake_checkpoint(root / "run-a" / "best")
    fake_checkpoint(root / "run-a" / "last")
    fake_checkpoint(root / ".hidden-tmp" / "best")  # staging folders are skipped
    fake_checkpoint(root / "bad name" / "best")  # unsafe names are skipped
    (root / "demo" / "he-en").mkdir(parents=True)
    (root / "demo" / "he-en" / "config.json").write_text("{}")  # a backbone, not adapters
    outside = fake_checkpoint(tmp_path / "elsewhere")
    (root / "link").symlink_to(outside)
    names = [c.name for c in paths.list_checkpoints(root)]
    assert names == ["run-a/best", "run-a/last"]
    assert paths.resolve_checkpoint("run-a/best", root).path == root / "run-a" / "best"
    for bad in ("../elsewhere", "/etc", "link", "run-a/../run-a/best", str(outside), "run-a"):
        with pytest.raises(ValueError):
            paths.resolve_checkpoint(bad, root)
    assert paths.run_directory("new run", root) == root / "new-run"


@pytest.mark.parametrize("raw", ["demo", "Demo", " demo ", "demo/", "DEMO"])
def test_shipped_checkpoint_names_are_reserved(tmp_path, raw):
    with pytest.raises(paths.RunNameError, match="reserved.*checkpoints/demo/.*another run name"):
        paths.check_run_name(raw)
    with pytest.raises(paths.RunNameError, match="reserved"):
        paths.run_directory(raw, tmp_path)
    with pytest.raises(paths.RunNameError, match="reserved"):
        jobs.train_config_from_form(raw, "tiny", root=tmp_path)
    assert paths.check_run_name("demo-2") == "demo-2" and paths.run_directory("my-demo", tmp_path).name == "my-demo"


def test_every_tracked_checkpoint_folder_is_shipped():
    """A folder that git tracks under checkpoints/ is a shipped model: the app must treat its name as reserved."""
    listed = subprocess.run(["git", "ls-files", "checkpoints"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    folders = {Path(f).parts[1] for f in listed if len(Path(f).parts) > 2}
    assert folders, "git tracks no checkpoint folder: is this a checkout?"
    assert folders <= set(paths.SHIPPED_CHECKPOINTS), folders - set(paths.SHIPPED_CHECKPOINTS)
    assert all(paths.is_shipped(f) for f in folders)


def test_zip_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    fake_checkpoint(root / "run-z" / "best")
    archive = paths.zip_checkpoint(root / "run-z", tmp_path / "out", root)
    with zipfile.ZipFile(archive) as z:
        assert {"run-z/best/config.json", "run-z/best/model.safetensors"} <= set(z.namelist())
    with pytest.raises(ValueError):
        paths.zip_checkpoint(tmp_path, tmp_path / "out", root)  # outside the root


def test_results_table_finds_the_last_evaluation(tmp_path):
    from tall_app.compare import results_table

    ckpt = fake_checkpoint(tmp_path / "checkpoints" / "run-r" / "best")
    rows, note = results_table(ckpt)
    assert rows == [] and "No evaluation results" in note
    row = {"dataset": "test", "approach": "tall", "examples": 10, "accuracy": 0.1, "sampled_accuracy": 0.05,
           "sampled_ci_half_width": 0.01, "top5_accuracy": 0.3, "mean_log_prob": -5.5, "empty_greedy": 0.0}
    (ckpt.parent / "eval").mkdir()
    (ckpt.parent / "eval" / "metrics.json").write_text(json.dumps({"rows": [row], "started": "x", "seeds": [0, 1]}))
    rows, note = results_table(ckpt)
    assert rows == [["test", "tall", 10, "10.00", "5.00 ± 1.00", "30.00", "-5.500", "0.00"]]
    assert "metrics.json" in note
    assert "untrained" in results_table(None)[1]


# --------------------------------------------------------------------------- presets, examples, decoding

def test_demo_falls_back_to_tiny_with_a_notice(tmp_path):
    preset, notice = choose_preset("demo", tmp_path / "missing")
    assert preset == "tiny" and "not built yet" in notice
    for sub in ("tall", "he-en", "lm", "en-he"):
        (tmp_path / "demo" / sub).mkdir(parents=True)
        (tmp_path / "demo" / sub / "config.json").write_text("{}")
    assert choose_preset("demo", tmp_path / "demo") == ("demo", "")
    assert choose_preset("tiny", tmp_path / "missing") == ("tiny", "")
    with pytest.raises(ValueError, match="Unknown preset"):
        choose_preset("../x")


def test_examples_from_a_test_list_else_builtin(tmp_path):
    prefixes, source = example_prefixes(tmp_path)
    assert prefixes == BUILTIN_EXAMPLES and "Ruth" in source
    lines = [json.dumps({"text": "ו/יהי דבר יהוה אל יונה בן אמתי ל/אמר"}), json.dumps({"prefix": "קום לך"}), "{bad"]
    (tmp_path / "test.jsonl").write_text("\n".join(lines), encoding="utf-8")
    prefixes, source = example_prefixes(tmp_path)
    assert prefixes == [HE, "קום לך"] and "test.jsonl" in source
    manifest = tmp_path / "demo"
    manifest.mkdir()
    (manifest / "split_manifest.json").write_text(json.dumps({"test_books": ["Jonah"]}))
    prefixes, source = example_prefixes(manifest)
    assert prefixes[0] == HE and "test-book verses" in source  # Jonah 1:1 without its last word


@pytest.mark.parametrize("text, match", [("", "empty"), ("   ", "empty"), ("hello world", "no Hebrew"),
                                         (None, "must be text"), ("א" * 3000, "at most")])
def test_bad_prefixes_have_clear_messages(text, match):
    with pytest.raises(ValueError, match=match):
        check_prefix(text)


# --------------------------------------------------------------------------- the real tiny model

@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from tall_app.service import AppService

    root = tmp_path_factory.mktemp("checkpoints")
    return AppService("tiny", root=root, overrides={"translation_max_new_tokens": 6},
                      demo_directory=root / "no-demo")


def test_predict_with_tiny_model_and_redraw_without_rerunning(service, monkeypatch):
    out = service.predict(HE, "tiny", NO_CHECKPOINT)
    pred = out.prediction
    assert out.details["word"] == pred.word and pred.word
    assert out.bridge_shape == (2, 4) and out.decoder_shape[0] == 2
    assert out.details["bridge_in_attention"]["shape"][2:] == [len(pred.bridge_in_attention.query_tokens),
                                                                len(pred.bridge_in_attention.key_tokens)]
    assert "tiny" in out.view.notes and out.view.pieces[0][0] == pred.pieces[0].piece

    import tall_app.predicting as predicting

    monkeypatch.setattr(predicting, "predict", lambda *a, **k: pytest.fail("the model must not run again"))
    fig, _ = service.attention(pred, "bridge", 2, 3, False)
    z = np.asarray(fig.data[0].z)
    assert z.shape == tuple(pred.bridge_in_attention.weights.shape[2:])
    assert np.allclose(z.sum(axis=1), 1.0, atol=1e-4)
    fig, _ = service.attention(pred, "decoder", 9, 9, True)  # out-of-range selectors are clamped
    assert "layer 2" in fig.layout.title.text and "mean over heads" in fig.layout.title.text
    assert service.cache.get("tiny", None) is service.cache.get("tiny", NO_CHECKPOINT)  # cached


def test_training_words_mode_predicts_only_listed_words(service):
    words = set(demo_word_list().read_text(encoding="utf-8").split())
    free = service.predict(HE, "tiny", NO_CHECKPOINT).prediction
    listed = service.predict(HE, "tiny", NO_CHECKPOINT, "greedy, training words only").prediction
    assert listed.word in words and all(c.word in words for c in listed.candidates)
    assert any(c.word not in words for c in free.candidates)  # the tiny model left alone makes words up


def test_ngram_mode_predicts_as_the_model_does_with_the_demo_ngram(service):
    """The app's n-gram mode is tall_model's fusion with the shipped file and its λ: same word, same candidates."""
    from tall_model.config import demo_dir
    from tall_model.predict import predict
    from tall_model.word_ngram import NGRAM_FILE, load_ngram

    shown = service.predict(HE, "tiny", NO_CHECKPOINT, "greedy, with the word n-gram").prediction
    model = service.cache.get("tiny", None).model
    ngram = demo_dir() / NGRAM_FILE
    direct = predict(model, HE, translations=[shown.translation], output_attentions=False,
                     decoding=model.config.decoding.replace(word_choice="best_candidate", ngram=str(ngram),
                                                            ngram_weight=load_ngram(ngram).fusion_weight))
    assert shown.word == direct.word == shown.candidates[0].word
    assert [c.word for c in shown.candidates] == [c.word for c in direct.candidates]
    free = service.predict(HE, "tiny", NO_CHECKPOINT, "greedy, best whole word").prediction
    assert [c.word for c in shown.candidates] != [c.word for c in free.candidates]


def test_prior_mode_refuses_adapters_other_than_the_demos(service):
    """The demo's prior was estimated for the demo's adapters: on any other model it is an error, never applied."""
    with pytest.raises(ValueError, match="other adapters or another en→he decoder"):
        service.predict(HE, "tiny", NO_CHECKPOINT, "greedy, prior-corrected")


def test_checkpoint_round_trip_mismatch_and_corruption(service):
    from tall_model.checkpoint import save_pretrained

    loaded = service.cache.get("tiny", None)
    save_pretrained(loaded.model, service.root / "unit-run" / "best")
    assert ("unit-run/best  (tiny)", "unit-run/best") in service.checkpoint_choices()
    assert service.after_checkpoint("unit-run/best", "mid", "sampling") == ("tiny", "sampling")
    out = service.predict(HE, "tiny", "unit-run/best")
    assert out.details["word"]
    with pytest.raises(ValueError, match="trained on preset 'tiny'.*selected preset is 'tiny-qwen'"):
        service.cache.get("tiny-qwen", "unit-run/best")
    bad = service.root / "broken" / "best"
    save_pretrained(loaded.model, bad)
    (bad / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unusable: model.safetensors is truncated or not a safetensors file"):
        service.predict(HE, "tiny", "broken/best")
    with pytest.raises(ValueError, match="not a checkpoint name|No checkpoint named"):
        service.predict(HE, "tiny", "../../etc")


def test_the_greedy_choice_follows_the_chosen_checkpoints_own(service, monkeypatch):
    """The Decoding radio starts on, and a checkpoint switches a plain greedy choice to, the model's own way of
    choosing the word: piece by piece for the paper's presets, best whole word for the demo's; other choices stay."""
    import json

    from tall_model.checkpoint import save_pretrained

    loaded = service.cache.get("tiny", None)
    for name, choice in (("pieces-run", "pieces"), ("whole-run", "best_candidate")):
        save_pretrained(loaded.model, service.root / name / "best")
        config = service.root / name / "best" / "config.json"
        meta = json.loads(config.read_text())
        meta["config"]["decoding"]["word_choice"] = choice
        config.write_text(json.dumps(meta))
    def after(checkpoint, mode, preset):
        return service.after_checkpoint(checkpoint, preset, mode)[1]

    assert after("whole-run/best", "greedy", "tiny") == "greedy, best whole word"
    assert after("pieces-run/best", "greedy, best whole word", "tiny") == "greedy"
    assert after("pieces-run/best", "sampling", "tiny") == "sampling"
    assert after("whole-run/best", "greedy, prior-corrected", "tiny") == "greedy, prior-corrected"
    assert after(NO_CHECKPOINT, "greedy", "demo") == "greedy, best whole word"  # the demo preset's own
    assert after(NO_CHECKPOINT, "greedy, best whole word", "paper-bloomz") == "greedy"
    with pytest.raises(ValueError, match="No checkpoint named"):
        after("gone/best", "greedy", "tiny")
    import tall_app.service as service_module

    looked_up = []
    real = service_module.resolve_checkpoint
    monkeypatch.setattr(service_module, "resolve_checkpoint", lambda *a: looked_up.append(a) or real(*a))
    assert service.after_checkpoint("whole-run/best", "mid", "greedy") == ("tiny", "greedy, best whole word")
    assert len(looked_up) == 1  # one directory lookup per choice, not one per question asked of it


def test_backbones_are_shared_by_content_not_by_path(service):
    untrained = service.cache.get("tiny", None).model
    trained = service.cache.get("tiny", "unit-run/best").model  # saved by the round-trip test above
    assert trained.backbones is untrained.backbones  # one checkpoint more costs only its adapters
    config = preset_config("tiny")
    respelled = config.replace(llm=str(Path(config.llm).parent / ".." / Path(config.llm).parent.name / "lm"))
    assert respelled.llm != config.llm and service.cache.backbones_for(respelled) is untrained.backbones


def test_model_cache_loads_once_under_concurrent_requests(tmp_path, monkeypatch):
    import tall_app.models as models

    calls = []
    real = models.load_backbones
    monkeypatch.setattr(models, "load_backbones", lambda config, **kw: calls.append(config) or real(config, **kw))
    cache = models.ModelCache(tmp_path, {"translation_max_new_tokens": 6})
    barrier = threading.Barrier(4)
    results = []

    def get():
        barrier.wait()
        results.append(cache.get("tiny", None))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 4 and all(r is results[0] for r in results) and len(calls) == 1
    assert results[0].model.config.decoding.translation_max_new_tokens == 6 and not results[0].model.training
    with pytest.raises(ValueError, match="Unknown decoding field"):
        models.ModelCache(tmp_path, {"no_such_field": 1})


def test_compare_counts_the_checkpoints_own_ngram(tiny_model, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from baselines.word_ngram import NGRAM_FILE, save_ngram
    from tall_app.compare import approaches_for

    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    save_ngram(run / NGRAM_FILE, ["ויאמר משה אל העם", "ויאמר משה אל העם", "וידבר יהוה אל משה"], 3, "three verses")
    monkeypatch.setattr(tiny_model, "directory", run / "best", raising=False)  # as from_pretrained sets it
    approaches, unavailable = approaches_for(SimpleNamespace(model=tiny_model), tmp_path)
    assert "word-ngram" not in unavailable
    (out,) = approaches["word-ngram"].predict(["ויאמר משה אל"], num_candidates=2)
    assert out.word == "העם" and approaches["word-ngram"].describe()["order"] == 3


def test_compare_shares_the_translation(service):
    result = service.compare(HE, "tiny", NO_CHECKPOINT)
    names = [r[0] for r in result.rows]
    assert names[0] == "tall" and "naive" in names and "direct" in names
    assert result.translation and result.translation in result.notes_markdown()
    assert "soft-prompt" in result.unavailable and "no adapter" in result.unavailable["soft-prompt"]
    assert "not one of the paper's baselines" in result.unavailable["word-ngram"]  # fresh adapters: no n-gram


def test_compare_notes_explain_an_answer_without_hebrew_letters():
    """The demo's LLM-only baselines answer English (direct) or letter runs outside א–ת (fine-tuned: ׯׯׯ, U+05EF);
    the notes say why, so a visitor does not take it for a broken app. Hebrew answers, none and errors get no note."""
    from tall_app.compare import Comparison

    rows = [["tall", "הנביא", "", 0.1], ["direct", "and", "", 0.1], ["fine-tuned", "ׯׯׯׯׯ", "", 0.1],
            ["naive", "(none)", "", 0.1], ["soft-prompt", "(error)", "", 0.1], ["word-ngram", "בן־אמתי", "", 0.0]]
    notes = Comparison(HE, "And the word", rows, {}).notes_markdown()
    assert "*direct* answered `and`, which has no Hebrew letter" in notes
    assert "*fine-tuned* answered `ׯׯׯׯׯ`, which has no Hebrew letter" in notes
    assert notes.count("no Hebrew letter") == 2 and "Why the LLM-only baselines find nothing" in notes
