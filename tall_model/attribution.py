"""Why this word: attribution of a Hebrew word's log-probability to the tokens of the prefix, through all seven stages.

The score is log P(word | prefix) as `predict` defines a candidate's probability: P(first piece) · P(each next
piece) · P(the word ends there). Gradients flow from it back through the frozen en→he decoder (7), bridge-out and
its adapter (6, 5), the frozen LLM (4), bridge-in and its adapter (3, 2) to either

- the stage-1 he→en encoder outputs of the Hebrew prefix (`target="hebrew"`), or
- the LLM input embeddings of the English translation (`target="english"`).

Attribution itself is captum's (integrated gradients, input × gradient); here is only the function it
differentiates, the baseline (zero vectors: "no signal at this position", the mask unchanged) and the reduction of
a token's vector of attributions to one number (their sum, so that integrated gradients' completeness holds per
token and for the whole prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import InputXGradient, IntegratedGradients

from .batching import english_ids, pad, source_ids, target_pieces
from .sampling import piece_masks

METHODS = ("integrated_gradients", "input_x_gradient")
TARGETS = ("hebrew", "english")
DEFAULT_STEPS = 16
COMPLETENESS_TOLERANCE = 0.01  # "complete": |error| within 1 % of the log-probability change (or COMPLETENESS_FLOOR)
COMPLETENESS_FLOOR = 1e-3  # nats: a change that small needs no finer path
MAX_ADAPTIVE_STEPS = 128
WORD_MARKERS = ("\u2581", "\u0120")  # SentencePiece's ▁ and byte-level BPE's Ġ start a word


class AttributionError(ValueError):
    """An attribution that cannot be computed (a word that is not a candidate, an unknown method, …)."""


@dataclass
class AttributionInputs:
    """Everything the differentiated function needs for one prefix and one word (batch of one)."""

    hebrew: torch.Tensor  # [1,S1,d_enc] stage-1 outputs
    src_mask: torch.Tensor  # [1,S1]
    english: torch.Tensor  # [1,S2,d_llm] LLM input embeddings of the translation
    en_mask: torch.Tensor  # [1,S2]
    decoder_ids: torch.Tensor  # [1,T] start + prefix pieces + word pieces
    word_ids: list[int]
    hebrew_tokens: list[str]
    english_tokens: list[str]


@dataclass
class Attribution:
    word: str
    method: str
    target: str
    tokens: list[str]  # the attributed tokens (he→en source pieces or LLM tokens), in text order
    scores: list[float]  # one per token: the sum of its vector's attributions
    words: list[tuple[str, float]]  # tokens grouped into words (their scores summed), in text order
    log_prob: float  # log P(word | prefix) at the input
    baseline_log_prob: float | None = None  # at the all-zero baseline (integrated gradients)
    delta: float | None = None  # completeness error: sum(scores) − (log_prob − baseline_log_prob)
    steps: int | None = None  # the steps of the attributions shown (the last tried, when adaptive)
    tried_steps: list[int] | None = None  # every step count tried, in order (adaptive: doubling from the first)

    @property
    def complete(self) -> bool | None:
        """Whether integrated gradients' error is within COMPLETENESS_TOLERANCE of the change (None for others)."""
        if self.delta is None:
            return None
        return is_complete(self.delta, self.log_prob - self.baseline_log_prob)

    def as_dict(self) -> dict:
        return {"word": self.word, "method": self.method, "target": self.target, "log_prob": self.log_prob,
                "baseline_log_prob": self.baseline_log_prob, "completeness_error": self.delta, "steps": self.steps,
                "tried_steps": self.tried_steps, "complete": self.complete,
                "tokens": [{"token": t, "score": s} for t, s in zip(self.tokens, self.scores)],
                "words": [{"word": w, "score": s} for w, s in self.words]}


