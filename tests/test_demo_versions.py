"""The English versions of the demo build (demo_build.versions, demo_build.data_stage): verse maps verified by text,
broken versions left out and listed, no test-book text in any training file, and the backbones' step budgets."""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

import pytest
import torch

from demo_build import data as dd
from demo_build import versions as vv
from demo_build.build import main as build_main


@lru_cache(maxsize=1)
def _jps() -> list[dd.VersePair]:
    return dd.load_verse_pairs()


def _chapter_pairs(*chapters) -> list[dd.VersePair]:
    return [p for p in _jps() if (p.book, p.chapter) in chapters]


class ShiftedReader(vv.PythonBibleReader):
    """The KJV with the text of chosen chapters moved one verse up (verse v holds verse v+1): a broken map."""

    def __init__(self, name="kjv", shifted=None):
        super().__init__("kjv")
        self.name, self.shifted = name, shifted  # shifted: set of (book, chapter), None = every chapter

    def text(self, code, chapter, verse):
        if self.shifted is None or (code, chapter) in self.shifted:
            verse += 1
        return super().text(code, chapter, verse)


def test_verifier_keeps_true_pairs_and_rejects_a_shifted_chapter():
    pairs = _chapter_pairs(("Gen", 1), ("Gen", 2), ("Gen", 3))
    report, kept = vv.verify_version(ShiftedReader(shifted={("Gen", 2)}), pairs)
    by_chapter = {}
    for row in kept:
        by_chapter.setdefault(row["chapter"], []).append(row)
    n = {ch: sum(1 for p in pairs if p.chapter == ch) for ch in (1, 2, 3)}
    assert len(by_chapter[1]) >= 0.9 * n[1] and len(by_chapter[3]) >= 0.9 * n[3]
    assert 2 not in by_chapter
    assert report.chapters_dropped == [{"chapter": "Gen 2", "reason": report.chapters_dropped[0]["reason"]}]
    assert report.chapters_dropped[0]["reason"].startswith("most pairs fail")
    # the kept text is the KJV verse of the same number
    gen_1_1 = next(r for r in kept if r["id"] == "Gen.1.1")
    assert gen_1_1["en"] == "In the beginning God created the heaven and the earth."
    # the shifted map itself keeps (almost) nothing: each verse is closer to its neighbour's JPS text
    read = ShiftedReader(shifted={("Gen", 2)})
    jps2 = {p.verse: p.en for p in pairs if p.chapter == 2}
    shifted = vv.verify_map(jps2, {v: (2, v) for v in jps2}, lambda c, v: read.text("Gen", c, v))
    assert len(shifted) <= 0.1 * len(jps2)


def test_documented_maps_pair_the_hebrew_numbering_with_the_kjv():
    assert vv.BOUNDARY_MAPS[("Joel", 3)] == {v: (2, 27 + v) for v in range(1, 6)}
    assert vv.BOUNDARY_MAPS[("Mal", 3)][19] == (4, 1)
    with pytest.raises(ValueError, match="bad boundary map item"):
        vv.parse_boundary_maps("Gen 31:1 = 31:1")
    # Genesis 32:1 (Hebrew) is the KJV's 31:55; Psalm 3's title is Hebrew verse 1
    report, kept = vv.verify_version(vv.PythonBibleReader("kjv"), _chapter_pairs(("Gen", 32), ("Ps", 3)),
                                     hebrew_counts={("Gen", 32): 33, ("Ps", 3): 9})
    assert report.maps_used == {"boundary": 1, "psalm-title-1": 1}
    texts = {r["id"]: r["en"] for r in kept}
    assert texts["Gen.32.1"].startswith("And early in the morning Laban rose up")
    assert texts["Gen.32.2"].startswith("And Jacob went on his way")
    assert texts["Ps.3.2"].startswith("LORD, how are they increased that trouble me")
    assert report.kept >= 0.9 * report.checked


