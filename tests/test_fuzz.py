"""Property-based fuzzing of corpus ingestion and prefix validation (hypothesis).

Whatever the bytes, text or table structure, ingestion either returns a corpus whose report adds up
(read == kept + sum(dropped)) or raises its own CorpusError; prefix validation returns Hebrew text or raises
ValueError. Any other exception is a bug. Profiles ("ci", "long") are in tests/conftest.py; the long run is
`python -m benchmarks.fuzz`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, seed, settings
from hypothesis import strategies as st

from tall_app.predicting import MAX_PREFIX_CHARS, check_prefix
from tall_data.corpus import ACCEPTED_EXTENSIONS, CorpusError, read_corpus, read_corpus_text
from tall_data.hebrew import has_hebrew

# Characters a hostile or careless file holds: Hebrew letters and final forms, niqqud and cantillation, maqaf and
# sof pasuq, bidi controls and zero-width marks, NUL and other controls, line and paragraph separators, quotes and
# delimiters, and a sprinkling of anything else (lone surrogates included).
_SPECIAL = ("\u05d0\u05d1\u05d2\u05d4\u05d5\u05d9\u05db\u05da\u05dc\u05de\u05dd\u05e0\u05df\u05e9\u05ea"
            "\u05b0\u05b4\u05b8\u05bc\u05c1\u0591\u05a5\u05be\u05c3\u05c0\u05c6"
            "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u200b\u200d\ufeff\u00ad"
            "\x00\x01\x1b\x7f\x85\u2028\u2029\r\n\t  .?!:,;\"'{}[]\\")
hostile_char = st.one_of(st.sampled_from(_SPECIAL), st.characters(codec=None))
hostile_text = st.text(alphabet=hostile_char, max_size=300)
niqqud_only = st.text(alphabet=st.sampled_from("\u05b0\u05b1\u05b4\u05b7\u05b8\u05bc\u05c1\u0591\u05a5 "),
                      max_size=60)
# Under the CI profile every test starts from this seed (and still replays the committed database: a @seed keeps
# the database, a global --hypothesis-seed would not); the long profile draws fresh randomness every run.
FUZZ_SEED = 20261130
fuzz = given if settings._current_profile != "ci" else (lambda **kw: lambda f: seed(FUZZ_SEED)(given(**kw)(f)))
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1255", "latin-1", "iso-8859-8")


def _encode(text: str, encoding: str) -> bytes:
    # lone surrogates are written as their raw bytes (ED A0 80 for U+D800: invalid UTF-8, what a broken file holds);
    # the single-byte codecs replace what they cannot encode
    return text.encode(encoding, errors="surrogatepass" if encoding.startswith("utf") else "replace")


def _check_corpus_or_error(read) -> None:
    """`read()` returns a corpus whose report adds up, or raises CorpusError; nothing else may escape."""
    try:
        corpus = read()
    except CorpusError as err:
        assert str(err).strip()
        report = getattr(err, "report", None)
        if report is not None:  # EmptyCorpusError: the counts must still add up
            assert report.kept == 0 and report.read == sum(report.dropped.values())
        return
    report = corpus.report
    assert report.read == report.kept + sum(report.dropped.values())
    assert report.kept == len(corpus.sentences) > 0
    assert len(set(corpus.sentences)) == len(corpus.sentences)
    assert all(has_hebrew(s) and s == s.strip() for s in corpus.sentences)


def _read_bytes(data: bytes, ext: str, **kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{ext}"
        path.write_bytes(data)
        return read_corpus(path, **kwargs)


@fuzz(data=st.binary(max_size=2000), ext=st.sampled_from(ACCEPTED_EXTENSIONS))
def test_random_bytes(data: bytes, ext: str) -> None:
    _check_corpus_or_error(lambda: _read_bytes(data, ext))


@fuzz(text=st.one_of(hostile_text, niqqud_only), ext=st.sampled_from(ACCEPTED_EXTENSIONS),
       encoding=st.sampled_from(ENCODINGS), strip=st.booleans(), min_words=st.integers(1, 5),
       cap=st.one_of(st.none(), st.integers(1, 10)))
def test_random_unicode_in_any_encoding(text, ext, encoding, strip, min_words, cap) -> None:
    options = {"strip_marks": strip, "min_words": min_words, "max_sentences": cap}
    _check_corpus_or_error(lambda: _read_bytes(_encode(text, encoding), ext, **options))
    _check_corpus_or_error(lambda: read_corpus_text(text, **options))


cell = st.one_of(hostile_text, st.integers().map(str), st.just(""))


@st.composite
def tables(draw) -> tuple[str, str]:
    """A CSV or TSV file as a writer (or a careless hand) would make it: some header, ragged rows, quotes."""
    ext = draw(st.sampled_from([".csv", ".tsv"]))
    header = draw(st.lists(st.one_of(st.sampled_from(["text", " Text ", "id", "TEXT", ""]), hostile_text),
                           min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(cell, max_size=5), max_size=8))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t" if ext == ".tsv" else ",",
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONE, csv.QUOTE_ALL])),
                        escapechar="\\")
    for row in [header, *rows]:
        if row in ([], [""]):  # the csv module cannot write a lone empty field unquoted: a blank line
            buffer.write("\r\n")
        else:
            writer.writerow(row)
    text = buffer.getvalue()
    if draw(st.booleans()):  # hand-made damage: a stray quote or delimiter somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', ",", "\t", "\n", '"\n"'])) + text[at:]
    return text, ext


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | hostile_text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
                          max_leaves=6)


@st.composite
def jsonl_files(draw) -> str:
    """JSONL lines: objects with or without a text field of any type, other JSON values, broken lines."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["object", "text", "value", "broken", "blank"]))
        if kind == "text":
            lines.append(json.dumps({"text": draw(hostile_text)}, ensure_ascii=draw(st.booleans())))
        elif kind == "object":
            lines.append(json.dumps(draw(st.dictionaries(hostile_text, json_value, max_size=3))))
        elif kind == "value":
            lines.append(json.dumps(draw(json_value)))
        elif kind == "broken":
            lines.append(draw(hostile_text))
        else:
            lines.append(draw(st.sampled_from(["", " ", "\r", "\u2028"])))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@fuzz(table=tables(), encoding=st.sampled_from(ENCODINGS))
@example(table=("\ud800\r\n", ".csv"), encoding="utf-8")  # found by the long run: a lone high surrogate
def test_random_tables(table, encoding) -> None:
    text, ext = table
    _check_corpus_or_error(lambda: _read_bytes(_encode(text, encoding), ext))


@fuzz(text=jsonl_files(), encoding=st.sampled_from(ENCODINGS))
def test_random_jsonl(text, encoding) -> None:
    _check_corpus_or_error(lambda: _read_bytes(_encode(text, encoding), ".jsonl"))


prefix_input = st.one_of(hostile_text, niqqud_only, json_value, st.binary(max_size=50),
                         st.text(alphabet=hostile_char, min_size=MAX_PREFIX_CHARS - 5, max_size=MAX_PREFIX_CHARS + 5))


@fuzz(value=prefix_input)
def test_prefix_validation(value) -> None:
    try:
        cleaned = check_prefix(value)
    except ValueError as err:
        assert str(err).strip()
        return
    assert isinstance(cleaned, str) and has_hebrew(cleaned)
    assert cleaned == " ".join(cleaned.split()) and len(cleaned) <= MAX_PREFIX_CHARS


def test_profiles_are_registered() -> None:
    if "TALL_FUZZ_EXAMPLES" not in os.environ:
        assert settings.get_profile("long").max_examples >= 10_000
    assert settings.get_profile("ci").database is not None


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
