"""Predicting the next Hebrew word: stages 1–6 once per request, then stage 7 stepped with its KV cache.

A word is decoded piece by piece until the next word-start piece (`▁…`) or `</s>`; its first piece must
start a word. `predict_uncached` is the paper's way (re-translate and re-run all seven stages for every
piece), kept for benchmarks and as a reference that the cached path must agree with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from transformers import DynamicCache, EncoderDecoderCache

from .batching import decoder_limit, english_ids, pad, source_ids, source_limit, target_pieces
from .candidates import CandidateWord, candidate_words
from .decoding import Decoding
from .fusion import fusion_ngram, with_ngram_words
from .logit_lens import LogitLens, LogitLensError, lens_parts, logit_lens
from .model import PrefixEncoding
from .prior import log_prior
from .sampling import bare_word_starts, choose_piece, piece_masks
from .text import truncate_words, validate_prefix
from .translate import translate
from .word_list import WordTrie, word_trie


@dataclass
class PieceProb:
    piece: str
    token_id: int
    prob: float  # the model's probability of this piece (temperature 1, full vocabulary)


@dataclass
class AttentionMap:
    weights: torch.Tensor  # [layers, heads, queries, keys], rows sum to 1
    query_tokens: list[str]
    key_tokens: list[str]


@dataclass
class Prediction:
    prefix: str  # as given
    prefix_used: str  # after left truncation
    truncated: bool
    translation: str
    word: str
    pieces: list[PieceProb]
    candidates: list[CandidateWord]
    llm_next: list[tuple[str, float]]  # what the LLM's own head says next, in English
    sampled: bool
    seed: int | None
    bridge_in_attention: AttentionMap | None = None  # English tokens × Hebrew tokens
    decoder_attention: AttentionMap | None = None  # predicted Hebrew pieces × LLM positions
    logit_lens: LogitLens | None = None  # the LLM's next token read out after every layer (when asked for)
    notes: list[str] = field(default_factory=list)

    @property
    def word_prob(self) -> float:
        prob = 1.0
        for p in self.pieces:
            prob *= p.prob
        return prob


def fit_prefix(model, prefix: str, max_word_pieces: int | None = None) -> tuple[str, bool]:
    """Drop words from the left until the prefix fits the encoder and leaves room for a whole word in the
    decoder."""
    pieces = model.config.decoding.max_word_pieces if max_word_pieces is None else max_word_pieces
    room = decoder_limit(model) - 1 - pieces - 1
    if room < 1:
        raise ValueError("the HR→LR decoder's position limit is smaller than max_word_pieces")

    def fits(text: str) -> bool:
        return (len(model.backbones.lr_hr_tokenizer(text)["input_ids"]) <= source_limit(model)
                and len(target_pieces(model, text)) <= room)

    return truncate_words(prefix, fits)


def _token_labels(tokenizer, ids: list[int]) -> list[str]:
    """Readable labels: the decoded token, or its raw piece where decoding alone gives nothing or a broken
    character (a byte-level BPE token holding half of a multi-byte letter decodes to U+FFFD)."""
    labels = []
    for i in ids:
        text = tokenizer.decode([i])
        labels.append(text if text.strip() and "\ufffd" not in text else tokenizer.convert_ids_to_tokens(i))
    return labels


class WordDecoder:
    """Stage 7 for one prefix: the teacher-forced prefix pieces once, then one cached step per piece."""

    def __init__(self, model, encoding, row: int, prefix_ids: list[int], output_attentions: bool):
        real = encoding.memory_mask[row].bool()  # this row's real positions (padding may sit mid-sequence)
        self.encoding = PrefixEncoding(encoding.memory[row:row + 1, real],
                                       encoding.memory_mask[row:row + 1, real],
                                       encoding.llm_states[row:row + 1, real])
        self.model, self.output_attentions = model, output_attentions
        start = model.hr_lr.config.decoder_start_token_id
        ids = torch.tensor([[start] + prefix_ids], device=model.device)
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.rows: list[torch.Tensor] = []
        self.logits = self._run(ids)

    def _run(self, ids: torch.Tensor) -> torch.Tensor:
        logits, self.cache, cross = self.model.decode(self.encoding, ids, cache=self.cache,
                                                      output_attentions=self.output_attentions)
        if cross is not None:  # keep the row that produced the next piece: [layers, heads, keys]
            self.rows.append(torch.stack([layer[0, :, -1, :] for layer in cross]))
        return logits[:, -1, :]

    def step(self, token_id: int) -> torch.Tensor:
        self.logits = self._run(torch.tensor([[token_id]], device=self.model.device))
        return self.logits


def _bare_if_skipped(model, settings: Decoding) -> torch.Tensor | None:
    """The bare word-start mask, only when the decoding skips it (building it is a pass over the vocabulary)."""
    if not settings.subword_skip_bare_start:
        return None
    return bare_word_starts(model.backbones.hr_lr_tokenizer, model.hr_lr.lm_head.weight.shape[0], str(model.device))


def generate_word(first_logits: torch.Tensor, next_logits: Callable[[int], torch.Tensor], masks,
                  settings: Decoding, generator: torch.Generator | None, subword: bool,
                  trie: WordTrie | None = None, bias: torch.Tensor | None = None,
                  bare: torch.Tensor | None = None) -> list[PieceProb]:
    """Choose pieces until a word boundary (with a `trie`: among its words only; with a `bias`, the first piece by
    its log-probability minus the bias, tall_model.prior; `bare`, the pieces that spell nothing, which a subword
    pick skips when the settings say so). Shared by the cached and the uncached paths."""
    pieces: list[PieceProb] = []
    logits = first_logits
    word_start, end_of_word, never = masks
    max_pieces = settings.max_word_pieces
    node = trie.root if trie else None
    for step in range(max_pieces):
        allowed = word_start if (step == 0 and (not subword or settings.subword_word_start)) else ~never
        if node is not None:
            allowed = trie.first_pieces(word_start) if step == 0 else node.allowed(end_of_word)
        if step == 0 and subword and settings.subword_skip_bare_start:  # after the trie: its words may start with ▁
            if bare is None:
                raise ValueError("subword_skip_bare_start needs the mask of bare word-start pieces")
            allowed = allowed & ~bare
        token_id, prob = choose_piece(logits, allowed, settings, generator, bias if step == 0 else None)
        if step > 0 and bool(end_of_word[token_id]):
            break
        pieces.append(PieceProb("", token_id, prob))
        node = WordTrie.step(node, token_id)
        if subword or step == max_pieces - 1 or (node is not None and not node.children):
            break
        logits = next_logits(token_id)
    return pieces


def follow_word(first_logits: torch.Tensor, next_logits: Callable[[int], torch.Tensor],
                ids: list[int]) -> list[PieceProb]:
    """The pieces of a word already chosen (a candidate), stepped through the decoder so that their probabilities
    and attention rows are recorded as if generated."""
    pieces, logits = [], first_logits
    for k, token_id in enumerate(ids):
        pieces.append(PieceProb("", token_id, float(logits.reshape(-1).float().softmax(-1)[token_id])))
        if k < len(ids) - 1:
            logits = next_logits(token_id)
    return pieces


@torch.no_grad()
def predict(model, prefixes, *, decoding: Decoding | None = None, translations=None, num_candidates: int = 5,
            output_attentions: bool = True, with_logit_lens: bool = False):
    """Predict the next Hebrew word of one prefix (returns a Prediction) or of a list (returns a list).

    `decoding` defaults to the model's (model.config.decoding: greedy unless the checkpoint says otherwise);
    `with_logit_lens` adds the LLM's layer-by-layer next-token prediction (`tall_model.logit_lens`)."""
    single = isinstance(prefixes, str)
    texts = [prefixes] if single else list(prefixes)
    cfg = model.config
    settings = decoding or cfg.decoding
    model.eval()
    fitted = [fit_prefix(model, validate_prefix(t), settings.max_word_pieces) for t in texts]
    used = [f[0] for f in fitted]
    if translations is None:
        translations = translate(model, used, decoding=settings)
    elif isinstance(translations, str):
        translations = [translations]
    dev = model.device
    lens_refused = _lens_refusal(model) if with_logit_lens else None
    encoding, src, eng = _encode(model, used, translations, with_logit_lens and lens_refused is None)
    llm_probs = model.llm_next_token_logits(encoding).float().softmax(-1)
    hr_tok = model.backbones.hr_lr_tokenizer
    masks = piece_masks(hr_tok, model.hr_lr.lm_head.weight.shape[0], dev)
    bare = _bare_if_skipped(model, settings)
    trie = listed_words(model, settings)
    bias = prior_bias(model, settings)
    ngram, weight, discount = fusion_ngram(settings)
    results = []
    for i, text in enumerate(texts):
        decoder = WordDecoder(model, encoding, i, target_pieces(model, used[i]), output_attentions)
        generator = torch.Generator(device=dev).manual_seed(settings.seed) if settings.sample else None
        best_word = settings.word_choice == "best_candidate" and not settings.sample and cfg.framing == "word"
        # fused, the list is TALL's pool and the n-gram's (up to twice candidate_pool), cut to num_candidates
        wanted = (settings.candidate_pool if best_word and ngram is not None else
                  max(num_candidates, settings.candidate_pool) if best_word or num_candidates > 0 else 0)
        candidates = (candidate_words(decoder, masks, wanted, settings.max_word_pieces, hr_tok, trie,
                                      settings.candidate_search) if wanted > 0 else [])
        if best_word and candidates and candidates[0].ids:
            if ngram is not None:
                candidates = with_ngram_words(decoder, masks, candidates, ngram, weight, discount, used[i], settings,
                                              hr_tok, trie, bias)
            chosen = candidates[0] if ngram is not None else best_candidate(candidates, bias)
            # the search already has the pieces' probabilities; only attention rows need the word stepped again
            pieces = (follow_word(decoder.logits, decoder.step, chosen.ids) if output_attentions else
                      [PieceProb("", t, p) for t, p in zip(chosen.ids, chosen.piece_probs, strict=True)])
        else:
            pieces = generate_word(decoder.logits, decoder.step, masks, settings, generator,
                                   cfg.framing == "subword", trie, bias, bare)
        for p in pieces:
            p.piece = hr_tok.convert_ids_to_tokens(p.token_id)
        word = hr_tok.decode([p.token_id for p in pieces], skip_special_tokens=True).strip()
        top = llm_probs[i].topk(5)
        labels = _token_labels(model.backbones.llm_tokenizer, [int(t) for t in top.indices])
        llm_next = [(label, float(p)) for label, p in zip(labels, top.values)]
        result = Prediction(text, used[i], fitted[i][1] or eng[i][1], translations[i], word, pieces,
                            candidates[:num_candidates], llm_next, settings.sample,
                            settings.seed if settings.sample else None)
        if output_attentions:
            _attach_attention(model, result, encoding, i, src[i], eng[i][0], decoder)
        if with_logit_lens:
            _attach_lens(model, result, encoding, i, lens_refused)
        if result.truncated:
            result.notes.append("The input was longer than the model's limits and was cut from the left.")
        if ngram is not None and best_word:
            frequent = f", μ = {discount:g}" if discount else ""
            result.notes.append(f"The candidates are ranked by TALL's probability weighed with the word n-gram "
                                f"(λ = {weight:g}{frequent}); each shows TALL's own probability.")
        results.append(result)
    return results[0] if single else results


