"""Probes of TODOs 1-3: the block pool, the block tables, attention through them.

Each probe builds objects from the student's ``kvpaging`` package (``kv``), drives them through one scenario and
returns what it observed; the checks judge. TODO 2's probes give the cache a stand-in allocator (the checks' own
``allocate``) and TODO 3's whole-model probe a stand-in cache (the checks' own ``append``), so each TODO's checks
run that TODO alone unless they say otherwise. Shapes: ``N`` new tokens of a call, ``H`` query heads, ``Hkv``
key/value heads, ``hd`` head size, ``NB`` blocks of ``bs`` slots.
"""

from __future__ import annotations

import torch

from kvchecks.probing import describe_error
from kvchecks.weights import seeded_tensor

from .common import build_model, fill_of, pool_for, reserved_cache, stand_in_allocator, synthetic, tag_of


def attempt_blocks(kv, fn, *args) -> dict:
    """:func:`attempt`, and whether an exception was the package's ``OutOfBlocks``."""
    try:
        return {"value": fn(*args)}
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code may raise anything; the test judges it
        return {"error": {**describe_error(err, kv), "out_of_blocks": isinstance(err, kv.OutOfBlocks)}}


# ---------------------------------------------------------------- TODO 1: BlockAllocator.allocate

def allocator_ops(kv, config: dict, ops: list[dict], seed: int) -> dict:
    """A ``BlockAllocator`` of ``config`` through ``allocate``, ``free`` and ``share`` calls.

    The pool starts filled with values from ``seed``. Operations: ``{"op":
    "allocate", "n": n}``, ``{"op": "free", "blocks": [...]}``, ``{"op":
    "share", "blocks": [...]}`` (the last two are provided). For each one it
    records what came back (or the error, and whether it is
    ``OutOfBlocks``), ``ref_counts`` and ``num_free()`` afterwards; and, after
    the last, whether the pool holds the tensors made at construction with the
    values it started with (``same_buffers``, ``pool_unchanged``).
    """
    pool = kv.BlockAllocator(**config)
    keys, values = pool.keys, pool.values
    with torch.no_grad():
        keys.copy_(seeded_tensor(list(keys.shape), seed))
        values.copy_(seeded_tensor(list(values.shape), seed + 1))
    before = (keys.clone(), values.clone())
    steps = []
    for op in ops:
        method = {"allocate": pool.allocate, "free": pool.free, "share": pool.share}[op["op"]]
        step = attempt_blocks(kv, method, op["n"] if op["op"] == "allocate" else list(op["blocks"]))
        if isinstance(step.get("value"), list):
            step["value"] = list(step["value"])
        step["ref_counts"] = list(pool.ref_counts) if isinstance(pool.ref_counts, list) else pool.ref_counts
        step["num_free"] = pool.num_free()
        steps.append(step)
    same = pool.keys is keys and pool.values is values
    unchanged = same and torch.equal(keys, before[0]) and torch.equal(values, before[1])
    return {"steps": steps, "same_buffers": same, "pool_unchanged": unchanged}


# ---------------------------------------------------------------- TODO 2: PagedKVCache.append

def paged_ops(kv, config: dict, ops: list[dict], seed: int) -> dict:
    """The student's ``PagedKVCache`` on a stand-in allocator of ``config`` through a list of operations.

    The pool starts filled with :func:`common.fill_of` ``(seed)``.
    Operations: ``{"op": "add", "seq": s}`` (``"reserve": k`` allocates ``k``
    blocks for it first, ``"length"`` its starting length), ``{"op": "append",
    "seq": s, "n": n}`` (TODO 2; then the probe writes :func:`common.synthetic`
    keys and values for the new positions of every layer at the slots it
    returned, through the provided ``write``), ``{"op": "fork", "parent": a,
    "child": b}``, ``{"op": "free", "seq": s}``. For each one it records what
    came back (or the error, and whether it is ``OutOfBlocks``), the tables
    and lengths (keyed by the sequence as text), ``ref_counts`` and the pool's
    keys and values ``[L, NB, Hkv, bs, hd]``.
    """
    pool = stand_in_allocator(kv, **{k: config[k] for k in ("num_blocks", "block_size", "num_layers",
                                                           "num_kv_heads", "head_dim")})
    fill, tag = fill_of(seed), tag_of(seed)
    pool.keys.fill_(fill)
    pool.values.fill_(fill)
    cache = kv.PagedKVCache(pool)
    steps = []
    for op in ops:
        kind = op["op"]
        if kind == "add":
            blocks = pool.allocate(op.get("reserve", 0))
            step = attempt_blocks(kv, cache.add_sequence, op["seq"], blocks, op.get("length", 0))
        elif kind == "append":
            start = cache.lengths.get(op["seq"], 0)
            step = attempt_blocks(kv, cache.append, op["seq"], op["n"])
            slots = step.get("value")
            if isinstance(slots, list):
                step["value"] = list(slots)
            if isinstance(slots, list) and len(slots) == op["n"] and all(
                    type(s) is int and 0 <= s < config["num_blocks"] * config["block_size"] for s in slots):
                positions = list(range(start, start + op["n"]))
                for layer in range(config["num_layers"]):
                    keys = synthetic(op["seq"], positions, layer, config["num_kv_heads"], config["head_dim"], tag)
                    cache.write(layer, torch.tensor(slots, dtype=torch.long), keys, -keys)
        elif kind == "fork":
            step = attempt_blocks(kv, cache.fork, op["parent"], op["child"])
        else:
            step = attempt_blocks(kv, cache.free_sequence, op["seq"])
        if kind != "append":
            step.pop("value", None)
        step["tables"] = {str(s): list(t) for s, t in cache.block_tables.items()}
        step["lengths"] = {str(s): n for s, n in cache.lengths.items()}
        step["ref_counts"] = list(pool.ref_counts)
        step["keys"] = pool.keys.clone()
        step["values"] = pool.values.clone()
        steps.append(step)
    return {"steps": steps, "fill": fill}


