"""The app's analysis functions without a browser: attribution of any candidate, the logit-lens views, figure
export (kaleido + Debian chromium) and the analysis bundle."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest

from tall_app.analysis import AnalysisState, attribution_html, lens_figure, lens_rows, word_choices
from tall_app.export import chromium_path, safe_name
from tall_app.models import NO_CHECKPOINT
from tests.helpers import HE, tiny_service


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    svc = tiny_service(tmp_path_factory.mktemp("analysis"))
    out = svc.predict(HE, "tiny", NO_CHECKPOINT)
    state = AnalysisState(out.prediction, "tiny", NO_CHECKPOINT)
    return svc, state, svc.attribution(state, None, "integrated_gradients", "hebrew", 8)


def test_attribution_of_the_prediction_and_of_another_candidate(analysed):
    svc, state, first = analysed
    pred = state.prediction
    words = word_choices(pred)
    assert words[0] == pred.word and len(words) == len(set(words)) >= 2
    assert first.state.attribution.word == pred.word and first.details["steps"] == 8
    other = svc.attribution(state, words[1], "input_x_gradient", "english", 8)
    assert other.details["word"] == words[1] and other.details["target"] == "english"
    assert other.state.attribution is not first.state.attribution and state.attribution is None  # state not mutated
    with pytest.raises(ValueError, match="not among"):
        svc.attribution(state, "לאמועמד")
    with pytest.raises(ValueError, match="Predict a word first"):
        svc.attribution(None)


def test_attribution_html_shades_each_hebrew_word_right_to_left(analysed):
    _, _, first = analysed
    a = first.state.attribution
    html = attribution_html(a)
    assert 'dir="rtl"' in html
    assert html.count('class="tall-attr-word"') == len(a.words) == len(HE.split()) + 1  # the words and </s>
    assert all(f">{w}</span>" in html for w in HE.split())


def test_the_summary_says_how_many_steps_and_whether_they_sufficed(analysed):
    """The app adds integrated-gradient steps until complete by default; the summary names the doubling, and warns
    when the error still exceeds 1 % of the change (a fixed count, or the cap)."""
    svc, state, first = analysed
    a = first.state.attribution
    assert a.tried_steps[0] == 8 and a.complete is (abs(a.delta) <= max(1e-3, 0.01 * abs(a.log_prob -
                                                                                       a.baseline_log_prob)))
    fixed = svc.attribution(state, None, "integrated_gradients", "hebrew", 8, False)
    assert fixed.details["tried_steps"] == [8] and fixed.details["steps"] == 8
    change = a.log_prob - a.baseline_log_prob
    doubled = dataclasses.replace(a, steps=32, tried_steps=[8, 16, 32], delta=0.001 * change)
    assert "32 steps, doubled from 8 until complete)" in attribution_html(doubled)
    short = dataclasses.replace(a, steps=8, tried_steps=[8], delta=0.5 * change + 0.01)
    assert "(8 steps; ⚠ the error is above 1% of the change" in attribution_html(short)
    capped = dataclasses.replace(a, steps=128, tried_steps=[16, 32, 64, 128], delta=0.5 * change + 0.01)
    assert "128 steps, doubled from 16 (the most the app tries); ⚠" in attribution_html(capped)
    assert "⚠" not in attribution_html(dataclasses.replace(a, method="input_x_gradient", delta=None,
                                                           baseline_log_prob=None, steps=None, tried_steps=None))


def test_logit_lens_views(analysed):
    _, state, _ = analysed
    lens = state.prediction.logit_lens
    rows = lens_rows(lens)
    assert [r[0] for r in rows] == lens.layers and all(len(r) == 6 for r in rows)
    fig = lens_figure(lens)
    assert list(fig.data[0].z[-1]) == pytest.approx([0.0, 0.30103, 0.47712, 0.60206, 0.69897], abs=1e-4)


def test_analysis_bundle_has_every_part(analysed):
    svc, _, first = analysed
    path = svc.analysis_bundle(first.state)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"prediction.json", "bridge_in_attention.json", "decoder_attention.json", "attribution.json",
                "attribution_words.csv", "logit_lens.json", "logit_lens.csv"} <= names
        attention = json.loads(zf.read("bridge_in_attention.json"))
        prediction = json.loads(zf.read("prediction.json"))
    assert len(attention["weights"]) == prediction["bridge_in_attention"]["shape"][0]
    assert prediction["word"] == first.state.prediction.word and prediction["logit_lens"]["layers"]
    with pytest.raises(ValueError, match="Predict a word first"):
        svc.analysis_bundle(None)


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (apt-get install chromium)")
def test_figures_export_as_png_and_svg(analysed):
    svc, _, first = analysed
    png = svc.export_figure(first.state, "bridge-in attention", "png")
    svg = svc.export_figure(first.state, "attribution", "svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.parent == svc.export_dir
    assert b"<svg" in svg.read_bytes()[:400]
    with pytest.raises(ValueError, match="png or svg"):
        svc.export_figure(first.state, "attribution", "pdf")
    with pytest.raises(ValueError, match="Unknown figure"):
        svc.export_figure(first.state, "../../etc/passwd", "png")
    assert safe_name("../../etc/passwd") == "etc-passwd"


def test_two_checkpoints_side_by_side(analysed, tmp_path):
    from tall_model import load
    from tall_model.checkpoint import save_pretrained

    svc, _, _ = analysed
    base = svc.cache.get("tiny", NO_CHECKPOINT).model
    whole_word = dataclasses.replace(base.config, decoding=base.config.decoding.replace(word_choice="best_candidate"))
    save_pretrained(load(whole_word, backbones=base.backbones, seed=7), svc.root / "seed7")
    out = svc.compare_checkpoints(HE, "tiny", NO_CHECKPOINT, "tiny", "seed7", steps=4)
    assert "**A**" in out.summary and "seed7" in out.summary
    side_a, side_b = out.summary.split("·")[:2]  # each side decodes as its own config says
    assert "; greedy)" in side_a and "greedy (best candidate word)" in side_b
    assert len(out.figures_a) == len(out.figures_b) == 3
    assert [r[0] for r in out.diff_rows][: len(HE.split())] == HE.split()
    assert all(r[3] == pytest.approx(r[2] - r[1], abs=2e-4) for r in out.diff_rows)
    assert any(abs(r[3]) > 0 for r in out.diff_rows)  # other adapters, other attributions
    with pytest.raises(ValueError, match="different backbones"):
        svc.compare_checkpoints(HE, "tiny", NO_CHECKPOINT, "tiny-qwen", NO_CHECKPOINT, steps=4)
