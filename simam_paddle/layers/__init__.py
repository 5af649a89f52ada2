"""Attention layers: SimAM (and its fused operator), SE, CBAM, and one factory that builds any of them by name.

Imports nothing above it; :mod:`simam_paddle.models` builds on it.
"""
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing or too old Paddle, and a quiet import

from .simam import simam, simam_weights, SimAM
from .fused import fused_available, fused_unavailable_reason, fused_cache_dir
from .attention import (
    SEModule, CBAM, create_attention, available_attentions, register_attention, unregister_attention,
)

__all__ = [
    "simam",
    "simam_weights",
    "SimAM",
    "fused_available",
    "fused_unavailable_reason",
    "fused_cache_dir",
    "SEModule",
    "CBAM",
    "create_attention",
    "available_attentions",
    "register_attention",
    "unregister_attention",
]