def test_a_version_with_a_broken_map_is_left_out_and_listed():
    pairs = _chapter_pairs(*[("Gen", c) for c in range(1, 6)])

    def factory(name):
        return ShiftedReader(name) if name == "broken" else vv.PythonBibleReader(name)

    logs: list[str] = []
    report, kept = vv.verify_versions(pairs, ["kjv", "broken"], reader_factory=factory, log=logs.append)
    assert report["included"] == ["kjv"] and report["left_out"] == ["broken"]
    assert set(kept) == {"kjv"}
    broken = report["versions"]["broken"]
    assert not broken["included"] and broken["share"] < vv.VERSION_MIN_SHARE
    assert sorted(d["chapter"] for d in broken["chapters_dropped"]) == [f"Gen {c}" for c in range(1, 6)]
    assert any("broken" in line and "LEFT OUT" in line for line in logs)


def test_the_reader_refuses_test_books():
    reader = vv.PythonBibleReader("ylt")
    for book in dd.TEST_BOOKS:
        with pytest.raises(ValueError, match="test book"):
            reader.text(book, 1, 1)
    assert vv.clean_version_text("Beth\x96lechem [is] {a} city.And") == "Beth\u2013lechem is a city. And"


# ---- the data stage: new files, manifest, and no test-book text anywhere -----------------------------------------

_WORDS = re.compile(r"[a-z]+")
SHINGLE = 6


def _shingles(text: str) -> set[int]:
    w = _WORDS.findall(text.lower())
    return {hash(tuple(w[i:i + SHINGLE])) for i in range(len(w) - SHINGLE + 1)}


def _test_book_english(garbled=()) -> list[str]:
    """JPS 1917 and every pythonbible version's text of every verse of the test books (read here, for the check
    only; the build's reader refuses them).  `garbled`: versions whose verse ids hold other verses' text (they
    failed verification: WBS's 'Lamentations' ids hold Ezekiel), so their test-book ids say nothing."""
    import pythonbible as pb

    texts = [p.en for p in dd.split_verses()["test"] if p.en]
    for name in set(vv.VERSIONS) - set(garbled):
        version = getattr(pb.Version, vv.VERSIONS[name])
        for code in dd.TEST_BOOKS:
            book = getattr(pb.Book, dd._PB_NAMES[code])
            for ch in range(1, pb.get_number_of_chapters(book) + 1):
                for v in range(1, pb.get_number_of_verses(book, ch) + 1):
                    try:
                        texts.append(pb.get_verse_text(book.value * 1_000_000 + ch * 1000 + v, version=version))
                    except pb.VersionMissingVerseError:
                        continue
    return texts


def _garbled_sample() -> list[str]:
    """pythonbible-wbs 0.0.2 stores Ezekiel 1:7 ('...their feet were straight feet; and the sole of their feet was
    like the sole of a calf's foot') under Lamentations 5:1, cut mid-word at both ends."""
    import pythonbible as pb

    return [" ".join(pb.get_verse_text(25_005_001, version=pb.Version.WEBSTER).split()[1:-1])]


@pytest.fixture(scope="module")
def data_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    work, out = root / "work", root / "out"
    build_main(["--workdir", str(work), "--out", str(out), "--stages", "data", "--versions", "kjv,ylt,wbs,bbe"])
    return work, out


def test_data_stage_writes_verified_versions_and_the_manifest_lists_them(data_built):
    work, out = data_built
    data = work / "data"
    rows = [json.loads(line) for line in (data / "train_versions.jsonl").open(encoding="utf-8")]
    assert {r["version"] for r in rows} == {"kjv", "ylt"}  # Webster's text is garbled in pythonbible-wbs 0.0.2
    assert {dd.split_of(r["book"]) for r in rows} == {"train"}
    jps_he = {p.id: p.he for p in dd.read_jsonl(data / "train.jsonl")}
    assert all(jps_he.get(r["id"], r["he"]) == r["he"] for r in rows)
    manifest = json.loads((out / "split_manifest.json").read_text())
    versions = manifest["english_versions"]
    assert versions["included"] == ["kjv", "ylt"] and versions["left_out"] == ["bbe", "wbs"]
    assert versions["written"]["kjv"]["train_pairs"] == sum(1 for r in rows if r["version"] == "kjv")
    assert versions["written"]["ylt"]["lm_nt_chapters"] == 260
    for name, digest in manifest["training_file_sha256"].items():
        path = next(data / n for n in ("train.jsonl", "lm_train.txt", "train_versions.jsonl",
                                       "lm_train_versions.txt") if name.endswith("/" + n))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert len(manifest["training_file_sha256"]) == 4
    assert any(f.endswith("train_versions.jsonl") for f in manifest["training_files"])
    log = json.loads((out / "build_log.json").read_text())
    recorded = log["stages"]["data"]["info"]["english_versions"]
    report = json.loads((data / "versions_report.json").read_text())
    assert recorded["left_out"] == ["bbe", "wbs"]
    for name in ("kjv", "ylt", "wbs"):  # build_log names every dropped chapter; the report says why
        dropped = report["versions"][name]["chapters_dropped"]
        assert recorded["verification"][name]["chapters_dropped"] == [d["chapter"] for d in dropped]
        assert all(d["reason"] for d in dropped)
    assert len(report["versions"]["wbs"]["chapters_dropped"]) > 10 * len(report["versions"]["kjv"]["chapters_dropped"])


