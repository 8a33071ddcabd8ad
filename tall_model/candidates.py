"""Candidate words for one prefix: what the top-5 list shows and what the best whole word is chosen from.

Two searches over stage 7's pieces (`Decoding.candidate_search`), both ranking words by
P(first piece) · P(next pieces) · P(the word ends there):

- "first_pieces": the top `n` first pieces, each completed greedily. One word per first piece, so words that share
  a first piece compete for one place: in the demo's en→he pieces a sixth of the test books' last words begin with
  the bare word-start piece "▁" and another eighth with "▁ו" or "▁ה".
- "beam": a beam of `n` partial words over all pieces; every partial word also offers itself as finished (scored
  with its end-of-word probability), and the search stops once no partial word can beat the n-th finished one
  (probabilities only shrink as pieces are added). The same `n` rows are decoded per step as above.

Both run as one batch over a copy of the prefix's KV cache; with a `trie` (`Decoding.word_list`) only listed words
are reached.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from .batching import target_pieces
from .model import PrefixEncoding
from .word_list import WordTrie


@dataclass
class CandidateWord:
    word: str
    prob: float  # P(first piece) · P(each next piece) · P(word ends there)
    pieces: list[str]
    ids: list[int] = field(default_factory=list)  # the pieces' token ids
    piece_probs: list[float] = field(default_factory=list)  # P(each piece | the ones before), as the search saw it


def candidate_words(decoder, masks, n: int, max_pieces: int, tokenizer, trie: WordTrie | None = None,
                    search: str = "first_pieces") -> list[CandidateWord]:
    """The candidate words of `decoder`'s prefix (a predict.WordDecoder after its prefix), likeliest first; `search`
    is a validated Decoding.candidate_search."""
    word_start = masks[0]
    probs = decoder.logits.float().softmax(-1)[0]
    starts = trie.first_pieces(word_start) if trie else word_start
    first = probs.masked_fill(~starts, 0).topk(min(n, int(starts.sum()))).indices
    found = (_beam if search == "beam" else _complete_first_pieces)(
        _Batch(decoder, first, probs[first], trie), probs[first].clone(), masks, n, max_pieces)
    merged: dict[str, CandidateWord] = {}
    for seq, score, piece_probs in found:
        word = tokenizer.decode(seq, skip_special_tokens=True).strip()
        if not word and search == "beam":  # the bare word-start piece, ended: no word
            continue
        if word in merged:  # the same text from other pieces: one word
            merged[word].prob += score
        else:
            merged[word] = CandidateWord(word, score, tokenizer.convert_ids_to_tokens(seq), seq, piece_probs)
    return sorted(merged.values(), key=lambda c: -c.prob)


@torch.no_grad()
def scored_words(decoder, masks, words: list[str], max_pieces: int, tokenizer,
                 trie: WordTrie | None = None) -> list[CandidateWord]:
    """Given words as candidates of `decoder`'s prefix: each word's pieces stepped after the prefix in one batch and
    scored as the searches score theirs, P(first piece) · P(next pieces) · P(the word ends there). Words with no
    pieces, more than `max_pieces` or (with a `trie`) not listed are left out."""
    rows = []
    for word in words:
        ids = target_pieces(decoder.model, word)
        if ids and len(ids) <= max_pieces and (trie is None or trie.lists(ids)):
            rows.append((word, ids))
    if not rows:
        return []
    _, end_of_word, never = masks
    first = decoder.logits.float().softmax(-1)[0]
    cache = copy.deepcopy(decoder.cache)
    cache.reorder_cache(torch.zeros(len(rows), dtype=torch.long, device=first.device))
    width = max(len(ids) for _, ids in rows)
    ids = torch.tensor([ids + [ids[-1]] * (width - len(ids)) for _, ids in rows], device=first.device)  # causal:
    m = decoder.encoding  # padding after a word's end is never read by its own positions
    memory = PrefixEncoding(m.memory.expand(len(rows), -1, -1), m.memory_mask.expand(len(rows), -1), m.llm_states)
    logits, _, _ = decoder.model.decode(memory, ids, cache=cache)
    probs = logits.float().softmax(-1).masked_fill(never, 0)  # position j: after the word's first j + 1 pieces
    out = []
    for i, (word, seq) in enumerate(rows):
        piece_probs = [float(first[seq[0]])] + [float(probs[i, j - 1, seq[j]]) for j in range(1, len(seq))]
        prob = math.prod(piece_probs) * float(probs[i, len(seq) - 1, end_of_word].sum())
        out.append(CandidateWord(word, prob, tokenizer.convert_ids_to_tokens(seq), seq, piece_probs))
    return out


class _Batch:
    """Rows of partial words decoded together: their pieces, trie nodes and a KV cache copied from the prefix's."""

    def __init__(self, decoder, first: torch.Tensor, first_probs: torch.Tensor, trie: WordTrie | None):
        self.model, self.memory, self.trie = decoder.model, decoder.encoding, trie
        self.cache = copy.deepcopy(decoder.cache)
        self.cache.reorder_cache(torch.zeros(len(first), dtype=torch.long, device=first.device))
        self.seqs = [[int(t)] for t in first]
        self.piece_probs = [[float(p)] for p in first_probs]
        self.nodes = [WordTrie.step(trie.root, t) for t in first] if trie else None
        self.last = first

    def next_probs(self, never: torch.Tensor) -> torch.Tensor:
        """[rows, vocabulary]: each row's next-piece distribution (pieces never emitted at 0)."""
        m = self.memory
        rows = len(self.seqs)
        memory = PrefixEncoding(m.memory.expand(rows, -1, -1), m.memory_mask.expand(rows, -1), m.llm_states)
        logits, self.cache, _ = self.model.decode(memory, self.last.unsqueeze(1), cache=self.cache)
        return logits[:, -1].float().softmax(-1).masked_fill(never, 0)

    def allowed(self, end_of_word: torch.Tensor) -> torch.Tensor | None:
        """[rows, vocabulary] pieces the trie lets each row take next (None: no trie, all of them)."""
        if self.trie is None:
            return None
        return torch.stack([node.allowed(end_of_word) for node in self.nodes])

    def ends(self, i: int) -> bool:
        """Row i's word cannot go on (its trie node has no children)."""
        return self.trie is not None and not self.nodes[i].children

    def extend(self, i: int, piece: int, prob: float) -> None:
        """Row i's word goes on with `piece` (the other rows keep their pieces)."""
        self.seqs[i].append(piece)
        self.piece_probs[i].append(prob)
        if self.trie is not None:
            self.nodes[i] = self.nodes[i].children[piece]

    def regroup(self, rows: torch.Tensor, pieces: torch.Tensor, probs: torch.Tensor) -> None:
        """The next rows are rows[j] continued with pieces[j] of probability probs[j] (beam search: a row may repeat
        or vanish)."""
        self.cache.reorder_cache(rows)
        self.seqs = [self.seqs[r] + [p] for r, p in zip(rows.tolist(), pieces.tolist())]
        self.piece_probs = [self.piece_probs[r] + [p] for r, p in zip(rows.tolist(), probs.tolist())]
        if self.trie is not None:
            self.nodes = [self.nodes[r].children[p] for r, p in zip(rows.tolist(), pieces.tolist())]
        self.last = pieces


