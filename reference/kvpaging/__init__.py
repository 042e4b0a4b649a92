"""Part 3: the KV cache as vLLM and SGLang manage it.

A pool of fixed-size blocks shared by every sequence (:class:`BlockAllocator`), block tables that map each
position to a slot (:class:`PagedKVCache`), attention read through them (:func:`paged_attention`), prompt
prefixes shared between requests (:class:`PrefixCache`), continuous batching with preemption (:class:`Scheduler`)
and an int8 cache (:class:`Int8KVCache`), over part 2's model (:class:`Transformer`).
"""

from .attention import dense_attention, paged_attention
from .blocks import BlockAllocator, OutOfBlocks
from .cache import PagedKVCache
from .model import MLP, Attention, Batch, Block, Transformer, apply_rotary
from .prefix import PrefixCache, block_key
from .quant import Int8KVCache, KVCache, check_update
from .scheduler import Request, Scheduler

__all__ = [
    "Attention",
    "Batch",
    "Block",
    "BlockAllocator",
    "Int8KVCache",
    "KVCache",
    "MLP",
    "OutOfBlocks",
    "PagedKVCache",
    "PrefixCache",
    "Request",
    "Scheduler",
    "Transformer",
    "apply_rotary",
    "block_key",
    "check_update",
    "dense_attention",
    "paged_attention",
]
