"""The demo build's TALL stages (hebrew, adapters, baselines, evaluate) end to end on the tiny backbones.

The real build runs the same code with --tall-preset demo; here a few verses of each split and a handful of
steps check the wiring: what each stage writes, that the test books never reach a training file, that the
shipped adapters are fp16 and load, and that the miniature table has every approach."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from demo_build import data as dd
from demo_build.build import main as build_main
from evaluation.metrics import normalize_word
from tall_model.config import demo_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-build")
    work, out = root / "work", root / "out"
    splits = dd.split_verses()
    for name, n in (("train", 40), ("dev", 12), ("test", 30)):
        # every test book contributes, so the app examples can come from several books
        pairs = splits[name][:n] if name != "test" else [p for b in dd.TEST_BOOKS
                                                          for p in [q for q in splits[name] if q.book == b][:5]]
        dd.write_jsonl(work / "data" / f"{name}.jsonl", pairs)
    args = ["--workdir", str(work), "--out", str(out), "--stages", "hebrew,adapters,baselines,evaluate,word-list,prior,ngram,fusion,ablations,cards",
            "--tall-preset", "tiny", "--threads", "1", "--adapter-sentences", "24", "--adapter-steps", "3",
            "--adapter-eval-every", "2", "--baseline-steps", "2", "--eval-limit", "6", "--eval-seeds", "2",
            "--ablation-steps", "2", "--ablations", "no-translation,subword-framing,decoder-lora"]
    build_main(args)
    return work, out


def test_stages_write_adapters_baselines_and_table(built):
    work, out = built
    with safe_open(str(out / "tall" / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert dtypes == {"torch.float16"}
    meta = json.loads((out / "tall" / "config.json").read_text())
    assert meta["extra"]["steps"] == 3
    assert meta["format_version"] == 2 and set(meta["backbone_fingerprints"]) == {"lr_hr_translator", "llm",
                                                                                 "hr_lr_translator"}
    for kind in ("soft-prompt", "fine-tuned"):
        assert (out / "baselines" / kind / "adapter_model.safetensors").is_file()
        baseline = json.loads((out / "baselines" / kind / "baseline.json").read_text())
        assert baseline["command"].startswith(f"python -m baselines.train {kind} --preset tiny ")
        assert baseline["steps"] == 2 and baseline["batch_size"] == 16 and baseline["seed"] == 0
        assert baseline["sentences"] == 24  # by default TALL's --adapter-sentences
    budgets = json.loads((out / "metrics.json").read_text())["budgets"]
    assert budgets["tall"]["steps"] == 3 and budgets["tall"]["sentences"] == 24
    assert budgets["fine-tuned"]["sentences"] == budgets["soft-prompt"]["sentences"] == 24  # TALL's verses
    assert "| fine-tuned | 2 | 16 | 24 |" in (out / "README.md").read_text(encoding="utf-8")
    table = json.loads((out / "eval" / "metrics.json").read_text())
    assert table["command"].startswith("python -m evaluation.evaluate --preset tiny ")
    assert "--limit 6" in table["command"] and "--seeds 2" in table["command"]
    assert sorted(r["approach"] for r in table["rows"]) == sorted(["tall", "direct", "naive", "soft-prompt",
                                                                   "fine-tuned"])
    assert all(r["examples"] == 6 and r["seeds"] == 2 for r in table["rows"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"adapters", "baselines", "next_word"} <= set(metrics)
    assert set(metrics["build_minutes"]) >= {"hebrew", "adapters", "baselines", "evaluate"}  # the build-time target
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "| he_test | tall | 6 |" in readme and "| he_test | naive | 6 |" in readme
    assert "The targets set for this demo" in readme and "| whole build ≤ 150 min" in readme
    log = json.loads((out / "build_log.json").read_text())
    assert all(log["stages"][s]["status"] == "done"
               for s in ("hebrew", "adapters", "baselines", "evaluate", "ablations"))
    from demo_build.context import machine

    assert {log["stages"][s]["machine"] for s in ("hebrew", "adapters")} == {machine()}  # minutes need the CPU
    assert f"{os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}" in machine()


def test_word_list_stage_restricts_tall_to_training_words_and_pairs_it_with_free_tall(built):
    work, out = built
    words = (out / "training_words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    train = [json.loads(line)["text"] for line in (work / "data" / "he_train.jsonl").open(encoding="utf-8")]
    assert words == sorted(set(words)) and all(w.strip() == w and w for w in words)
    assert set(words) >= {normalize_word(w) for w in train[0].split()} - {""}
    restricted = [json.loads(line) for line in (work / "eval-word-list" / "predictions.jsonl").open(encoding="utf-8")]
    assert len(restricted) == 6 and all(normalize_word(r["greedy"]) in words for r in restricted)
    assert all(c in words for r in restricted for c in r["candidates"])
    result = json.loads((out / "metrics.json").read_text())["word_list"]
    assert result["words"] == len(words) and result["examples"] == 6 and result["vs_free"]["n"] == 6
    assert result["output"]["unseen_share"] == 0.0
    assert "--word-list" in result["command"] and "`tall, listed words only`" in (out / "README.md").read_text()


def test_prior_stage_estimates_chooses_w_on_dev_and_pairs_with_free_tall(built):
    from tall_model import load
    from tall_model.prior import PRIOR_FILE, log_prior

    work, out = built
    result = json.loads((out / "metrics.json").read_text())["prior"]
    dev = result["dev_accuracy"]
    assert set(dev) == {"0", "0.25", "0.5", "0.75", "1"} and result["prefixes"] == 40  # every TRAIN verse, < 2000
    shares = result["dev_top_word_share"]
    allowed = [w for w in dev if w != "0" and shares[w] <= result["top_word_ceiling"]] or [w for w in dev if w != "0"]
    best = max(dev[w] for w in allowed)
    assert dev[f"{result['weight']:g}"] == best  # the dev choice, ties to the smaller w
    assert all(dev[w] < best for w in allowed if float(w) < result["weight"])
    logp, weight = log_prior(load(out / "tall"), out / PRIOR_FILE)
    assert weight == result["weight"] and logp.exp().sum().item() == pytest.approx(1.0, rel=1e-3)
    corrected = [json.loads(line) for line in (work / "eval-prior" / "test" / "predictions.jsonl").open()]
    assert len(corrected) == 6 and result["vs_free"]["n"] == 6 and result["examples"] == 6
    paired = {c["approach"]: c for c in result["vs_baselines"]}  # the "above every baseline", this decoding
    assert set(paired) == {"direct", "naive", "soft-prompt", "fine-tuned"}
    assert all(c["n"] == 6 and c["reference"] == "tall, prior-corrected" for c in paired.values())
    assert f"--prior-weight {result['weight']:g}" in result["command"]
    assert "`tall, prior-corrected`" in (out / "README.md").read_text(encoding="utf-8")


def test_prior_reranks_one_pool_as_predict_chooses_at_each_weight(built):
    """With the best whole word, the stage predicts each dev verse once and re-ranks its pool per w: the words are
    predict's own greedy words at that w (the tiny checkpoint decodes piece by piece, so its build evaluates per w)."""
    from demo_build.prior_stage import dev_pools, greedy_by_weight, reranks_pool
    from evaluation.evaluate import base_decoding, load_dataset
    from tall_model import load
    from tall_model.predict import predict
    from tall_model.prior import PRIOR_FILE

    work, out = built
    model = load(out / "tall", device="cpu")
    assert not reranks_pool(model, base_decoding("tiny", out / "tall"))  # the stage's fallback on the tiny build
    decoding = base_decoding("tiny", out / "tall").replace(word_choice="best_candidate")
    assert reranks_pool(model, decoding) and not reranks_pool(model, decoding.replace(sample=True))
    prefixes = [e.prefix for e in load_dataset(work / "data" / "he_dev_all.jsonl").examples]
    english = [p.translation for p in predict(model, prefixes, decoding=decoding, num_candidates=0,
                                              output_attentions=False)]
    pools = dev_pools(model, decoding, prefixes, english)
    assert len(pools) == 12 and all(len(p.candidates) == decoding.candidate_pool for p in pools)
    by_weight = {}
    for w in (0.0, 0.5, 4.0):
        at_w = decoding.replace(prior=str(out / PRIOR_FILE), prior_weight=w)
        expected = [p.word for p in predict(model, prefixes, decoding=at_w, translations=english,
                                            output_attentions=False)]
        by_weight[w] = greedy_by_weight(model, decoding, pools, out / PRIOR_FILE, w)
        assert by_weight[w] == expected
    assert by_weight[4.0] != by_weight[0.0]  # the prior changes words here, so the equality above has teeth


