"""Offline checks of the demo data split and (when built) the demo backbones in checkpoints/demo/.

Run with HF_HUB_OFFLINE=1; model checks are skipped when the build has not produced the files yet."""

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from demo_build import data as dd  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "checkpoints" / "demo"
BUILD = REPO / "build" / "demo"


@lru_cache(maxsize=1)
def _aligned():
    return dd.load_aligned_pairs()


@lru_cache(maxsize=1)
def _splits():
    return dd.split_verses(dd.load_verse_pairs(keep_untranslated=True, aligned=_aligned()))


def _tok_dir():
    for d in (DEMO / "he-en", BUILD / "tok" / "marian"):
        if (d / "vocab.json").exists():
            return d
    pytest.skip("no Marian tokenizer built yet")


def test_aligned_pair_count_close_to_reference():
    n = sum(1 for p in _aligned() if p.en)
    assert abs(n - 23089) <= 0.01 * 23089, n
    filtered = dd.load_verse_pairs(aligned=_aligned())
    assert 0.95 * n <= len(filtered) < n  # Deut 5, Exod 20 and a few odd ratios dropped


def test_hebrew_cleaning():
    assert dd.clean_hebrew("ו/יאמר משה ׀ אל ה/עם ס") == "ויאמר משה אל העם"
    assert all("/" not in p.he and "׀" not in p.he for p in _aligned()[:3000])


def test_test_books_held_out():
    s = _splits()
    test_books = set(dd.TEST_BOOKS)
    assert {p.book for p in s["test"]} == test_books
    for name in ("train", "dev"):
        assert not {p.book for p in s[name]} & test_books
    assert not {p.book for p in s["train"]} & {p.book for p in s["dev"]}
    test_ids = {p.id for p in s["test"]}
    assert not test_ids & {p.id for p in s["train"] + s["dev"]}
    # Song of Songs has no English in the DB but its Hebrew stays in the test split
    assert any(p.book == "Song" for p in s["test"])
    assert sum(1 for p in s["test"] if p.en) == 615
    # no English translation of a test verse in the training pairs
    test_en = {p.en for p in s["test"] if p.en}
    assert not test_en & {p.en for p in s["train"]}


def test_built_training_files_hold_no_test_verse():
    train_file = BUILD / "data" / "train.jsonl"
    if not train_file.exists():
        pytest.skip("build/demo/data not written yet")
    ids = {json.loads(line)["id"] for line in train_file.open(encoding="utf-8")}
    assert not {i.split(".")[0] for i in ids} & set(dd.TEST_BOOKS)
    long_test = sorted((p.en for p in _splits()["test"] if len(p.en) > 80), key=len)[-40:]
    test_he = {p.he for p in _splits()["test"]}
    for name in ("lm_train.txt", "lm_train_versions.txt", "train_versions.jsonl"):  # the last two: newer builds
        if (BUILD / "data" / name).exists():
            text = (BUILD / "data" / name).read_text(encoding="utf-8")
            assert not [t for t in long_test if t in text], name
    if (BUILD / "data" / "train_versions.jsonl").exists():
        rows = [json.loads(line) for line in (BUILD / "data" / "train_versions.jsonl").open(encoding="utf-8")]
        assert not {r["book"] for r in rows} & set(dd.TEST_BOOKS) and not {r["he"] for r in rows} & test_he


def test_manifest_matches_recomputation():
    path = DEMO / "split_manifest.json"
    if not path.exists():
        pytest.skip("checkpoints/demo/split_manifest.json not written yet")
    m = json.loads(path.read_text())
    assert not set(m["books"]["train"]) & set(m["books"]["test"])
    assert not set(m["books"]["dev"]) & set(m["books"]["test"])
    assert set(m["test_books"]) == set(dd.TEST_BOOKS)
    assert m["train_ids_sha256"] == dd.train_ids_sha256(_splits()["train"])
    assert m["verse_counts"]["train"] == len(_splits()["train"])
    assert m["training_files"]


def test_tokenizer_marks_word_starts():
    from transformers import AutoTokenizer, MarianTokenizer
    d = _tok_dir()
    tok = MarianTokenizer.from_pretrained(str(d))
    assert type(AutoTokenizer.from_pretrained(str(d))).__name__ == "MarianTokenizer"
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>" and tok.unk_token == "<unk>"
    he = "ויאמר יהוה אל משה לאמר"
    pieces = tok.tokenize(he)
    assert sum(pc.startswith("▁") for pc in pieces) == len(he.split())
    assert all(pc.startswith("▁") for pc in tok.tokenize("And God said"))


def test_he_en_translates_to_english():
    d = DEMO / "he-en"
    if not (d / "model.safetensors").exists():
        pytest.skip("checkpoints/demo/he-en not built yet")
    import torch
    from transformers import MarianMTModel, MarianTokenizer
    torch.set_num_threads(1)
    tok = MarianTokenizer.from_pretrained(str(d))
    model = MarianMTModel.from_pretrained(str(d), dtype=torch.float32).eval()
    verse = next(p for p in _splits()["test"] if p.book == "Ruth")
    with torch.no_grad():
        out = model.generate(**tok([verse.he], return_tensors="pt"), max_new_tokens=40)
    text = tok.decode(out[0], skip_special_tokens=True)
    words = text.split()
    assert words, text
    assert sum(w.isascii() for w in words) / len(words) >= 0.8, text


def test_en_he_config_eager_and_lm_tokenizer():
    if (DEMO / "en-he" / "config.json").exists():
        cfg = json.loads((DEMO / "en-he" / "config.json").read_text())
        assert "eager" in (cfg.get("attn_implementation"), cfg.get("_attn_implementation"))
    if (DEMO / "lm" / "tokenizer.json").exists():
        from transformers import AutoTokenizer, PreTrainedTokenizerFast
        tok = AutoTokenizer.from_pretrained(str(DEMO / "lm"))
        assert isinstance(tok, PreTrainedTokenizerFast)
        assert tok.eos_token and tok.pad_token and tok.bos_token
        assert tok.decode(tok(" And God said")["input_ids"]).strip() == "And God said"


def test_demo_dir_under_budget():
    """Issue 13's budget, the one the README and the demo card state (60 MB, as dir_mb counts: 10^6 bytes)."""
    if not DEMO.exists():
        pytest.skip("no checkpoints/demo")
    size = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert size <= 60e6, size / 1e6
