"""The demo's results block: computed output statistics, and the README block rewritten between its markers only."""

from __future__ import annotations

import pytest

from demo_build.results import RESULTS_END, RESULTS_START, output_stats, readme_block, update_readme


def test_output_stats_counts_the_most_frequent_word_and_unseen_words():
    records = [{"approach": "tall", "greedy": g} for g in ("לו", "לו,", "שלום", "", "תבדו")]
    stats = output_stats(records, training_words={"לו", "שלום"})["tall"]
    assert stats["top_word"] == "לו" and stats["top_count"] == 2  # edge punctuation ignored, as when scoring
    assert stats["top_share"] == pytest.approx(2 / 5)
    assert stats["unseen_share"] == pytest.approx(1 / 4)  # of the non-empty words: תבדו


def test_update_readme_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{RESULTS_START}\nold numbers\n{RESULTS_END}\noutro\n", encoding="utf-8")
    metrics = {"next_word": {"rows": [], "seeds": [0, 1]}, "translators": {}, "lm": {}}
    assert update_readme(readme, metrics)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{RESULTS_END}\noutro\n") and "old numbers" not in text
    assert "seeds 0, 1" in readme_block(readme)
    assert not update_readme(readme, metrics)  # idempotent


def test_update_readme_without_markers_is_a_clear_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no generated block"):
        update_readme(readme, {})


def test_the_verdict_names_its_subject_whatever_the_p_values():
    from demo_build.results import significance_verdict

    def row(name, p, diff):
        return {"reference": "tall", "approach": name, "mcnemar_p": p, "difference": diff}

    none_significant = significance_verdict([row("no-llm", 1.0, -0.001), row("concat", 0.69, 0.002)])
    assert none_significant.startswith("TALL's greedy exact match is not significantly different from that of "
                                       "no-llm (p = 1) and concat (p = 0.69)")
    mixed = significance_verdict([row("direct", 0.0002, 0.02), row("naive", 0.2, 0.01), row("x", 0.001, -0.03)])
    assert mixed.startswith("TALL's greedy exact match is significantly higher than that of direct (p = 0.0002); "
                            "significantly lower than that of x (p = 0.001); not significantly different")
    assert significance_verdict([]) == "(no paired comparison yet)"


def test_the_word_list_sentence_follows_its_paired_test():
    from demo_build.results import word_list_section

    def section(p, difference):
        paired = {"reference_accuracy": 0.02, "only_approach": 9, "only_reference": 1, "mcnemar_p": p,
                  "difference": difference}
        w = {"words": 37381, "file": "training_words.txt", "changed_greedy": 198, "examples": 731, "greedy": 0.03,
             "top5": 0.07, "free_top5": 0.06, "vs_free": paired}
        return " ".join(word_list_section(w))

    text = section(0.02, -0.01)  # difference is free − listed: negative means the list helped
    assert "37,381 words" in text and "198 of 731" in text and "3.00 % against 2.00 % free" in text
    assert "p = 0.02: significantly higher" in text and "top-5 7.00 % against 6.00 %" in text
    assert "significantly lower" in section(0.01, 0.01)
    assert "not significantly different" in section(0.3, -0.01)
    assert word_list_section({}) == []


def test_the_prior_sentence_follows_its_paired_test_and_names_the_dev_choice():
    from demo_build.results import output_section, prior_section

    def result(p, difference):
        paired = {"reference_accuracy": 0.02, "only_approach": 6, "only_reference": 2, "mcnemar_p": p,
                  "difference": difference}
        return {"file": "first_piece_prior.safetensors", "prefixes": 2000, "weight": 0.5, "dev_examples": 400,
                "dev_accuracy": {"0": 0.035, "0.5": 0.045}, "changed_greedy": 427, "examples": 731,
                "greedy": 0.025, "vs_free": paired,
                "output": {"examples": 731, "top_word": "לו", "top_count": 15, "top_share": 15 / 731,
                           "unseen_share": 0.1}}

    text = " ".join(prior_section(result(0.3, -0.005)))
    assert "2,000 training prefixes" in text and "w = 0.5 was chosen on the 400 dev verses" in text
    assert "3.50 % at w = 0, 4.50 % at w = 0.5" in text and "427 of 731" in text
    assert "2.50 % against 2.00 % free (6 right only with the prior, 2 only without" in text
    assert "not significantly different" in text
    assert "significantly higher" in " ".join(prior_section(result(0.004, -0.008)))
    assert prior_section({}) == []
    stats = {"tall": {"examples": 731, "top_word": "במה", "top_count": 33, "top_share": 33 / 731, "unseen_share": 0.25}}
    table = "\n".join(output_section({"next_word": {"output_stats": stats}, "prior": result(0.3, -0.005)}))
    assert "| tall, prior-corrected | לו | 15 of 731 (2.1 %) | 10.0 % |" in table


