"""Approaches, baseline training and the evaluation CLI on the tiny random backbones (offline, fast)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from baselines.adapters import AdapterError, load_adapter
from baselines.approach import BaselineModels
from baselines.naive import english_context, last_word
from baselines.registry import APPROACH_NAMES, ApproachResources, build_approaches
from baselines.soft_prompt_data import english_next_word
from baselines.tall import tall_gold_log_probs
from baselines.train import main as train_main
from baselines.word_lm import next_word
from evaluation.evaluate import load_dataset
from evaluation.evaluate import main as evaluate_main
from tall_data.corpus import read_corpus
from tall_data.examples import word_core
from tall_data.translation_cache import open_prefix_cache
from tall_model.batching import target_pieces
from tall_model.decoding import GREEDY
from tall_model.predict import predict

# PEFT still calls a transformers method that transformers 5 deprecates; nothing for us to change.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

PREFIXES = ["בראשית ברא אלהים את השמים ואת", "ויאמר אלהים יהי"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two torch threads on two shared, busy cores run the tiny models ~10x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tall_model.tiny import bible_lines

    hebrew, english = bible_lines(60)
    root = tmp_path_factory.mktemp("data")
    (root / "news.txt").write_text("\n".join(hebrew[:6]) + "\n", encoding="utf-8")
    (root / "wiki.txt").write_text("\n".join(hebrew[45:51]) + "\n", encoding="utf-8")
    (root / "train.txt").write_text("\n".join(hebrew[10:40]) + "\n", encoding="utf-8")
    return root, dict(zip(hebrew, english))


@pytest.fixture(scope="module")
def models(tiny_config, tiny_model):
    return BaselineModels(tiny_config, tiny_model.backbones)


@pytest.fixture(scope="module")
def tall_dir(tiny_model, tmp_path_factory):
    from tall_model.checkpoint import save_pretrained

    return save_pretrained(tiny_model, tmp_path_factory.mktemp("tall") / "ckpt")


@pytest.fixture(scope="module")
def adapters(files, models, tmp_path_factory):
    """Both baselines trained for 3 steps. The random tiny he→en model translates every prefix alike, so
    the soft prompt's translation cache is filled beforehand with the verses' own English (a stand-in
    translator whose prefix translations extend each other), exercising the real target construction."""
    root, english_of = files
    out = tmp_path_factory.mktemp("adapters")
    cache_path = out / "translations.sqlite"
    stand_in = {}
    for sentence in read_corpus(root / "train.txt").sentences:
        he, en = sentence.split(), english_of[sentence].split()
        stand_in[" ".join(he[:-1])], stand_in[sentence] = " ".join(en[:-1]), " ".join(en)
    with open_prefix_cache(models, cache_path) as cache:
        cache.put_many(stand_in)
    common = ["--data", str(root / "train.txt"), "--steps", "3", "--batch-size", "4", "--seed", "1",
              "--translation-cache", str(cache_path), "--no-progress", "--translation-max-new-tokens", "12"]
    backbones = models.backbones
    soft = train_main(["soft-prompt", "--out", str(out / "soft"), "--virtual-tokens", "4", *common],
                      backbones=backbones)
    lora = train_main(["fine-tuned", "--out", str(out / "lora"), *common], backbones=backbones)
    return soft, lora


def _resources(models, tall_dir=None, adapters=(None, None), ngram_data=None) -> ApproachResources:
    return ApproachResources(models, tall_dir, adapters[0], adapters[1], lm_max_new_tokens=8, ngram_data=ngram_data)


# --------------------------------------------------------------------------- pure pieces


def test_next_word_takes_the_first_whole_word() -> None:
    assert next_word(" הארץ. ויהי") == ("הארץ", True)
    assert next_word("ים הארץ ") == ("הארץ", True)  # "ים" completes the prompt's own last word
    assert next_word(" , הארץ") == ("הארץ", False)  # punctuation-only words are skipped; no space after yet
    assert next_word("abc") == ("", False)
    assert next_word("") == ("", False)


def test_soft_prompt_targets_follow_the_documented_rules() -> None:
    assert english_next_word("In the beginning God created.", "In the beginning God created the heaven") == \
        ("the", "extends")
    assert english_next_word("the house big", "the big red house") == ("red", "diff")  # reworded
    assert english_next_word("and the earth", "and the earth.") == (None, "none")


def test_translate_test_text_helpers() -> None:
    assert english_context("And God said. ") == "And God said"
    assert last_word("ויאמר אלהים יהי אור.") == "אור"
    assert last_word(" . ") == ""


# --------------------------------------------------------------------------- approaches


def test_every_approach_returns_a_word_for_a_hebrew_prefix(models, tall_dir, adapters, files) -> None:
    approaches, skipped = build_approaches(list(APPROACH_NAMES), _resources(models, tall_dir, adapters,
                                                                            files[0] / "train.txt"))
    assert skipped == {} and list(approaches) == list(APPROACH_NAMES)
    for approach in approaches.values():
        greedy = approach.predict(PREFIXES, None, num_candidates=5)  # approaches translate when not given
        sampled = approach.predict(PREFIXES, None, GREEDY.sampled(3))
        assert sampled == approach.predict(PREFIXES, None, GREEDY.sampled(3)), approach.name  # seeded
        for out in greedy + sampled:
            assert isinstance(out.word, str) and out.word == word_core(out.word) and " " not in out.word
        if approach.name == "tall":  # TALL always decodes a word; a random LLM may finish none ("" = wrong)
            assert all(out.word for out in greedy)
        for out in greedy:
            assert isinstance(out.candidates, list) and len(out.candidates) <= 5 and all(out.candidates)
        scores = approach.log_probs(PREFIXES, ["הארץ", "אור"])
        if approach.can_score:
            assert len(scores) == 2 and all(math.isfinite(s) and s < 0 for s in scores), approach.name
        else:
            assert scores is None


def test_unavailable_approaches_are_skipped_with_a_reason(models) -> None:
    approaches, skipped = build_approaches(["tall", "direct", "soft-prompt", "fine-tuned", "word-ngram"],
                                           _resources(models))
    assert list(approaches) == ["direct"]
    assert set(skipped) == {"tall", "soft-prompt", "fine-tuned", "word-ngram"}
    assert "--ngram-data" in skipped["word-ngram"]
    assert "--tall" in skipped["tall"] and "baselines.train soft-prompt" in skipped["soft-prompt"]


def test_tall_gold_log_prob_agrees_with_predict_candidates(tiny_model) -> None:
    """The scorer and `predict` describe the same event: P(pieces) · P(word boundary)."""
    prefix = PREFIXES[0]
    prediction = predict(tiny_model, prefix, num_candidates=5, output_attentions=False)
    tok = tiny_model.backbones.hr_lr_tokenizer
    checked = 0
    for cand in prediction.candidates:
        if tok.convert_tokens_to_ids(cand.pieces) != target_pieces(tiny_model, cand.word):
            continue  # a word whose decoded text re-tokenizes differently is another event
        (score,) = tall_gold_log_probs(tiny_model, [prefix], [cand.word], [prediction.translation])
        assert score == pytest.approx(math.log(cand.prob), abs=1e-4)
        checked += 1
    assert checked >= 1


# --------------------------------------------------------------------------- baseline training


def test_adapters_hold_only_peft_tensors(adapters, models) -> None:
    soft, lora = adapters
    llm_size = sum(p.numel() for p in models.llm.parameters())
    for directory, marker in ((soft, "prompt_embeddings"), (lora, "lora_")):
        tensors = load_file(str(directory / "adapter_model.safetensors"))
        assert tensors and all(marker in key for key in tensors), sorted(tensors)
        assert sum(t.numel() for t in tensors.values()) < llm_size / 10
        meta = json.loads((directory / "baseline.json").read_text(encoding="utf-8"))
        assert meta["seed"] == 1 and meta["steps"] == 3 and len(meta["losses"]) == 3
    soft_meta = json.loads((soft / "baseline.json").read_text(encoding="utf-8"))
    assert soft_meta["soft_prompt_data"]["rules"]["extends"] > 0
    assert load_file(str(soft / "adapter_model.safetensors"))["prompt_embeddings"].shape[0] == 4


def test_adapters_load_back_without_touching_the_shared_llm(adapters, models, tmp_path) -> None:
    soft, lora = adapters
    soft_lm = load_adapter("soft-prompt", soft, models.llm)
    saved = load_file(str(soft / "adapter_model.safetensors"))["prompt_embeddings"]
    assert torch.equal(soft_lm.prompt_encoder["default"].embedding.weight.detach(), saved)
    merged = load_adapter("fine-tuned", lora, models.llm)
    assert not any("lora" in name for name, _ in merged.named_parameters())  # merged into a plain model
    assert not any("lora" in name for name, _ in models.llm.named_parameters())
    with pytest.raises(AdapterError, match="not a 'fine-tuned'"):
        load_adapter("fine-tuned", soft, models.llm)
    tampered = tmp_path / "other"
    shutil.copytree(lora, tampered)
    meta = json.loads((tampered / "baseline.json").read_text(encoding="utf-8"))
    meta["fingerprint"]["llm_parameters"] += 1
    (tampered / "baseline.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(AdapterError, match="trained for the LLM"):
        load_adapter("fine-tuned", tampered, models.llm)


def test_soft_prompt_generates_on_left_padded_batches(adapters, models) -> None:
    """A batch of prompts of different lengths (left padding) gives each prompt its own greedy word, and the
    first token agrees with the prompt-tuned model's own forward pass (PEFT's generate failed on such batches
    with BLOOM: it prepended the virtual tokens again at every cached step)."""
    from baselines.word_lm import WordLM

    soft, _ = adapters
    soft_lm = load_adapter("soft-prompt", soft, models.llm)
    lm = WordLM(soft_lm, models.backbones.llm_tokenizer)
    prompts = ["And God said", "In the beginning God created the heaven and the earth. And the"]
    together = lm.words(prompts)
    assert together == [lm.words([p])[0] for p in prompts]
    assert [len(r) for r in lm.top_words(prompts, 3)] == [len(lm.top_words([p], 3)[0]) for p in prompts]
    tok = models.backbones.llm_tokenizer
    ids = tok(prompts[0], return_tensors="pt")
    with torch.no_grad():
        first = int(soft_lm(**ids).logits[0, -1].argmax())
    one_token = lm._generation_config(do_sample=False, num_beams=1)
    one_token.max_new_tokens = 1
    out = lm._generate_prompt_tuned(ids["input_ids"], ids["attention_mask"], one_token)
    assert out[0] == tok.decode([first], skip_special_tokens=True)


# --------------------------------------------------------------------------- evaluation CLI


def test_evaluation_cli_writes_one_row_per_approach_and_dataset(files, models, tall_dir, adapters, tmp_path,
                                                                 monkeypatch) -> None:
    import tall_model.predict
    import tall_model.translate

    root, _ = files
    seen: Counter = Counter()
    real_translate = tall_model.translate.translate

    def counting(model, texts, *args, **kwargs):
        seen.update(texts)
        return real_translate(model, texts, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("TALL must read the cached translation, not translate again")

    monkeypatch.setattr(tall_model.translate, "translate", counting)
    monkeypatch.setattr(tall_model.predict, "translate", refuse)
    out = tmp_path / "results" / "run"
    soft, lora = adapters
    payload = evaluate_main(
        ["--preset", "tiny", "--data", str(root / "news.txt"), "--data", str(root / "wiki.txt"),
         "--tall", str(tall_dir), "--soft-prompt", str(soft), "--fine-tuned", str(lora), "--seeds", "2",
         "--ngram-data", str(root / "train.txt"), "--ngram-order", "2",
         "--limit", "3", "--max-new-tokens", "8", "--translation-cache", str(tmp_path / "tc.sqlite"),
         "--out", str(out), "--no-progress"],
        backbones=models.backbones)

    with (out / "metrics.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = [(d, a) for d in ("news", "wiki") for a in APPROACH_NAMES]
    assert [(r["dataset"], r["approach"]) for r in rows] == expected
    for r in rows:
        assert r["examples"] == "3" and r["seeds"] == "2" and 0 <= float(r["accuracy"]) <= 1
        assert r["sampled_ci_low"] != "" and r["top5_accuracy"] != ""
        assert (r["mean_log_prob"] != "") == (r["approach"] in ("tall", "direct", "fine-tuned"))
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(payload))
    assert saved["seeds"] == [0, 1] and "--seeds 2" in saved["command"] and saved["skipped"] == {}
    assert str(tall_dir) in saved["models"]["tall"]["source"]
    assert saved["models"]["soft-prompt"]["adapter"] == str(soft) and saved["backbones"]["llm"]
    assert saved["models"]["word-ngram"]["order"] == 2 and saved["models"]["word-ngram"]["sentences"] == 30
    assert "Student-t" in saved["interval"] and saved["sampling"]["top_p"] == 0.95
    others = [a for a in APPROACH_NAMES if a != "tall"]
    assert [(s["dataset"], s["approach"]) for s in saved["significance"]] == [(d, a) for d in ("news", "wiki")
                                                                             for a in others]
    assert all(0 <= s["mcnemar_p"] <= 1 and s["reference"] == "tall" for s in saved["significance"])
    assert len((out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 2 * 3 * len(APPROACH_NAMES)

    # tall, naive and soft-prompt all read translations, over greedy, 2 seeds and scoring: one call per prefix
    prefixes = {ex.prefix for name in ("news", "wiki") for ex in load_dataset(root / f"{name}.txt", 3).examples}
    assert set(seen) == prefixes and set(seen.values()) == {1}
    (stats,) = saved["translation"].values()  # TALL and the baselines share one translator and its cache
    assert stats["sent"] == len(prefixes) and stats["requested"] == 3 * len(prefixes)


def test_evaluation_cli_skips_what_is_not_given(files, models, tmp_path, capsys) -> None:
    root, _ = files
    out = tmp_path / "run"
    payload = evaluate_main(
        ["--data", str(root / "news.txt"), "--approaches", "direct,soft-prompt", "--seeds", "1", "--limit", "2",
         "--max-new-tokens", "6", "--translation-cache", str(tmp_path / "tc.sqlite"), "--out", str(out),
         "--no-progress"], backbones=models.backbones)
    assert [r["approach"] for r in payload["rows"]] == ["direct"]
    assert "soft-prompt" in payload["skipped"] and "skipped soft-prompt" in capsys.readouterr().out
    (row,) = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert row["sampled_accuracy"] != "" and row["sampled_ci_half_width"] == ""  # one seed: no interval


def test_a_backbone_dir_replaces_the_backbones_it_holds(files, tmp_path) -> None:
    """--backbone-dir DIR (evaluate and baselines.train): DIR's lm/ is the LLM the baselines train and are scored
    on; the translators DIR lacks stay the preset's."""
    from tall_model import preset_config
    from tall_model.backbones import load_backbones
    from tall_model.config import on_backbones
    from tall_model.tiny import ensure_local_backbones

    root, _ = files
    shutil.copytree(ensure_local_backbones("tiny") / "qwen", tmp_path / "own" / "lm")
    tiny, qwen = preset_config("tiny"), preset_config("tiny-qwen")
    config = on_backbones(tiny, tmp_path / "own")
    assert config.llm == str(tmp_path / "own" / "lm") and config.llm != tiny.llm
    assert (config.lr_hr_translator, config.hr_lr_translator) == (tiny.lr_hr_translator, tiny.hr_lr_translator)
    qwen_print = load_backbones(qwen).fingerprints()["llm"]
    lora = train_main(["fine-tuned", "--preset", "tiny", "--backbone-dir", str(tmp_path / "own"), "--data",
                       str(root / "train.txt"), "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "lora"),
                       "--no-progress"])
    meta = json.loads((lora / "baseline.json").read_text(encoding="utf-8"))
    assert meta["llm"] == str(tmp_path / "own" / "lm") and meta["fingerprint"]["llm_model_type"] == "qwen2"
    payload = evaluate_main(["--backbone-dir", str(tmp_path / "own"), "--data", str(root / "news.txt"),
                             "--approaches", "direct", "--seeds", "0", "--limit", "2", "--max-new-tokens", "4",
                             "--translation-cache", str(tmp_path / "tc.sqlite"), "--out", str(tmp_path / "run"),
                             "--no-progress"])
    assert payload["backbones"]["llm"] == str(tmp_path / "own" / "lm")
    assert payload["backbones"]["fingerprints"]["llm"] == qwen_print