def _complete_first_pieces(batch: _Batch, scores: torch.Tensor, masks, n: int, max_pieces: int):
    """Each row greedily until the likeliest next piece ends the word (or the word is `max_pieces` long)."""
    _, end_of_word, never = masks
    alive = torch.ones(len(scores), dtype=torch.bool, device=scores.device)
    for _ in range(max_pieces):
        step = batch.next_probs(never)
        allowed = batch.allowed(end_of_word)
        below = 0 if allowed is None else -1  # -1, below every probability: argmax stays among the allowed
        choice = step if allowed is None else step.masked_fill(~allowed, below)
        best = choice.masked_fill(end_of_word, below).argmax(-1)
        lengths = torch.tensor([len(s) for s in batch.seqs], device=step.device)
        ending = end_of_word[choice.argmax(-1)] | (lengths >= max_pieces)
        for i in range(len(batch.seqs)):
            if not alive[i]:
                continue
            if ending[i] or batch.ends(i):
                scores[i] *= step[i, end_of_word].sum()
                alive[i] = False
            else:
                scores[i] *= step[i, best[i]]
                batch.extend(i, int(best[i]), float(step[i, best[i]]))
        if not alive.any():
            break
        batch.last = best  # a finished row decodes on unread, so the cache keeps one row per first piece
    return list(zip(batch.seqs, scores.tolist(), batch.piece_probs))


def _beam(batch: _Batch, scores: torch.Tensor, masks, n: int, max_pieces: int):
    """The n likeliest partial words at every length; each also offered as finished. Empty words are dropped."""
    _, end_of_word, never = masks
    finished: list[tuple[list[int], float, list[float]]] = []
    for _ in range(max_pieces):
        step = batch.next_probs(never)
        allowed = batch.allowed(end_of_word)
        if allowed is not None:
            step = step.masked_fill(~allowed, 0)  # with a trie, a word may end only where a listed word does
        ends = scores * step.masked_fill(~end_of_word, 0).sum(-1)
        finished += [(list(seq), s, list(pp)) for seq, s, pp in zip(batch.seqs, ends.tolist(), batch.piece_probs)
                     if s > 0]
        if len(batch.seqs[0]) >= max_pieces:  # every row is as long as a word may be
            break
        finished.sort(key=lambda f: -f[1])
        bar = finished[n - 1][1] if len(finished) >= n else 0.0  # a partial word below it can only fall further
        grow = (scores[:, None] * step.masked_fill(end_of_word, 0)).flatten()
        top = grow.topk(min(n, grow.numel()))
        keep = top.values > bar
        if not keep.any():
            break
        vocabulary = step.shape[-1]
        index = top.indices[keep]
        rows, pieces = index // vocabulary, index % vocabulary
        batch.regroup(rows, pieces, step[rows, pieces])
        scores = top.values[keep]
    return finished