def test_prior_weight_is_the_best_dev_match_within_the_top_word_ceiling():
    from demo_build.prior_stage import choose_weight, top_word_share

    accuracy = {0.25: 0.0475, 0.5: 0.045, 0.75: 0.035, 1.0: 0.0325}  # the shipped build's dev figures
    assert choose_weight(accuracy, {0.25: 0.0325, 0.5: 0.025, 0.75: 0.0125, 1.0: 0.0075}) == 0.5  # 0.25 is over
    assert choose_weight(accuracy, dict.fromkeys(accuracy, 0.01)) == 0.25  # all within: accuracy alone
    assert choose_weight(accuracy, dict.fromkeys(accuracy, 0.2)) == 0.25  # none within: accuracy alone
    assert choose_weight({0.25: 0.04, 0.5: 0.04, 0.75: 0.04, 1.0: 0.03}, dict.fromkeys(accuracy, 0.0)) == 0.25  # tie
    assert top_word_share([{"greedy": "a"}, {"greedy": "b"}, {"greedy": "a"}, {"greedy": "c"}]) == 0.5


def test_ngram_stage_chooses_its_order_on_dev_and_pairs_with_tall(built):
    work, out = built
    result = json.loads((out / "metrics.json").read_text())["word_ngram"]
    dev = {int(n): a for n, a in result["dev_accuracy"].items()}
    assert sorted(dev) == [2, 3, 4, 5] and dev[result["order"]] == max(dev.values())
    assert all(dev[n] < dev[result["order"]] for n in dev if n < result["order"])  # ties go to the lower order
    counted = [json.loads(line) for line in (work / "eval-ngram" / "test" / "predictions.jsonl").open()]
    assert len(counted) == 6 and {r["approach"] for r in counted} == {"word-ngram"}
    assert result["row"]["examples"] == 6 and result["row"]["seeds"] == 2 and result["vs_tall"]["n"] == 6
    assert result["output"]["unseen_share"] == 0.0  # it can only say words it counted
    from baselines.word_ngram import NGRAM_FILE, load_ngram

    shipped = load_ngram(out / NGRAM_FILE)  # what the app's Compare tab counts from: the file scored here
    assert shipped.order == result["order"] and shipped.sentences == result["sentences"]
    assert NGRAM_FILE in result["command"] and "--ngram-order" not in result["command"]  # the file has its order
    assert [r["greedy"] for r in counted] == [shipped.ranked(r["prefix"], 1)[0] for r in counted]
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "`word-ngram` is not one of the paper's baselines" in readme and "| he_test | word-ngram | 6 |" in readme


