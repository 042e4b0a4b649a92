"""Probes of TODOs 4-6: the prefix cache, the scheduler, the int8 cache.

TODO 4's and TODO 5's probes give the caches a stand-in allocator (the checks' own ``allocate``). TODO 5's scripted
probe gives the scheduler a scripted model (:class:`ScriptedModel`) that appends through the student's
``PagedKVCache.append`` (TODO 2) and reads the tokens back through the block tables, so the scheduler is checked
without TODOs 1 and 3 and a request that reads blocks it no longer owns shows in its output. The ``*_model`` and
``*_real`` probes run a real seeded model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kvchecks.probing import attempt, greedy_margin
from kvchecks.standins import stand_in

from .common import build_model, fill_of, pool_for, stand_in_allocator, synthetic, tag_of
from .pool import attempt_blocks

ONE_HOT = 10.0  # the scripted logits: 10 for the predicted token, 0 elsewhere
INT8_FILL = -128  # what the int8 buffers start with: never a stored value (those lie in -127 .. 127)
SCALE_FILL = -1.0  # what the scales start with: never a stored scale (those are >= 0)


def tables_of(cache) -> dict:
    """The cache's tables and lengths, keyed by the sequence as text (JSON keys)."""
    return {"tables": {str(s): list(t) for s, t in cache.block_tables.items()},
            "lengths": {str(s): n for s, n in cache.lengths.items()}}


# ---------------------------------------------------------------- TODO 4: PrefixCache.admit

def prefix_ops(kv, config: dict, requests: list[list[int]], ops: list[dict], seed: int) -> dict:
    """A ``PrefixCache`` over the student's ``PagedKVCache`` on a stand-in allocator, through admits and releases.

    Operations: ``{"op": "admit", "seq": s, "request": i}`` (TODO 4, with
    prompt ``requests[i]``); ``{"op": "prefill", "seq": s}`` (the probe writes
    :func:`common.synthetic` keys for the prompt's positions from the
    sequence's length on into its reserved blocks, sets its length to the
    prompt's, and calls the provided ``commit``); ``{"op": "release", "seq":
    s}`` (the provided ``release``). For each one it records what came back
    (or the error, and whether it is ``OutOfBlocks``), the tables and
    lengths, ``ref_counts``, the prefix cache's ``table`` (key -> block),
    ``stamps`` and ``depths`` (keyed by the block as text) and ``clock``; at
    the end the pool's keys.
    """
    pool = stand_in_allocator(kv, **{k: config[k] for k in ("num_blocks", "block_size", "num_layers",
                                                           "num_kv_heads", "head_dim")})
    pool.keys.fill_(fill_of(seed))
    pool.values.fill_(fill_of(seed))
    cache = kv.PagedKVCache(pool)
    prefix = kv.PrefixCache(cache)
    tag, prompts, steps = tag_of(seed), {}, []
    for op in ops:
        seq = op["seq"]
        if op["op"] == "admit":
            prompts[seq] = requests[op["request"]]
            step = attempt_blocks(kv, prefix.admit, seq, list(prompts[seq]))
        elif op["op"] == "prefill":  # a sequence that admit refused is not prefilled
            held = seq in cache.block_tables and seq in prefix.pending
            step = {"prefilled": held and _prefill(cache, seq, len(prompts[seq]), config, tag)}
            if held:
                prefix.commit(seq)
        else:
            step = attempt_blocks(kv, prefix.release, seq)
            step.pop("value", None)
        step.update(tables_of(cache))
        step["ref_counts"] = list(pool.ref_counts)
        step["table"] = dict(prefix.table)
        step["stamps"] = {str(b): s for b, s in prefix.stamps.items()}
        step["depths"] = {str(b): d for b, d in prefix.depths.items()}
        step["clock"] = prefix.clock
        steps.append(step)
    return {"steps": steps, "keys": pool.keys.clone()}