# ---------------------------------------------------------------- TODO 3: paged_attention

def attention_run(kv, config: dict, seed: int, tables: list[list[int]], context_lens: list[int],
                  query_lens: list[int], rows: int | None = None, stale: float | None = None) -> dict:
    """``paged_attention`` on a pool and queries drawn from ``seed``.

    ``config``: ``num_heads``, ``num_kv_heads``, ``head_dim``,
    ``num_blocks``, ``block_size``. The key pool is drawn from ``seed``, the
    value pool from ``seed + 1``, the queries ``[rows, H, hd]`` (``rows``
    defaults to ``sum(query_lens)``) from ``seed + 2``. With ``stale``, every
    slot that no sequence holds (past its length in its last block, and the
    blocks of no table) holds ``stale`` instead, as left-overs of earlier
    sequences would. Returns the output (or the error), whether the pools,
    queries and tables are as they were, whether the output is the query
    tensor or shares its memory.
    """
    heads, groups, size = config["num_heads"], config["num_kv_heads"], config["head_dim"]
    shape = [config["num_blocks"], groups, config["block_size"], size]
    key_pool, value_pool = seeded_tensor(shape, seed), seeded_tensor(shape, seed + 1)
    if stale is not None:
        held = torch.zeros(config["num_blocks"], config["block_size"], dtype=torch.bool)
        for table, length in zip(tables, context_lens):
            for position in range(length):
                block = table[position // config["block_size"]] if position // config["block_size"] < len(table) \
                    else None
                if block is not None:
                    held[block, position % config["block_size"]] = True
        for pool in (key_pool, value_pool):
            pool.masked_fill_(~held[:, None, :, None], stale)
    query = seeded_tensor([sum(query_lens) if rows is None else rows, heads, size], seed + 2)
    before = [t.clone() for t in (key_pool, value_pool, query)]
    given = [list(t) for t in tables], list(context_lens), list(query_lens)
    seen = attempt_blocks(kv, kv.paged_attention, query, key_pool, value_pool, *given)
    out = seen.get("value")
    seen["unchanged"] = all(torch.equal(a, b) for a, b in zip(before, (key_pool, value_pool, query)))
    seen["lists_unchanged"] = [given[0], given[1], given[2]] == [tables, context_lens, query_lens]
    seen["shares_query"] = isinstance(out, torch.Tensor) and out.untyped_storage().data_ptr() == \
        query.untyped_storage().data_ptr()
    return seen


# ---------------------------------------------------------------- TODOs 2 and 3: a whole model on a paged cache

def paged_model(kv, config: dict, seed: int, requests: list[list[int]], calls: list[list[list[int]]],
                num_blocks: int, block_size: int, own_append: bool = True) -> dict:
    """A real seeded model on a paged cache, fed the ``requests`` in pieces, against the model without a cache.

    Each call of ``calls`` is a list of ``[sequence, n]``: one forward feeding
    the next ``n`` tokens of ``requests[sequence]`` for each sequence it names
    (a sequence starts at its first call); ``[sequence, "fork", parent]``
    instead starts a sequence as a fork of ``parent`` (the provided
    ``fork``): it shares everything its parent holds, and ``requests[sequence]``
    must start with what the parent was fed. With ``own_append`` the cache is
    the student's ``PagedKVCache`` (TODO 2) on a stand-in allocator; without,
    each sequence starts on every block its request needs and a stand-in
    cache works out the slots (:func:`common.reserved_cache`; no forks then),
    so only TODO 3 runs.
    Returns each call's logits ``[N, V]`` (``outputs``), the same rows of
    the model without a cache (``uncached``), the tables, lengths and
    reference counts at the end.
    """
    model = build_model(kv, config, seed)
    pool = stand_in_allocator(kv, **pool_for(config, num_blocks, block_size))
    cache = kv.PagedKVCache(pool) if own_append else reserved_cache(kv, pool)
    fed: dict[int, int] = {}
    outputs, uncached = [], []
    with torch.no_grad():
        full = [model([request]) for request in requests]
        for call in calls:
            batch = []
            for item in call:
                if item[1] == "fork":
                    cache.fork(item[2], item[0])
                    fed[item[0]] = fed[item[2]]
                    continue
                if item[0] not in fed:
                    reserve = 0 if own_append else -(-len(requests[item[0]]) // block_size)
                    cache.add_sequence(item[0], pool.allocate(reserve))
                    fed[item[0]] = 0
                batch.append(item)
            if not batch:
                continue
            tokens = [requests[seq][fed[seq]:fed[seq] + n] for seq, n in batch]
            outputs.append(model(tokens, cache, [seq for seq, _ in batch]))
            uncached.append(torch.cat([full[seq][fed[seq]:fed[seq] + n] for seq, n in batch]))
            for seq, n in batch:
                fed[seq] += n
    return {"outputs": outputs, "uncached": uncached,
            "tables": {str(s): list(t) for s, t in cache.block_tables.items()},
            "lengths": {str(s): n for s, n in cache.lengths.items()}, "ref_counts": list(pool.ref_counts)}


PROBES = {fn.__name__: fn for fn in (allocator_ops, paged_ops, attention_run, paged_model)}
