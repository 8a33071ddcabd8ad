"""The TALL model: seven stages, four of them trainable.

    Hebrew prefix ─▶ [1 he→en encoder] ─▶ [2 align_in] ─┐ keys/values
    English translation ─▶ LLM input embeddings ─▶ [3 bridge_in] ─▶ [4 LLM body] ─▶ [5 align_out]
        ─▶ [6 bridge_out] ─▶ cross-attended by [7 en→he decoder] ─▶ Hebrew pieces
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint
from transformers.modeling_layers import GradientCheckpointingLayer

from .backbones import Backbones
from .batching import TallBatch, make_training_batch
from .config import TallConfig
from .decoder_lora import is_lora_key, lora_decoder
from .modules import AlignmentAdapter, BridgeIn, BridgeOut

TRAINABLE = ("align_in", "bridge_in", "align_out", "bridge_out")
FROZEN = ("lr_hr", "llm", "hr_lr")


@dataclass
class PrefixEncoding:
    """What stages 1–6 make of a prefix: everything the final decoder needs, computed once per request."""

    memory: torch.Tensor  # [B,S2,d_dec] stage-6 output, read by the decoder's cross-attention
    memory_mask: torch.Tensor  # [B,S2]
    llm_states: torch.Tensor  # [B,S2,d] stage-4 output (the LLM's final hidden states)
    bridge_in_attentions: list[torch.Tensor] = field(default_factory=list)  # per layer [B,H,S2,S1]
    llm_hidden_states: tuple | None = None  # (embeddings, layer 1, …, layer L) [B,S2,d], when asked for


@dataclass
class TallOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # [N, vocab] at the N supervised positions of the batch (row-major order)
    labels: torch.Tensor  # [N]


class TallModel(nn.Module):
    def __init__(self, config: TallConfig, backbones: Backbones):
        super().__init__()
        self.config = config
        self.lr_hr, self.llm, self.hr_lr = backbones.lr_hr, backbones.llm, backbones.hr_lr
        self.backbones = backbones  # the frozen models, their tokenizers and folders
        enc_dim, llm_dim, dec_dim = (backbones.lr_hr.config.d_model, backbones.llm.config.hidden_size,
                                     backbones.hr_lr.config.d_model)
        f, p = config.adapter_hidden_factor, config.dropout
        self.align_in = AlignmentAdapter(enc_dim, llm_dim, f, p)
        self.bridge_in = BridgeIn(llm_dim, config.bridge_in, p, config.bridge_in_mode)
        self.align_out = AlignmentAdapter(llm_dim, dec_dim, f, p)
        self.bridge_out = BridgeOut(dec_dim, config.bridge_out, p)
        # not the paper's: stage 7's own decoder copy with LoRA (tall_model/decoder_lora.py); None = the frozen one
        rank = config.decoder_lora_rank
        self.decoder_lora = lora_decoder(backbones.hr_lr.get_decoder(), rank) if rank else None
        self.register_buffer("llm_embed_scale", self._embedding_scale(), persistent=False)
        self.translation_released = False
        self.layer_checkpointing = False

    # ----------------------------------------------------------------------- modes and parameters

    def _embedding_scale(self) -> torch.Tensor:
        weight = self.llm.get_input_embeddings().weight
        if weight.is_meta or not self.config.match_llm_scale:
            return torch.ones((), device="cpu" if weight.is_meta else weight.device)
        return weight.detach().float().std().clamp_min(1e-6)

    def train(self, mode: bool = True) -> "TallModel":
        super().train(mode)
        for name in FROZEN:  # frozen modules never leave eval mode (no dropout in them)
            getattr(self, name).eval()
        if self.decoder_lora is not None:  # nor does stage 7's copy: only its LoRA factors train, without dropout
            self.decoder_lora.eval()
        return self

    def trainable_modules(self) -> dict[str, nn.Module]:
        modules = {name: getattr(self, name) for name in TRAINABLE}
        return modules | ({"decoder_lora": self.decoder_lora} if self.decoder_lora is not None else {})

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.trainable_modules().values() for p in m.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trainable tensors, keyed `align_in.net.0.weight` etc. (position tables are buffers that
        are rebuilt, never saved; of stage 7's decoder copy, only the LoRA factors)."""
        return {f"{name}.{key}": value for name, module in self.trainable_modules().items()
                for key, value in module.state_dict().items() if name != "decoder_lora" or is_lora_key(key)}

    def release_translation_parts(self) -> int:
        """Drop the he→en decoder's and the en→he encoder's layers; returns the parameters freed.

        TALL itself uses only the he→en encoder (stage 1) and the en→he decoder (stage 7); the other halves serve
        translation. A training run whose prefixes are all in the translation cache can let them go (≈121M
        parameters, ≈0.5 GB fp32, with the paper's models). Afterwards `translate` refuses to run."""
        freed = 0
        for translator, half in ((self.lr_hr, "decoder"), (self.hr_lr, "encoder")):
            layers = getattr(translator.model, half).layers
            freed += sum(p.numel() for p in layers.parameters())
            getattr(translator.model, half).layers = nn.ModuleList()
        self.translation_released = True
        return freed

    def checkpoint_layers(self, enabled: bool = True) -> int:
        """Keep only each layer's input for the backward pass and recompute the layer there, instead of keeping
        all its activations: the frozen LLM's layers and both bridges' (≈0.9 GB of LLM and ≈0.6 GB of bridge-in
        activations in a paper-bloomz training step at batch 8 × 32 words). The recomputation is the same forward
        with the same dropout masks (torch restores the RNG state), so gradients are bitwise unchanged
        (tests/test_train_memory.py). Only where gradients are recorded: predictions run as before. Returns the
        number of layers."""
        layers = [m for m in self.llm.modules() if isinstance(m, GradientCheckpointingLayer)]
        layers += [*self.bridge_in.layers, *self.bridge_out.layers]
        for layer in layers:
            if enabled:
                layer.forward = partial(_recomputed_in_backward, type(layer).forward.__get__(layer))
            else:
                layer.__dict__.pop("forward", None)
        self.layer_checkpointing = enabled
        return len(layers)

    @property
    def device(self) -> torch.device:
        return self.align_in.net[0].weight.device

    @property
    def trainable_dtype(self) -> torch.dtype:
        return self.align_in.net[0].weight.dtype

    @staticmethod
    def _dtype_of(module: nn.Module) -> torch.dtype:
        return next(module.parameters()).dtype

    # ----------------------------------------------------------------------- stages

    def encode_prefix(self, src_ids, src_mask, en_ids, en_mask, *, output_hidden_states: bool = False
                      ) -> PrefixEncoding:
        """Stages 1–6. Depends only on the prefix and its translation, so inference runs it once."""
        with torch.no_grad():  # frozen and upstream of every trainable part: no graph needed
            hebrew = self.lr_hr.get_encoder()(input_ids=src_ids, attention_mask=src_mask).last_hidden_state
            english = self.llm.get_input_embeddings()(en_ids)
        return self.encode_states(hebrew, src_mask, english, en_mask, output_hidden_states=output_hidden_states)

    def encode_states(self, hebrew, src_mask, english, en_mask, *, output_hidden_states: bool = False
                      ) -> PrefixEncoding:
        """Stages 2–6 from the stage-1 encoder outputs and the LLM's input embeddings of the English (what
        attribution differentiates with respect to). `output_hidden_states` keeps every LLM layer's states."""
        # Frozen backbones may be bf16/fp16 (--dtype) while the trainable parts stay fp32: cast at each boundary.
        trainable, llm_dtype = self.trainable_dtype, self._dtype_of(self.llm)
        hebrew, english = hebrew.to(trainable), english.to(trainable)
        aligned = self.align_in(hebrew, src_mask)  # stage 2
        scale = self.llm_embed_scale.to(english.dtype)
        bridged, mask, attentions = self.bridge_in(english / scale, en_mask, aligned, src_mask)  # stage 3
        bridged = bridged * scale
        hidden = None
        if self.config.bypass_llm:  # ablation
            llm_states = bridged
        else:  # stage 4: frozen, but gradients flow through it to stages 2–3
            # no key/value cache: the LLM runs once per prefix, and training would hold it until backward
            out = self.llm.base_model(inputs_embeds=bridged.to(llm_dtype), attention_mask=mask, use_cache=False,
                                      output_hidden_states=output_hidden_states)
            llm_states, hidden = out.last_hidden_state.to(trainable), out.hidden_states
        memory = self.bridge_out(self.align_out(llm_states, mask), mask)  # stages 5–6
        return PrefixEncoding(memory, mask, llm_states, attentions, hidden)

    def decode(self, encoding: PrefixEncoding, decoder_input_ids, cache=None, output_attentions=False,
               hidden_positions: torch.Tensor | None = None):
        """Stage 7: the frozen en→he decoder (or its LoRA copy, decoder_lora_rank) cross-attending to stage 6.
        Returns (logits, cache, cross-attn).

        `hidden_positions` (a boolean [B,T] mask) restricts the LM head to those positions."""
        decoder = self.decoder_lora if self.decoder_lora is not None else self.hr_lr.get_decoder()
        out = decoder(
            input_ids=decoder_input_ids, encoder_hidden_states=encoding.memory.to(self._dtype_of(self.hr_lr)),
            encoder_attention_mask=encoding.memory_mask, cache=cache, use_cache=cache is not None,
            output_attentions=output_attentions,
        )
        hidden = out.last_hidden_state
        if hidden_positions is not None:
            hidden = hidden[hidden_positions]
        logits = self.hr_lr.lm_head(hidden) + self.hr_lr.final_logits_bias.to(hidden.dtype).squeeze(0)
        return logits, out.cache, (out.cross_attentions if output_attentions else None)

    def llm_next_token_logits(self, encoding: PrefixEncoding) -> torch.Tensor:
        """What the LLM's own head would say next in English, at each sequence's last real position [B,V]."""
        mask = encoding.memory_mask.long()
        last = mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)  # last 1 even when padding sits mid-sequence
        states = encoding.llm_states[torch.arange(len(last), device=last.device), last]
        return self.llm.get_output_embeddings()(states.to(self._dtype_of(self.llm))).float()

    def forward(self, batch: TallBatch) -> TallOutput:
        """Training forward: teacher-forced stage 7, cross-entropy on the supervised positions only."""
        encoding = self.encode_prefix(batch.src_ids, batch.src_mask, batch.en_ids, batch.en_mask)
        supervised = batch.loss_mask.bool()
        logits, _, _ = self.decode(encoding, batch.decoder_input_ids, hidden_positions=supervised)
        labels = batch.labels[supervised]
        return TallOutput(F.cross_entropy(logits.float(), labels), logits, labels)

    def make_batch(self, prefixes, translations, targets, sentences=None) -> TallBatch:
        return make_training_batch(self, prefixes, translations, targets, sentences).to(self.device)


def _recomputed_in_backward(forward, *args, **kwargs):
    if torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)
