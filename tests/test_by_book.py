"""evaluation.by_book: greedy hits per book, matched to verses by text, never guessed."""

import json

import pytest

from evaluation.by_book import format_markdown, hits_by_book, main

VERSES = [
    {"id": "Ruth.1.1", "text": "ויהי בימי שפט השפטים"},
    {"id": "Ruth.1.2", "text": "ושם האיש אלימלך"},
    {"id": "Jonah.1.1", "text": "ויהי דבר יהוה"},
    {"id": "Jonah.1.2", "text": "ושם האיש אלימלך"},  # the same text in another book
]
DATA = [json.dumps(v, ensure_ascii=False) for v in VERSES]


def record(prefix, gold, greedy, approach="tall"):
    return {"approach": approach, "prefix": prefix, "gold": gold, "greedy": greedy}


def test_hits_are_counted_per_book_and_equal_texts_taken_in_file_order():
    records = [record("ויהי בימי שפט", "השפטים", "השפטים"), record("ושם האיש", "אלימלך", "נעמי"),
               record("ויהי דבר", "יהוה", "יהוה"), record("ושם האיש", "אלימלך", "אלימלך")]
    table = hits_by_book(DATA, records)
    # the first "ושם האיש אלימלך" is Ruth's (a miss), the second Jonah's (a hit)
    assert table == {"Ruth": [2, 1], "Jonah": [2, 2]}
    text = format_markdown({"run": table})
    assert "| Ruth | 2 | 1 |" in text and "| Jonah | 2 | 2 |" in text and "| all | 4 | 3 |" in text


def test_a_prediction_of_other_data_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no verse of the data"):
        hits_by_book(DATA, [record("ויאמר משה", "אל", "אל")])
    # one more copy of a text than the data holds is also refused
    twice = [record("ויהי דבר", "יהוה", "יהוה")] * 2
    with pytest.raises(ValueError, match="no verse of the data"):
        hits_by_book(DATA, twice)


def test_verses_without_a_book_id_are_refused():
    with pytest.raises(ValueError, match="needs an id"):
        hits_by_book([json.dumps({"text": "ויהי דבר יהוה"})], [])


def test_cli_compares_runs_and_asks_which_approach(tmp_path, capsys):
    data = tmp_path / "he_test.jsonl"
    data.write_text("\n".join(DATA) + "\n", encoding="utf-8")
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps(record("ויהי דבר", "יהוה", "יהוה"), ensure_ascii=False) + "\n", encoding="utf-8")
    both = tmp_path / "both.jsonl"
    both.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        record("ויהי דבר", "יהוה", "משה", "tall"), record("ויהי דבר", "יהוה", "יהוה", "word-ngram")]) + "\n",
        encoding="utf-8")
    assert main(["--data", str(data), f"a={a}", f"b={both}"]) == 2
    assert "several approaches" in capsys.readouterr().err
    assert main(["--data", str(data), f"b={both}", "--approach", "naive"]) == 2  # not in the file
    assert "several approaches" in capsys.readouterr().err
    assert main(["--data", str(data), f"a={a}", f"b={both}", "--approach", "word-ngram", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"a": {"Jonah": [1, 1]}, "b": {"Jonah": [1, 1]}}
    assert main(["--data", str(data), "no-equals-sign"]) == 2
    assert "NAME=predictions.jsonl" in capsys.readouterr().err


def test_a_word_is_counted_per_book_as_gold_predicted_and_right(tmp_path, capsys):
    """--word: where a run says a word (the demo's free TALL says יהוה 44 times on the test books, once rightly)."""
    from evaluation.by_book import format_word_markdown, word_by_book

    records = [record("ויהי בימי שפט", "השפטים", "יהוה"), record("ושם האיש", "אלימלך", "יהוה"),
               record("ויהי דבר", "יהוה", "יהוה"), record("ושם האיש", "אלימלך", "")]
    table = word_by_book(DATA, records, " יהוה ")  # the word is normalised as exact match does
    assert table == {"Ruth": [2, 0, 2, 0], "Jonah": [2, 1, 1, 1]}
    text = format_word_markdown("יהוה", {"run": table, "other": {"Jonah": [2, 0, 0, 0]}})
    assert "| Ruth | 2 | 0 | 2 (0) | 0 (0) |" in text and "| Jonah | 2 | 1 | 1 (1) | 0 (0) |" in text
    assert "| all | 4 | 1 | 3 (1) | 0 (0) |" in text and "run: יהוה predicted (right)" in text
    data = tmp_path / "he_test.jsonl"
    data.write_text("\n".join(DATA) + "\n", encoding="utf-8")
    run = tmp_path / "run.jsonl"
    run.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    assert main(["--data", str(data), f"run={run}", "--word", "יהוה", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run": table}
    assert main(["--data", str(data), f"run={run}", "--word", " "]) == 2
    assert "--word needs a word" in capsys.readouterr().err