def test_fusion_stage_chooses_lambda_and_mu_on_dev_writes_them_into_the_ngram_and_pairs_with_both(built):
    from baselines.word_ngram import NGRAM_FILE, load_ngram
    from demo_build.fusion_stage import DISCOUNTS, FUSED, WEIGHTS, choose_setting

    work, out = built
    result = json.loads((out / "metrics.json").read_text())["fusion"]
    rows = result["dev"]
    assert {(r["weight"], r["discount"]) for r in rows} == {(w, m) for w in WEIGHTS for m in DISCOUNTS}
    assert result["dev_examples"] == 12
    assert choose_setting(rows) == result["dev_chosen"] and choose_setting(rows, None) == result["dev_most_hits"]
    assert (result["weight"], result["discount"]) == (result["dev_chosen"]["weight"], result["dev_chosen"]["discount"])
    shipped = load_ngram(out / NGRAM_FILE)
    # `--ngram` alone and the app decode as scored
    assert (shipped.fusion_weight, shipped.fusion_discount) == (result["weight"], result["discount"])
    assert shipped.order == json.loads((out / "metrics.json").read_text())["word_ngram"]["order"]
    fused = [json.loads(line) for line in (work / "eval-fusion" / "test" / "predictions.jsonl").open()]
    assert len(fused) == 6 and result["examples"] == 6
    assert set(result["vs"]) == {"tall", "word-ngram"} and all(c["reference"] == FUSED for c in result["vs"].values())
    assert result["vs"]["tall"]["n"] == result["vs"]["word-ngram"]["n"] == 6
    assert result["greedy"] == pytest.approx(result["vs"]["tall"]["reference_accuracy"])
    assert "--ngram " in result["command"] and "--ngram-weight" not in result["command"]  # the file carries λ, μ
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "`tall + word-ngram`" in readme and f"μ = {result['discount']:g} were chosen among 28 settings" in readme