def _prefill(cache, seq: int, length: int, config: dict, tag: int) -> bool:
    """Write synthetic keys for positions ``lengths[seq] .. length - 1`` into ``seq``'s blocks (False when its table
    holds too few blocks: nothing is written)."""
    table, size, start = cache.block_tables[seq], config["block_size"], cache.lengths[seq]
    if len(table) * size < length:
        return False
    if start < length:
        positions = list(range(start, length))
        slots = torch.tensor([table[p // size] * size + p % size for p in positions], dtype=torch.long)
        keys = synthetic(seq, positions, 0, config["num_kv_heads"], config["head_dim"], tag)
        cache.write(0, slots, keys, -keys)
    cache.lengths[seq] = length
    return True


def prefix_model(kv, config: dict, seed: int, requests: list[list[int]], waves: list[list[int]],
                 max_new_tokens: int, num_blocks: int, block_size: int) -> dict:
    """Greedy generation through a ``PrefixCache`` on a real seeded model (TODOs 2, 3 and 4 run).

    Each wave of ``waves`` lists requests (their index is their sequence): each
    one is admitted, its prompt prefilled from the reused positions on in one
    forward, committed; then the wave decodes ``max_new_tokens - 1`` batched
    steps, and every request of it is released. Returns each request's new
    tokens (``outputs``), reused positions (``reused``) and prompt positions
    the model computed (``prefilled``); ``alone``: each request decoded by
    the model without a cache; ``margin`` of those steps; the reference counts
    at the end.
    """
    model = build_model(kv, config, seed)
    pool = stand_in_allocator(kv, **pool_for(config, num_blocks, block_size))
    cache = kv.PagedKVCache(pool)
    prefix = kv.PrefixCache(cache)
    outputs, reused, prefilled = {}, {}, {}
    with torch.no_grad():
        for wave in waves:
            for i in wave:
                reused[str(i)] = prefix.admit(i, list(requests[i]))
                rest = requests[i][reused[str(i)]:]
                prefilled[str(i)] = len(rest)
                outputs[str(i)] = [int(model([rest], cache, [i])[-1].argmax())]
                prefix.commit(i)
            for _step in range(max_new_tokens - 1):
                logits = model([[outputs[str(i)][-1]] for i in wave], cache, list(wave))
                for i, row in zip(wave, logits):
                    outputs[str(i)].append(int(row.argmax()))
            for i in wave:
                prefix.release(i)
        alone, steps = _greedy_alone(model, requests, max_new_tokens)
    return {"outputs": outputs, "reused": reused, "prefilled": prefilled, "alone": alone,
            "margin": greedy_margin(steps), "ref_counts": list(pool.ref_counts)}


def _greedy_alone(model, requests: list[list[int]], max_new_tokens: int) -> tuple[dict, list[torch.Tensor]]:
    """Each request decoded greedily by the model without a cache: its new tokens (keyed by index as text), and the
    last logits of every step."""
    alone, steps = {}, []
    for i, request in enumerate(requests):
        tokens = list(request)
        for _step in range(max_new_tokens):
            steps.append(model([tokens])[-1])
            tokens.append(int(steps[-1].argmax()))
        alone[str(i)] = tokens[len(request):]
    return alone, steps


# ---------------------------------------------------------------- TODO 5: Scheduler.step

def rule(token: int, position: int, history: int, salt: int, vocab: int) -> int:
    """The scripted model's next token after ``token`` at ``position``, ``history`` being the sum of the tokens at
    positions ``0 .. position`` as the cache holds them."""
    return (7 * token + 3 * position + 5 * history + salt) % vocab


@stand_in
class ScriptedModel:
    """A model for TODO 5's checks: it appends each sequence's new positions (``cache.append``, TODO 2), stores each
    token id in its slot, and predicts :func:`rule` of the tokens it reads back through the block table; every call
    goes to ``calls``."""

    def __init__(self, vocab: int, salt: int) -> None:
        self.vocab, self.salt = vocab, salt
        self.calls: list[dict] = []

    def __call__(self, tokens, cache=None, seq_ids=None) -> torch.Tensor:
        tokens = [[int(t) for t in seq] for seq in tokens]
        seq_ids = [int(s) for s in seq_ids]
        self.calls.append({"seq_ids": seq_ids, "tokens": tokens, "lengths": [cache.lengths.get(s) for s in seq_ids]})
        pool, size, rows = cache.allocator, cache.block_size, []
        for seq, new in zip(seq_ids, tokens):
            start = cache.lengths[seq]
            for slot, token in zip(cache.append(seq, len(new)), new):
                pool.keys[0, slot // size, 0, slot % size, 0] = float(token)
            table = cache.block_tables[seq]
            held = [int(pool.keys[0, table[t // size], 0, t % size, 0]) for t in range(start + len(new))]
            rows += [rule(token, start + i, sum(held[:start + i + 1]), self.salt, self.vocab)
                     for i, token in enumerate(new)]
        return ONE_HOT * F.one_hot(torch.tensor(rows, dtype=torch.long), self.vocab).float()


def scripted_alone(prompt: list[int], max_new_tokens: int, salt: int, vocab: int) -> list[int]:
    """The scripted model's greedy decoding of ``prompt`` alone."""
    tokens = list(prompt)
    for _step in range(max_new_tokens):
        position = len(tokens) - 1
        tokens.append(rule(tokens[-1], position, sum(tokens), salt, vocab))
    return tokens[len(prompt):]


def serve(kv, scheduler, requests, max_new_tokens, arrivals, observe, limit: int = 200) -> dict:
    """Submit request ``i`` before step ``arrivals[i]`` and step until every request finished (or ``limit`` steps,
    or the scheduler raised). Returns each step's ``observe(scheduler, returned)`` and the outputs by id."""
    steps, count = [], 0
    while count < limit:
        for i, (request, arrival) in enumerate(zip(requests, arrivals)):
            if arrival == count:
                scheduler.submit(i, list(request), max_new_tokens[i])
        step = attempt(kv, scheduler.step)
        steps.append(observe(scheduler, step))
        count += 1
        if "error" in step or (count > max(arrivals) and not scheduler.waiting and not scheduler.running):
            break
    outputs = {str(i): list(r.output) for i, r in scheduler.finished.items()}
    ints = all(type(token) is int for r in scheduler.finished.values() for token in r.output)
    return {"steps": steps, "outputs": outputs, "int_outputs": ints, "stalled": count >= limit}


def schedule_scripted(kv, config: dict, requests: list[list[int]], max_new_tokens: list[int], arrivals: list[int],
                      seed: int, num_blocks: int, max_running: int = 8, prefill_chunk: int | None = None) -> dict:
    """The student's ``Scheduler`` on :class:`ScriptedModel` (rule salt from ``seed``), a ``PagedKVCache`` and a
    stand-in allocator of ``num_blocks`` blocks of ``config["block_size"]`` slots.

    Request ``i`` (prompt ``requests[i]``, ``max_new_tokens[i]`` tokens)
    arrives before step ``arrivals[i]``. After each step: what it returned (or
    the error), the ids in ``running`` and ``waiting``, the tables and
    lengths, the free blocks, each known request's output so far and the
    model calls of that step (sequence ids, tokens fed, lengths before). At
    the end: each finished request's output, ``alone`` (each request decoded
    by the scripted rule alone) and the tokens fed per request over the run.
    """
    salt, vocab = seed % 89 + 1, config["vocab_size"]
    pool = stand_in_allocator(kv, num_blocks=num_blocks, block_size=config["block_size"], num_layers=1,
                              num_kv_heads=1, head_dim=1)
    cache = kv.PagedKVCache(pool)
    model = ScriptedModel(vocab, salt)
    scheduler = kv.Scheduler(model, cache, max_running=max_running, prefill_chunk=prefill_chunk)

    def observe(scheduler, step):
        calls, model.calls = model.calls, []
        known = scheduler.waiting + scheduler.running + list(scheduler.finished.values())
        return {**step, "running": [r.request_id for r in scheduler.running],
                "waiting": [r.request_id for r in scheduler.waiting], **tables_of(cache),
                "free": pool.num_free(), "outputs": {str(r.request_id): list(r.output) for r in known},
                "calls": calls}

    run = serve(kv, scheduler, requests, max_new_tokens, arrivals, observe)
    fed: dict[str, int] = {str(i): 0 for i in range(len(requests))}
    for step in run["steps"]:
        for call in step["calls"]:
            for seq, tokens in zip(call["seq_ids"], call["tokens"]):
                fed[str(seq)] = fed.get(str(seq), 0) + len(tokens)
    alone = {str(i): scripted_alone(request, max_new_tokens[i], salt, vocab) for i, request in enumerate(requests)}
    return {**run, "alone": alone, "fed": fed}


def schedule_real(kv, config: dict, seed: int, requests: list[list[int]], max_new_tokens: list[int],
                  arrivals: list[int], num_blocks: int, block_size: int, max_running: int = 8,
                  prefill_chunk: int | None = None) -> dict:
    """The student's ``Scheduler`` on a real seeded model, its ``PagedKVCache`` (TODO 2), paged attention (TODO 3)
    and a stand-in allocator. Returns the outputs by id, ``alone`` (each request decoded by the model without a
    cache), ``margin``, the tokens fed per request and how many times a request left ``running`` unfinished."""
    model = build_model(kv, config, seed)
    pool = stand_in_allocator(kv, **pool_for(config, num_blocks, block_size))
    cache = kv.PagedKVCache(pool)
    fed: dict[str, int] = {}

    def count(_module, args, kwargs):
        tokens = args[0] if args else kwargs.get("tokens")
        seq_ids = args[2] if len(args) > 2 else kwargs.get("seq_ids")
        for seq, new in zip(seq_ids or [], tokens):
            fed[str(seq)] = fed.get(str(seq), 0) + len(new)

    model.register_forward_pre_hook(count, with_kwargs=True)
    scheduler = kv.Scheduler(model, cache, max_running=max_running, prefill_chunk=prefill_chunk)
    running: list[int] = []
    preempted = [0]

    def observe(scheduler, step):
        now = [r.request_id for r in scheduler.running]
        preempted[0] += sum(1 for r in scheduler.waiting if r.request_id in running)
        running[:] = now
        return {key: value for key, value in step.items() if key == "error"}

    with torch.no_grad():
        run = serve(kv, scheduler, requests, max_new_tokens, arrivals, observe)
        alone, steps = {}, []
        for i, request in enumerate(requests):
            tokens = list(request)
            for _step in range(max_new_tokens[i]):
                steps.append(model([tokens])[-1])
                tokens.append(int(steps[-1].argmax()))
            alone[str(i)] = tokens[len(request):]
    errors = [step["error"] for step in run["steps"] if "error" in step]
    return {"outputs": run["outputs"], "stalled": run["stalled"], "error": errors[0] if errors else None,
            "alone": alone, "margin": greedy_margin(steps), "fed": fed, "preempted": preempted[0]}


# ---------------------------------------------------------------- TODO 6: Int8KVCache.update

def int8_rows(shape: list[int], seed: int, magnitudes: list[float] | None, zero_rows: list[list[int]]):
    """A ``[n, Hkv, hd]`` tensor from ``seed`` whose int8 steps are known and never near a tie.

    Each row (one position, one head) is ``m / 127 * (k + f)``: ``k`` an
    integer in ``-126 .. 126``, ``f`` a fraction in ``±[0.1, 0.4]`` or
    ``±[0.6, 0.9]``, and one element exactly ``±m``, so ``max|x| = m``, ``x /
    s = k + f`` and rounding (or truncating) it has one answer. Position
    ``i``'s ``m`` is ``magnitudes[i]`` (cycled; 1 without them); the rows
    ``[i, h]`` of ``zero_rows`` are all zeros.
    """
    generator = torch.Generator().manual_seed(seed)
    count, heads, size = shape
    whole = torch.randint(-126, 127, shape, generator=generator).double()
    fraction = 0.1 + 0.3 * torch.rand(shape, generator=generator, dtype=torch.float64)
    fraction = fraction + 0.5 * (torch.rand(shape, generator=generator) < 0.5)
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).double()
    steps = whole + sign * fraction
    peak = torch.where(torch.rand(count, heads, generator=generator) < 0.5, -127.0, 127.0).double()
    for i in range(count):
        for head in range(heads):
            steps[i, head, (i + head) % size] = peak[i, head]
    scale = torch.tensor([magnitudes[i % len(magnitudes)] if magnitudes else 1.0 for i in range(count)],
                         dtype=torch.float64)
    rows = (steps * scale[:, None, None] / 127).float()
    for i, head in zero_rows:
        rows[i, head] = 0.0
    return rows


def int8_ops(kv, config: dict, ops: list[dict], seed: int) -> dict:
    """``Int8KVCache.update`` of a cache of ``config`` through a list of operations, watching its buffers.

    The int8 buffers start filled with ``INT8_FILL`` and the scales with
    ``SCALE_FILL``, so untouched entries show. ``{"op": "set_length",
    "value": L}`` sets ``current_length``; ``{"op": "update", "layer": l, "n":
    n}`` gives keys from ``seed + 3 i`` and values from ``seed + 3 i + 1``
    (update number ``i``), each position scaled by ``"magnitudes"`` (cycled;
    values by them reversed) and the ``"zero_rows"`` ``[position, head]`` all
    zeros; ``"keys_shape"`` / ``"values_shape"`` give zeros of that shape
    instead. For each update: the keys and values given, what came back (or
    the error), ``current_length`` afterwards, the buffers and scales, and
    whether the cache holds the tensors made at construction, still int8.
    """
    cache = kv.Int8KVCache(**config)
    made = [cache.keys, cache.values, cache.key_scales, cache.value_scales]
    for t, fill in zip(made, (INT8_FILL, INT8_FILL, SCALE_FILL, SCALE_FILL)):
        t.fill_(fill)
    steps = []
    for op in ops:
        if op["op"] == "set_length":
            cache.current_length = op["value"]
            continue
        i, n = len(steps), op["n"]
        shape = [n, config["num_kv_heads"], config["head_dim"]]
        magnitudes = op.get("magnitudes")
        keys = int8_rows(shape, seed + 3 * i, magnitudes, op.get("zero_rows", []))
        values = int8_rows(shape, seed + 3 * i + 1, magnitudes[::-1] if magnitudes else None,
                           op.get("zero_rows", []))
        if "keys_shape" in op:
            keys = torch.zeros(op["keys_shape"])
        if "values_shape" in op:
            values = torch.zeros(op["values_shape"])
        step = attempt(kv, cache.update, op["layer"], keys.clone(), values.clone())
        returned = step.pop("value", None)
        if "error" not in step:
            pair = isinstance(returned, tuple) and len(returned) == 2
            step["returned"] = [t.clone() if isinstance(t, torch.Tensor) else t for t in returned] if pair \
                else returned
        step["given"] = [keys, values]
        step["length_after"] = cache.current_length
        step["buffers"] = [t.to(torch.int32) if t.dtype == torch.int8 else t.clone() for t in made]  # JSON: no int8
        now = [cache.keys, cache.values, cache.key_scales, cache.value_scales]
        step["same_buffers"] = all(a is b for a, b in zip(now, made)) and cache.keys.dtype == torch.int8 and \
            cache.values.dtype == torch.int8
        steps.append(step)
    return {"steps": steps}


def int8_model(kv, config: dict, seed: int, prompt: list[int], max_new_tokens: int, max_seq_len: int) -> dict:
    """Greedy decoding of ``prompt`` by a real seeded model on an ``Int8KVCache`` (a prefill, then one token per
    call), on the provided float ``KVCache`` and without a cache.

    Returns the int8 run's tokens and the logits of every fed position ``[len(prompt) + max_new_tokens - 1, V]``,
    the same for the model without a cache (fed the int8 run's tokens), the float run's tokens, both caches'
    ``nbytes()`` and the int8 run's greedy ``margin``.
    """
    model = build_model(kv, config, seed)
    heads, size = config.get("num_kv_heads") or config["num_heads"], config["hidden_dim"] // config["num_heads"]
    runs = {}
    with torch.no_grad():
        for name, cache in (("int8", kv.Int8KVCache(config["depth"], heads, size, max_seq_len)),
                            ("float", kv.KVCache(config["depth"], heads, size, max_seq_len))):
            tokens, logits, fed = list(prompt), [], list(prompt)
            for _step in range(max_new_tokens):
                logits.append(model([fed], cache))
                tokens.append(int(logits[-1][-1].argmax()))
                fed = tokens[-1:]
            runs[name] = (tokens[len(prompt):], torch.cat(logits), cache.nbytes())
        uncached = model([list(prompt) + runs["int8"][0][:-1]])
    return {"tokens": runs["int8"][0], "logits": runs["int8"][1], "uncached": uncached,
            "float_tokens": runs["float"][0], "nbytes": runs["int8"][2], "float_nbytes": runs["float"][2],
            "margin": greedy_margin([row for row in runs["int8"][1][len(prompt) - 1:]])}


PROBES = {fn.__name__: fn for fn in (prefix_ops, prefix_model, schedule_scripted, schedule_real, int8_ops,
                                     int8_model)}
