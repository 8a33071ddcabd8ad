"""Corpus ingestion: every reader on good input, and a useful message for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tall_data.corpus import CorpusError, EmptyCorpusError, read_corpus, read_corpus_text
from tall_data.hebrew import has_hebrew, normalize_space, split_sentences, strip_marks

S1 = "הילד הלך לבית הספר היום."
S2 = "מזג האוויר נאה מאוד בחוץ."
S3 = "הממשלה החליטה על צעדים חדשים."


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- good input -----------------------------------------------------------------------------


def test_txt_lines_and_paragraphs_are_split_into_sentences(tmp_path: Path) -> None:
    text = f"{S1}\n\n{S2} {S3} האם זה נכון? כן!\n"
    corpus = read_corpus(write(tmp_path, "c.txt", text), min_words=2)
    assert corpus.sentences == [S1, S2, S3, "האם זה נכון?"]
    assert corpus.report.records == 3  # blank line included
    assert corpus.report.read == 5
    assert corpus.report.dropped["too_short"] == 1  # "כן!"


def test_sof_pasuq_and_colon_split(tmp_path: Path) -> None:
    text = "ויאמר אלהים יהי אור׃ ויהי אור בעולם׃\nהוא אמר: הכל טוב כאן"
    corpus = read_corpus(write(tmp_path, "c.txt", text), min_words=2)
    assert corpus.sentences == ["ויאמר אלהים יהי אור׃", "ויהי אור בעולם׃", "הוא אמר:", "הכל טוב כאן"]


def test_csv_and_tsv_read_the_text_column(tmp_path: Path) -> None:
    csv_text = f'id,Text\n1,"{S1} {S2}"\n2,{S3}\n'
    assert read_corpus(write(tmp_path, "c.csv", csv_text)).sentences == [S1, S2, S3]
    tsv_text = f"text\tsource\n{S1}\tynet\n{S3}\tynet\n"
    assert read_corpus(write(tmp_path, "c.tsv", tsv_text)).sentences == [S1, S3]


def test_jsonl_reads_the_text_field(tmp_path: Path) -> None:
    lines = [json.dumps({"text": S1, "id": 1}, ensure_ascii=False), "", json.dumps({"text": S2}, ensure_ascii=False)]
    assert read_corpus(write(tmp_path, "c.jsonl", "\n".join(lines))).sentences == [S1, S2]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert read_corpus(write(tmp_path, "c.txt", ("\ufeff" + S1).encode("utf-8"))).sentences == [S1]
    assert read_corpus(write(tmp_path, "c.csv", ("\ufefftext\n" + S2).encode("utf-8"))).sentences == [S2]


def test_whitespace_invisible_and_bidi_chars_are_normalised(tmp_path: Path) -> None:
    messy = "\u200fהילד\u00a0הלך\u200b  לבית\tהספר\u202a היום.\u202c"
    assert read_corpus(write(tmp_path, "c.txt", messy)).sentences == [S1]
    assert normalize_space(" a\u00a0\u00a0b\u2066c ") == "a bc"


def test_niqqud_and_cantillation_stripping() -> None:
    pointed = "בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת כָּל־הָאָֽרֶץ׃"
    assert strip_marks(pointed) == "בראשית ברא אלהים את כל הארץ׃"  # maqaf becomes a space
    assert read_corpus_text(pointed, strip_marks=True).sentences == ["בראשית ברא אלהים את כל הארץ׃"]
    kept = read_corpus_text(pointed).sentences[0]
    assert kept == pointed and read_corpus_text(pointed).report.strip_marks is False


def test_dedup_counts_and_report(tmp_path: Path) -> None:
    text = "\n".join([S1, "hello world again", S1, "שלום", S2, S1 + " ", S3])
    corpus = read_corpus(write(tmp_path, "c.txt", text), max_sentences=2)
    assert corpus.sentences == [S1, S2]
    report = corpus.report
    assert (report.records, report.read, report.kept) == (7, 7, 2)
    assert report.dropped == {"no_hebrew": 1, "too_short": 1, "duplicate": 2, "over_cap": 1}
    assert report.read == report.kept + sum(report.dropped.values())
    summary = report.summary()
    assert "kept: 2" in summary and "exact duplicate: 2" in summary and "cap of 2" in summary
    assert json.loads(json.dumps(report.as_dict()))["dropped"]["duplicate"] == 2


def test_dedup_after_mark_stripping() -> None:
    corpus = read_corpus_text("שָׁלוֹם לְכֻלָּם חברים\nשלום לכלם חברים", strip_marks=True)
    assert corpus.sentences == ["שלום לכלם חברים"]
    assert corpus.report.dropped["duplicate"] == 1


def test_hebrew_helpers() -> None:
    assert has_hebrew("abc ש") and not has_hebrew("abc 123")
    assert split_sentences('הוא אמר "כן." ואז 3.5 הלך') == ['הוא אמר "כן."', "ואז 3.5 הלך"]


# --- bad input ------------------------------------------------------------------------------


def raises(path_or_text: Path | str, match: str, **kwargs) -> CorpusError:
    reader = read_corpus if isinstance(path_or_text, Path) else read_corpus_text
    with pytest.raises(CorpusError, match=match) as info:
        reader(path_or_text, **kwargs)
    return info.value


def test_cp1255_hebrew_is_refused_with_a_guess(tmp_path: Path) -> None:
    err = raises(write(tmp_path, "c.txt", (S1 + "\n" + S2).encode("cp1255")), r"not valid UTF-8 at byte 0")
    assert "windows-1255" in str(err) and "iconv" in str(err)
    latin = write(tmp_path, "l.txt", "café déjà vu naïve".encode("latin-1"))
    assert "not Hebrew" in str(raises(latin, r"not valid UTF-8 at byte 3"))
    one_bad = write(tmp_path, "m.txt", (S1 + "\n" + S2).encode("utf-8") + b"\xff\n" + S3.encode("utf-8"))
    raises(one_bad, r"the rest looks like UTF-8 \(1 bad")


def test_utf16_is_refused(tmp_path: Path) -> None:
    raises(write(tmp_path, "c.txt", S1.encode("utf-16")), r"UTF-16-LE \(BOM\)")
    raises(write(tmp_path, "b.txt", S1.encode("utf-16-le")), r"UTF-16-LE without a BOM")


def test_binary_empty_and_oversize_are_refused(tmp_path: Path) -> None:
    raises(write(tmp_path, "bin.txt", bytes(range(256)) * 4), r"binary")
    raises(write(tmp_path, "e.txt", b""), r"empty")
    raises(write(tmp_path, "w.txt", "  \n\n"), r"empty")
    raises("   ", r"empty")
    raises(write(tmp_path, "big.txt", S1 * 10), r"over the cap of 100 bytes", max_bytes=100)
    raises(S1 * 10, r"over the cap of 100 bytes", max_bytes=100)


def test_no_hebrew_left_raises_with_reasons(tmp_path: Path) -> None:
    with pytest.raises(EmptyCorpusError, match=r"no Hebrew letter: 2.*fewer than 3 words: 1") as info:
        read_corpus(write(tmp_path, "c.txt", "hello there world\nmore english text\nשלום לך"))
    assert info.value.report.kept == 0
    raises(write(tmp_path, "h.csv", "text\n"), r"no text found")


def test_missing_column_or_field(tmp_path: Path) -> None:
    err = raises(write(tmp_path, "c.csv", f"id,sentence\n1,{S1}\n"), r"no 'text' column")
    assert "['id', 'sentence']" in str(err)
    raises(write(tmp_path, "t.csv", f"id\ttext\n1\t{S1}\n"), r"wrong delimiter")
    raises(write(tmp_path, "c.jsonl", json.dumps({"text": S1}) + '\n{"sentence": "x"}\n'), r"line 2: no 'text' field")
    raises(write(tmp_path, "b.jsonl", '{"text": "a"}\n{"text": \n'), r"line 2: invalid JSON")
    raises(write(tmp_path, "n.jsonl", '{"text": 5}\n'), r"line 1: 'text' must be a string")
    raises(write(tmp_path, "l.jsonl", '["text"]\n'), r"line 1: expected a JSON object")


def test_bad_extension_and_missing_file(tmp_path: Path) -> None:
    err = raises(write(tmp_path, "c.docx", S1), r"unsupported file type '.docx'")
    assert ".txt, .csv, .tsv, .jsonl" in str(err)
    raises(tmp_path / "absent.txt", r"no such file")
