"""The trainable-parameter report, in the paper's terms and in ours.

The paper's counts include the two sinusoidal position tables of the bridges, which the authors' code left
trainable by accident. Ours freezes them (they are fixed by design), so we report both figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .backbones import build_meta_backbones
from .model import TallModel
from .modules import num_position_values


def _count(*modules: nn.Module, trainable_only: bool = False) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen and (p.requires_grad or not trainable_only):
                seen.add(id(p))
                total += p.numel()
    return total


@dataclass
class ParameterReport:
    lr_hr_encoder: int  # stage 1 (frozen)
    align_in: int  # stage 2
    bridge_in: int  # stage 3, position table included as the paper counts it
    llm: int  # stage 4 (frozen)
    align_out: int  # stage 5
    bridge_out: int  # stage 6, position table included
    hr_lr_decoder: int  # stage 7 with its tied LM head (frozen)
    position_values: int  # the two fixed tables inside bridge_in and bridge_out
    trainable: int  # what really trains here: positions frozen
    decoder_lora: int = 0  # stage 7's LoRA factors (ours, decoder_lora_rank; the paper has none)

    @property
    def paper_trainable(self) -> int:
        return self.align_in + self.bridge_in + self.align_out + self.bridge_out

    @property
    def total(self) -> int:
        return self.lr_hr_encoder + self.llm + self.hr_lr_decoder + self.paper_trainable + self.decoder_lora

    @property
    def paper_share(self) -> float:
        return 100.0 * self.paper_trainable / self.total

    @property
    def share(self) -> float:
        return 100.0 * self.trainable / self.total

    def as_dict(self) -> dict:
        return dict(asdict(self), paper_trainable=self.paper_trainable, total=self.total,
                    paper_share=round(self.paper_share, 4), share=round(self.share, 4))

    def __str__(self) -> str:
        rows = [("1 LR→HR encoder (frozen)", self.lr_hr_encoder), ("2 align_in", self.align_in),
                ("3 bridge_in", self.bridge_in), ("4 LLM (frozen)", self.llm), ("5 align_out", self.align_out),
                ("6 bridge_out", self.bridge_out), ("7 HR→LR decoder + tied head (frozen)", self.hr_lr_decoder)]
        if self.decoder_lora:
            rows.append(("7 its LoRA factors (ours, trainable)", self.decoder_lora))
        lines = [f"{name:<40}{count:>15,}" for name, count in rows]
        lines.append(f"{'total':<40}{self.total:>15,}")
        lines.append(f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
                     f"trainable%: {self.share:.2f}")
        lines.append(f"the paper's count: {self.paper_trainable:,} ({self.paper_share:.2f} %), which also counts "
                     f"the {self.position_values:,} values of the two fixed sinusoidal position tables that the "
                     f"authors' code left trainable by accident; here they are frozen.")
        return "\n".join(lines)


def parameter_report(model) -> ParameterReport:
    bridge_in_positions = num_position_values(model.bridge_in)
    bridge_out_positions = num_position_values(model.bridge_out)
    return ParameterReport(
        lr_hr_encoder=_count(model.lr_hr.get_encoder()),
        align_in=_count(model.align_in),
        bridge_in=_count(model.bridge_in) + bridge_in_positions,
        llm=_count(model.llm),
        align_out=_count(model.align_out),
        bridge_out=_count(model.bridge_out) + bridge_out_positions,
        hr_lr_decoder=_count(model.hr_lr.get_decoder(), model.hr_lr.lm_head),
        position_values=bridge_in_positions + bridge_out_positions,
        trainable=sum(p.numel() for p in model.trainable_parameters()),
        decoder_lora=_count(*(m for m in [model.decoder_lora] if m is not None), trainable_only=True),
    )


def meta_model(config):
    """The TALL model with its exact shapes on the `meta` device: no weights, no download."""
    backbones = build_meta_backbones(config)
    with torch.device("meta"):
        return TallModel(config, backbones)
