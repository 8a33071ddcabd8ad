"""A real browser (Debian's chromium, driven by Playwright) against the app on the tiny preset: predict, look at
the heatmap, compare, upload a corpus, train a few steps with the live progress and loss plot, then predict with
the new checkpoint. Screenshots go to artifacts/screenshots/ (one per tab is copied to docs/screenshots/).

Skipped only when chromium is not installed (CI installs it); the playwright package (pip, never
`playwright install`) drives Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tall_app.testing import HE, running_app, write_corpus

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "artifacts" / "screenshots"
DOCS = REPO / "docs" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLOW = 180_000  # ms: the shared CI machine is slow, the model is not

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    from playwright import sync_api  # required once chromium is there: pip install playwright==1.65.2

    tmp = tmp_path_factory.mktemp("browser")
    SHOTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    with running_app(tmp) as (url, _, service), sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-profile-"), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.set_default_timeout(SLOW)
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#prefix textarea").wait_for()
        try:
            yield page, service, tmp
        finally:
            context.close()


def dismiss_toasts(page) -> None:
    for button in page.locator(".toast-close").all():
        if button.is_visible():
            button.click()


def shot(page, name: str, docs: bool = False) -> None:
    dismiss_toasts(page)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs:
        shutil.copyfile(path, DOCS / f"{name}.png")


def predict(page, text: str):
    page.locator("#prefix textarea").fill(text)
    page.locator("#predict-btn").click()


def wait_for_word(page, previous: str = "") -> str:
    page.wait_for_function(
        "prev => { const b = document.querySelector('#word bdi'); return b && b.textContent.trim() && "
        "document.querySelector('#word').innerText !== prev; }", arg=previous, timeout=SLOW)
    return page.locator("#word bdi").inner_text().strip()


def heatmap_labels(page, elem: str) -> list[str]:
    page.locator(f"#{elem} .js-plotly-plot .heatmaplayer, #{elem} .js-plotly-plot g.hm").first.wait_for()
    return page.locator(f"#{elem} .xtick text").all_text_contents()


def test_predict_shows_the_word_pipeline_and_heatmaps(browser_page):
    page, _, _ = browser_page
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
    shot(page, "predict", docs=True)


def test_compare_tab(browser_page):
    page, _, _ = browser_page
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-btn").click()
    table = page.locator("#compare-table")
    table.get_by_text("naive").first.wait_for()
    assert table.get_by_text("tall").first.is_visible()
    shot(page, "compare", docs=True)


def test_train_a_few_steps_then_predict_with_the_new_checkpoint(browser_page):
    page, service, tmp = browser_page
    page.get_by_role("tab", name="Train").click()
    page.locator("#corpus-file input[type=file]").set_input_files(str(write_corpus(tmp / "genesis.txt")))
    page.locator("#corpus-report").get_by_text("16 kept").wait_for()
    page.locator("#run-name input, #run-name textarea").first.fill("browser run")
    page.locator("#train-start").click()
    page.locator("#train-status").get_by_text("Started run browser-run").wait_for()
    page.locator('#train-progress .tall-progress[data-state="running"], '
                 '#train-progress .tall-progress[data-state="finished"]').first.wait_for()
    page.locator('#train-progress .tall-progress[data-state="finished"]').wait_for(timeout=2 * SLOW)
    page.locator("#loss-plot .js-plotly-plot .scatterlayer .trace").first.wait_for()
    assert "finished" in page.locator("#train-status").inner_text()
    page.locator('#run-zip a[download="browser-run.zip"]').wait_for()  # the run, zipped for download
    shot(page, "train", docs=True)

    page.get_by_role("tab", name="Predict").click()
    page.locator("#checkpoint input").click()
    page.get_by_role("option", name="browser-run/best").first.click()
    predict(page, HE)
    page.locator("#notes").get_by_text("adapters browser-run/best").wait_for()  # the new checkpoint answered
    assert page.locator("#word bdi").inner_text().strip()
    shot(page, "predict-trained")