def _encode(model, used: list[str], translations: list[str], hidden_states: bool = False):
    """Stages 1–6 for a batch of (fitted) prefixes and their English; also each row's source and English ids."""
    src = [source_ids(model, t)[0] for t in used]
    eng = [english_ids(model, t) for t in translations]
    src_ids, src_mask = pad(src, model.lr_hr.config.pad_token_id)
    en_ids, en_mask = pad([e[0] for e in eng], model.backbones.llm_tokenizer.pad_token_id)
    dev = model.device
    encoding = model.encode_prefix(src_ids.to(dev), src_mask.to(dev), en_ids.to(dev), en_mask.to(dev),
                                   output_hidden_states=hidden_states)
    return encoding, src, eng


@torch.no_grad()
def first_piece_logits(model, prefixes: list[str], translations: list[str]) -> torch.Tensor:
    """[len(prefixes), vocabulary]: stage 7's logits for the first piece of each prefix's next word."""
    model.eval()
    used = [fit_prefix(model, validate_prefix(t))[0] for t in prefixes]
    encoding, _, _ = _encode(model, used, list(translations))
    return torch.cat([WordDecoder(model, encoding, i, target_pieces(model, text), False).logits
                      for i, text in enumerate(used)]).float()


def prior_bias(model, settings: Decoding) -> torch.Tensor | None:
    """w · log P̄ to subtract from the first piece's log-probabilities (None without a prior or with w = 0); w is the
    decoding's, else the prior file's."""
    if not settings.prior or settings.prior_weight == 0:
        return None
    logp, weight = log_prior(model, settings.prior)
    weight = weight if settings.prior_weight is None else settings.prior_weight
    return weight * logp if weight else None