def word_ids_of(prediction, word: str | None, tokenizer) -> tuple[str, list[int]]:
    """(word, its en→he piece ids) for the predicted word or one of the prediction's candidates."""
    word = prediction.word if word is None else word
    if prediction.pieces and word == prediction.word:
        return word, [p.token_id for p in prediction.pieces]
    for candidate in prediction.candidates:
        if candidate.word == word and candidate.pieces:
            return word, list(tokenizer.convert_tokens_to_ids(candidate.pieces))
    known = [c.word for c in prediction.candidates] or ["(none)"]
    if not word:
        raise AttributionError("The model produced no word here; choose one of the candidates: " + ", ".join(known))
    raise AttributionError(f"{word!r} is not among this prediction's candidates ({', '.join(known)}); "
                           "attribution is offered for the predicted word and the candidates only.")


@torch.no_grad()
def attribution_inputs(model, prefix_used: str, translation: str, word_ids: list[int]) -> AttributionInputs:
    toks = model.backbones
    src, _ = source_ids(model, prefix_used)
    eng, _ = english_ids(model, translation)
    dev = model.device
    src_ids, src_mask = (t.to(dev) for t in pad([src], model.lr_hr.config.pad_token_id))
    en_ids, en_mask = (t.to(dev) for t in pad([eng], toks.llm_tokenizer.pad_token_id))
    hebrew = model.lr_hr.get_encoder()(input_ids=src_ids, attention_mask=src_mask).last_hidden_state
    english = model.llm.get_input_embeddings()(en_ids)
    start = model.hr_lr.config.decoder_start_token_id
    decoder_ids = torch.tensor([[start] + target_pieces(model, prefix_used) + list(word_ids)], device=dev)
    return AttributionInputs(hebrew.float(), src_mask, english.float(), en_mask, decoder_ids, list(word_ids),
                             toks.lr_hr_tokenizer.convert_ids_to_tokens(src),
                             toks.llm_tokenizer.convert_ids_to_tokens(eng))


def word_log_prob_function(model, inputs: AttributionInputs, target: str):
    """f(states [n,S,d]) → log P(word | prefix) [n], with the other input held fixed (what captum differentiates)."""
    if target not in TARGETS:
        raise AttributionError(f"Attribution target must be one of {', '.join(TARGETS)}, got {target!r}.")
    masks = piece_masks(model.backbones.hr_lr_tokenizer, model.hr_lr.lm_head.weight.shape[0], model.device)
    end_of_word = masks[1] & ~masks[2]
    n_word = len(inputs.word_ids)
    ends = model.config.framing != "subword"  # a subword-framed model predicts one piece, not a whole word
    read = n_word + int(ends)  # decoder positions read: one per piece, plus the end of the word
    total = inputs.decoder_ids.shape[1]
    positions = torch.zeros(1, total + int(ends) - 1, dtype=torch.bool, device=model.device)
    positions[0, total - n_word - 1: total - 1 + int(ends)] = True
    ids = inputs.decoder_ids if ends else inputs.decoder_ids[:, :-1]
    word = torch.tensor(inputs.word_ids, device=model.device)
    dtype = next(model.align_in.parameters()).dtype

    def forward(states: torch.Tensor) -> torch.Tensor:
        n = states.shape[0]
        hebrew = states if target == "hebrew" else inputs.hebrew.expand(n, -1, -1)
        english = states if target == "english" else inputs.english.expand(n, -1, -1)
        encoding = model.encode_states(hebrew.to(dtype), inputs.src_mask.expand(n, -1), english.to(dtype),
                                       inputs.en_mask.expand(n, -1))
        logits, _, _ = model.decode(encoding, ids.expand(n, -1), hidden_positions=positions.expand(n, -1))
        logp = logits.float().log_softmax(-1).view(n, read, -1)
        score = logp[:, torch.arange(n_word), word].sum(-1)
        if ends:
            score = score + logp[:, -1].masked_fill(~end_of_word, float("-inf")).logsumexp(-1)
        return score

    return forward


def group_words(tokens: list[str], scores: list[float], tokenizer) -> list[tuple[str, float]]:
    """Pieces grouped into words (a word starts at ▁/Ġ or at a special token), their scores summed."""
    special = set(tokenizer.all_special_tokens)
    groups: list[tuple[list[str], float]] = []
    for token, score in zip(tokens, scores):
        starts = not groups or token in special or token.startswith(WORD_MARKERS) or groups[-1][0][-1] in special
        if starts:
            groups.append(([token], score))
        else:
            groups[-1] = (groups[-1][0] + [token], groups[-1][1] + score)
    return [(pieces[0] if pieces[0] in special else tokenizer.convert_tokens_to_string(pieces).strip() or pieces[0],
             score) for pieces, score in groups]


