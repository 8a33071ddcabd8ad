"""The README's reproduction figures are those kept in benchmarks/results/reproduction/ (the shipped TALL retrained
and the shipped table re-scored on another CPU), so a rerun that changes them, or an edit that retypes them, fails."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "benchmarks" / "results" / "reproduction"


def kept(name: str) -> dict:
    return json.loads((KEPT / f"{name}.json").read_text(encoding="utf-8"))


def flat(text: str) -> str:
    return " ".join(text.split())


def of(same: int, n: int) -> str:
    """How the README says how many of n were the same."""
    return f"all {n:,}" if same == n else f"{same:,} of {n:,}"


def readme() -> str:
    return flat((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_retrained_tall_sentence_is_its_record():
    r = kept("tall-s0")
    rep, curve, steps = r["reproduction"], r["reproduction"]["dev_curve"], r["selection"]["steps"]
    assert r["row"] == "tall" and r["seed"] == 0 and "--reproduce" in r["command"]
    assert r["shipped_machine"].split(",")[0] != rep["machine"].split(",")[0]  # another CPU, or it proves nothing
    said = (f"the adapters stage retrained (`{r['command']}`) has the shipped run's dev accuracy at "
            f"{of(curve['same_dev_accuracy'], curve['steps'])} evaluated steps and its dev loss to within "
            f"{curve['dev_loss_largest_difference']:.2g}, "
            f"chooses the same checkpoint (step {steps[r['selection']['selected']]:,}), and predicts the same greedy "
            f"word on {of(rep['dev']['same_greedy'], rep['dev']['examples'])} dev and "
            f"{of(rep['test']['same_greedy'], rep['test']['examples'])} test verses; as shipped (fp16), "
            f"{rep['weights']['identical']} of its {rep['weights']['tensors']} tensors are bitwise the shipped ones "
            f"and the others differ by at most {rep['weights']['max_abs_difference']:.2g}.")
    assert flat(said) in readme()


def test_the_rescored_table_sentence_is_its_record():
    e = kept("eval")
    counts = e["predictions"].values()
    total = sum(c["examples"] for c in counts)
    same = {k: sum(c[f"same_{k}"] for c in counts) for k in ("greedy", "translation", "sampled", "candidates")}
    assert same["greedy"] == same["translation"] == same["sampled"] == total  # what the sentence says as "all"
    examples = {c["examples"] for c in counts}
    said = (f"give the same greedy words, translations and sampled words for every approach on all "
            f"{examples.pop()} test verses, the same candidate lists on {same['candidates']:,} of {total:,}, and the "
            f"table's numbers to within {max(e['rows_largest_difference'].values()):.2g}.")
    assert not examples and flat(said) in readme()


def test_the_retrained_baselines_sentence_is_their_record():
    b = kept("baselines")
    soft, tuned, ev = b["soft-prompt"]["losses"], b["fine-tuned"]["losses"], b["evaluation"]
    same = {k: ev["predictions"][f"he_test/{k}"] for k in ("soft-prompt", "fine-tuned")}
    acc, logp = ev["greedy_accuracy"]["fine-tuned"], ev["mean_log_prob"]["fine-tuned"]
    said = (f"soft-prompt's logged losses stay within {soft['largest_difference']:.1g} of the shipped run's at "
            f"{of(soft['steps'], soft['steps'])} steps, and it predicts the same greedy word on "
            f"{of(same['soft-prompt']['same_greedy'], same['soft-prompt']['examples'])} test verses. Fine-tuned's "
            f"LoRA training amplifies the noise: its losses are the shipped ones until step "
            f"{tuned['first_different_step'] - 1} and then up to {tuned['largest_difference']:.2g} apart (final loss "
            f"{tuned['final'][1]:.5g} against {tuned['final'][0]:.5g}), so its greedy word is the same on "
            f"{of(same['fine-tuned']['same_greedy'], same['fine-tuned']['examples'])} test verses, its greedy exact "
            f"match {100 * acc['retrained']:.2f} % against {100 * acc['shipped']:.2f} % and its mean "
            f"log-probability of the gold word {logp['retrained']:.2f} against {logp['shipped']:.2f}.")
    assert soft["largest_difference"] < 1.5e-5 and same["soft-prompt"]["same_greedy"] == same["soft-prompt"]["examples"]
    assert flat(said) in readme()


def test_the_retrained_lm_sentence_is_its_record():
    lm = kept("lm")
    dev, train, w = lm["dev_token_ppl"], lm["train_loss"], lm["weights"]
    shipped, ours = lm["test_books_ppl_fp16"]
    assert shipped == ours and lm["same_samples"] and lm["best_dev_token_ppl"][0] == lm["best_dev_token_ppl"][1]
    said = (f"{lm['minutes']:.0f} min; the shipped run's CPU was not logged, and it was resumed across sessions) has "
            f"the shipped run's dev perplexity at {of(dev['same'], dev['steps'])} logged steps and its train loss at "
            f"{of(train['same'], train['steps'])}, the same test-book perplexity ({ours['token_ppl']} per token) and "
            f"the same greedy samples; as shipped (fp16), {w['identical']} of its {w['tensors']} tensors are bitwise "
            f"the shipped ones and the others differ by at most {w['max_abs_difference']:.2g}.")
    assert flat(said) in readme()


def translator_record(name: str) -> dict:
    """A translator stage's record, checked to cover the whole budget."""
    t = kept(name)
    assert t["compared_steps"][-1] == t["budget"]
    assert t["dev_loss_en_he"]["steps"] == t["dev_loss_he_en"]["steps"] == len(t["compared_steps"])
    return t


