"""Part 2: the KV cache as inference engines use it.

Grouped-query attention over a cache of shared key/value heads, rotary
positions, a bounded cache with attention sinks and a sliding window,
batched generation of prompts of different lengths, and rollback for
speculative decoding. Public names: :class:`KVCache`, :class:`SinkWindowCache`,
:class:`CacheOverflowError`, :func:`apply_rotary`, :func:`visibility`,
:class:`Attention`, :class:`Transformer`, :class:`Generator`,
:class:`BatchGenerator` and :class:`SpeculativeDecoder`.
"""

from .cache import CacheOverflowError, KVCache, SinkWindowCache
from .generate import BatchGenerator, Generator
from .model import MLP, Attention, Block, Transformer, visibility
from .rotary import apply_rotary
from .speculative import SpeculativeDecoder

__all__ = [
    "Attention",
    "BatchGenerator",
    "Block",
    "CacheOverflowError",
    "Generator",
    "KVCache",
    "MLP",
    "SinkWindowCache",
    "SpeculativeDecoder",
    "Transformer",
    "apply_rotary",
    "visibility",
]