def is_complete(delta: float, change: float, tolerance: float = COMPLETENESS_TOLERANCE) -> bool:
    return abs(delta) <= max(COMPLETENESS_FLOOR, tolerance * abs(change))


def attribute_inputs(model, inputs: AttributionInputs, *, word: str = "", method: str = "integrated_gradients",
                     target: str = "hebrew", steps: int = DEFAULT_STEPS, until_complete: bool = False,
                     max_steps: int = MAX_ADAPTIVE_STEPS) -> Attribution:
    """Attribution of `inputs`' word to the `target` tokens with captum.

    until_complete: integrated gradients start at `steps` and double them until the completeness error is within
    COMPLETENESS_TOLERANCE of the log-probability change, or `max_steps` is reached (the last result is kept, and
    `Attribution.complete` says whether it got there). A curved path needs more steps than a straight one: on the
    shipped demo 16 steps can leave most of a small change unexplained (benchmarks/RESULTS.md)."""
    if method not in METHODS:
        raise AttributionError(f"Attribution method must be one of {', '.join(METHODS)}, got {method!r}.")
    for name, value in (("steps", steps), ("most steps", max_steps)):
        if not 1 <= int(value) <= 512:
            raise AttributionError(f"Integrated-gradient {name} must be between 1 and 512, got {value}.")
    if getattr(model.backbones, "quantized", None):  # int8 layers pass no gradient back: every score would be 0
        raise AttributionError(f"Attribution needs gradients through the backbones, and these are quantised "
                               f"({model.backbones.quantized}, which has none): load them without --quantize.")
    forward = word_log_prob_function(model, inputs, target)
    states = (inputs.hebrew if target == "hebrew" else inputs.english).detach().clone().requires_grad_(True)
    model.eval()
    with torch.no_grad():
        log_prob = float(forward(states)[0])
    baseline_log_prob = delta = tried = None
    if method == "integrated_gradients":
        baseline = torch.zeros_like(states)
        with torch.no_grad():
            baseline_log_prob = float(forward(baseline)[0])
        tried = [int(steps)]
        while True:
            attributions, error = IntegratedGradients(forward).attribute(
                states, baselines=baseline, n_steps=tried[-1], return_convergence_delta=True)
            delta = float(error[0])
            if not until_complete or tried[-1] >= max_steps or is_complete(delta, log_prob - baseline_log_prob):
                break
            tried.append(min(2 * tried[-1], int(max_steps)))  # captum's Gauss–Legendre nodes: no reuse, so restart
    else:
        attributions = InputXGradient(forward).attribute(states)
    scores = attributions[0].sum(-1).detach().float().cpu().tolist()
    tokens = inputs.hebrew_tokens if target == "hebrew" else inputs.english_tokens
    tokenizer = model.backbones.lr_hr_tokenizer if target == "hebrew" else model.backbones.llm_tokenizer
    return Attribution(word, method, target, list(tokens), scores, group_words(list(tokens), scores, tokenizer),
                       log_prob, baseline_log_prob, delta, tried[-1] if tried else None, tried)


def attribute(model, prediction, word: str | None = None, *, method: str = "integrated_gradients",
              target: str = "hebrew", steps: int = DEFAULT_STEPS, until_complete: bool = False,
              max_steps: int = MAX_ADAPTIVE_STEPS) -> Attribution:
    """Why `word` (default: the predicted word; otherwise one of the prediction's candidates) after this prefix.

    Uses the prediction's own fitted prefix and translation, so it explains exactly what `predict` saw."""
    word, ids = word_ids_of(prediction, word, model.backbones.hr_lr_tokenizer)
    inputs = attribution_inputs(model, prediction.prefix_used, prediction.translation, ids)
    return attribute_inputs(model, inputs, word=word, method=method, target=target, steps=steps,
                            until_complete=until_complete, max_steps=max_steps)
