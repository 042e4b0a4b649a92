"""One probe for every cache whose ``update(layer, keys, values)`` writes preallocated buffers: replay a list of
operations and watch what the cache returns and what its buffers hold.

Parts 1 and 2 (``KVCache``, ``SinkWindowCache``) call :func:`replay_updates` from their checks packages with their
own cache, heads and tag rule; the entries written are :func:`synthetic_kv` data, so an entry in the wrong place
names the place it came from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .probing import attempt


def synthetic_kv(batch: int, heads: int, n: int, head_dim: int, start: int, tag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values whose entries spell out where they belong.

    ``keys[b, h, t, d] = 10000*tag + 1000*b + 100*h + (start + t) + d/100`` (positions below 100) and
    ``values = -keys``. Shapes: ``[batch, heads, n, head_dim]`` each.
    """
    b = torch.arange(batch).view(-1, 1, 1, 1)
    h = torch.arange(heads).view(1, -1, 1, 1)
    t = torch.arange(start, start + n).view(1, 1, -1, 1)
    d = torch.arange(head_dim).view(1, 1, 1, -1)
    keys = (10000.0 * tag + 1000.0 * b + 100.0 * h + t + d / 100.0).float()
    return keys, -keys


def _shares(returned: tuple, buffers: tuple) -> list[bool]:
    return [isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() == buf.untyped_storage().data_ptr()
            for t, buf in zip(returned, buffers)]


def _copies(returned: tuple) -> list:
    return [t.clone() if isinstance(t, torch.Tensor) else t for t in returned]


def replay_updates(kv, cache, ops: list[dict], shape: tuple[int, int, int], fill: float,
                   tag_of: Callable[[dict, int], int], buffers: str = "each", snapshots: bool = False) -> dict:
    """Run ``cache.update`` through ``ops`` and watch the buffers allocated at construction.

    ``shape``: ``(batch, heads, head_dim)`` of the entries the cache stores. Every buffer is first filled with
    ``fill``, so untouched places show. Operations: ``{"op": "set_length", "value": L}`` sets ``current_length``;
    ``{"op": "update", "layer": l, "n": n}`` writes :func:`synthetic_kv` data for positions ``current_length ..``
    with tag ``tag_of(op, i)`` (``i``: the update's number); ``"keys_shape"`` / ``"values_shape"`` replace the
    tensors by zeros of that shape, for checks of bad input. Each update records what came back (or the error),
    whether it shares memory with that layer's buffers, ``current_length`` afterwards, the buffers' contents (every
    layer; after the last operation only with ``buffers="last"``) and whether the cache still holds its first buffer
    objects. With ``snapshots`` what came back is copied when it came back and again after the last operation
    (``returned_later``); without, the returned tensors themselves are kept.
    """
    keys0, values0 = list(cache.keys), list(cache.values)
    for buf in keys0 + values0:
        buf.fill_(fill)
    steps, kept = [], []
    for op in ops:
        if op["op"] == "set_length":
            cache.current_length = op["value"]
            continue
        layer, n = op["layer"], op["n"]
        keys, values = synthetic_kv(shape[0], shape[1], n, shape[2], start=cache.current_length,
                                    tag=tag_of(op, len(steps)))
        if "keys_shape" in op:
            keys = torch.zeros(op["keys_shape"])
        if "values_shape" in op:
            values = torch.zeros(op["values_shape"])
        step = attempt(kv, cache.update, layer, keys, values)
        returned = step.pop("value", None)
        kept.append(returned)
        if "error" not in step:
            pair = isinstance(returned, tuple) and len(returned) == 2
            if snapshots:
                step["returned"] = _copies(returned) if pair else returned
            else:
                step["returned"] = list(returned) if isinstance(returned, tuple) else returned
            if pair and 0 <= layer < len(keys0):
                step["shares_storage"] = _shares(returned, (keys0[layer], values0[layer]))
        step["length_after"] = cache.current_length
        if buffers == "each" or op is ops[-1]:
            step["keys"] = [buf.clone() for buf in keys0]
            step["values"] = [buf.clone() for buf in values0]
        step["same_buffers"] = all(a is b for a, b in zip(cache.keys, keys0)) and all(
            a is b for a, b in zip(cache.values, values0))
        steps.append(step)
    if snapshots:
        for step, returned in zip(steps, kept):
            if "returned" in step and isinstance(returned, tuple):
                step["returned_later"] = _copies(returned)
    return {"steps": steps, "fill": fill}