@pytest.mark.parametrize("weight, discount", [(0.5, 0.0), (3.0, 1.5)])
def test_the_stage_ranks_one_pool_as_predict_ranks_at_each_setting(built, weight, discount):
    """The sweep re-ranks one fused pool per verse instead of predicting once per setting: its words at a (λ, μ)
    are evaluation's own greedy word and top five at that (λ, μ)."""
    from baselines.word_ngram import NGRAM_FILE, load_ngram
    from demo_build.fusion_stage import fused_pools, ranked_words
    from evaluation.evaluate import evaluate, load_dataset
    from tall_model import load

    work, out = built
    data, run = work / "data" / "he_dev_all.jsonl", work / f"pools-{weight:g}-{discount:g}"
    model = load(out / "tall", device="cpu")
    payload = evaluate([data], preset="tiny", tall=out / "tall", approaches=("tall",), seeds=0,
                       translation_cache=work / "pools.sqlite", backbones=model.backbones, progress=False,
                       ngram=out / NGRAM_FILE, ngram_weight=weight, ngram_discount=discount, out=run)
    records = [json.loads(line) for line in (run / "predictions.jsonl").open()]
    examples = load_dataset(data).examples
    pools = fused_pools(model, out / "tall", out / NGRAM_FILE, [e.prefix for e in examples],
                        [r["translation"] for r in records], "tiny")
    ranked = ranked_words(pools, load_ngram(out / NGRAM_FILE), weight, discount)
    assert len(ranked) == len(records) == payload["rows"][0]["examples"] == 12
    assert [r[0] for r in ranked] == [r["greedy"] for r in records]
    assert [r[:5] for r in ranked] == [r["candidates"] for r in records]
    assert all(len(r) > 5 for r in ranked)  # the pool is wider than what evaluation keeps


