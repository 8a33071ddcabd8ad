"""A real browser (Debian's chromium, driven by Playwright) against the app on the tiny preset: predict, look at
the heatmap, compare, upload a corpus, train a few steps with the live progress and loss plot, then predict with
the new checkpoint; and every tab once more on the shipped demo, the model a visitor gets. Screenshots go to pytest's
tmp_path only (the README's come from `python -m tall_app.screenshots`); the browser is launched exactly as that
script launches it.

Skipped only when chromium is not installed (CI installs it); the playwright package (pip, never
`playwright install`) drives Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import pytest

from tall_app.screenshots import (
    SLOW_MS,
    browser_page,
    find_chromium,
    heatmap_labels,
    predict,
    screenshot,
    show_comparison,
    show_training,
    wait_for_word,
)
from tests.helpers import HE, running_app, write_corpus

CHROMIUM = find_chromium()

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    shots = tmp / "screenshots"
    shots.mkdir()
    with running_app(tmp) as (url, _, service), browser_page(url, tmp / "chromium-profile", CHROMIUM) as page:
        yield page, service, tmp, shots


def test_predict_shows_the_word_pipeline_and_heatmaps(browser):
    page, _, _, shots = browser
    predict(page, "")
    page.get_by_text("The prefix is empty").first.wait_for()  # bad input: a clear message, nothing crashes
    predict(page, HE)
    word = wait_for_word(page)
    assert word
    assert page.locator("#prefix textarea").get_attribute("dir") == "rtl"
    assert page.locator("#pipeline .tall-input [dir=rtl]").inner_text().strip() == HE
    assert page.locator("#pipeline .tall-predicted").inner_text().find(word) >= 0
    labels = heatmap_labels(page, "bridge-heatmap")
    hebrew = [t for t in labels if any("\u05d0" <= ch <= "\u05ea" for ch in t)]
    assert hebrew and len(set(labels)) == len(labels), labels  # Hebrew key labels, none merged
    page.locator("#bridge-mean input[type=checkbox]").uncheck()  # redrawn from the stored prediction
    page.locator("#bridge-heatmap .gtitle").get_by_text("layer 1, head 1").wait_for()
    page.locator("#bridge-mean input[type=checkbox]").check()
    page.locator("#bridge-heatmap .gtitle").get_by_text("mean over heads").wait_for()
    heatmap_labels(page, "decoder-heatmap")
    page.locator("#candidates .js-plotly-plot").wait_for()
    assert screenshot(page, shots / "predict.png").stat().st_size > 0


def test_attribution_logit_lens_and_export(browser):
    page, _, _, shots = browser
    predict(page, HE)
    wait_for_word(page)
    words = page.locator("#attr-words .tall-attr-word")
    words.first.wait_for(timeout=SLOW_MS)  # attribution follows every prediction
    assert page.locator("#attr-words").get_attribute("dir") == "rtl"
    assert words.all_text_contents()[: len(HE.split())] == HE.split()
    page.locator("#attr-bars .js-plotly-plot").wait_for()
    first_summary = page.locator(".tall-attr-summary").inner_text()
    assert "completeness error" in first_summary
    page.locator("#attr-word input").click()  # switch the attributed word to the second candidate
    options = page.get_by_role("option")
    second = options.nth(1).inner_text().strip()
    options.nth(1).click()
    page.locator(".tall-attr-summary").get_by_text(f"log P({second})").wait_for(timeout=SLOW_MS)
    lens_cells = page.locator("#lens-table [role=gridcell]").filter(has_text="%)")  # "token (p %)" cells
    lens_cells.first.wait_for()
    assert lens_cells.count() >= 3 * 5  # top-5 for the bridged input and each LLM layer
    page.locator("#lens-heatmap .js-plotly-plot").wait_for()
    page.locator("#export").get_by_text("Export").first.click()
    for fmt in ("png", "svg"):  # the bridge-in heatmap, as PNG then SVG
        page.locator("#export-format").get_by_text(fmt, exact=True).click()
        page.locator("#export-btn").click()
        page.locator(f'#export-file a[download="tall-bridge-in-attention.{fmt}"]').wait_for(timeout=SLOW_MS)
    page.locator("#bundle-btn").click()
    page.locator('#bundle-file a[download="tall-analysis.zip"]').wait_for(timeout=SLOW_MS)
    screenshot(page, shots / "analysis.png")


def test_batch_upload_progress_table_and_csv(browser):
    page, _, tmp, shots = browser
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-file input[type=file]").set_input_files(str(write_corpus(tmp / "batch.txt", verses=24)))
    page.locator("#batch-run").click()
    page.get_by_text("Predicting").first.wait_for(timeout=SLOW_MS)  # the live progress bar
    page.locator("#batch-summary").get_by_text("exact match").wait_for(timeout=SLOW_MS)
    cells = page.locator("#batch-table [role=gridcell]")
    cells.first.wait_for()
    assert cells.count() >= 7 * 2  # rows of prefix, gold, prediction, probability, correct, top5, in_top5
    link = page.locator('#batch-csv a[download="tall-batch.csv"]')
    with page.expect_download() as download:
        link.click()
    text = download.value.path().read_text(encoding="utf-8")
    assert text.startswith("prefix,gold,prediction,probability,correct,top5,in_top5") and text.count("\n") > 2
    screenshot(page, shots / "batch.png")


def test_compare_tab(browser):
    page, _, _, shots = browser
    show_comparison(page)
    assert page.locator("#compare-table").get_by_text("tall").first.is_visible()
    page.locator("#compare-ckpt-btn").click()  # two checkpoints (here: both untrained) on the same prefix
    page.locator("#ckpt-summary").get_by_text("B (").wait_for(timeout=SLOW_MS)
    for side in ("a", "b"):
        page.locator(f"#ckpt-{side}-attribution .js-plotly-plot").wait_for()
        page.locator(f"#ckpt-{side}-bridge .js-plotly-plot").wait_for()
    page.locator("#ckpt-diff [role=gridcell]").first.wait_for()
    screenshot(page, shots / "compare.png")


def test_train_a_few_steps_then_predict_with_the_new_checkpoint(browser):
    page, service, tmp, shots = browser
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-start").click()  # no corpus yet: a clear message, nothing starts
    page.locator("#train-status").get_by_text("No corpus file").wait_for()
    page.locator("#run-name input, #run-name textarea").first.fill("demo")
    page.locator("#train-start").click()  # a shipped checkpoint's name is refused before anything else
    page.locator("#train-status").get_by_text("is reserved").wait_for()
    show_training(page, write_corpus(tmp / "genesis.txt"), "browser run")  # the form's defaults: TrainConfig's
    page.locator("#train-status").get_by_text("finished").wait_for(timeout=SLOW_MS)
    snap = service.train_snapshot()
    assert snap.run_name == "browser-run" and snap.state == "finished" and snap.step == snap.total_steps > 0
    page.locator('#run-zip a[download="browser-run.zip"]').wait_for()  # the run, zipped for download
    assert (service.root / "browser-run" / "best" / "model.safetensors").is_file()
    screenshot(page, shots / "train.png")

    page.get_by_role("tab", name="Predict").click()
    page.locator("#checkpoint input").click()
    page.get_by_role("option", name="browser-run/best").first.click()
    predict(page, HE)
    page.locator("#notes").get_by_text("adapters browser-run/best").wait_for()  # the new checkpoint answered
    assert page.locator("#word bdi").inner_text().strip()
    screenshot(page, shots / "predict-trained.png")


def test_every_tab_on_the_shipped_demo(browser, tmp_path):
    """The model a visitor gets by default: the shipped demo (depth-1 bridges, unlike the tiny preset's two layers; a
    byte-level LM; real baselines), driven through every tab in the browser: predict and redraw the bridge heatmap
    per head, attribute another candidate and attribute to the English, the logit lens, export, compare the
    approaches and two checkpoints, and a batch file. The module's page visits a second app (one playwright per
    process), then goes back. The app reads a copy of the shipped adapters, so nothing under checkpoints/ changes."""
    from tall_app.screenshots import copy_shipped
    from tall_app.service import AppService

    page, _, _, _ = browser
    tiny_url = page.url
    copy_shipped(tmp_path / "checkpoints")
    service = AppService("demo", root=tmp_path / "checkpoints",
                         train_options={"translation_cache": str(tmp_path / "translations.sqlite")})
    with running_app(tmp_path, service) as (url, _, _):
        page.goto(url, wait_until="domcontentloaded")
        predict(page, HE)
        word = wait_for_word(page)
        assert word and page.locator("#pipeline .tall-predicted").inner_text().find(word) >= 0
        page.locator("#bridge-heatmap .gtitle").get_by_text("layer 1, mean over heads").wait_for()
        page.locator("#bridge-mean input[type=checkbox]").uncheck()
        page.locator("#bridge-heatmap .gtitle").get_by_text("layer 1, head 1").wait_for()

        summary = page.locator(".tall-attr-summary")
        summary.get_by_text(f"log P({word})").wait_for(timeout=SLOW_MS)  # attribution follows the prediction
        assert page.locator("#attr-complete input[type=checkbox]").is_checked()
        assert "steps" in summary.inner_text() and "⚠" not in summary.inner_text()
        page.locator("#attr-complete input[type=checkbox]").uncheck()  # a fixed 16 steps leave 1.8 % here: a warning
        summary.get_by_text("⚠").wait_for(timeout=SLOW_MS)
        assert "(16 steps;" in summary.inner_text()
        page.locator("#attr-complete input[type=checkbox]").check()
        page.wait_for_function("() => !document.querySelector('.tall-attr-summary').innerText.includes('⚠')",
                               timeout=SLOW_MS)
        assert page.locator("#attr-words .tall-attr-word").all_text_contents()[: len(HE.split())] == HE.split()
        page.locator("#attr-word input").click()
        second = page.get_by_role("option").nth(1)
        second_word = second.inner_text().strip()
        second.click()
        summary.get_by_text(f"log P({second_word})").wait_for(timeout=SLOW_MS)
        hebrew_summary = summary.inner_text()
        page.locator("#attr-target label").nth(1).click()  # attribute to the English words instead
        page.wait_for_function("prev => document.querySelector('.tall-attr-summary').innerText !== prev",
                               arg=hebrew_summary, timeout=SLOW_MS)
        assert f"log P({second_word})" in summary.inner_text()
        english = "".join(page.locator("#attr-words .tall-attr-word").all_text_contents())
        assert english.strip() and not any("\u05d0" <= ch <= "\u05ea" for ch in english)  # the translation's words
        assert page.locator("#lens-table [role=gridcell]").filter(has_text="%)").count() >= 2 * 5
        page.locator("#export").get_by_text("Export").first.click()
        page.locator("#export-btn").click()
        page.locator('#export-file a[download="tall-bridge-in-attention.png"]').wait_for(timeout=SLOW_MS)
        assert screenshot(page, tmp_path / "predict-demo.png").stat().st_size > 0

        show_comparison(page, HE)
        table = page.locator("#compare-table").inner_text()
        assert all(name in table for name in ("tall", "direct", "naive", "soft-prompt", "fine-tuned"))
        assert page.get_by_text("which has no Hebrew letter").count() >= 1  # the LLM-only baselines, explained
        page.locator("#compare-ckpt-btn").click()
        page.locator("#ckpt-summary").get_by_text("B (").wait_for(timeout=SLOW_MS)
        for side in ("a", "b"):
            page.locator(f"#ckpt-{side}-bridge .js-plotly-plot").wait_for()
        page.locator("#ckpt-diff [role=gridcell]").first.wait_for()

        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-file input[type=file]").set_input_files(str(write_corpus(tmp_path / "batch.txt", 6)))
        page.locator("#batch-run").click()
        page.locator("#batch-summary").get_by_text("6 sentences").wait_for(timeout=SLOW_MS)
        cells = page.locator("#batch-table [role=gridcell]")
        cells.first.wait_for()
        assert cells.count() >= 7 * 6  # prefix, gold, prediction, probability, correct, top5, in_top5
    page.goto(tiny_url, wait_until="domcontentloaded")