def best_candidate(candidates: list[CandidateWord], bias: torch.Tensor | None) -> CandidateWord:
    """The likeliest candidate word; with a prior `bias`, by log P(word) − bias(its first piece)."""
    if bias is None:
        return candidates[0]
    return max(candidates, key=lambda c: math.log(max(c.prob, 1e-30)) - float(bias[c.ids[0]]))


def listed_words(model, settings: Decoding) -> WordTrie | None:
    """The trie of `settings.word_list` (None without one); a list needs the word framing."""
    if not settings.word_list:
        return None
    if model.config.framing != "word":
        raise ValueError("word_list restricts whole words; this model predicts one piece (framing 'subword')")
    return word_trie(model, settings.word_list, settings.max_word_pieces)


def _lens_refusal(model) -> str | None:
    try:
        lens_parts(model)
    except LogitLensError as err:
        return f"No logit lens: {err}"
    return None


def _attach_lens(model, result, encoding, row, refused) -> None:
    if refused:
        result.notes.append(refused)
        return
    tok = model.backbones.llm_tokenizer
    result.logit_lens = logit_lens(model, encoding, row, lambda ids: _token_labels(tok, ids))


def _attach_attention(model, result, encoding, row, src, eng, decoder) -> None:
    toks = model.backbones
    en_labels = _token_labels(toks.llm_tokenizer, eng)
    he_labels = _token_labels(toks.lr_hr_tokenizer, src)
    if encoding.bridge_in_attentions:
        weights = torch.stack([a[row, :, : len(eng), : len(src)] for a in encoding.bridge_in_attentions])
        result.bridge_in_attention = AttentionMap(weights.float().cpu(), en_labels, he_labels)
    if decoder.rows and result.pieces:
        weights = torch.stack(decoder.rows[: len(result.pieces)], dim=2)  # [layers, heads, pieces, S2]
        keys = en_labels if model.config.bridge_in_mode == "cross_attention" else he_labels + en_labels
        result.decoder_attention = AttentionMap(weights.float().cpu(), [p.piece for p in result.pieces],
                                                keys[: weights.shape[-1]])