def test_new_ngram_counts_make_the_fusion_stage_run_again(built):
    """Re-counting the n-gram writes a file without a fusion weight: the fusion stage is marked not done and its
    figures leave metrics.json, so a build never ships the old λ's sentence beside new counts; the next run of the
    stage restores both."""
    from baselines.word_ngram import NGRAM_FILE, load_ngram
    from demo_build.context import merge_json

    work, out = built
    common = ["--workdir", str(work), "--out", str(out), "--tall-preset", "tiny", "--threads", "1",
              "--eval-limit", "6", "--eval-seeds", "2"]
    before = json.loads((out / "metrics.json").read_text())["fusion"]
    build_main([*common, "--stages", "ngram", "--force", "ngram"])
    counted = load_ngram(out / NGRAM_FILE)
    assert counted.fusion_weight is None and counted.fusion_discount is None
    assert json.loads((out / "metrics.json").read_text())["fusion"] is None
    assert not (work / "stages" / "fusion.done").exists()
    merge_json(out / "metrics.json", {"fusion": {"dev_accuracy": {"2": 0.5}}})  # a field an older stage wrote
    build_main([*common, "--stages", "fusion,cards"])  # not forced: it runs because it is no longer done
    after = json.loads((out / "metrics.json").read_text())["fusion"]
    assert "dev_accuracy" not in after  # the stage's result replaces the stored one whole
    same = ("weight", "discount", "greedy")
    assert [after[k] for k in same] == [before[k] for k in same]  # the same counts again
    shipped = load_ngram(out / NGRAM_FILE)
    assert (shipped.fusion_weight, shipped.fusion_discount) == (after["weight"], after["discount"])


def test_fusion_setting_keeps_the_top_word_within_the_ceiling_then_is_the_best_dev_match():
    from demo_build.fusion_stage import choose_setting

    def row(lam, mu, greedy, top5, share):
        return {"weight": lam, "discount": mu, "greedy": greedy, "top5": top5, "top_share": share}

    rows = [row(2.0, 0.0, 0.12, 0.18, 0.10), row(0.75, 1.0, 0.10, 0.19, 0.03), row(1.0, 1.0, 0.10, 0.18, 0.02)]
    assert choose_setting(rows) == rows[1]  # the most hits (2.0, 0) over-uses a word; then top-5 decides
    assert choose_setting(rows, None) == rows[0]  # without the ceiling, the most hits
    assert choose_setting([rows[0]]) == rows[0]  # none within it: all settings compete
    ties = [row(1.0, 0.5, 0.1, 0.2, 0.01), row(0.5, 1.0, 0.1, 0.2, 0.01), row(0.5, 0.5, 0.1, 0.2, 0.01)]
    assert choose_setting(ties) == ties[2]  # the smaller λ, then the smaller μ


def test_ablations_are_trained_on_one_budget_and_compared_with_the_full_model(built):
    work, out = built
    table = json.loads((out / "ablations" / "metrics.json").read_text())
    rows = {r["name"]: r for r in table["rows"]}
    assert list(rows) == ["tall", "no-translation", "subword-framing", "decoder-lora"]  # the reference first
    assert table["budget"]["steps"] == 2 and all(r["steps"] == 2 and r["examples"] == 6 for r in rows.values())
    assert rows["tall"]["vs_reference"] is None
    for name in ("no-translation", "subword-framing", "decoder-lora"):
        versus = rows[name]["vs_reference"]
        assert versus["reference"] == "tall" and versus["approach"] == name and versus["n"] == 6
        assert 0 <= versus["mcnemar_p"] <= 1
    saved = json.loads((work / "ablations" / "no-translation" / "train" / "last" / "config.json").read_text())
    assert saved["config"]["bridge_in_mode"] == "hebrew_only"
    # no cross-attention in bridge-in: fewer trainable parameters than the full model
    assert rows["no-translation"]["trainable_parameters"] < rows["tall"]["trainable_parameters"]
    lora = json.loads((work / "ablations" / "decoder-lora" / "train" / "last" / "config.json").read_text())
    assert lora["config"]["decoder_lora_rank"] == 16  # stage 7's LoRA factors train on top of the full model's
    assert rows["decoder-lora"]["trainable_parameters"] > rows["tall"]["trainable_parameters"]
    records = [json.loads(line) for line in (out / "ablations" / "predictions.jsonl").open(encoding="utf-8")]
    assert sorted({r["approach"] for r in records}) == ["decoder-lora", "no-translation", "subword-framing", "tall"]
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Ablations and sweeps" in readme and "| no-translation | no translation input" in readme


