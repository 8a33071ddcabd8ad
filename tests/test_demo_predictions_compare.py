"""benchmarks/demo_predictions.py --compare: a difference is broken down into the fields that moved."""

from benchmarks.demo_predictions import difference_summary

ROW = {"prefix": "ויאמר", "gold": "יהוה", "translation": "And he said", "word": "יהוה", "prob": 0.5,
       "candidates": ["יהוה", "משה", "לו", "אל", "את"]}


def test_a_probability_that_moved_alone_is_told_apart_from_a_changed_word():
    reference = [ROW, ROW, ROW]
    rows = [ROW, {**ROW, "prob": 0.500002}, {**ROW, "word": "משה", "prob": 0.4,
                                            "candidates": ["משה", "יהוה", "לו", "אל", "את"]}]
    summary = difference_summary(rows, reference)
    assert summary.startswith("word 1, translation 0, top-5 1, probability only 1;")
    assert "largest probability difference 0.100000" in summary and "exact words 2 here vs 3 in the reference" in summary
    assert difference_summary(reference, reference).startswith("word 0, translation 0, top-5 0, probability only 0;")