@torch.no_grad()
def predict_uncached(model, prefix: str, *, decoding: Decoding | None = None) -> Prediction:
    """The paper's inference: for every piece, translate the prefix again and re-run all seven stages on
    the whole sequence without a cache. Slow by design; the reference for `predict`."""
    cfg = model.config
    settings = decoding or cfg.decoding
    model.eval()
    used, truncated = fit_prefix(model, validate_prefix(prefix), settings.max_word_pieces)
    prefix_ids = target_pieces(model, used)
    start = model.hr_lr.config.decoder_start_token_id
    generated: list[int] = []
    dev = model.device

    def full_pass(_: int | None = None) -> torch.Tensor:
        if _ is not None:
            generated.append(_)
        translation = translate(model, [used], decoding=settings)[0]
        src_ids, src_mask = pad([source_ids(model, used)[0]], model.lr_hr.config.pad_token_id)
        en_ids, en_mask = pad([english_ids(model, translation)[0]], model.backbones.llm_tokenizer.pad_token_id)
        encoding = model.encode_prefix(src_ids.to(dev), src_mask.to(dev), en_ids.to(dev), en_mask.to(dev))
        ids = torch.tensor([[start] + prefix_ids + generated], device=dev)
        logits, _, _ = model.decode(encoding, ids)
        full_pass.translation = translation
        return logits[:, -1, :]

    hr_tok = model.backbones.hr_lr_tokenizer
    masks = piece_masks(hr_tok, model.hr_lr.lm_head.weight.shape[0], dev)
    generator = torch.Generator(device=dev).manual_seed(settings.seed) if settings.sample else None
    pieces = generate_word(full_pass(), full_pass, masks, settings, generator, cfg.framing == "subword",
                           listed_words(model, settings), prior_bias(model, settings), _bare_if_skipped(model, settings))
    for p in pieces:
        p.piece = hr_tok.convert_ids_to_tokens(p.token_id)
    word = hr_tok.decode([p.token_id for p in pieces], skip_special_tokens=True).strip()
    return Prediction(prefix, used, truncated, full_pass.translation, word, pieces, [], [], settings.sample,
                      settings.seed if settings.sample else None)