def test_finished_only_ablations_table_lists_the_rest_as_pending(built, tmp_path):
    work, out = built
    again = tmp_path / "out"
    build_main(["--workdir", str(work), "--out", str(again), "--stages", "ablations", "--force", "ablations",
                "--tall-preset", "tiny", "--threads", "1", "--ablation-steps", "2", "--eval-limit", "6",
                "--adapter-sentences", "24", "--ablations", "no-translation,no-llm", "--ablations-finished-only"])
    table = json.loads((again / "ablations" / "metrics.json").read_text())
    assert [r["name"] for r in table["rows"]] == ["tall", "no-translation"] and table["pending"] == ["no-llm"]
    assert not (work / "ablations" / "no-llm").exists()  # nothing trained in this mode


def test_a_row_trained_with_other_settings_is_refused_not_reused(built, tmp_path):
    work, out = built
    before = (work / "ablations" / "tall" / "trained.json").read_text()
    with pytest.raises(RuntimeError, match=r"ablation tall\].*max_steps: 2 there, 3 now"):
        build_main(["--workdir", str(work), "--out", str(tmp_path / "out"), "--stages", "ablations", "--force",
                    "ablations", "--tall-preset", "tiny", "--threads", "1", "--ablation-steps", "3", "--eval-limit", "6",
                    "--ablations", "no-translation"])
    assert (work / "ablations" / "tall" / "trained.json").read_text() == before  # nothing retrained or removed


def test_a_rebuild_with_the_same_seeds_and_steps_is_bitwise_identical(built, tmp_path):
    """Same data, step budget and seeds, a fresh work folder: the same adapter tensors, bit for bit (CPU, 1 thread)."""
    work, out = built
    again_work, again_out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(work / "data", again_work / "data")
    (again_out / "tall").parent.mkdir(parents=True, exist_ok=True)
    build_main(["--workdir", str(again_work), "--out", str(again_out), "--stages", "adapters", "--tall-preset", "tiny",
                "--threads", "1", "--adapter-sentences", "24", "--adapter-steps", "3", "--adapter-eval-every", "2"])
    first, second = (load_file(str(o / "tall" / "model.safetensors")) for o in (out, again_out))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    # the adapters stage alone records TALL's budget (a rebuild of the adapters without the baselines once left the
    # budgets table with the previous adapters' parameter count)
    budgets = json.loads((again_out / "metrics.json").read_text())["budgets"]
    assert budgets["tall"]["steps"] == 3 and budgets["tall"]["sentences"] == 24
    assert budgets["tall"]["trainable_parameters"] == json.loads(
        (again_out / "tall" / "config.json").read_text())["parameters"]["trainable"]


def test_shipped_adapters_load_and_predict(built):
    import torch
    from safetensors.torch import load_file

    from tall_model import load
    from tall_model.predict import predict

    _, out = built
    model = load(out / "tall")
    assert "adapters from" in model.source and model.config.preset == "tiny"
    saved = load_file(str(out / "tall" / "model.safetensors"))
    for key, value in model.trainable_state_dict().items():
        assert torch.equal(value, saved[key].float()), key
    pred = predict(model, "בראשית ברא אלהים את השמים ואת")  # greedy
    assert pred.pieces  # random tiny backbones: any word, but a decoded one


def test_the_shipped_adapters_are_the_checkpoint_chosen_on_every_dev_verse(built):
    work, out = built
    selection = json.loads((out / "metrics.json").read_text())["adapters"]["selection"]
    meta = json.loads((out / "tall" / "config.json").read_text())
    assert meta["extra"]["selection"] == selection and meta["extra"]["selected"] == selection["selected"]
    chosen = load_file(str(work / "adapters" / selection["selected"] / "model.safetensors"))
    shipped = load_file(str(out / "tall" / "model.safetensors"))
    assert all(torch.equal(shipped[k], chosen[k].half()) for k in shipped)


