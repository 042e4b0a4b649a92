"""Probes of TODOs 1-3: grouped-query attention, rotary positions, the sink-and-window cache.

Each probe builds objects from the student's ``kvserving`` package (``kv``),
drives them through one scenario and returns what it observed; the checks
judge. Shapes: ``B`` batch, ``H`` query heads, ``Hkv`` key/value heads,
``S`` new tokens, ``T`` keys attended over, ``hd`` head size.
"""

from __future__ import annotations

import re

import torch

from kvchecks.i18n import N_, _
from kvchecks.mistakes import Mistake
from kvchecks.probing import attempt, count_rows, greedy_chat
from kvchecks.replay import replay_updates
from kvchecks.standins import SHOWN_AS, ListCache
from kvchecks.weights import fill_parameters, seeded_tensor, seeded_tokens

from .common import build_model, head_dim, kv_heads

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


# ---------------------------------------------------------------- TODO 2: apply_rotary

def rotary(kv, shape: list[int], seed: int, positions=None, base: float | None = None,
           dtype: str = "float32") -> dict:
    """``apply_rotary`` on ``x`` ``shape`` = ``[B, h, S, hd]`` drawn from ``seed``.

    ``positions`` (nested lists, any shape) default to ``0 .. S-1`` in every
    row; ``base=None`` leaves the default. Returns what came back
    (``value``, or the ``error``), whether ``x`` changed, whether the result
    is ``x`` itself or shares its memory, and ``x`` as it was.
    """
    x = seeded_tensor(shape, seed, DTYPES[dtype])
    before = x.clone()
    if positions is None:
        positions = torch.arange(shape[2]).expand(shape[0], shape[2])
    else:
        positions = torch.tensor(positions, dtype=torch.long)
    args = () if base is None else (base,)
    seen = attempt(kv, kv.apply_rotary, x, positions, *args)
    out = seen.get("value")
    seen["x"] = before
    seen["x_changed"] = not torch.equal(x, before)
    seen["is_x"] = out is x
    seen["shares_memory"] = isinstance(out, torch.Tensor) and out.untyped_storage().data_ptr() == \
        x.untyped_storage().data_ptr()
    return seen


def rotary_dots(kv, head_dim: int, seed: int, pairs: list[list[int]]) -> dict:
    """For each ``[m, n]`` of ``pairs``: ``apply_rotary(q, m) . apply_rotary(k, n)`` for one ``q`` and one ``k``
    (``[1, 1, 1, hd]`` each, float64, from ``seed``). Returns ``dots`` ``[len(pairs)]``."""
    q = seeded_tensor([1, 1, 1, head_dim], seed, torch.float64)
    k = seeded_tensor([1, 1, 1, head_dim], seed + 1, torch.float64)
    dots = []
    for m, n in pairs:
        rotated_q = kv.apply_rotary(q, torch.tensor([[m]]))
        rotated_k = kv.apply_rotary(k, torch.tensor([[n]]))
        dots.append(float((rotated_q * rotated_k).sum()))
    return {"dots": torch.tensor(dots, dtype=torch.float64)}


# ---------------------------------------------------------------- TODO 1: Attention.forward

def attention_mask(batch: int, length: int, seed: int, kind: str) -> torch.Tensor:
    """The mask of a whole run, ``[1, 1, L, L]`` causal, or ``[B, 1, L, L]`` for ``kind="random"``: causal with
    about a third of the earlier keys hidden at random (from ``seed``); a token always sees itself."""
    causal = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
    if kind == "causal":
        return causal
    kept = seeded_tensor([batch, 1, length, length], seed) > -0.45
    return (kept & causal) | torch.eye(length, dtype=torch.bool)