def test_no_test_book_text_in_any_training_file(data_built):
    work, _ = data_built
    data = work / "data"
    test = dd.split_verses()["test"]
    test_he = {p.he for p in test}
    for name in ("train.jsonl", "train_versions.jsonl"):
        he = {json.loads(line)["he"] for line in (data / name).open(encoding="utf-8")}
        assert not he & test_he, name
    seen: set[int] = set()
    for name in ("train.jsonl", "lm_train.txt", "train_versions.jsonl", "lm_train_versions.txt"):
        seen |= _shingles((data / name).read_text(encoding="utf-8"))
    # a verse that is a substring of a training file has every word 6-gram in it: none of them has
    left_out = json.loads((data / "versions_report.json").read_text())["left_out"]
    assert left_out == ["bbe", "wbs"]
    found = [t for t in _test_book_english(garbled=left_out) if len(_WORDS.findall(t.lower())) >= 12
             and _shingles(t) <= seen]
    assert not found, found[:5]
    # the check has teeth: a garbled version's 'test-book' ids hold training-book text, which it finds
    assert [t for t in _garbled_sample() if _shingles(t) <= seen]


# ---- step budgets --------------------------------------------------------------------------------------------------

class Interrupt(Exception):
    pass


def _interrupting(marker: str, logs: list[str]):
    def log(msg):
        logs.append(msg)
        if msg.startswith(marker):
            raise Interrupt(msg)
    return log