def test_two_checkpoints_are_scored_on_every_dev_verse(built, tmp_path):
    """Two different steps: both scored by evaluation.evaluate on all 12 dev verses (same weights here: a tie, so
    best), and the scores are kept for a rerun."""
    from demo_build.selection import choose_checkpoint

    work, _ = built
    for name, step in (("best", 2), ("last", 3)):
        shutil.copytree(work / "adapters" / "best", tmp_path / name)
        config = tmp_path / name / "config.json"
        meta = json.loads(config.read_text())
        meta["extra"]["step"] = step
        config.write_text(json.dumps(meta))
    caches = list(work.glob("translations-*.sqlite"))
    chosen = choose_checkpoint(tmp_path, work / "data" / "he_dev_all.jsonl", caches[0])
    assert chosen["examples"] == 12 and chosen["selected"] == "best" and chosen["mcnemar_p"] == 1.0
    assert chosen["hits"]["best"] == chosen["hits"]["last"]
    assert all((tmp_path / "selection" / n / "predictions.jsonl").is_file() for n in ("best", "last"))


def test_test_books_reach_no_training_file(built):
    work, out = built
    training_files = json.loads((work / "training_files.json").read_text())
    assert any(f.endswith("he_train.jsonl") for f in training_files)
    assert not any("he_test" in f or "he_dev" in f for f in training_files)
    trained = [json.loads(line)["id"].split(".")[0] for line in (work / "data" / "he_train.jsonl").open()]
    assert trained and not set(trained) & set(dd.TEST_BOOKS)


def test_app_examples_are_test_verses_without_their_last_word(built):
    work, out = built
    test = {p.id: p for p in dd.read_jsonl(work / "data" / "test.jsonl")}
    examples = [json.loads(line) for line in (out / "test_examples.jsonl").open(encoding="utf-8")]
    assert len(examples) >= 4 and len({e["id"].split(".")[0] for e in examples}) >= 4
    for e in examples:
        assert test[e["id"]].he == f"{e['prefix']} {e['target']}"


def test_resumed_build_skips_finished_stages(built, capsys):
    work, out = built
    build_main(["--workdir", str(work), "--out", str(out), "--stages", "hebrew,adapters",
                     "--tall-preset", "tiny", "--threads", "1"])
    printed = capsys.readouterr().out
    assert "== hebrew: outputs exist, skipped" in printed and "== adapters: outputs exist, skipped" in printed


def test_the_stage_7_row_tries_the_other_way_from_the_base():
    """The demo preset adapts stage 7 (LoRA), so its row is the paper's frozen decoder; a frozen base gets LoRA."""
    from demo_build.ablation_stages import LORA_RANK, ablations
    from tall_model import preset_config

    demo = preset_config("demo")
    rows = {r.name: r.changes for r in ablations(demo)}
    assert demo.decoder_lora_rank > 0 and rows["frozen-decoder"] == {"decoder_lora_rank": 0}
    assert "decoder-lora" not in rows
    rows = {r.name: r.changes for r in ablations(demo.replace(decoder_lora_rank=0))}
    assert rows["decoder-lora"] == {"decoder_lora_rank": LORA_RANK} and "frozen-decoder" not in rows
    assert list(rows)[0] == "tall" and len(rows) == 15  # the reference first, then fourteen changes