def attention_run(kv, config: dict, seed: int, batch: int, length: int, chunks: list[int] | None = None,
                  layer_idx: int = 0, mask: str = "causal", positions: list[list[int]] | None = None,
                  tamper_after: int | None = None, wo_identity: bool = False) -> dict:
    """Run one ``Attention`` layer over ``length`` positions, in one uncached call or chunk after chunk.

    ``config``: ``hidden_dim``, ``num_heads``, ``num_kv_heads``, ``rope_base``
    (None: no rotation). Weights from ``seed`` (``wo_identity`` makes ``Wo``
    the identity, so output columns ``h * hd .. (h + 1) * hd`` are query head
    ``h``'s); ``x`` ``[batch, length, D]`` from ``seed + 1``; the mask of
    :func:`attention_mask` from ``seed + 2``, each call given its rows and
    the columns of the keys so far; the tokens' ``positions`` ``[batch,
    length]`` default to ``0 .. length - 1`` in every row. With ``chunks`` the layer gets a :class:`ListCache`
    (tampered with after chunk ``tamper_after``, to show whether later
    chunks read it). Returns the output ``[batch, length, D]``, the positions
    each of ``Wq``/``Wk``/``Wv`` saw per call, the cache's update calls, its
    ``current_length`` right after each call, what this layer stored
    (``stored_keys``/``stored_values``, ``[batch, Hkv, length, hd]``) and the
    unrotated projections ``raw_keys`` = ``Wk(x)`` and ``raw_values`` as
    ``[batch, Hkv, length, hd]``.
    """
    hidden, heads, groups = config["hidden_dim"], config["num_heads"], config["num_kv_heads"]
    attn = kv.Attention(hidden, heads, groups, layer_idx=layer_idx, rope_base=config.get("rope_base"))
    fill_parameters(attn, seed)
    attn.eval()
    size = hidden // heads
    with torch.no_grad():
        if wo_identity:
            attn.Wo.weight.copy_(torch.eye(hidden))
            attn.Wo.bias.zero_()
        x = seeded_tensor([batch, length, hidden], seed + 1)
        raw_keys = attn.Wk(x).view(batch, length, groups, size).transpose(1, 2)
        raw_values = attn.Wv(x).view(batch, length, groups, size).transpose(1, 2)
    positions = torch.arange(length).expand(batch, length) if positions is None else torch.tensor(positions)
    full_mask = attention_mask(batch, length, seed + 2, mask)
    rows: dict[str, list[int]] = {"Wq": [], "Wk": [], "Wv": []}
    for name, log in rows.items():
        count_rows(getattr(attn, name), log)
    cache = ListCache(layer_idx + 2)
    lengths = []
    with torch.no_grad():
        if chunks is None:
            out = attn(x, positions, full_mask)
        else:
            outs, start = [], 0
            for i, size_i in enumerate(chunks):
                end = start + size_i
                outs.append(attn(x[:, start:end], positions[:, start:end], full_mask[:, :, start:end, :end],
                                 kv_cache=cache))
                lengths.append(cache.current_length)
                start = cache.current_length = end
                if tamper_after == i:
                    cache.tamper(layer_idx)
            out = torch.cat(outs, dim=1) if all(isinstance(o, torch.Tensor) for o in outs) else outs
    stored_keys, stored_values = cache.stored(layer_idx)
    return {"out": out, "rows": rows, "updates": cache.calls, "lengths_after": lengths, "stored_keys": stored_keys,
            "stored_values": stored_values, "raw_keys": raw_keys, "raw_values": raw_values}