def test_translator_stops_at_exactly_n_steps_and_resumes_to_n(tmp_path):
    from demo_build.marian_tokenizer import load_marian_tokenizer
    from demo_build.translators import train_translator
    from tall_model import preset_config
    from tall_model.backbones import model_folder

    torch.set_num_threads(1)
    tok = load_marian_tokenizer(model_folder("lr_hr_translator", preset_config("tiny").lr_hr_translator))
    pairs = dd.split_verses()["train"][:12]
    kw = dict(direction="en-he", tok=tok, train_pairs=pairs, dev_pairs=pairs[:4], seed=0, max_tokens=400, warmup=2,
              threads=(1,), ckpt_steps=2, steps=6, extra_pairs={"en-he": pairs[:5], "he-en": pairs})
    straight = train_translator(stage_dir=tmp_path / "straight", log=lambda m: None, **kw)
    assert straight["steps"] == 6 and straight["train_pairs"] == {"en-he": 17}
    assert [h["step"] for h in straight["history"]] == [2, 4, 6]
    logs: list[str] = []
    with pytest.raises(Interrupt):  # killed while checkpointing step 4: the step-2 checkpoint survives
        train_translator(stage_dir=tmp_path / "resumed", log=_interrupting("[en-he] step 4 ", logs), **kw)
    ckpt = tmp_path / "resumed" / "ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.safetensors", "optimizer.safetensors",
                                                      "rng.safetensors", "state.json"]
    resumed = train_translator(stage_dir=tmp_path / "resumed", log=logs.append, **kw)
    assert "[en-he] resumed at step 2, " in " ".join(logs)
    assert resumed["steps"] == 6
    from safetensors.torch import load_file
    a = load_file(str(tmp_path / "straight" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same run, interrupted or not

    def curve(info):  # the logged train loss too: its running mean is kept in the checkpoint
        return [(h["step"], h["train_loss"], h["dev_loss"]) for h in info["history"]]

    assert curve(resumed) == curve(straight)
    from demo_build.stage_ckpt import StaleCheckpointError
    with pytest.raises(StaleCheckpointError, match="saved while training on 17 items, this run has 12"):
        train_translator(stage_dir=tmp_path / "resumed", log=lambda m: None, **{**kw, "extra_pairs": None})


def test_translator_snapshots_are_the_model_of_their_step_and_warm_dropout_is_set(tmp_path):
    from safetensors.torch import load_file

    from demo_build.marian_tokenizer import load_marian_tokenizer
    from demo_build.translators import train_translator
    from tall_model import preset_config
    from tall_model.backbones import model_folder

    torch.set_num_threads(1)
    tok = load_marian_tokenizer(model_folder("lr_hr_translator", preset_config("tiny").lr_hr_translator))
    pairs = dd.split_verses()["train"][:12]
    kw = dict(direction="en-he", tok=tok, train_pairs=pairs, dev_pairs=pairs[:4], seed=0, max_tokens=400, warmup=2,
              threads=(1,), ckpt_steps=2, steps=6)
    train_translator(stage_dir=tmp_path / "init", log=lambda m: None, **kw)
    warm = {**kw, "init_from": tmp_path / "init" / "final", "cont_dropout": 0.1, "snapshot_steps": 2}
    logs: list[str] = []
    with pytest.raises(Interrupt):  # stopped at step 4's checkpoint, before it is written: ckpt holds step 2
        train_translator(stage_dir=tmp_path / "warm", log=_interrupting("[en-he] step 4 ", logs), **warm)
    assert "warm start from" in logs[0] and "(dropout 0.1)" in logs[0]
    snap = load_file(str(tmp_path / "warm" / "snapshots" / "step-2" / "model.safetensors"))
    ckpt = load_file(str(tmp_path / "warm" / "ckpt" / "model.safetensors"))
    shared = snap.keys() & ckpt.keys()  # save_pretrained leaves out the tied copies of the embedding
    assert len(shared) >= 0.9 * len(snap) and all(torch.equal(snap[k], ckpt[k]) for k in shared)
    info = train_translator(stage_dir=tmp_path / "warm", log=lambda m: None, **warm)
    assert info["dropout"] == 0.1 and info["steps"] == 6
    assert sorted(p.name for p in (tmp_path / "warm" / "snapshots").iterdir()) == ["step-2", "step-4"]
    assert load_marian_tokenizer(tmp_path / "warm" / "snapshots" / "step-4").get_vocab() == tok.get_vocab()
    step4 = load_file(str(tmp_path / "warm" / "snapshots" / "step-4" / "model.safetensors"))
    final = load_file(str(tmp_path / "warm" / "final" / "model.safetensors"))
    assert any(not torch.equal(step4[k], final[k]) for k in step4)  # a snapshot is its step's model, not the last
    with pytest.raises(ValueError, match="snapshot_steps \\(3\\) must be a multiple of the checkpoint interval"):
        train_translator(stage_dir=tmp_path / "odd", log=lambda m: None, **{**warm, "snapshot_steps": 3})


def test_lm_stops_at_exactly_n_steps_and_resumes_to_n(tmp_path):
    from demo_build.lm import train_lm, train_lm_tokenizer

    torch.set_num_threads(1)
    docs = [p.en for p in dd.split_verses()["train"][:400]]
    tok = train_lm_tokenizer(docs, tmp_path / "tok", vocab_size=400)
    kw = dict(tok=tok, train_docs=docs, dev_docs=docs[:20], steps=6, seed=0, batch_size=4, warmup=2, eval_steps=2,
              threads=(1,))
    straight = train_lm(stage_dir=tmp_path / "straight", log=lambda m: None, **kw)
    assert straight["steps"] == 6 and [h["step"] for h in straight["history"]] == [2, 4, 6]
    logs: list[str] = []
    with pytest.raises(Interrupt):
        train_lm(stage_dir=tmp_path / "resumed", log=_interrupting("[lm] step 4 ", logs), **kw)
    resumed = train_lm(stage_dir=tmp_path / "resumed", log=logs.append, **kw)
    assert "[lm] resumed at step 2, " in " ".join(logs) and resumed["steps"] == 6

    def curve(info):
        return [(h["step"], h["train_loss"], h["dev_token_ppl"]) for h in info["history"]]

    assert curve(resumed) == curve(straight)
    from demo_build.stage_ckpt import StaleCheckpointError
    with pytest.raises(StaleCheckpointError, match="remove .*ckpt to start this stage afresh"):
        train_lm(stage_dir=tmp_path / "resumed", log=lambda m: None, **{**kw, "train_docs": docs[:200]})
    with pytest.raises(ValueError, match="steps must be >= 1"):
        train_lm(stage_dir=tmp_path / "zero", log=lambda m: None, **{**kw, "steps": 0})


def test_versions_for_chooses_the_stages_and_refuses_unknown_ones():
    from argparse import Namespace
    from pathlib import Path

    from demo_build.backbone_stages import versions_for
    from demo_build.context import BuildContext

    def ctx(value):
        return BuildContext(args=Namespace(versions_for=value), workdir=Path("w"), out=Path("o"))

    assert versions_for(ctx("en-he,lm")) == {"en-he", "lm"}
    assert versions_for(ctx("none")) == set()
    with pytest.raises(ValueError, match=r"--versions-for: unknown \['he'\]"):
        versions_for(ctx("he,lm"))


def test_export_writes_plain_greedy_whatever_the_source_carried(tmp_path):
    """A warm start from an exported model inherits its chosen beam; the export must still be plain greedy (an
    inherited early_stopping beside num_beams 1 is refused on save) unless the stage asks for its choice."""
    from transformers import MarianMTModel

    from demo_build.export import export_fp16
    from demo_build.marian_tokenizer import load_marian_tokenizer
    from demo_build.scoring import GEN_CANDIDATES
    from tall_model import preset_config
    from tall_model.backbones import model_folder

    folder = model_folder("lr_hr_translator", preset_config("tiny").lr_hr_translator)
    model = MarianMTModel.from_pretrained(str(folder))
    for key, value in GEN_CANDIDATES["beam4_nrep3"].items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(str(tmp_path / "src"))
    load_marian_tokenizer(folder).save_pretrained(str(tmp_path / "src"))
    export_fp16(tmp_path / "src", tmp_path / "plain", eager=True)
    plain = json.loads((tmp_path / "plain" / "generation_config.json").read_text())
    assert plain["num_beams"] == 1 and not plain.get("early_stopping") and not plain.get("no_repeat_ngram_size")
    export_fp16(tmp_path / "src", tmp_path / "chosen", gen_overrides=GEN_CANDIDATES["beam4_nrep3"])
    chosen = json.loads((tmp_path / "chosen" / "generation_config.json").read_text())
    assert (chosen["num_beams"], chosen["no_repeat_ngram_size"], chosen["early_stopping"]) == (4, 3, True)


def test_build_flags_reach_the_translator_recipe(tmp_path, monkeypatch):
    """--en-he-dropout is the en->he warm start's dropout (default 0.1: the shipped recipe), --he-en-lr the he->en
    stage's learning rate only (default 1e-3), and --snapshot-steps reaches both translator stages."""
    import demo_build.backbone_stages as stages
    from demo_build.build import parse_args
    from demo_build.context import BuildContext

    seen = {}
    monkeypatch.setattr(stages, "train_translator", lambda **kw: seen.setdefault(kw["direction"], kw) and {})
    monkeypatch.setattr(stages, "export_fp16", lambda *a, **k: None)
    monkeypatch.setattr(stages, "load_marian_tokenizer", lambda path: None)
    monkeypatch.setattr(stages, "_pairs", lambda ctx, split: [])
    changed = ["--en-he-dropout", "0.2", "--snapshot-steps", "500", "--he-en-lr", "2e-3"]
    for argv, dropout in (([], 0.1), (changed, 0.2)):
        seen.clear()
        args = parse_args(["--workdir", str(tmp_path), "--out", str(tmp_path / "out"), "--versions-for", "none", *argv])
        ctx = BuildContext(args=args, workdir=tmp_path, out=tmp_path / "out")
        stages.stage_he_en(ctx)
        stages.stage_en_he(ctx)
        assert seen["en-he"]["cont_dropout"] == dropout and "cont_dropout" not in seen["he-en"]
        assert seen["en-he"]["snapshot_steps"] == seen["he-en"]["snapshot_steps"] == (500 if argv else 0)
        assert (seen["he-en"]["lr"], seen["en-he"]["lr"]) == ((2e-3 if argv else 1e-3), 1e-3)

