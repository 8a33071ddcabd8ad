"""demo_build/translator_sizes.py: sizes are parsed strictly, and a run trains the asked size and scores it."""

from __future__ import annotations

import json

import pytest

from demo_build import data as dd
from demo_build.translator_sizes import main, parse_size


def test_sizes_are_parsed_into_marian_dims_and_bad_ones_refused():
    assert parse_size("192x2x576") == dict(d_model=192, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                           decoder_attention_heads=4, encoder_ffn_dim=576, decoder_ffn_dim=576)
    for bad in ("256x3", "256x3x768x1", "axbxc", "0x3x768", "250x3x768"):
        with pytest.raises(ValueError, match="256x3x768|multiple of 4"):
            parse_size(bad)


def test_a_run_trains_each_size_to_the_budget_and_scores_it(tmp_path):
    data = tmp_path / "data"
    splits = dd.split_verses()
    dd.write_jsonl(data / "train.jsonl", splits["train"][:40])
    dd.write_jsonl(data / "dev.jsonl", splits["dev"][:6])
    rows = main(["--data", str(data), "--sizes", "32x1x64,64x1x96", "--steps", "2", "--dev-verses", "4",
                 "--threads", "1", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "rows.json")])
    assert [r["size"] for r in rows] == ["32x1x64", "64x1x96"] and all(r["steps"] == 2 for r in rows)
    assert rows[0]["parameters"] < rows[1]["parameters"]  # the size asked for was built
    assert all(r["verses"] == 4 and 0 <= r["loops"] <= 1 and r["chrF"] >= 0 for r in rows)
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
    with pytest.raises(SystemExit, match="D_MODELxLAYERSxFFN"):
        main(["--data", str(data), "--sizes", "32x1x64,oops", "--workdir", str(tmp_path / "w2")])
    assert not (tmp_path / "w2").exists()  # refused before any training