def model_run(kv, config: dict, seed: int, batch: int = 1, length: int | None = None,
              tokens: list[list[int]] | None = None, chunks: list[int] | None = None) -> dict:
    """Run a whole ``Transformer`` (:func:`common.build_model`) over a token sequence, with or without a cache.

    Tokens ``[batch, length]`` come from ``seed + 1`` unless given. With
    ``chunks=None`` one uncached call sees them all (the model's own
    attention rule, windowed when ``config`` has ``sinks`` and ``window``);
    otherwise they are fed chunk after chunk on one ``KVCache`` of
    ``num_kv_heads`` heads, just long enough. Returns the logits ``[batch,
    length, vocab]``, ``current_length`` after each call, that cache's
    ``nbytes()`` and ``full_nbytes``, what a ``KVCache`` of the same size with
    ``num_heads`` heads holds.
    """
    model = build_model(kv, config, seed)
    if tokens is None:
        tokens_t = seeded_tokens(batch, length, config["vocab_size"], seed + 1)
    else:
        tokens_t = torch.tensor(tokens, dtype=torch.long)
    batch, total = tokens_t.shape
    lengths, nbytes, full_nbytes = [], None, None
    with torch.no_grad():
        if chunks is None:
            logits = model(tokens_t)
        else:
            cache = kv.KVCache(config["depth"], batch, kv_heads(config), head_dim(config), total)
            full = kv.KVCache(config["depth"], batch, config["num_heads"], head_dim(config), total)
            nbytes, full_nbytes = cache.nbytes(), full.nbytes()
            parts, start = [], 0
            for size in chunks:
                parts.append(model(tokens_t[:, start:start + size], kv_cache=cache))
                start += size
                lengths.append(cache.current_length)
            logits = torch.cat(parts, dim=1) if all(isinstance(p, torch.Tensor) for p in parts) else parts
    return {"logits": logits, "lengths": lengths, "nbytes": nbytes, "full_nbytes": full_nbytes}


# ---------------------------------------------------------------- TODO 3: SinkWindowCache.update

def window_fill(seed: int) -> float:
    """The value every buffer of :func:`window_ops` starts with: small and negative, unlike any synthetic entry."""
    return -float(11 + seed % 83)


def window_ops(kv, config: dict, ops: list[dict], seed: int, buffers: str = "each") -> dict:
    """Run ``SinkWindowCache.update`` through a list of operations and watch the buffers (:func:`kvchecks.replay.
    replay_updates`, whose operations these are).

    ``config``: the ``SinkWindowCache`` constructor's arguments. Every buffer starts filled with
    :func:`window_fill` ``(seed)``; update number ``i`` has tag ``1 + (seed + 3 i) % 9``. What came back is copied
    when it came back and again after the last operation (``returned_later``): a ring's views may change later.
    """
    shape = (config["batch_size"], config["num_kv_heads"], config["head_dim"])
    return replay_updates(kv, kv.SinkWindowCache(**config), ops, shape, window_fill(seed),
                          tag_of=lambda op, i: 1 + (seed + 3 * i) % 9, buffers=buffers, snapshots=True)


def window_chat(kv, config: dict, seed: int, turns: list[list[int]], reply_tokens: int) -> dict:
    """A chat on one ``SinkWindowCache``: each turn feeds its new tokens in one call, then decodes a reply greedily.

    ``config``: a model (:func:`common.build_model`) with ``sinks`` and
    ``window``; the cache has the same ones, batch 1. A turn's call carries
    the previous reply's last token (not yet in the cache) and the turn's
    tokens; each further reply token takes one call of one token. Returns the
    whole ``history`` (the last reply token is never fed), the logits of every
    fed position ``[1, len(history) - 1, vocab]``, ``current_length``,
    ``nbytes()`` and whether the cache holds its first buffer objects, after
    each call, and the greedy ``margin``.
    """
    model = build_model(kv, config, seed)
    cache = kv.SinkWindowCache(config["depth"], 1, kv_heads(config), head_dim(config), config["sinks"],
                               config["window"])
    first = list(cache.keys) + list(cache.values)

    def observe(cache) -> tuple:
        return (cache.current_length, cache.nbytes(),
                all(a is b for a, b in zip(list(cache.keys) + list(cache.values), first)))

    chat = greedy_chat(model, cache, turns, reply_tokens, observe)
    lengths, nbytes, same = (list(column) for column in zip(*chat.pop("observed")))
    return {**chat, "lengths": lengths, "nbytes": nbytes, "same_buffers": same}


PROBES = {fn.__name__: fn for fn in (rotary, rotary_dots, attention_run, model_run, window_ops, window_chat)}