def weights_and_outputs(t: dict) -> str:
    """The part of the README's two translator sentences that says the same of both: weights and greedy outputs."""
    w, test, dev = t["weights_fp16"], t["outputs"]["test_greedy"], t["outputs"]["dev_greedy"]
    return (f"as shipped (fp16), {w['identical']} of its {w['tensors']} tensors "
            f"{'is' if w['identical'] == 1 else 'are'} bitwise the shipped ones and the others differ by at most "
            f"{w['max_abs_difference']:.2g}, and its greedy translation is the shipped one for "
            f"{of(test['same_outputs'], test['n'])} test-book verses and {of(dev['same_outputs'], dev['n'])} dev "
            f"verses (test chrF {test['chrF']:.2f} against {test['shipped_chrF']:.2f}, paired randomization "
            f"p = {test['chrF_p']:.2f}")


def test_the_translator_sentence_is_its_record():
    t = translator_record("he-en")
    dev, other, test = t["dev_loss_he_en"], t["dev_loss_en_he"], t["outputs"]["test_greedy"]
    said = (f"The he→en translator's stage, run there with the shipped recipe ({t['minutes']:.0f} min, interrupted "
            f"once and resumed), logged the shipped run's he→en dev loss (4 decimals) at "
            f"{of(dev['same'], dev['steps'])} of its checkpoints (its en→he dev loss, a direction it does not train, "
            f"at {other['same']}, the others at most {other['largest_difference']:.1g} apart); "
            f"{weights_and_outputs(t)}; repetition loops {100 * test['loops']:.1f} % against "
            f"{100 * test['shipped_loops']:.1f} %).")
    assert flat(said) in readme()


def test_the_en_he_sentence_is_its_record():
    t = translator_record("en-he")
    dev = t["dev_loss_en_he"]
    said = (f"The en→he stage, warm-started there from that run's final model as the build does "
            f"({t['minutes']:.0f} min, slowed by a test run beside it), logged an en→he dev loss within "
            f"{dev['largest_difference']:.1g} of the shipped run's at every one of its {dev['steps']} checkpoints "
            f"(equal to 4 decimals at {dev['same']}); {weights_and_outputs(t)}).")
    assert flat(said) in readme()
