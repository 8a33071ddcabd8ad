"""The trainable building blocks: alignment adapters and the two bridges (stages 2, 3, 5 and 6).

The bridges follow Marian's layer layout (post-norm, biased projections, sinusoidal positions) so that the
parameter counts match the paper, but they are written out here so that every attention map can be returned.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import BridgeConfig

ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "relu": nn.ReLU}


class AlignmentAdapter(nn.Module):
    """Linear(in→h) → LayerNorm → GELU → Dropout → Linear(h→out) → LayerNorm (stages 2 and 5)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_factor: float = 2.0, dropout: float = 0.1):
        super().__init__()
        hidden = int(round(hidden_factor * out_dim))
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, out_dim), nn.LayerNorm(out_dim),
        )

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(states)
        if mask is not None:  # padded positions must not leak into attention keys/values as LayerNorm bias
            out = out * mask.unsqueeze(-1).to(out.dtype)
        return out


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """Marian's table: sines in the first half of each vector, cosines in the second (not interleaved)."""
    pos = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    half = (dim + 1) // 2
    table = torch.empty(num_positions, dim, dtype=torch.float64)
    table[:, :half] = torch.sin(angles[:, 0::2])
    table[:, half:] = torch.cos(angles[:, 1::2])
    return table.float()


class SinusoidalPositions(nn.Module):
    """Fixed position table: a non-persistent buffer, so it is neither trained nor saved."""

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(num_positions, dim), persistent=False)

    def forward(self, length: int) -> torch.Tensor:
        if length > self.table.shape[0]:
            raise ValueError(f"sequence of {length} positions exceeds this bridge's {self.table.shape[0]}")
        return self.table[:length]


def padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B,S] keep-mask → additive [B,1,1,S] bias (0 keep, -inf-ish drop)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def causal_bias(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    upper = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
    return torch.zeros(length, length, device=device, dtype=dtype).masked_fill(upper, torch.finfo(dtype).min)


class Attention(nn.Module):
    """Multi-head attention with biased q/k/v/o projections; returns its weights [B,H,Q,K]."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor | None):
        q = self._split(self.q_proj(x)) / math.sqrt(self.head_dim)
        k, v = self._split(self.k_proj(memory)), self._split(self.v_proj(memory))
        scores = q @ k.transpose(-1, -2)
        if bias is not None:
            scores = scores + bias
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(x.shape)
        return self.out_proj(out), weights


class BridgeLayer(nn.Module):
    """Post-norm transformer layer: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, dim: int, cfg: BridgeConfig, dropout: float, cross_attention: bool):
        super().__init__()
        self.self_attn = Attention(dim, cfg.heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = Attention(dim, cfg.heads) if cross_attention else None
        self.encoder_attn_layer_norm = nn.LayerNorm(dim) if cross_attention else None
        self.fc1, self.fc2 = nn.Linear(dim, cfg.ffn), nn.Linear(cfg.ffn, dim)
        self.activation = ACTIVATIONS[cfg.activation]()
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, self_bias, memory=None, memory_bias=None):
        attn, self_weights = self.self_attn(x, x, self_bias)
        x = self.self_attn_layer_norm(x + self.dropout(attn))
        cross_weights = None
        if self.encoder_attn is not None:
            attn, cross_weights = self.encoder_attn(x, memory, memory_bias)
            x = self.encoder_attn_layer_norm(x + self.dropout(attn))
        x = self.final_layer_norm(x + self.dropout(self.fc2(self.activation(self.fc1(x)))))
        return x, self_weights, cross_weights


class BridgeIn(nn.Module):
    """Stage 3: Marian-decoder-style stack. Queries: English token embeddings; keys/values: aligned Hebrew.

    With ``mode="concat"`` (ablation) there is no cross-attention: causal self-attention runs over
    [Hebrew states; English embeddings] and the whole sequence goes on to the LLM. With ``mode="hebrew_only"``
    (ablation: no translation input) it runs over the aligned Hebrew states alone and the English is ignored.
    """

    def __init__(self, dim: int, cfg: BridgeConfig, dropout: float, mode: str = "cross_attention"):
        super().__init__()
        self.mode = mode
        self.positions = SinusoidalPositions(cfg.max_positions, dim)
        cross = mode == "cross_attention"
        self.layers = nn.ModuleList(BridgeLayer(dim, cfg, dropout, cross) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, query_mask, memory, memory_mask):
        """Returns (states [B,Q,d], mask [B,Q], cross-attention weights per layer [B,H,Q,K] or [])."""
        if self.mode == "concat":  # pack each row as [real Hebrew; real English; padding]
            queries = torch.cat([memory, queries], dim=1)
            query_mask = torch.cat([memory_mask, query_mask], dim=1)
            order = torch.argsort((query_mask == 0).to(torch.int8), dim=1, stable=True)
            queries = queries.gather(1, order.unsqueeze(-1).expand_as(queries))
            query_mask = query_mask.gather(1, order)
        elif self.mode == "hebrew_only":
            queries, query_mask = memory, memory_mask
        x = self.dropout(queries + self.positions(queries.shape[1]))
        self_bias = causal_bias(x.shape[1], x.device, x.dtype) + padding_bias(query_mask, x.dtype)
        memory_bias = padding_bias(memory_mask, x.dtype)
        cross = []
        for layer in self.layers:
            x, _, weights = layer(x, self_bias, memory, memory_bias)
            if weights is not None:
                cross.append(weights)
        return x, query_mask, cross


class BridgeOut(nn.Module):
    """Stage 6: Marian-encoder-style stack with bidirectional self-attention; its output plays the role of
    the HR→LR model's own English encoder output."""

    def __init__(self, dim: int, cfg: BridgeConfig, dropout: float):
        super().__init__()
        self.positions = SinusoidalPositions(cfg.max_positions, dim)
        self.layers = nn.ModuleList(BridgeLayer(dim, cfg, dropout, cross_attention=False)
                                    for _ in range(cfg.layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(states + self.positions(states.shape[1]))
        bias = padding_bias(mask, x.dtype)
        for layer in self.layers:
            x, _, _ = layer(x, bias)
        return x


def num_position_values(module: nn.Module) -> int:
    """Values in the fixed position tables (the paper's code counted them as trainable parameters)."""
    return sum(m.table.numel() for m in module.modules() if isinstance(m, SinusoidalPositions))


__all__ = ["AlignmentAdapter", "BridgeIn", "BridgeOut", "Attention", "SinusoidalPositions",
           "sinusoidal_table", "num_position_values"]