def test_a_baseline_trained_with_max_target_pieces_sees_only_the_short_target_verses(files, models, tmp_path) -> None:
    """baselines.train --max-target-pieces N keeps the verses a TALL run with max_target_pieces N trains on (last
    word at most N he→en pieces), and refuses a filter that leaves nothing, naming it."""
    from baselines.train import TrainingDataError
    from tall_model.text import word_core

    root, _ = files
    tokenizer = models.backbones.lr_hr_tokenizer
    verses = read_corpus(root / "train.txt").sentences
    pieces = [len(tokenizer.tokenize(word_core(v.split()[-1]))) for v in verses]
    most = sorted(pieces)[len(pieces) // 2]  # the median: some verses are kept, some dropped
    kept = sum(p <= most for p in pieces)
    assert 0 < kept < len(verses)
    common = ["--data", str(root / "train.txt"), "--steps", "1", "--batch-size", "2", "--no-progress"]
    lora = train_main(["fine-tuned", "--out", str(tmp_path / "lora"), "--max-target-pieces", str(most), *common],
                      backbones=models.backbones)
    meta = json.loads((lora / "baseline.json").read_text(encoding="utf-8"))
    assert meta["sentences"] == kept and meta["max_target_pieces"] == most
    with pytest.raises(TrainingDataError, match="must be a positive number, got 0"):
        train_main(["fine-tuned", "--out", str(tmp_path / "none"), "--max-target-pieces", "0", *common],
                   backbones=models.backbones)
    long_ended = [v for v, p in zip(verses, pieces) if p > 1]
    assert len(long_ended) >= 2
    (tmp_path / "long.txt").write_text("\n".join(long_ended) + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"none of the \d+ sentences ends in a word of at most 1 he→en"):
        train_main(["fine-tuned", "--out", str(tmp_path / "none"), "--max-target-pieces", "1", *common,
                    "--data", str(tmp_path / "long.txt")], backbones=models.backbones)


def test_evaluation_holds_a_subword_checkpoints_piece_to_word_starts_when_asked(files, models, tiny_model,
                                                                                  tmp_path) -> None:
    """--subword-word-start reaches the TALL approach's decoding and is recorded; the random subword model's free
    piece (the paper's greedy) often continues a word, so the greedy words change with it."""
    from tall_model import load
    from tall_model.checkpoint import save_pretrained

    root, _ = files
    subword = load(tiny_model.config.changed({"framing": "subword", "loss": "last"}), backbones=models.backbones,
                   seed=0)
    checkpoint = save_pretrained(subword, tmp_path / "subword")
    runs = {}
    for flag in ([], ["--subword-word-start"]):
        out = tmp_path / f"run{len(flag)}"
        payload = evaluate_main(["--data", str(root / "news.txt"), "--tall", str(checkpoint), "--approaches", "tall",
                                 "--seeds", "0", "--limit", "6", "--translation-cache", str(tmp_path / "tc.sqlite"),
                                 "--out", str(out), "--no-progress", *flag], backbones=models.backbones)
        assert payload["subword_word_start"] is bool(flag)
        runs[bool(flag)] = [json.loads(line)["greedy"] for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    assert len(runs[True]) == len(runs[False]) > 0 and runs[True] != runs[False]


def test_evaluation_skips_the_bare_word_start_when_asked(files, models, tiny_model, tmp_path) -> None:
    """--subword-skip-bare-start reaches the TALL approach's decoding and is recorded: with the word-start marker ▁
    alone made the likeliest piece, a held subword checkpoint's greedy words are all empty without it and none with
    it."""
    from tall_model import load
    from tall_model.checkpoint import save_pretrained
    from tall_model.sampling import WORD_START

    root, _ = files
    held = load(tiny_model.config.changed({"framing": "subword", "loss": "last",
                                           "decoding": {"subword_word_start": True}}),
                backbones=models.backbones, seed=0)
    checkpoint = save_pretrained(held, tmp_path / "held")
    hr_lr = models.backbones.hr_lr
    bias = hr_lr.final_logits_bias.clone()
    hr_lr.final_logits_bias[..., models.backbones.hr_lr_tokenizer.convert_tokens_to_ids(WORD_START)] = 1e4
    runs = {}
    try:
        for flag in ([], ["--subword-skip-bare-start"]):
            out = tmp_path / f"run{len(flag)}"
            payload = evaluate_main(["--data", str(root / "news.txt"), "--tall", str(checkpoint), "--approaches",
                                     "tall", "--seeds", "0", "--limit", "6", "--translation-cache",
                                     str(tmp_path / "tc.sqlite"), "--out", str(out), "--no-progress", *flag],
                                    backbones=models.backbones)
            assert payload["subword_skip_bare_start"] is bool(flag) and payload["subword_word_start"] is True
            runs[bool(flag)] = [json.loads(line)["greedy"] for line in (out / "predictions.jsonl").open(
                encoding="utf-8")]
    finally:
        hr_lr.final_logits_bias.copy_(bias)  # the backbones are shared with other tests
    assert runs[False] and set(runs[False]) == {""}
    assert len(runs[True]) == len(runs[False]) and all(runs[True]), runs[True]
