"""A small GPT-2-style decoder with a preallocated key/value cache.

Public names: :class:`KVCache`, :class:`CacheOverflowError`, :class:`Attention`,
:class:`Transformer` and :class:`TransformerGenerator`.
"""

from .cache import CacheOverflowError, KVCache
from .generate import TransformerGenerator
from .model import MLP, Attention, Block, Transformer

__all__ = [
    "Attention",
    "Block",
    "CacheOverflowError",
    "KVCache",
    "MLP",
    "Transformer",
    "TransformerGenerator",
]
