"""TALL: a trainable architecture that lets an English LLM work in a low-resource language (Hebrew first).

Ofer, Zamler, Azaria (2025), arXiv 2506.05057. See README.md.
"""

from .config import PRESETS, BridgeConfig, TallConfig, preset_config
from .model import TallModel, TallOutput

__all__ = ["PRESETS", "BridgeConfig", "TallConfig", "TallModel", "TallOutput", "preset_config"]
