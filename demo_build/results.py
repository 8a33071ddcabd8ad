"""The demo's results as Markdown, computed from checkpoints/demo/metrics.json only (never typed): the demo card and
the block of the repository README between RESULTS_START and RESULTS_END are written from these sections by the
cards stage, and a test regenerates the block from the shipped metrics and compares.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from demo_build.targets import targets_section
from evaluation.metrics import normalize_word
from evaluation.report import format_markdown, rows_from_json
from evaluation.significance import PairedComparison
from evaluation.significance import format_markdown as significance_markdown

RESULTS_START = ("<!-- demo-results: generated from checkpoints/demo/metrics.json by `python -m demo_build --stages "
                 "cards`; do not edit by hand -->")
RESULTS_END = "<!-- /demo-results -->"


SIGNIFICANCE_LEVEL = 0.05


def listed(items: list[str]) -> str:
    """A list as the README's sentences write it: a; a and b; a, b and c."""
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


def significance_verdict(rows: list[dict], level: float = SIGNIFICANCE_LEVEL) -> str:
    """One sentence that says only what the paired tests support."""
    if not rows:
        return "(no paired comparison yet)"
    better = [r for r in rows if r["mcnemar_p"] < level and r["difference"] > 0]
    worse = [r for r in rows if r["mcnemar_p"] < level and r["difference"] < 0]
    unclear = [r for r in rows if r["mcnemar_p"] >= level]

    def names(rs):
        return listed([f"{r['approach']} (p = {r['mcnemar_p']:.3g})" for r in rs])

    ref = rows[0]["reference"].upper() if rows[0]["reference"] == "tall" else rows[0]["reference"]
    parts = []
    if better:
        parts.append(f"significantly higher than that of {names(better)}")
    if worse:
        parts.append(f"significantly lower than that of {names(worse)}")
    if unclear:
        parts.append(f"not significantly different from that of {names(unclear)}")
    return (f"{ref}'s greedy exact match is " + "; ".join(parts)
            + f" (exact McNemar test on the same examples, level {level}).")


def significance_section(m: dict) -> list[str]:
    rows = [*((m.get("next_word") or {}).get("significance") or []), *_ngram(m, "vs_tall")]
    if not rows:
        return []
    return ["Paired tests on the same examples (greedy hits): exact McNemar p-value and a 95 % paired bootstrap "
            f"interval of the difference ({rows[0]['resamples']:,} resamples, seed {rows[0]['seed']}; "
            "`python -m evaluation.significance eval/predictions.jsonl`).", "",
            significance_markdown([PairedComparison(**r) for r in rows]), "", significance_verdict(rows), ""]


def budget_section(m: dict) -> list[str]:
    """What each trained approach was given: the table is fair only if these match."""
    budgets = m.get("budgets")
    if not budgets:
        return []
    lines = ["Training budgets (direct and naive train nothing):", "",
             "| approach | steps | batch | TRAIN verses | trainable parameters |", "|---|---|---|---|---|"]
    for name, b in budgets.items():
        count = b.get("trainable_parameters")
        verses = f"{b.get('sentences') or 'all'}" + (f" (last word ≤ {b['max_target_pieces']} he→en piece(s))"
                                                     if b.get("max_target_pieces") else "")
        lines.append(f"| {name} | {b.get('steps')} | {b.get('batch_size')} | {verses} | "
                     f"{'' if count is None else f'{count:,}'} |")
    return [*lines, ""]


