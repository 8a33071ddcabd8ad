"""TALL with its prior divided out of the greedy word's first piece (`Decoding.prior`, a departure from the paper),
scored against free TALL.

    python -m demo_build --stages hebrew,prior

Estimates the shipped adapters' mean first-piece distribution over PRIOR_PREFIXES training prefixes (seeded, through
the build's translation cache) into checkpoints/demo/first_piece_prior.safetensors; chooses the weight w among
WEIGHTS on every DEV-book verse (he_dev_all.jsonl): the best greedy exact match among the weights whose most
frequent dev word is at most TOP_WORD_CEILING of the outputs (issue 13's ceiling; if none is, among all; a tie goes
to the smaller w, the nearer to the paper); scores every test-book verse with it (build/demo/eval-prior) and pairs
each example with the free TALL of the evaluate stage (the exact McNemar p of the greedy hits and how the outputs
change) and with each baseline of that stage (whether the issue's "above every baseline" holds for this decoding
too). The file carries the chosen w, so the app's "greedy, prior-corrected" and `--prior` without `--prior-weight`
decode as scored here. Runs after evaluate.

When the checkpoint chooses the best whole word (`word_choice="best_candidate"`, the shipped demo), the prior only
re-ranks TALL's candidate pool, which does not depend on w: every dev verse is predicted once and its pool re-ranked
for each w (`best_candidate`, what `predict` does), about 2.5 minutes for the whole stage. A checkpoint that decodes piece by piece (the
prior then steers the first piece) is evaluated once per w instead, about 12 minutes for the demo.
"""

from __future__ import annotations

import random
from pathlib import Path

from tqdm.auto import tqdm

from demo_build.context import BuildContext
from demo_build.results import output_stats
from demo_build.tall_stages import command_line, he_files, translation_cache
from demo_build.targets import TOP_WORD_CEILING  # the most frequent greedy word's share that a chosen w may leave
from demo_build.word_list_stage import training_words
from evaluation.evaluate import base_decoding, evaluate, load_dataset
from evaluation.metrics import accuracy
from evaluation.report import PREDICTIONS, read_predictions
from evaluation.significance import compare
from tall_data.translation_cache import open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.predict import best_candidate, predict
from tall_model.prior import PRIOR_FILE, estimate_prior, log_prior, save_prior

CORRECTED = "tall, prior-corrected"  # the approach name of the corrected run in the paired test
WEIGHTS = (0.25, 0.5, 0.75, 1.0)
PRIOR_PREFIXES, PRIOR_SEED = 2000, 0
BATCH = 16


def prior_prefixes(train_file: Path, n: int = PRIOR_PREFIXES, seed: int = PRIOR_SEED) -> list[str]:
    """A seeded sample of the TRAIN verses' prefixes (each verse without its last word), as evaluation reads them."""
    prefixes = [e.prefix for e in load_dataset(train_file).examples]
    random.Random(seed).shuffle(prefixes)
    return prefixes[:n]


def top_word_share(records: list[dict]) -> float:
    """The most frequent greedy word's share of the examples, counted as the README's output table counts it."""
    stats = output_stats([{**r, "approach": CORRECTED} for r in records], set())
    return stats[CORRECTED]["top_share"] if stats else 0.0


def reranks_pool(model, decoding) -> bool:
    """Whether the prior only re-ranks TALL's candidate pool under this decoding (the best whole word, greedy)."""
    return (decoding.word_choice == "best_candidate" and not decoding.sample and model.config.framing == "word"
            and not decoding.ngram)


def candidate_pools(model, decoding, prefixes: list[str], english: list[str], width: int, desc: str) -> list:
    """Each prefix's prediction with `width` candidates under `decoding`, in evaluation's batches (so the same
    numbers); the prior and fusion stages re-rank these pools instead of predicting once per setting."""
    out = []
    for start in tqdm(range(0, len(prefixes), BATCH), desc=desc, leave=False):
        batch = slice(start, start + BATCH)
        out += predict(model, prefixes[batch], decoding=decoding, translations=english[batch],
                       num_candidates=width, output_attentions=False)
    return out


def dev_pools(model, decoding, prefixes: list[str], english: list[str]) -> list:
    """Each prefix's prediction with its whole candidate pool, prior off (the pool does not depend on w)."""
    free = decoding.replace(prior=None, prior_weight=None)
    return candidate_pools(model, free, prefixes, english, free.candidate_pool, "[prior] dev pools")


def greedy_by_weight(model, decoding, pools: list, prior_path: Path, weight: float) -> list[str]:
    """Each pool's greedy word at w, as `predict` chooses it: the best candidate by log P − w · log P̄(first piece).
    A verse whose likeliest candidate is empty is decoded piece by piece there, so it is predicted again at w."""
    logp, _ = log_prior(model, prior_path)
    bias = weight * logp if weight else None
    words = []
    for p in pools:
        if p.candidates and p.candidates[0].ids:
            words.append(best_candidate(p.candidates, bias).word)
        else:
            at_w = decoding.replace(prior=str(prior_path), prior_weight=weight)
            words.append(predict(model, p.prefix_used, decoding=at_w, translations=p.translation,
                                 num_candidates=0, output_attentions=False).word)
    return words


