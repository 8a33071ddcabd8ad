"""TALL: a trainable architecture that lets an English LLM work in a low-resource language (Hebrew first).

Ofer, Zamler, Azaria (2025), arXiv 2506.05057. See README.md.
"""

from .config import LOAD_TIME, PRESETS, BridgeConfig, TallConfig, preset_config
from .decoding import GREEDY, Decoding
from .load import load
from .model import TallModel, TallOutput

__all__ = ["GREEDY", "LOAD_TIME", "PRESETS", "BridgeConfig", "Decoding", "TallConfig", "TallModel", "TallOutput",
           "load", "preset_config"]
