"""The logit lens over the frozen LLM (stage 4): its own next-token prediction read out after every layer.

For the bridged sequence, each layer's hidden state at the last real position goes through the LLM's final norm and
output head, as if the model stopped there (nostalgebraist, 2020). The states come from the one forward that
`predict` already runs (`encode_prefix(..., output_hidden_states=True)`), so the lens costs L small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_K = 5


class LogitLensError(ValueError):
    """The model cannot be read with a logit lens (no LLM output head, no final norm, or the LLM is bypassed)."""


@dataclass
class LogitLens:
    layers: list[int]  # 0 = the bridged input embeddings, 1..L = after each LLM layer
    top: list[list[tuple[str, float]]]  # per layer: the top-k English tokens and their probabilities
    final_tokens: list[str]  # the last layer's top-k tokens (the LLM's own prediction)
    final_ranks: list[list[int]]  # per layer: the rank (1 = top) of each of final_tokens

    def as_dict(self) -> dict:
        return {"layers": self.layers, "final_tokens": self.final_tokens, "final_ranks": self.final_ranks,
                "top": [[{"token": t, "prob": p} for t, p in row] for row in self.top]}


def lens_parts(model):
    """(final norm, output head) of the model's LLM; LogitLensError where either is missing."""
    if model.config.bypass_llm:
        raise LogitLensError("This model bypasses the LLM (the bypass_llm ablation): there are no LLM layers to read.")
    head = model.llm.get_output_embeddings()
    if head is None:
        raise LogitLensError(f"The LLM ({type(model.llm).__name__}) has no output head, so no layer can be read "
                             "as a next-token prediction.")
    base = model.llm.base_model
    norm = getattr(base, "ln_f", None) or getattr(base, "norm", None)  # BLOOM / Qwen2 and Llama-style models
    if norm is None:
        raise LogitLensError(f"No final norm (ln_f or norm) found on {type(base).__name__}.")
    return norm, head


def last_positions(mask: torch.Tensor) -> torch.Tensor:
    """Each row's last real position, even when padding sits mid-sequence."""
    mask = mask.long()
    return mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)


@torch.no_grad()
def logit_lens(model, encoding, row: int, labels, top_k: int = TOP_K) -> LogitLens:
    """The lens for one row of a PrefixEncoding computed with output_hidden_states=True. `labels(ids)` turns LLM
    token ids into readable labels."""
    norm, head = lens_parts(model)
    if not encoding.llm_hidden_states:
        raise LogitLensError("The encoding holds no LLM hidden states (encode with output_hidden_states=True).")
    last = int(last_positions(encoding.memory_mask)[row])
    hidden = encoding.llm_hidden_states
    states = [norm(h[row, last]) for h in hidden[:-1]]  # the last entry is already normed: it is llm_states
    states.append(encoding.llm_states[row, last])
    probs = head(torch.stack(states)).float().softmax(-1)  # [L+1, V]
    top = probs.topk(top_k, dim=-1)
    final_ids = top.indices[-1]
    # rank of each final token at each layer: 1 + how many tokens are more probable. One token at a time with
    # count_nonzero: comparing all at once and summing the booleans made a [layers, k, vocab] int64 tensor (0.25 GB
    # for bloomz), the largest allocation of an app request
    ranks = 1 + torch.stack([torch.count_nonzero(probs > probs[:, i:i + 1], dim=-1) for i in final_ids.tolist()], 1)
    rows = [list(zip(labels([int(i) for i in ids]), [float(p) for p in ps]))
            for ids, ps in zip(top.indices, top.values)]
    return LogitLens(list(range(len(states))), rows, labels([int(i) for i in final_ids]), ranks.tolist())