def test_the_word_ngram_reference_joins_the_table_the_paired_tests_and_the_outputs():
    from demo_build.results import results_markdown

    def row(approach, accuracy):
        return {"dataset": "he_test", "approach": approach, "examples": 731, "accuracy": accuracy,
                "sampled_accuracy": accuracy / 2, "sampled_ci_low": 0.0, "sampled_ci_high": accuracy, "seeds": 5,
                "sampled_ci_half_width": accuracy / 2, "top5_accuracy": 2 * accuracy, "mean_log_prob": None,
                "empty_greedy": 0.0, "seconds": 1.0}

    def paired(approach, p, difference):
        return {"dataset": "he_test", "reference": "tall", "approach": approach, "n": 731,
                "reference_accuracy": 0.0178, "approach_accuracy": 0.0178 - difference, "only_reference": 5,
                "only_approach": 30, "mcnemar_p": p, "difference": difference, "ci_low": difference - 0.01,
                "ci_high": difference + 0.01, "confidence": 0.95, "resamples": 10000, "seed": 0}

    stats = {"examples": 731, "top_word": "יהוה", "top_count": 140, "top_share": 140 / 731, "unseen_share": 0.0}
    metrics = {"next_word": {"rows": [row("tall", 0.0178)], "seeds": [0], "significance": [paired("naive", 0.1, 0.01)],
                             "output_stats": {"tall": stats}},
               "word_ngram": {"order": 3, "orders": [2, 3], "dev_examples": 400, "sentences": 20968,
                              "dev_accuracy": {"2": 0.08, "3": 0.115}, "row": row("word-ngram", 0.0588),
                              "vs_tall": paired("word-ngram", 0.00001, -0.041), "output": stats}}
    text = results_markdown(metrics)
    assert "| he_test | word-ngram | 731 | 5.88 |" in text  # a row of the main table
    assert "significantly lower than that of word-ngram (p = 1e-05)" in text
    assert "not one of the paper's baselines" in text and "prefix's last 2 words" in text
    assert "Order 3 was chosen on the 400 dev verses (greedy exact match 8.00 % at order 2, 11.50 % at order 3)" in text
    assert "| word-ngram | יהוה | 140 of 731 (19.2 %) | 0.0 % |" in text
    assert "word-ngram" not in results_markdown({**metrics, "word_ngram": {}})


def test_the_departures_from_the_paper_are_named_from_the_shipped_config():
    from demo_build.results import departures_section

    both = " ".join(departures_section({"adapters": {"decoder_lora_rank": 64, "word_choice": "best_candidate"}}))
    assert "two measured ways" in both and "rank 64" in both and "`frozen-decoder`" in both
    assert "likeliest whole candidate" in both and "--word-choice pieces" in both
    one = " ".join(departures_section({"adapters": {"decoder_lora_rank": 0, "word_choice": "best_candidate"}}))
    assert "one measured way" in one and "LoRA" not in one
    # the paper's model (and metrics written before these fields existed) claims no departure
    assert departures_section({"adapters": {"decoder_lora_rank": 0, "word_choice": "pieces"}}) == []
    assert departures_section({}) == []