def choose_weight(accuracy: dict[float, float], top_share: dict[float, float],
                  ceiling: float = TOP_WORD_CEILING) -> float:
    """The best dev accuracy among the weights whose top-word share is within the ceiling (all, if none is);
    ties to the smaller w."""
    allowed = [w for w in WEIGHTS if top_share[w] <= ceiling] or list(WEIGHTS)
    return max(allowed, key=lambda w: (accuracy[w], -w))


def stage_prior(ctx: BuildContext):
    a, files = ctx.args, he_files(ctx)
    free_file = ctx.out / "eval" / "predictions.jsonl"
    if not free_file.exists():
        raise RuntimeError(f"{free_file} is missing: run the evaluate stage before prior")
    tall, cache_path, work = ctx.out / "tall", translation_cache(ctx), ctx.workdir / "eval-prior"
    model = load(tall, device="cpu")
    prefixes = prior_prefixes(files["train"])
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, 16)
    ctx.log(f"[prior] the first-piece distribution over {len(prefixes)} training prefixes (seed {PRIOR_SEED})")
    prior, source = estimate_prior(model, prefixes, english), f"{len(prefixes)} TRAIN-verse prefixes, seed {PRIOR_SEED}"
    path = save_prior(model, prior, ctx.out / PRIOR_FILE, len(prefixes), source)
    common = dict(preset=a.tall_preset, backbone_dir=ctx.backbone_dir, tall=tall, approaches=("tall",), seeds=0,
                  translation_cache=cache_path, backbones=model.backbones, progress=False)
    dev, shares = dev_scores(model, a.tall_preset, tall, files["dev_all"], path, cache_path, work, common)
    weight = choose_weight(dev, shares)
    ctx.log("[prior] dev greedy exact match (top word's share) by w: "
            + ", ".join(f"{w:g}: {acc:.4f} ({shares[w]:.4f})" for w, acc in dev.items()) + f" -> w = {weight:g}")
    save_prior(model, prior, path, len(prefixes), source, weight=weight)  # the file carries its dev-chosen w
    limit = ["--limit", a.eval_limit] if a.eval_limit else []
    command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", files["test"], "--tall", tall,
                           "--approaches", "tall", "--seeds", 0, "--prior", path, "--prior-weight", weight,
                           "--translation-cache", cache_path, "--out", work / "test", *limit)
    payload = evaluate([files["test"]], prior=path, prior_weight=weight, limit=a.eval_limit or None,
                       out=work / "test", command=command, **common)
    free = read_predictions(free_file, "tall")
    corrected = [{**r, "approach": CORRECTED} for r in read_predictions(work / "test" / PREDICTIONS)]
    (paired,) = compare(free + corrected, reference="tall")
    baselines = [r for r in read_predictions(free_file) if r["approach"] != "tall"]
    (row,) = payload["rows"]
    words = set(training_words(files["train"]))
    result = {"file": PRIOR_FILE, "prefixes": len(prefixes), "seed": PRIOR_SEED, "weight": weight,
              "dev_accuracy": {f"{w:g}": acc for w, acc in dev.items()}, "dev_examples": len(load_dataset(files["dev_all"]).examples),
              "dev_top_word_share": {f"{w:g}": v for w, v in shares.items()}, "top_word_ceiling": TOP_WORD_CEILING,
              "command": command, "examples": row["examples"], "greedy": row["accuracy"], "top5": row["top5_accuracy"],
              "changed_greedy": sum(f["greedy"] != c["greedy"] for f, c in zip(free, corrected, strict=True)),
              "vs_free": paired.as_dict(), "output": output_stats(corrected, words)[CORRECTED],
              "vs_baselines": [c.as_dict() for c in compare(corrected + baselines, reference=CORRECTED)]}
    ctx.add_metrics({"prior": result})
    return {k: result[k] for k in ("weight", "greedy", "top5", "changed_greedy")}


def dev_scores(model, preset: str, tall: Path, dev_file: Path, prior_path: Path, cache_path: Path, work: Path,
               common: dict) -> tuple[dict[float, float], dict[float, float]]:
    """Dev greedy exact match and top-word share at w = 0 and each of WEIGHTS: one pool per verse re-ranked when the
    decoding allows it, else one evaluation per w."""
    decoding = base_decoding(preset, tall)
    if reranks_pool(model, decoding):
        examples = load_dataset(dev_file).examples
        prefixes, golds = [e.prefix for e in examples], [e.target for e in examples]
        with open_prefix_cache(model, cache_path) as cache:
            english = translate_prefixes(model, cache, prefixes, None, BATCH)
        pools = dev_pools(model, decoding, prefixes, english)
        greedy = {w: greedy_by_weight(model, decoding, pools, prior_path, w) for w in (0.0, *WEIGHTS)}
        return ({w: accuracy(words, golds) for w, words in greedy.items()},
                {w: top_word_share([{"greedy": x} for x in words]) for w, words in greedy.items()})
    rows = {w: evaluate([dev_file], prior=prior_path, prior_weight=w, out=work / f"dev-w{w:g}", **common)["rows"][0]
            for w in (0.0, *WEIGHTS)}
    return ({w: r["accuracy"] for w, r in rows.items()},
            {w: top_word_share(read_predictions(work / f"dev-w{w:g}" / PREDICTIONS)) for w in rows})
