"""demo_build.step_profile: the padding shares, the FLOP count and the time split it prints are what they say."""

import json
import random

import pytest
import torch

from demo_build import data as dd
from demo_build import step_profile as ts
from demo_build.translators import collate, encode_pairs, make_batches, new_marian


def test_padding_efficiency_counts_real_pieces_per_side():
    data = [([1, 2, 3], [1]), ([1], [1, 2]), ([4, 5], [6, 7])]
    # batch 1: source 4 real of 2 x 3, target 3 of 2 x 2; batch 2: 2 of 2 and 2 of 2
    assert ts.padding_efficiency(data, [[0, 1], [2]]) == pytest.approx(((4 + 2) / (6 + 2), (3 + 2) / (4 + 2)))


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from demo_build.marian_tokenizer import load_marian_tokenizer
    from tall_model import preset_config
    from tall_model.backbones import model_folder

    return load_marian_tokenizer(model_folder("lr_hr_translator", preset_config("tiny").lr_hr_translator))


def _batches(tok, n_pairs=16):
    model = new_marian(tok, seed=0, dims=dict(d_model=16, encoder_layers=1, decoder_layers=1,
                                              encoder_attention_heads=2, decoder_attention_heads=2,
                                              encoder_ffn_dim=32, decoder_ffn_dim=32))
    data = encode_pairs(tok, dd.split_verses()["train"][:n_pairs], "he-en")
    ids = make_batches(data, 400, random.Random(0))
    return model, [collate(data, b, tok.pad_token_id, model.config.decoder_start_token_id) for b in ids]


def test_a_training_step_counts_three_times_its_forward_matrix_products(tiny_tokenizer):
    torch.manual_seed(0)
    model, batches = _batches(tiny_tokenizer)
    step = ts.TrainStep(model)
    forward = ts.forward_matmul_flops(model, batches[:1])
    inp, _, dec, _ = batches[0]
    d, vocab = model.config.d_model, model.config.vocab_size
    # at least the output projection: 2 * target positions * d_model * vocabulary
    assert forward >= 2 * dec.numel() * d * vocab
    assert ts.matmul_flops(step, batches[0]) == 3 * forward  # backward: one product for the input, one for the weight
    before = model.lm_head.weight.detach().clone()
    step(batches[0])
    assert not torch.equal(before, model.lm_head.weight)  # the step trains


def test_time_by_kind_splits_the_profiled_time(tiny_tokenizer):
    model, batches = _batches(tiny_tokenizer)
    kinds, other = ts.time_by_kind(ts.TrainStep(model), batches[:2])
    assert list(kinds) == [*ts.KINDS, "other"]
    assert kinds["matrix products"] > 0 and kinds["dropout masks"] > 0  # dropout 0.1 in training
    assert sum(other.values()) == pytest.approx(kinds["other"])
    assert not set(other) & {name for names in ts.KINDS.values() for name in names}


def test_the_command_reports_on_a_build_folder(tmp_path, tiny_tokenizer, capsys, monkeypatch):
    pairs = dd.split_verses()["train"][:24]
    path = tmp_path / "train_versions.jsonl"  # the versions' file has keys a VersePair has not
    path.write_text("".join(json.dumps({"version": "kjv", **p.__dict__}) + "\n" for p in pairs), encoding="utf-8")
    monkeypatch.setattr(ts, "new_marian", lambda tok, seed, eager: _batches(tok)[0])
    monkeypatch.setattr(ts, "square_matmul_rate", lambda: 1e9)
    tok_dir = tiny_tokenizer.name_or_path
    ts.main(["--data", str(path), "--tokenizer", tok_dir, "--steps", "2", "--threads", "1", "--max-tokens", "300",
             "--budget-steps", "60"])
    out = capsys.readouterr().out
    assert "24 pairs" in out and "real pieces:" in out
    shares = [float(line.split()[-1].rstrip("%")) for line in out.splitlines()
              if line.startswith("  ") and not line.startswith("  largest")]
    assert len(shares) == len(ts.KINDS) + 1 and sum(shares) == pytest.approx(100, abs=0.3)


def test_the_readme_floor_is_the_record_and_the_build_log():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "benchmarks/results/translator-step-profile.json").read_text(encoding="utf-8"))
    runs = record["directions"]
    assert {len(r["runs"]) for r in runs.values()} == {3}
    fastest = sum(min(run["floor_minutes_3600_steps"] for run in r["runs"]) for r in runs.values())
    stages = json.loads((root / "checkpoints/demo/build_log.json").read_text(encoding="utf-8"))["stages"]
    others = sum(s["minutes"] for name, s in stages.items() if name not in ("he-en", "en-he"))
    readme = " ".join((root / "README.md").read_text(encoding="utf-8").split())
    assert (f"take ≥ {int(fastest)} minutes, where a 150-minute build leaves them {150 - others:.0f} after the "
            "other stages") in readme
    assert fastest > 150 - others  # the claim the sentence makes
