"""Ours, not the paper's: stage 7 with low-rank updates (LoRA) to the en→he decoder's layers.

The paper freezes stage 7, a translator: it writes what its memory says and then stops, so stages 2–6 must say the
*next* word in the translator's own terms. `TallConfig.decoder_lora_rank` > 0 gives the model its own copy of the
decoder with peft's LoRA on every linear layer of every decoder layer (B starts at 0: before training the model is
the paper's). The copy shares the token embedding (the largest part, and tied to the head) with the frozen backbone,
which stays unchanged for everything else that uses it (the app's other checkpoints, the baselines, translation).
benchmarks/RESULTS.md measures what it buys on the demo.
"""

from __future__ import annotations

import copy

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # all linears of a Marian decoder layer


def lora_decoder(decoder: nn.Module, rank: int) -> nn.Module:
    """A copy of `decoder` with LoRA (rank r, alpha 2r, no dropout) on its layers' linears; the frozen weights
    stay frozen, only the LoRA factors train."""
    shared = {id(decoder.embed_tokens): decoder.embed_tokens}  # copy the layers, not the vocabulary's embedding
    own = copy.deepcopy(decoder, memo=shared)
    _dequantize(own)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(TARGETS))
    return inject_adapter_in_model(config, own)


def _dequantize(decoder: nn.Module) -> None:
    """Backbones loaded with --quantize int8 (torch.ao's dynamic int8 linears, inference only) give the copy float
    linears of the int8-rounded weights, so LoRA can sit on them: as inexact as the rest of the quantised model."""
    for name, module in list(decoder.named_modules()):
        if "quantized" not in type(module).__module__ or not hasattr(module, "weight"):
            continue
        weight, bias = module.weight().dequantize(), module.bias()
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        linear.weight.data.copy_(weight)
        if bias is not None:
            linear.bias.data.copy_(bias.detach())
        linear.requires_grad_(False)
        parent, _, child = name.rpartition(".")
        setattr(decoder.get_submodule(parent) if parent else decoder, child, linear)


def is_lora_key(key: str) -> bool:
    return "lora_" in key