def test_tall_stages_train_and_score_on_the_backbones_out_holds(built, tmp_path):
    """A build into an --out that holds a backbone of its own (here an lm/ that is not the preset's) trains TALL on
    it, and the baselines and the table name it (--backbone-dir); the backbones --out lacks stay the preset's."""
    from demo_build.build import parse_args
    from demo_build.context import BuildContext
    from tall_model import preset_config
    from tall_model.backbones import load_backbones
    from tall_model.tiny import ensure_local_backbones

    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(built[0] / "data", work / "data")
    shutil.copytree(ensure_local_backbones("tiny") / "qwen", out / "lm")  # another LLM where a build writes its LM
    options = ["--workdir", str(work), "--out", str(out), "--tall-preset", "tiny", "--threads", "1"]
    ctx = BuildContext(args=parse_args(options), workdir=work, out=out)
    config, preset = ctx.tall_config(), preset_config("tiny")
    assert config.llm == str(out / "lm") and config.lr_hr_translator == preset.lr_hr_translator
    assert ctx.backbone_dir == out and ctx.preset_args() == ["--preset", "tiny", "--backbone-dir", out]
    build_main([*options, "--stages", "hebrew,adapters,baselines,evaluate", "--adapter-sentences", "8",
                "--adapter-steps", "2", "--adapter-eval-every", "2", "--baseline-steps", "1", "--eval-limit", "3",
                "--eval-seeds", "0"])
    tall = json.loads((out / "tall" / "config.json").read_text())
    assert tall["config"]["llm"] == str(out / "lm")
    assert tall["backbone_fingerprints"]["llm"] == load_backbones(preset_config("tiny-qwen")).fingerprints()["llm"]
    baseline = json.loads((out / "baselines" / "soft-prompt" / "baseline.json").read_text())
    assert f"--preset tiny --backbone-dir {out} " in baseline["command"]
    table = json.loads((out / "eval" / "metrics.json").read_text())
    assert table["backbones"]["llm"] == str(out / "lm") and f"--backbone-dir {out} " in table["command"]
    # the shipped folder holds the demo preset's own backbones: its commands stay `--preset demo`
    shipped = BuildContext(args=parse_args([]), workdir=work, out=demo_dir())
    assert shipped.tall_config() == preset_config("demo") and shipped.backbone_dir is None


def test_a_build_that_keeps_short_targets_gives_the_baselines_talls_verses(built, tmp_path):
    """--adapter-max-target-pieces N: TALL trains on the verses whose last word is at most N he→en pieces, and the
    baselines are given exactly those verses (the fair comparison), which the budgets and commands say."""
    from demo_build.results import budget_section
    from tall_data.corpus import read_corpus
    from tall_model import preset_config
    from tall_model.backbones import load_backbones
    from tall_model.text import word_core

    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(built[0] / "data", work / "data")
    build_main(["--workdir", str(work), "--out", str(out), "--tall-preset", "tiny", "--threads", "1",
                "--stages", "hebrew,adapters,baselines", "--adapter-sentences", "24", "--adapter-steps", "2",
                "--adapter-eval-every", "2", "--baseline-steps", "1", "--adapter-max-target-pieces", "4"])
    tokenizer = load_backbones(preset_config("tiny")).lr_hr_tokenizer
    verses = read_corpus(work / "data" / "he_train.jsonl", max_sentences=24).sentences
    short = [v for v in verses if len(tokenizer.tokenize(word_core(v.split()[-1]))) <= 4]
    assert 0 < len(short) < len(verses)  # the filter keeps some verses and drops others
    extra = json.loads((out / "tall" / "config.json").read_text())["extra"]
    assert extra["max_target_pieces"] == 4 and extra["train_examples"] == len(short)
    budgets = json.loads((out / "metrics.json").read_text())["budgets"]
    assert {kind: budgets[kind]["sentences"] for kind in budgets} == dict.fromkeys(budgets, len(short))
    assert {budgets[kind]["max_target_pieces"] for kind in budgets} == {4}
    for kind in ("soft-prompt", "fine-tuned"):
        baseline = json.loads((out / "baselines" / kind / "baseline.json").read_text())
        assert "--max-target-pieces 4" in baseline["command"] and baseline["sentences"] == len(short)
    assert f"| tall | 2 | 16 | {len(short)} (last word ≤ 4 he→en piece(s)) |" in "\n".join(budget_section(
        {"budgets": budgets}))
    with pytest.raises(ValueError, match="needs --adapter-positions last"):
        build_main(["--workdir", str(work), "--out", str(out), "--tall-preset", "tiny", "--stages", "adapters",
                    "--adapter-max-target-pieces", "4", "--adapter-positions", "all", "--force", "adapters"])