def test_the_checkpoint_choice_is_stated_from_the_metrics():
    from demo_build.results import selection_section

    selection = {"selected": "last", "steps": {"best": 1750, "last": 2622}, "examples": 1126,
                 "hits": {"best": {"greedy": 93, "top5": 172}, "last": {"greedy": 96, "top5": 177}},
                 "only_last": 9, "only_best": 6, "mcnemar_p": 0.6072}
    adapters = {"selection": selection, "best_dev": {"step": 1750}, "final_dev": {"dev_examples": 400}}
    text = " ".join(selection_section({"adapters": adapters}))
    assert "step 2,622 (`last/`)" in text and "step 1,750" in text and "all 1,126 dev verses" in text
    assert "seeded 400-verse dev sample" in text
    assert "seeded dev sample" in " ".join(selection_section({"adapters": {"selection": selection}}))
    assert "96 greedy and 177 top-5 hits against 93 greedy and 172 top-5 hits" in text and "p = 0.61" in text
    # one checkpoint (nothing was scored) or metrics written before the choice existed: no sentence
    assert selection_section({"adapters": {"selection": {"selected": "best", "hits": None}}}) == []
    assert selection_section({}) == []


def test_the_fusion_sentence_follows_both_paired_tests_and_names_the_dev_choice():
    from demo_build.results import fusion_section, output_section

    def paired(p: float, ours: float, theirs: float, only_ours: int, only_theirs: int) -> dict:
        return {"mcnemar_p": p, "difference": ours - theirs, "reference_accuracy": ours, "approach_accuracy": theirs,
                "only_reference": only_ours, "only_approach": only_theirs}

    def dev(lam: float, mu: float, greedy: float, top5: float, share: float) -> dict:
        return {"weight": lam, "discount": mu, "greedy": greedy, "top5": top5, "top_share": share}

    chosen, most = dev(0.75, 1.0, 0.105, 0.2, 0.025), dev(2.0, 0.0, 0.12, 0.186, 0.09)
    result = {"file": "word_ngram.json", "weight": 0.75, "discount": 1.0, "dev_examples": 1126,
              "dev": [chosen, most, dev(1.0, 0.0, 0.11, 0.19, 0.05)], "dev_chosen": chosen, "dev_most_hits": most,
              "top_word_ceiling": 0.03, "within_ceiling": True, "greedy": 0.067, "top5": 0.1327, "examples": 731,
              "vs": {"tall": paired(0.016, 0.067, 0.0438, 31, 14), "word-ngram": paired(0.58, 0.067, 0.0629, 8, 5)},
              "output": {"top_word": "יהוה", "top_count": 74, "examples": 731, "top_share": 74 / 731,
                         "unseen_share": 0.0}}
    text = " ".join(fusion_section(result))
    assert ("λ = 0.75 and μ = 1 were chosen among 3 settings on the 1,126 dev verses by the best greedy exact match "
            "among the settings whose most frequent dev word stays within 3 % of the verses") in text
    assert "(λ = 0.75, μ = 1: greedy / top-5 10.50 % / 20.00 %, top word 2.5 %; the most greedy hits regardless " \
           "would be λ = 2, μ = 0: greedy / top-5 12.00 % / 18.60 %, top word 9.0 %)" in text
    bare = " ".join(fusion_section(dict(result, within_ceiling=False, dev_chosen=most, weight=2.0, discount=0.0)))
    assert "no setting kept the most frequent dev word within 3 %" in bare and "regardless" not in bare
    assert ("6.70 % against 4.38 % for TALL (31 right only when fused, 14 only by TALL; exact McNemar p = 0.016: "
            "significantly higher)") in text
    assert "6.29 % for the n-gram (8 right only when fused, 5 only by the n-gram; exact McNemar p = 0.58: not " \
           "significantly different)" in text
    assert "top-5 13.27 %" in text and "יהוה (10.1 %)" in text and "no longer TALL alone" in text
    lower = dict(result, vs={**result["vs"], "word-ngram": paired(0.01, 0.05, 0.07, 2, 17)})
    assert "significantly lower" in " ".join(fusion_section(lower))
    assert fusion_section({}) == []
    stats = {"tall": {"top_word": "לו", "top_count": 37, "examples": 731, "top_share": 0.05, "unseen_share": 0.1}}
    table = "\n".join(output_section({"next_word": {"output_stats": stats}, "fusion": result}))
    assert "| tall + word-ngram | יהוה | 74 of 731 (10.1 %) | 0.0 % |" in table


