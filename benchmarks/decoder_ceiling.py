"""How much of the next word can stage 7 (the frozen en→he decoder) write, given what memory? A ceiling for TALL.

    python -m benchmarks.decoder_ceiling --data build/demo/data/test.jsonl \
        [--checkpoint checkpoints/demo/tall] [--translation-cache build/demo/translations-….sqlite]

TALL's stage 6 hands the frozen en→he decoder a memory in place of its own encoder's output, and the decoder,
teacher-forced on the Hebrew prefix, writes the next word. This benchmark gives the same decoder, with the same
greedy word decoding (`tall_model.predict.generate_word`), other memories, and counts exact matches on the same
verses (every verse of DATA, a JSON-lines file with the Hebrew "he" and its English "en", e.g. the build's
test.jsonl; verses without English are left out):

    full-verse English  the en→he encoder's states of the whole verse's English (the reference translation): the
                        decoder only has to translate; what a perfect stages 1–6 could hand it
    prefix English      the en→he encoder's states of the he→en translation of the prefix TALL reads: the decoder
                        must guess the word itself, as in the naive baseline but without the LLM
    nothing             the en→he encoder's states of an empty source: the decoder as a Hebrew LM on its own
    tall                TALL's own stage-6 memory (the checkpoint): what the trained parts achieve

Each row is paired with `tall` (exact McNemar p, evaluation.significance).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch

from evaluation.metrics import exact_match, normalize_word
from evaluation.significance import mcnemar_exact
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.batching import target_pieces
from tall_model.model import PrefixEncoding
from tall_model.predict import WordDecoder, generate_word, predict
from tall_model.sampling import piece_masks

BATCH = 16
TALL = "tall"


def read_verses(path: str) -> list[tuple[str, str, str]]:
    """(prefix, last word, the verse's English) of every verse with English and at least two words."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            verse = json.loads(line)
            words = verse.get("he", "").split()
            if len(words) >= 2 and verse.get("en", "").strip():
                out.append((" ".join(words[:-1]), words[-1], verse["en"]))
    return out


@torch.no_grad()
def english_memory(model, english: str) -> PrefixEncoding:
    """The en→he encoder's states of `english`, shaped as stage 6's output."""
    src = model.backbones.hr_lr_tokenizer(english, return_tensors="pt", truncation=True, max_length=256)
    memory = model.hr_lr.get_encoder()(**src).last_hidden_state
    return PrefixEncoding(memory, src["attention_mask"], memory)


@torch.no_grad()
def word_from_english(model, english: str, prefix: str, masks) -> str:
    """The decoder's greedy next word after `prefix` when its memory is the en→he encoder's states of `english`."""
    decoder = WordDecoder(model, english_memory(model, english), 0, target_pieces(model, prefix), False)
    greedy = model.config.decoding.greedy()
    pieces = generate_word(decoder.logits, decoder.step, masks, greedy, None, model.config.framing == "subword")
    return model.backbones.hr_lr_tokenizer.decode([p.token_id for p in pieces], skip_special_tokens=True).strip()


def ceiling(model, verses, english_of_prefix: list[str]) -> dict[str, list[str]]:
    masks = piece_masks(model.backbones.hr_lr_tokenizer, model.hr_lr.lm_head.weight.shape[0], model.device)
    prefixes = [v[0] for v in verses]
    words = {TALL: []}
    for i in range(0, len(prefixes), BATCH):
        words[TALL] += [p.word for p in predict(model, prefixes[i:i + BATCH], translations=english_of_prefix[i:i + BATCH],
                                                 output_attentions=False, num_candidates=0)]
    sources = {"full-verse English": [v[2] for v in verses], "prefix English": english_of_prefix,
               "nothing": [""] * len(verses)}
    for name, english in sources.items():
        words[name] = [word_from_english(model, e, p, masks) for e, p in zip(english, prefixes)]
    return words


def report(words: dict[str, list[str]], golds: list[str]) -> list[dict]:
    hits = {name: [exact_match(w, g) for w, g in zip(ws, golds)] for name, ws in words.items()}
    rows = []
    for name, ws in words.items():
        top, count = Counter(normalize_word(w) for w in ws).most_common(1)[0]
        row = {"memory": name, "n": len(golds), "hits": sum(hits[name]), "accuracy": sum(hits[name]) / len(golds),
               "top_word": top, "top_share": count / len(ws)}
        if name != TALL:
            row["only_this"], row["only_tall"], row["mcnemar_p"] = mcnemar_exact(hits[name], hits[TALL])
        rows.append(row)
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.decoder_ceiling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="JSON lines with the verse's Hebrew (he) and English (en)")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--limit", type=int, default=None, help="the first N verses")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(args.checkpoint, device="cpu")
    verses = read_verses(args.data)[:args.limit]
    if not verses:
        raise SystemExit(f"error: {args.data} has no verse with Hebrew and English")
    with open_prefix_cache(model, args.translation_cache) as cache:
        english = translate_prefixes(model, cache, [v[0] for v in verses], None, BATCH)
    rows = report(ceiling(model, verses, english), [v[1] for v in verses])
    print("| memory | hits | exact match | most frequent word | only this / only tall | McNemar p vs tall |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        versus = f"{r['only_this']} / {r['only_tall']} | {r['mcnemar_p']:.3g}" if "mcnemar_p" in r else "— | —"
        print(f"| {r['memory']} | {r['hits']} / {r['n']} | {100 * r['accuracy']:.2f} % | {r['top_word']} "
              f"{100 * r['top_share']:.1f} % | {versus} |")
    return rows


if __name__ == "__main__":
    main()