def ablation_section(m: dict) -> list[str]:
    """The second table: every ablation row on one budget, each against the full model trained on it."""
    ab = m.get("ablations")
    if not ab:
        return []
    b = ab["budget"]
    verses = f"the same {b['sentences']} TRAIN verses" if b["sentences"] else "all the TRAIN verses"
    lines = ["## Ablations and sweeps (one budget; the paper's open question 4)", "",
             f"Every row: {b['steps']} steps × batch {b['batch_size']}, lr {b['lr']:g}, seed {b['seed']}, "
             f"{verses}; `tall` is the full model trained on this budget. Scored on "
             "every test-book verse (greedy, top-5); p and the interval compare each row with `tall` on the same "
             "examples (`python -m evaluation.significance ablations/predictions.jsonl`).", "",
             "| row | what changes | trainable params | dev % | greedy % | top-5 % | empty % | right only by tall / row "
             "| exact McNemar p | tall − row, points (95 % CI) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ab["rows"]:
        c = r.get("vs_reference")
        versus = (f"{c['only_reference']} / {c['only_approach']} | {c['mcnemar_p']:.3g} | "
                  f"{100 * c['difference']:+.2f} ({100 * c['ci_low']:+.2f} … {100 * c['ci_high']:+.2f})"
                  if c else "— | — | —")
        dev = "" if r.get("dev_accuracy") is None else f"{100 * r['dev_accuracy']:.2f}"
        lines.append(f"| {r['name']} | {r['what']} | {r['trainable_parameters']:,} | {dev} | "
                     f"{100 * r['greedy']:.2f} | {100 * r['top5']:.2f} | {100 * r['empty']:.2f} | {versus} |")
    paired = [r["vs_reference"] for r in ab["rows"] if r.get("vs_reference")]
    lines += ["", significance_verdict(paired), ""]
    if ab.get("pending"):
        lines += [f"Not trained yet on this budget: {', '.join(ab['pending'])} (the stage resumes row by row: "
                  "`python -m demo_build --stages ablations`).", ""]
    return lines


def translator_rows(m: dict) -> list[str]:
    rows = ["| direction | decoding | BLEU | chrF | repetition loops | verses |", "|---|---|---|---|---|---|"]
    for name, t in m.get("translators", {}).items():
        for label, key in (("greedy", "test_greedy"), ("greedy with the chosen guard (as TALL translates)",
                                                       "test_greedy_guarded"),
                           (t.get("chosen_generation", "?"), "test")):
            r = t.get(key)
            if r is None and key == "test_greedy_guarded":  # measured since session 15
                continue
            r = r or {}
            rows.append(f"| {name} | {label} | {r.get('BLEU', '')} | {r.get('chrF', '')} | {r.get('loops', '')} | "
                        f"{r.get('n', '')} |")
    return rows


def _ngram(m: dict, key: str) -> list:
    """The word n-gram reference's entry `key` as a list (empty before the ngram stage ran)."""
    found = (m.get("word_ngram") or {}).get(key)
    return [found] if found else []


def next_word_table(m: dict) -> str:
    rows = (m.get("next_word") or {}).get("rows")
    return format_markdown(rows_from_json([*rows, *_ngram(m, "row")])) if rows else "(not evaluated yet)"


def ngram_section(m: dict) -> list[str]:
    """What the `word-ngram` row is: counts, not a model, and not one of the paper's baselines."""
    g = m.get("word_ngram")
    if not g:
        return []
    dev = ", ".join(f"{100 * a:.2f} % at order {n}" for n, a in g["dev_accuracy"].items())
    return [f"`word-ngram` is not one of the paper's baselines: it ranks the next word by how often it followed the "
            f"prefix's last {g['order'] - 1} words (then fewer) in the {g['sentences']:,} training verses, and samples "
            f"from those counts (`baselines/word_ngram.py`). It shows what the training Hebrew alone gives without "
            f"any model. Order {g['order']} was chosen on the {g['dev_examples']:,} dev verses (greedy exact match "
            f"{dev}).", ""]


def output_stats(records: list[dict], training_words: set[str]) -> dict:
    """Per approach: its most frequent greedy word and that word's share, and the share of non-empty greedy words
    never seen in the training Hebrew (a word the model made up)."""
    by_approach: dict[str, list[str]] = {}
    for r in records:
        by_approach.setdefault(r["approach"], []).append(normalize_word(r["greedy"]))
    out = {}
    for name, words in by_approach.items():
        spoken = [w for w in words if w]
        top, count = Counter(spoken).most_common(1)[0] if spoken else ("", 0)
        unseen = sum(1 for w in spoken if w not in training_words)
        out[name] = {"examples": len(words), "top_word": top, "top_count": count,
                     "top_share": count / len(words) if words else 0.0,
                     "unseen_share": unseen / len(spoken) if spoken else 0.0}
    return out


def output_section(m: dict) -> list[str]:
    stats = (m.get("next_word") or {}).get("output_stats")
    if not stats:
        return []
    lines = ["What the greedy outputs look like (the most frequent predicted word and its share of the examples; "
             "the share of predicted words that never occur in the training Hebrew):", "",
             "| approach | most frequent word | its share | words not in the training Hebrew |", "|---|---|---|---|"]
    listed, prior, fusion = m.get("word_list") or {}, m.get("prior") or {}, m.get("fusion") or {}
    options = {"tall, listed words only": listed.get("output"), "tall, prior-corrected": prior.get("output"),
               "tall + word-ngram": fusion.get("output")}
    stats = {**stats, **{name: s for name, s in options.items() if s}, **{"word-ngram": s for s in _ngram(m, "output")}}
    for name, s in stats.items():
        lines.append(f"| {name} | {s['top_word'] or '(none)'} | {s['top_count']} of {s['examples']} "
                     f"({100 * s['top_share']:.1f} %) | {100 * s['unseen_share']:.1f} % |")
    return [*lines, "", *word_list_section(listed), *prior_section(prior), *fusion_section(fusion)]


def _against_free(c: dict) -> str:
    """The verdict of an option paired against free TALL (`difference` is free − option)."""
    return ("significantly higher" if c["mcnemar_p"] < SIGNIFICANCE_LEVEL and c["difference"] < 0 else
            "significantly lower" if c["mcnemar_p"] < SIGNIFICANCE_LEVEL else "not significantly different")


def prior_section(p: dict) -> list[str]:
    """TALL with its prior divided out of the first piece (an option, not the paper's decoding) against free TALL."""
    if not p:
        return []
    c = p["vs_free"]
    shares = p.get("dev_top_word_share") or {}
    dev = ", ".join(f"{100 * a:.2f} % at w = {w}" + (f" (top word {100 * shares[w]:.2f} %)" if w in shares else "")
                    for w, a in p["dev_accuracy"].items())
    rule = (f"the best dev exact match among the weights whose most frequent dev word is at most "
            f"{100 * p['top_word_ceiling']:g} % of the outputs" if "top_word_ceiling" in p else "the best dev exact match")
    return [f"`tall, prior-corrected`: the same adapters and word choice, the greedy word's first piece scored by log P(piece | "
            f"prefix) − w · log P̄(piece), P̄ being their mean first-piece distribution over {p['prefixes']:,} "
            f"training prefixes (`--prior checkpoints/demo/{p['file']}`, \"greedy, prior-corrected\" in the app; a "
            f"departure from the paper). w = {p['weight']:g} was chosen on the {p['dev_examples']:,} dev verses ({rule}; "
            f"greedy exact match {dev}). On the test books it changes {p['changed_greedy']} of {p['examples']} greedy words; "
            f"greedy exact match {100 * p['greedy']:.2f} % against {100 * c['reference_accuracy']:.2f} % free "
            f"({c['only_approach']} right only with the prior, {c['only_reference']} only without; exact McNemar "
            f"p = {c['mcnemar_p']:.3g}: {_against_free(c)}); the candidates, and so top-5, stay the model's own.", ""]


def fusion_section(f: dict) -> list[str]:
    """TALL weighed with the word n-gram (an option, not the paper's decoding) against TALL and the n-gram alone."""
    if not f:
        return []
    free, counted = f["vs"]["tall"], f["vs"]["word-ngram"]

    def against(c: dict, name: str) -> str:  # `difference` is fused − other
        verdict = ("significantly higher" if c["mcnemar_p"] < SIGNIFICANCE_LEVEL and c["difference"] > 0 else
                   "significantly lower" if c["mcnemar_p"] < SIGNIFICANCE_LEVEL else "not significantly different")
        return (f"{100 * c['approach_accuracy']:.2f} % for {name} ({c['only_reference']} right only when fused, "
                f"{c['only_approach']} only by {name}; exact McNemar p = {c['mcnemar_p']:.3g}: {verdict})")

    def dev(r: dict) -> str:
        return (f"λ = {r['weight']:g}, μ = {r['discount']:g}: greedy / top-5 {100 * r['greedy']:.2f} % / "
                f"{100 * r['top5']:.2f} %, top word {100 * r['top_share']:.1f} %")

    chosen, best, ceiling = f["dev_chosen"], f["dev_most_hits"], 100 * f["top_word_ceiling"]
    rule = (f"the best greedy exact match among the settings whose most frequent dev word stays within {ceiling:g} % "
            f"of the verses, as the prior's w" if f["within_ceiling"] else
            f"the best greedy exact match: no setting kept the most frequent dev word within {ceiling:g} %")
    unbounded = "" if best == chosen else f"; the most greedy hits regardless would be {dev(best)}"
    s = f["output"]
    return [f"`tall + word-ngram`: the same adapters, TALL's candidates joined by the word n-gram's best next words "
            f"and ranked by log P_TALL(word) + λ · log S_ngram(word) − μ · log P_train(word), S being the n-gram's "
            f"stupid-backoff score and P_train a word's frequency in the counted Hebrew (shallow fusion; "
            f"`--ngram checkpoints/demo/{f['file']}`, \"greedy, with the word n-gram\" in the app; a departure from "
            f"the paper, and no longer TALL alone: the n-gram counts the same training Hebrew). λ = {f['weight']:g} "
            f"and μ = {f['discount']:g} were chosen among {len(f['dev'])} settings on the {f['dev_examples']:,} dev "
            f"verses by {rule} ({dev(chosen)}{unbounded}). On the test books: greedy exact match "
            f"{100 * f['greedy']:.2f} % against {against(free, 'TALL')} and {against(counted, 'the n-gram')}; "
            f"top-5 {100 * f['top5']:.2f} %; its most frequent greedy word is {s['top_word']} "
            f"({100 * s['top_share']:.1f} %).", ""]


def word_list_section(w: dict) -> list[str]:
    """TALL restricted to the training Hebrew's words (an option, not the paper's decoding) against free TALL."""
    if not w:
        return []
    c = w["vs_free"]
    verdict = _against_free(c)
    return [f"`tall, listed words only`: the same adapters and word choice, decoding only the {w['words']:,} words of the training "
            f"Hebrew (`--word-list checkpoints/demo/{w['file']}`; a departure from the paper, which decodes freely). "
            f"It changes {w['changed_greedy']} of {w['examples']} greedy words; greedy exact match "
            f"{100 * w['greedy']:.2f} % against {100 * c['reference_accuracy']:.2f} % free ({c['only_approach']} "
            f"right only with the list, {c['only_reference']} only without; exact McNemar p = {c['mcnemar_p']:.3g}: "
            f"{verdict}); top-5 {100 * w['top5']:.2f} % against {100 * w['free_top5']:.2f} %.", ""]


def held_out_section(m: dict) -> list[str]:
    lm = (m.get("lm") or {}).get("test_books_ppl_fp16", {})
    return ["Translators on the held-out books (sacrebleu chrF2 / BLEU against JPS 1917):", "", *translator_rows(m),
            "", f"English LM perplexity on the test books' JPS English: {lm.get('token_ppl')} per token, "
            f"{lm.get('word_ppl')} per word (fp16 weights).", ""]


def departures_section(m: dict) -> list[str]:
    """How the demo's `tall` row departs from the paper's model (read from the shipped adapters' config)."""
    a = m.get("adapters") or {}
    parts = []
    if a.get("decoder_lora_rank"):
        parts.append(f"stage 7 (the en→he decoder) adapts through LoRA factors of rank {a['decoder_lora_rank']} where "
                     "the paper freezes it (the ablation row `frozen-decoder` is the paper's stage 7)")
    if a.get("word_choice") == "best_candidate":
        parts.append("its greedy word is the likeliest whole candidate word where the paper's goes piece by piece "
                     "(the paper's way is \"greedy\" in the app's Decoding radio, `--word-choice pieces` in the CLI)")
    if not parts:
        return []
    count = "two measured ways" if len(parts) == 2 else "one measured way"
    return [f"The `tall` rows are the `demo` preset, which departs from the paper in {count} (RESULTS.md, "
            "\"Letting stage 7 adapt\"): " + "; ".join(parts) + ".", ""]


def selection_section(m: dict) -> list[str]:
    """Which of the run's two kept checkpoints the `tall` rows are, and the dev evidence (demo_build.selection)."""
    adapters = m.get("adapters") or {}
    sel = adapters.get("selection") or {}
    if not sel.get("hits"):
        return []
    sample = next((d["dev_examples"] for d in (adapters.get("best_dev"), adapters.get("final_dev"))
                   if d and d.get("dev_examples")), None)  # the training run's dev sample (final_dev says its size)
    sample = f"seeded {sample:,}-verse dev sample" if sample else "seeded dev sample"
    steps, hits = sel["steps"], sel["hits"]
    other = "last" if sel["selected"] == "best" else "best"

    def said(name: str) -> str:
        return f"{hits[name]['greedy']} greedy and {hits[name]['top5']} top-5 hits"

    return [f"The `tall` adapters are the training run's step {steps[sel['selected']]:,} (`{sel['selected']}/`): of "
            f"the two checkpoints the run keeps (its best on the {sample}, step {steps['best']:,}, "
            f"and its last, step {steps['last']:,}), the one that finds more words on all {sel['examples']:,} "
            f"dev verses: {said(sel['selected'])} against {said(other)} (greedy: {sel['only_last']} right only with "
            f"`last/`, {sel['only_best']} only with `best/`, exact McNemar p = {sel['mcnemar_p']:.2g}).", ""]


def results_markdown(m: dict) -> str:
    """Every measured number of the demo that the README shows."""
    nw = m.get("next_word") or {}
    rows = nw.get("rows") or []
    n = rows[0]["examples"] if rows else 0
    return "\n".join([
        *targets_section(m), *held_out_section(m),
        f"The paper's table in miniature: every test-book verse without its last word ({n} examples), exact match "
        f"of the whole word; sampled = mean over seeds {', '.join(map(str, nw.get('seeds', [])))} (temperature 0.7, "
        "top-k 50, top-p "
        "0.95) with a 95 % Student-t interval:", "", next_word_table(m), "", *departures_section(m),
        *selection_section(m), *ngram_section(m), *budget_section(m), *significance_section(m), *output_section(m),
        *ablation_section(m)]).rstrip() + "\n"


def rewrite_block(readme: Path, start: str, end: str, body: str) -> bool:
    """Replace what lies between the markers `start` and `end` of `readme` with `body`; True if it changed. The
    markers must already be there, so a generator never guesses where its block goes."""
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no generated block ({start!r} … {end!r})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}{end}{tail}"
    readme.write_text(new, encoding="utf-8")
    return new != text


def read_block(readme: Path, start: str, end: str) -> str:
    text = readme.read_text(encoding="utf-8")
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")


def update_readme(readme: Path, m: dict) -> bool:
    """Rewrite the demo's results block of `readme`; True if it changed."""
    return rewrite_block(readme, RESULTS_START, RESULTS_END, results_markdown(m))


def readme_block(readme: Path) -> str:
    return read_block(readme, RESULTS_START, RESULTS_END)


def load_metrics(demo: Path) -> dict:
    return json.loads((demo / "metrics.json").read_text(encoding="utf-8"))