def test_translator_scores_include_the_greedy_tall_reads(tmp_path):
    """The eval-translators scoring on the shipped he→en (a copy): besides plain greedy and the chosen decoding, the
    test books are translated with one beam under the chosen repetition guard (how TALL's stage 3 translates), and
    the README row shows it."""
    import shutil
    from types import SimpleNamespace

    from demo_build.backbone_stages import _score_translator
    from demo_build.data import VersePair
    from demo_build.results import translator_rows
    from demo_build.scoring import GEN_CANDIDATES
    from tall_model.config import demo_dir

    out, work = tmp_path / "out", tmp_path / "work"
    shutil.copytree(demo_dir() / "he-en", out / "he-en")
    (work / "eval").mkdir(parents=True)
    before = {"chrF": 43.52, "BLEU": 21.18}  # measured by a build whose fp32 weights this work folder lacks
    ctx = SimpleNamespace(out=out, workdir=work, log=lambda msg: None,
                          metrics=lambda: {"translators": {"he-en": {"dev_greedy_fp32_before_cast": before}}})
    pairs = [VersePair("Ruth", 1, i + 1, he, en) for i, (he, en) in enumerate([
        ("ויהי בימי שפט השפטים ויהי רעב בארץ", "Now it came to pass in the days when the judges judged"),
        ("ויאמר יהוה אל משה לאמר", "And the LORD spoke unto Moses, saying"),
        ("ותאמר נעמי לשתי כלתיה לכנה שבנה", "And Naomi said unto her two daughters-in-law: Go, return")])]
    r = _score_translator(ctx, "he-en", pairs[:2], pairs)
    assert r["dev_greedy_fp32_before_cast"] == before  # kept, not dropped, when it cannot be measured again
    guarded = r["test_greedy_guarded"]
    assert guarded["n"] == 3 and set(guarded) >= {"chrF", "BLEU", "loops"}
    chosen = GEN_CANDIDATES[r["chosen_generation"]]
    if chosen.get("num_beams", 1) == 1:  # a greedy candidate won: the guarded greedy is that candidate
        assert guarded == r["test"]
    if chosen.get("no_repeat_ngram_size"):
        assert guarded["loops"] == 0.0  # no repeated 3-gram can be generated at all
    rows = "\n".join(translator_rows({"translators": {"he-en": r}}))
    assert f"| he-en | greedy with the chosen guard (as TALL translates) | {guarded['BLEU']} | {guarded['chrF']} |" in rows
    old = {k: v for k, v in r.items() if k != "test_greedy_guarded"}  # a build from before the row existed
    assert "chosen guard" not in "\n".join(translator_rows({"translators": {"he-en": old}}))


def test_plain_greedy_is_scored_without_the_guard_the_model_was_saved_with():
    """The shipped he→en's generation config carries the chosen guard (no repeated 3-gram); the scoring's "greedy"
    must still be plain greedy, or a rerun of the stage measures a different decoding than the first run did. This
    test-book verse loops under plain greedy ("and Arpa, and Arpa, and Arpa")."""
    import torch
    from transformers import GenerationConfig, MarianMTModel

    from demo_build.marian_tokenizer import load_marian_tokenizer
    from demo_build.scoring import GEN_CANDIDATES, LENGTH_RATIO, loop_fraction, translate
    from tall_model.config import demo_dir

    folder = demo_dir() / "he-en"
    assert GenerationConfig.from_pretrained(str(folder)).no_repeat_ngram_size == 3
    model = MarianMTModel.from_pretrained(str(folder), dtype=torch.float32)
    verse = ["ואת פרמשתא ואת אריסי ואת ארדי ואת ויזתא"]
    plain = translate(model, load_marian_tokenizer(folder), verse, GEN_CANDIDATES["greedy"], LENGTH_RATIO["he-en"])
    guarded = translate(model, load_marian_tokenizer(folder), verse, GEN_CANDIDATES["greedy_nrep3"],
                        LENGTH_RATIO["he-en"])
    assert loop_fraction(plain) == 1.0 and loop_fraction(guarded) == 0.0
