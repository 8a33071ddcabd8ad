"""Corpus ingestion: one reader for the training CLI and the Gradio app.

Both front ends must turn a user's file into the same sentence list, and refuse bad
input with a message a user can act on (wrong encoding, missing column, ...), so the
whole pipeline lives here: decode → records → sentences → normalise → filter.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tall_data.hebrew import HEBREW_LETTERS, has_hebrew, normalize, split_sentences, split_words

ACCEPTED_EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl")
DROP_REASONS = ("no_hebrew", "too_short", "duplicate", "over_cap")
_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32-LE"),
    (b"\x00\x00\xfe\xff", "UTF-32-BE"),
    (b"\xff\xfe", "UTF-16-LE"),
    (b"\xfe\xff", "UTF-16-BE"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_LATIN_HEBREW_CONTACT = re.compile("[A-Za-z][\u05d0-\u05ea]|[\u05d0-\u05ea][A-Za-z]")


class CorpusError(ValueError):
    """The input cannot be used as a corpus; the message says why and, where possible, how to fix it."""


class EmptyCorpusError(CorpusError):
    """Every sentence was filtered out; ``report`` says by which rule."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    """What happened to the input: ``read == kept + sum(dropped.values())``."""

    source: str
    records: int = 0  # lines, CSV rows or JSONL objects
    read: int = 0  # non-empty sentences after splitting
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    strip_marks: bool = False
    min_words: int = 3
    max_sentences: int | None = None

    def reason_text(self, reason: str) -> str:
        """Human wording of a drop reason (with this run's thresholds)."""
        return {
            "no_hebrew": "no Hebrew letter",
            "too_short": f"fewer than {self.min_words} words",
            "duplicate": "exact duplicate",
            "over_cap": f"beyond the cap of {self.max_sentences} sentences",
        }[reason]

    def dropped_text(self) -> str:
        """'no Hebrew letter: 2, exact duplicate: 1' (non-zero reasons only), or 'none'."""
        parts = [f"{self.reason_text(r)}: {n}" for r, n in self.dropped.items() if n]
        return ", ".join(parts) or "none"

    def summary(self) -> str:
        """Multi-line, human-readable account for the CLI log and the app."""
        lines = [
            f"Corpus: {self.source}",
            f"  records read: {self.records}; sentences found: {self.read}",
            f"  kept: {self.kept}; dropped: {sum(self.dropped.values())}",
        ]
        lines += [f"    - {self.reason_text(r)}: {n}" for r, n in self.dropped.items() if n]
        lines.append(f"  niqqud/cantillation stripped: {'yes' if self.strip_marks else 'no'}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready copy (for run metadata)."""
        return asdict(self)


@dataclass
class Corpus:
    """Sentences in input order, plus the report of how they were obtained."""

    sentences: list[str]
    report: IngestReport

    def __len__(self) -> int:
        return len(self.sentences)


def read_corpus(
    path: str | Path,
    *,
    strip_marks: bool = False,
    min_words: int = 3,
    max_bytes: int = 50_000_000,
    max_sentences: int | None = None,
) -> Corpus:
    """Read a .txt/.csv/.tsv/.jsonl file of Hebrew text (UTF-8) into clean sentences.

    Raises CorpusError (a ValueError) for any unusable input, EmptyCorpusError when
    filtering leaves nothing.
    """
    _check_limits(min_words, max_bytes, max_sentences)
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ACCEPTED_EXTENSIONS:
        raise CorpusError(
            f"{path.name}: unsupported file type {ext or '(no extension)'!r}; "
            f"accepted: {', '.join(ACCEPTED_EXTENSIONS)}"
        )
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(f"{path.name}: file is {size:,} bytes, over the cap of {max_bytes:,} bytes")
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise CorpusError(f"{path.name}: file is over the cap of {max_bytes:,} bytes")
    text = _decode(data, path.name)
    return _ingest(_records(text, ext, path.name), path.name, strip_marks, min_words, max_sentences)


def read_corpus_text(
    text: str,
    *,
    strip_marks: bool = False,
    min_words: int = 3,
    max_bytes: int = 50_000_000,
    max_sentences: int | None = None,
    source: str = "pasted text",
) -> Corpus:
    """Same as read_corpus for pasted text, read like a .txt file (lines, then sentences)."""
    _check_limits(min_words, max_bytes, max_sentences)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise CorpusError(f"{source}: text is {size:,} bytes, over the cap of {max_bytes:,} bytes")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CorpusError(f"{source}: is empty")
    return _ingest(text.splitlines(), source, strip_marks, min_words, max_sentences)


def _check_limits(min_words: int, max_bytes: int, max_sentences: int | None) -> None:
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1, got {min_words}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1 or None, got {max_sentences}")


def _decode(data: bytes, name: str) -> str:
    """UTF-8 (BOM allowed) or a CorpusError saying what the bytes look like instead."""
    if not data:
        raise CorpusError(f"{name}: file is empty")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise CorpusError(f"{name}: looks like {encoding} (BOM); only UTF-8 is accepted — save it as UTF-8")
    if b"\x00" in data:
        raise CorpusError(f"{name}: {_describe_nul_bytes(data)}; only UTF-8 text is accepted")
    offset = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as err:
        at = err.start + offset
        raise CorpusError(
            f"{name}: not valid UTF-8 at byte {at} (0x{data[at]:02X}); {_guess_legacy(data)}"
        ) from None
    if not text.strip():
        raise CorpusError(f"{name}: file is empty (whitespace only)")
    return text


def _describe_nul_bytes(data: bytes) -> str:
    """NUL bytes only in odd (even) positions mean UTF-16-LE (BE) without a BOM; otherwise binary."""
    even, odd = data[0::2].count(0), data[1::2].count(0)
    if odd and not even and odd >= len(data) // 20:
        return "looks like UTF-16-LE without a BOM"
    if even and not odd and even >= len(data) // 20:
        return "looks like UTF-16-BE without a BOM"
    return "looks like a binary file (it contains NUL bytes)"


def _guess_legacy(data: bytes) -> str:
    """Say "Hebrew" if, read as windows-1255, the non-ASCII bytes are mostly Hebrew letters in runs.

    Latin-1 accented letters share those byte values ("é" is "י") but sit inside Latin
    words, so Hebrew letters touching ASCII letters rule Hebrew out.
    """
    head = data[:200_000]
    as_utf8 = head.decode("utf-8", errors="replace")
    bad = as_utf8.count("\ufffd")
    valid_non_ascii = sum(1 for ch in as_utf8 if ord(ch) > 0x7F) - bad
    if valid_non_ascii >= 10 * bad:  # a few stray bytes in real UTF-8, not a legacy encoding
        return f"the rest looks like UTF-8 ({bad} bad sequence(s) in the first {len(head):,} bytes): fix those bytes"
    sample = head.decode("cp1255", errors="replace")
    non_ascii = sum(1 for ch in sample if ord(ch) > 0x7F)
    hebrew = len(HEBREW_LETTERS.findall(sample))
    mixed = len(_LATIN_HEBREW_CONTACT.findall(sample))
    if non_ascii and hebrew / non_ascii >= 0.6 and mixed <= 0.05 * hebrew:
        return (
            "looks like windows-1255/ISO-8859-8 Hebrew. "
            "Save it as UTF-8 (e.g. `iconv -f windows-1255 -t utf-8 in.txt > out.txt`)"
        )
    return "looks like a single-byte encoding (e.g. latin-1/windows-1252), not Hebrew. Save it as UTF-8"


def _records(text: str, ext: str, name: str) -> Iterator[str]:
    """Raw text records of a decoded file: lines, CSV/TSV 'text' cells or JSONL 'text' fields."""
    if ext == ".txt":
        yield from text.splitlines()
    elif ext in (".csv", ".tsv"):
        yield from _table_records(text, "\t" if ext == ".tsv" else ",", name)
    else:
        yield from _jsonl_records(text, name)


def _table_records(text: str, delimiter: str, name: str) -> Iterator[str]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = reader.fieldnames or []
        column = next((c for c in columns if c and c.strip().lower() == "text"), None)
        if column is None:
            hint = ""
            if len(columns) == 1 and any(sep in columns[0] for sep in ",\t;"):
                hint = " (wrong delimiter? .csv needs commas, .tsv tabs)"
            raise CorpusError(f"{name}: no 'text' column; columns found: {columns}{hint}")
        for row in reader:
            yield row.get(column) or ""
    except csv.Error as err:
        raise CorpusError(f"{name}, line {reader.line_num}: malformed {delimiter!r}-separated row: {err}") from None


def _jsonl_records(text: str, name: str) -> Iterator[str]:
    # split on "\n" only: JSON strings may legally hold U+2028, which splitlines() would cut
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{name}, line {lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            raise CorpusError(f"{name}, line {lineno}: expected a JSON object with a 'text' field, got {kind}")
        if "text" not in obj:
            raise CorpusError(f"{name}, line {lineno}: no 'text' field; keys found: {sorted(obj)}")
        if not isinstance(obj["text"], str):
            raise CorpusError(f"{name}, line {lineno}: 'text' must be a string, got {type(obj['text']).__name__}")
        yield obj["text"]


def _ingest(
    records: Iterable[str], source: str, strip_marks: bool, min_words: int, max_sentences: int | None
) -> Corpus:
    """Split, normalise, filter and deduplicate, counting every decision."""
    report = IngestReport(source=source, strip_marks=strip_marks, min_words=min_words, max_sentences=max_sentences)
    sentences: list[str] = []
    seen: set[str] = set()
    for record in records:
        report.records += 1
        for sentence in split_sentences(normalize(record, marks=not strip_marks)):
            report.read += 1
            if not has_hebrew(sentence):
                reason = "no_hebrew"
            elif len(split_words(sentence)) < min_words:
                reason = "too_short"
            elif sentence in seen:
                reason = "duplicate"
            elif max_sentences is not None and len(sentences) >= max_sentences:
                reason = "over_cap"
            else:
                seen.add(sentence)
                sentences.append(sentence)
                continue
            report.dropped[reason] += 1
    report.kept = len(sentences)
    if not sentences:
        what = f"{report.read} sentences read; dropped: {report.dropped_text()}" if report.read else "no text found"
        raise EmptyCorpusError(f"{source}: no usable sentences left ({what})", report)
    return Corpus(sentences=sentences, report=report)
