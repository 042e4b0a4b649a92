"""What every part-3 probe shares: seeded models, stand-ins for other TODOs' work, synthetic keys that name their
place, and the fresh-input rule for token lists (calling the student's code: :mod:`kvchecks.probing`).

A probe builds objects from the student's ``kvpaging`` package (``kv``), drives them through one scenario and
returns what it observed. It never judges.
"""

from __future__ import annotations

import torch

from kvchecks.standins import stand_in
from kvchecks.weights import fill_parameters


def build_model(kv, config: dict, seed: int):
    """A ``Transformer`` of ``config`` (``depth``, ``hidden_dim``, ``vocab_size``, ``num_heads``, ``num_kv_heads``
    and optionally ``rope_base``) with every parameter drawn from ``seed``."""
    model = kv.Transformer(config["depth"], config["hidden_dim"], config["vocab_size"], num_heads=config["num_heads"],
                           num_kv_heads=config.get("num_kv_heads"), rope_base=config.get("rope_base", 10000.0))
    fill_parameters(model, seed)
    return model.eval()


def pool_for(config: dict, num_blocks: int, block_size: int) -> dict:
    """The pool arguments of a whole model of ``config``."""
    return dict(num_blocks=num_blocks, block_size=block_size, num_layers=config["depth"],
                num_kv_heads=config.get("num_kv_heads") or config["num_heads"],
                head_dim=config["hidden_dim"] // config["num_heads"])


def correct_allocate(kv):
    """``BlockAllocator.allocate`` for the stand-in allocator (the checks' own code, not TODO 1's)."""

    def allocate(self, n: int) -> list[int]:
        if n < 0:
            raise ValueError("n must be >= 0")
        taken = [block for block in range(self.num_blocks) if not self.ref_counts[block]][:n]
        if len(taken) < n:
            raise kv.OutOfBlocks(f"{n} blocks asked for, fewer are free")
        for block in taken:
            self.ref_counts[block] += 1
        return taken

    return allocate


def slots_in_reserved_blocks(cache, seq_id: int, n: int) -> list[int]:
    """The slots of ``n`` new positions of a sequence whose table holds every block it will need already (the
    checks reserve them): no block is taken or copied here, unlike ``PagedKVCache.append``."""
    size, first = cache.block_size, cache.lengths[seq_id]
    table = cache.block_tables[seq_id]
    cache.lengths[seq_id] = first + n
    return [table[t // size] * size + t % size for t in range(first, first + n)]


def stand_in_allocator(kv, **config):
    """A ``BlockAllocator`` whose ``allocate`` is the checks' own: the checks of the other TODOs do not run TODO 1."""
    cls = stand_in(type("StandInAllocator", (kv.BlockAllocator,), {"allocate": correct_allocate(kv)}))
    return cls(**config)


def reserved_cache(kv, allocator):
    """A ``PagedKVCache`` for sequences started on every block they will need: its ``append`` only works out the
    slots (:func:`slots_in_reserved_blocks`), so TODO 3's whole-model check does not run TODO 2."""
    cls = stand_in(type("ReservedPagedCache", (kv.PagedKVCache,), {"append": slots_in_reserved_blocks}))
    return cls(allocator)


def synthetic(seq: int, positions: list[int], layer: int, heads: int, size: int, tag: int) -> torch.Tensor:
    """Keys ``[len(positions), heads, size]`` whose entries spell out where they belong.

    ``100000 tag + 1000 (seq + 1) + 10 position + layer + h / 4 + d / 16``
    (``seq < 99``, positions below 100, fewer than 10 layers, 4 heads and
    16 dimensions: exact in float32); the values are the negated keys.
    """
    p = torch.tensor(positions, dtype=torch.float64).view(-1, 1, 1)
    h = torch.arange(heads, dtype=torch.float64).view(1, -1, 1)
    d = torch.arange(size, dtype=torch.float64).view(1, 1, -1)
    return (100000.0 * tag + 1000.0 * (seq + 1) + 10.0 * p + layer + h / 4 + d / 16).float()


def tag_of(seed: int) -> int:
    """The synthetic keys' leading digit: drawn anew with the seed on fresh inputs."""
    return 1 + seed % 9


def fill_of(seed: int) -> float:
    """The value a pool starts with: small and negative, unlike any synthetic entry."""
    return -float(11 + seed % 83)


def entry(value: float, fill: float) -> tuple[str, int, int] | None:
    """What a pool entry holds: ``("key" or "value", sequence, position)`` of a synthetic entry, or None (the fill or
    anything else)."""
    if value == fill or abs(value) < 100000:
        return None
    whole = int(abs(value))
    return ("key" if value > 0 else "value", (whole // 1000) % 100 - 1, (whole // 10) % 100)


def mapped(requests: list[list[int]], vocab: int, rng) -> list[list[int]]:
    """``requests`` with every token id replaced through one random permutation of ``0 .. vocab - 1``: new ids, and
    the same prefixes shared, the same blocks repeated."""
    table = list(range(vocab))
    rng.shuffle(table)
    return [[table[token % vocab] for token in request] for request in requests]


def redraw(probe: str, args: dict, fresh: dict, rng) -> None:
    """Fresh ``requests`` for the probes that take them: a permutation of the token ids (see :func:`mapped`)."""
    vocab = (args.get("config") or {}).get("vocab_size")
    if vocab and isinstance(args.get("requests"), list):
        fresh["requests"] = mapped(args["requests"], vocab, rng("requests", args["requests"]))
