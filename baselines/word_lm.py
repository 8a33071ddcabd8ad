"""A causal LLM writes its next *word*: shared by the direct, fine-tuned, naive and soft-prompt baselines.

The paper's baselines take "the first whitespace word" the LLM produces. We generate token by token until
that word is complete (whitespace after it), so a batch stops as soon as every row has its word. The same
rule picks the word out of the generated text everywhere (`next_word`), and `log_probs` scores exactly
that event: the word's tokens, then a word boundary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from baselines.utf8 import ValidUtf8, token_bytes
from tall_data.examples import word_core
from tall_model.decoding import GREEDY, Decoding

# A Hebrew letter is 2 UTF-8 bytes, so a byte-level BPE without Hebrew merges needs ~2 tokens a letter.
WORD_MAX_NEW_TOKENS = 24
MAX_PROMPT_TOKENS = 256  # longer prompts are cut from the left: the end predicts the next word


def next_word(continuation: str) -> tuple[str, bool]:
    """(first word of the continuation without surrounding punctuation, whether it is complete).

    Prompts end with a whole word, so text the model glues onto it without a space (a suffix, a comma)
    belongs to the prompt's last word and is skipped. Punctuation-only words are skipped too (the gold
    word never is one). A word is complete once whitespace follows it."""
    text = continuation
    if text and not text[0].isspace():
        boundary = re.search(r"\s", text)
        if boundary is None:
            return "", False
        text = text[boundary.start():]
    for match in re.finditer(r"\S+", text):
        core = word_core(match.group())
        if core:
            return core, match.end() < len(text)
    return "", False


class WordComplete(StoppingCriteria):
    """Per-row stop once the generated text holds a complete next word (beam search: per beam)."""

    def __init__(self, tokenizer, prompt_length: int) -> None:
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([next_word(t)[1] for t in texts], dtype=torch.bool, device=input_ids.device)


def prompt_ids(tokenizer, text: str, max_tokens: int) -> list[int]:
    """The tokens a prompt is fed as (training and inference alike), cut from the left to max_tokens."""
    ids = tokenizer(text)["input_ids"]
    if not ids:  # an empty translation still needs one position to predict from
        start = tokenizer.bos_token_id
        ids = [start if start is not None else tokenizer.eos_token_id]
    return ids[-max_tokens:]


def _pad(rows: list[list[int]], value: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def _is_boundary(text: str) -> bool:
    return bool(text) and (text[0].isspace() or unicodedata.category(text[0]).startswith("P"))


class WordLM:
    """A causal LM (plain, LoRA-merged, or a PEFT prompt-tuned wrapper) and its tokenizer."""

    def __init__(self, lm, tokenizer, max_new_tokens: int = WORD_MAX_NEW_TOKENS,
                 max_prompt_tokens: int = MAX_PROMPT_TOKENS) -> None:
        self.lm, self.tokenizer = lm, tokenizer
        self.max_new_tokens, self.max_prompt_tokens = max_new_tokens, max_prompt_tokens
        self._boundary: torch.Tensor | None = None
        self._utf8: LogitsProcessorList | None = None
        if tokenizer.pad_token_id is None:
            raise ValueError("the LLM tokenizer needs a pad token (load_backbones sets one)")

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def prompt_ids(self, text: str) -> list[int]:
        return prompt_ids(self.tokenizer, text, self.max_prompt_tokens)

    def _prompts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = _pad([self.prompt_ids(p) for p in prompts], self.tokenizer.pad_token_id, left=True)
        return ids.to(self.device), mask.to(self.device)

    def _generation_config(self, **changes) -> GenerationConfig:
        # Built from scratch so a model's own defaults (e.g. do_sample=True, repetition penalty) never leak in.
        return GenerationConfig(max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                eos_token_id=self.tokenizer.eos_token_id, use_cache=True, **changes)

    def _processors(self) -> LogitsProcessorList:
        """Valid UTF-8 only (baselines.utf8): without it a byte-level LM tuned on Hebrew loops on a lead byte."""
        if self._utf8 is None:
            pieces = token_bytes(self.tokenizer)
            # the head's rows (the same as the input embeddings'); an int8 head (tall_model.quantize) has no .weight
            vocab = self.lm.get_input_embeddings().weight.shape[0] if pieces is not None else 0
            self._utf8 = LogitsProcessorList([ValidUtf8(pieces, vocab)] if pieces is not None else [])
        return self._utf8

    def _generate(self, prompts: Sequence[str], config: GenerationConfig) -> list[str]:
        ids, mask = self._prompts(prompts)
        if callable(getattr(self.lm, "get_prompt", None)):  # a PEFT prompt-tuned model
            return self._generate_prompt_tuned(ids, mask, config)
        stop = StoppingCriteriaList([WordComplete(self.tokenizer, ids.shape[1])])
        out = self.lm.generate(input_ids=ids, attention_mask=mask, generation_config=config, stopping_criteria=stop,
                               logits_processor=self._processors())
        return self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    def _generate_prompt_tuned(self, ids: torch.Tensor, mask: torch.Tensor, config: GenerationConfig) -> list[str]:
        """Generation with the virtual tokens prepended as embeddings, by the base LM itself. PEFT's own generate
        (peft 0.19, transformers 5) prepends them again at every cached step once a batch is left-padded, which
        breaks BLOOM's ALiBi shapes; here they are prepended exactly once, as in training."""
        base = self.lm.get_base_model()
        virtual = self.lm.get_prompt(batch_size=ids.shape[0]).to(base.dtype)
        embeds = torch.cat([virtual, base.get_input_embeddings()(ids)], dim=1)
        full_mask = torch.cat([mask.new_ones(ids.shape[0], virtual.shape[1]), mask], dim=1)
        stop = StoppingCriteriaList([WordComplete(self.tokenizer, 0)])  # with inputs_embeds only new ids return
        out = base.generate(inputs_embeds=embeds, attention_mask=full_mask, generation_config=config,
                            stopping_criteria=stop, logits_processor=self._processors())
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    @torch.no_grad()
    def words(self, prompts: Sequence[str], decoding: Decoding = GREEDY) -> list[str]:
        """The next word after each prompt ("" if none within max_new_tokens). Sampling seeds torch's global
        generator with decoding.seed before the batch, so a run is reproducible for the same batches."""
        if not prompts:
            return []
        if decoding.sample:
            torch.manual_seed(decoding.seed)
            config = self._generation_config(do_sample=True, temperature=decoding.temperature,
                                             top_k=decoding.top_k, top_p=decoding.top_p)
        else:
            config = self._generation_config(do_sample=False, num_beams=1)
        return [next_word(t)[0] for t in self._generate(prompts, config)]

    @torch.no_grad()
    def top_words(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        """Up to k distinct next words per prompt, best first: beam search (k beams) where each beam ends
        with its first complete word; no length normalisation, so beams rank by the word's probability."""
        if not prompts or k < 1:
            return [[] for _ in prompts]
        config = self._generation_config(do_sample=False, num_beams=k, num_return_sequences=k,
                                         early_stopping=True, length_penalty=0.0)
        texts = self._generate(prompts, config)
        ranked = []
        for i in range(len(prompts)):
            words = [next_word(t)[0] for t in texts[i * k:(i + 1) * k]]
            ranked.append([w for w in dict.fromkeys(words) if w])
        return ranked

    def boundary_mask(self, vocab_size: int) -> torch.Tensor:
        """Tokens that end the current word: those starting with whitespace or punctuation, and </s>."""
        if self._boundary is None or self._boundary.numel() != vocab_size:
            n = min(vocab_size, len(self.tokenizer))
            texts = self.tokenizer.batch_decode([[i] for i in range(n)])
            mask = torch.zeros(vocab_size, dtype=torch.bool)
            mask[:n] = torch.tensor([_is_boundary(t) for t in texts], dtype=torch.bool)
            mask[self.tokenizer.eos_token_id] = True
            self._boundary = mask
        return self._boundary

    @torch.no_grad()
    def log_probs(self, prompts: Sequence[str], words: Sequence[str]) -> list[float]:
        """log P(the next word is `word`) = Σ log p(tokens of " word") + log p(a boundary token after it),
        under the canonical tokenization (temperature 1, full vocabulary)."""
        if len(prompts) != len(words):
            raise ValueError("prompts and words must have the same length")
        if not prompts:
            return []
        rows, spans = [], []
        for prompt, word in zip(prompts, words):
            head = self.prompt_ids(prompt)
            tail = self.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            if not word or not tail:
                raise ValueError(f"cannot score an empty word (prompt {prompt[:40]!r})")
            rows.append(head + tail)
            spans.append((len(head), tail))
        ids, mask = _pad(rows, self.tokenizer.pad_token_id, left=False)  # right padding keeps positions simple
        logits = self.lm(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        logp = logits[:, -ids.shape[1]:].float().log_softmax(-1)  # prompt tuning prepends virtual positions
        boundary = self.boundary_mask(logp.shape[-1]).to(logp.device)
        scores = []
        for i, (start, tail) in enumerate(spans):
            total = sum(float(logp[i, start - 1 + j, t]) for j, t in enumerate(tail))
            total += float(logp[i, start + len(tail) - 1, boundary].logsumexp(-1))
            scores.append(total)
        return scores