MISTAKES: tuple[Mistake, ...] = (
    Mistake("todo1_repeat_not_interleave", 1, "attention_run",
            N_("your output equals grouped-query attention in which query head h uses key/value head h % "
               "num_kv_heads, as k.repeat(1, G, 1, 1) or expand-then-reshape in the wrong order give: the G = H // "
               "num_kv_heads query heads of one group are consecutive, so query head h uses key/value head h // G "
               "(k.repeat_interleave(G, dim=1)).")),
    Mistake("todo1_no_scale", 1, "attention_run",
            N_("your output equals attention whose scores are not divided by sqrt(head_dim): scale q @ k^T by "
               "1 / sqrt(head_dim) before the softmax (head_dim = hidden_dim // num_heads).")),
    Mistake("todo1_ignores_rope_base", 1, "attention_run",
            N_("your keys equal keys rotated with apply_rotary's default base (10000), not with the layer's own "
               "rope_base: pass it on, apply_rotary(q, positions, self.rope_base), and the same for k.")),
    Mistake("todo1_rotates_twice", 1, "attention_run",
            N_("your output equals attention whose keys are rotated once more after kv_cache.update returns them: "
               "the cache already holds keys rotated at their own positions, so attend over the keys it returns as "
               "they are.")),
    Mistake("todo2_interleaved_pairs", 2, "rotary",
            N_("your output equals the interleaved layout (GPT-J's), which rotates the pairs (x[2i], x[2i + 1]): "
               "this kit uses the rotate-half layout of GPT-NeoX and Llama, where pair i is (x[..., i], x[..., i + "
               "hd/2]) and turns by the angle position * base ** (-2i / hd).")),
    Mistake("todo3_ring_not_offset_by_sinks", 3, "window_ops",
            N_("your buffers equal a ring that puts position t in slot sinks + t % window: the ring starts after "
               "the sinks, so position t >= sinks goes to slot sinks + (t - sinks) % window (position sinks to slot "
               "sinks).")),
    Mistake("todo3_ring_one_slot_short", 3, "window_ops",
            N_("your buffers equal a ring of window - 1 slots (position t >= sinks in slot sinks + (t - sinks) % "
               "(window - 1)), which evicts every position one step early and never writes the last slot: the "
               "ring has window slots, slot sinks + (t - sinks) % window.")),
)

_CACHE_HEADS = re.compile(r"num_kv_heads=(\d+), n, head_dim=\d+\], got \(\d+, (\d+), ")


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """A hint for an exception of these TODOs whose cause is known from its kind and message alone, or ``""``."""
    if todo == 1 and kind == "AttributeError" and SHOWN_AS in message:
        return _("the checks of TODO 1 give your layer a stand-in cache that offers update(layer, keys, values) and "
                 "current_length only: attend over the (keys, values) that kv_cache.update returns.")
    heads = _CACHE_HEADS.search(message)
    if todo in (1, 3) and kind == "ValueError" and heads and int(heads[2]) > int(heads[1]):
        if todo == 3:
            text = _("the cache holds num_kv_heads={cached} key/value heads and was given {given}: Attention.forward "
                     "(TODO 1) must store k and v as Wk and Wv give them ([B, num_kv_heads, S, head_dim]) and expand "
                     "them to the query heads only after kv_cache.update returns them (repeat_interleave(num_heads "
                     "// num_kv_heads, dim=1)).")
        else:
            text = _("the cache holds num_kv_heads={cached} key/value heads and was given {given}: store k and v as "
                     "Wk and Wv give them ([B, num_kv_heads, S, head_dim]) and expand them to the query heads only "
                     "after kv_cache.update returns them (repeat_interleave(num_heads // num_kv_heads, dim=1)).")
        return text.format(cached=heads[1], given=heads[2])
    if todo == 1 and kind == "RuntimeError" and "at non-singleton dimension 1" in message:
        return _("dimension 1 of the [B, heads, S, head_dim] tensors is the head axis: q has num_heads heads, k and "
                 "v num_kv_heads; expand k and v to num_heads after kv_cache.update returns them "
                 "(repeat_interleave(num_heads // num_kv_heads, dim=1)) before computing the scores.")
    return ""
