"""Probes of TODOs 4-6: batched generation, rollback, speculative decoding.

The checks of TODOs 4 and 6 mostly run the student's generator on a
*scripted* model: a ``Transformer`` shell whose ``forward`` records every
call and returns one-hot logits (gap 10, far from any tie) predicting a rule
of each token and its position, so a token fed at a wrong position, a token
fed that should not be, or a wrong attention mask shows in the output, and
TODOs 1-3 are not run. TODO 6's decoder also gets stand-in caches with a
correct ``crop`` (:class:`StandInCache`), so TODO 5 is not run either. The
whole-model probes (``*_real``, ``crop_model``) use seeded models and the
student's own ``KVCache``.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from kvchecks.i18n import N_, _, ngettext
from kvchecks.mistakes import Mistake
from kvchecks.probing import attempt, greedy_margin
from kvchecks.standins import SHOWN_AS, stand_in
from kvchecks.weights import seeded_tensor

from .common import build_model, new_cache

ONE_HOT = 10.0  # the scripted logits: 10 for the predicted token, 0 elsewhere


def salt_of(seed: int) -> int:
    """The scripted rules' offset: drawn anew with the seed on fresh inputs."""
    return seed % 89 + 1


def _shell(kv, config: dict):
    """A ``Transformer`` of ``config`` whose ``forward`` the probe replaces (its weights are never used)."""
    return kv.Transformer(config["depth"], config["hidden_dim"], config["vocab_size"], num_heads=config["num_heads"],
                          num_kv_heads=config.get("num_kv_heads"))


class CallLog:
    """Every call of a scripted forward, and the caches seen, numbered by first appearance."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.caches: list[object] = []
        self.recording = True

    def cache_id(self, cache) -> int | str | None:
        """A stand-in's own name, else the cache's number in order of first appearance (None: no cache)."""
        if cache is None:
            return None
        if isinstance(cache, StandInCache):
            return cache.name
        if not any(cache is c for c in self.caches):
            self.caches.append(cache)
        return next(i for i, c in enumerate(self.caches) if c is cache)


def _positions(count: int) -> str:
    """``1 position``, ``3 positions``: the stand-ins' exceptions are English, like Python's own."""
    return f"{count} position" if count == 1 else f"{count} positions"


def _check_room(kv, cache, new: int) -> None:
    """The ``CacheOverflowError`` a real model would raise when ``new`` positions do not fit ``cache``."""
    limit = getattr(cache, "max_seq_len", None)
    if limit is not None and cache.current_length + new > limit:
        raise kv.CacheOverflowError(f"the scripted model cannot store {_positions(new)} after "
                                    f"{cache.current_length}: the cache holds at most {limit}")


def batch_forward(kv, vocab: int, salt: int, log: CallLog):
    """A forward for TODO 4: after token ``t`` at position ``p``, with ``r`` real tokens visible so far (the
    ``attention_mask`` ones up to and including it; every sequence index without a mask), it predicts
    ``(7 t + 3 p + 5 r + salt) % vocab``. ``positions`` defaults to the sequence indices, as in the real model;
    masks or positions of the wrong shape raise the ``ValueError`` the real model raises."""

    def forward(tokens, kv_cache=None, positions=None, attention_mask=None):
        batch, seq = tokens.shape
        past = 0 if kv_cache is None else kv_cache.current_length
        if log.recording:
            log.calls.append({
                "tokens": tokens.tolist(),
                "positions": None if positions is None else torch.as_tensor(positions).long().tolist(),
                "mask": None if attention_mask is None else (torch.as_tensor(attention_mask) != 0).int().tolist(),
                "cache": log.cache_id(kv_cache), "is_kvcache": isinstance(kv_cache, kv.KVCache),
                "cache_batch": getattr(kv_cache, "batch_size", None), "length": past,
            })
        index = torch.arange(past, past + seq)
        if positions is None:
            positions = index.expand(batch, seq)
        elif positions.shape != (batch, seq):
            raise ValueError(f"the scripted model takes positions of [B={batch}, S={seq}], got "
                             f"{tuple(positions.shape)}")
        if attention_mask is None:
            real = (index + 1).expand(batch, seq)
        elif tuple(attention_mask.shape) != (batch, past + seq):
            raise ValueError(f"attention_mask must be [B={batch}, L + S={past + seq}], got "
                             f"{tuple(attention_mask.shape)}")
        else:
            real = (torch.as_tensor(attention_mask) != 0).long().cumsum(dim=1)[:, past:]
        if kv_cache is not None:
            _check_room(kv, kv_cache, seq)
            kv_cache.advance(seq)
        predicted = (7 * tokens.long() + 3 * positions.long() + 5 * real + salt) % vocab
        return ONE_HOT * F.one_hot(predicted, vocab).float()

    return forward


def _same_objects(result, outer: list, rows: list) -> list | None:
    """For each returned row, whether it is one of the caller's ``rows`` (and, last, whether the result is the
    caller's ``outer`` list itself)."""
    if not isinstance(result, list):
        return None
    return [any(row is mine for mine in rows) for row in result] + [result is outer]


def batch_scripted(kv, config: dict, prompts: list[list[int]], max_new_tokens: int, seed: int, pad_id: int = 0,
                   generator_len: int | None = None, repeats: int = 1) -> dict:
    """``BatchGenerator.generate_batch`` on the scripted model of :func:`batch_forward` (TODO 4 on its own).

    ``config``: the shell's shape and ``max_seq_len`` (unless ``generator_len``
    is given); the rule's salt comes from ``seed``. ``generate_batch`` runs
    ``repeats`` times, each on new lists holding ``prompts``. Returns each
    call's ``results``; ``calls``: every model call (token ids ``[B, S]``,
    ``positions`` and the 0/1 ``mask`` as passed, or None; which cache by
    number, whether it is a ``KVCache``, its batch size and length); what the
    callers' lists hold afterwards (``prompts_after``) and, per call, whether
    each returned row (then the outer list) is a caller's list object
    (``same_objects``); and ``alone``: ``Generator.generate`` of each prompt by
    itself on the same rule.
    """
    model = _shell(kv, config)
    log = CallLog()
    model.forward = batch_forward(kv, config["vocab_size"], salt_of(seed), log)
    generator = kv.BatchGenerator(model, generator_len or config["max_seq_len"], pad_id=pad_id)
    given = [[list(p) for p in prompts] for _ in range(repeats)]
    results, same = [], []
    for mine in given:
        rows = list(mine)
        results.append(attempt(kv, generator.generate_batch, mine, max_new_tokens))
        same.append(_same_objects(results[-1].get("value"), mine, rows))
    log.recording = False
    alone = [attempt(kv, generator.generate, list(p), max_new_tokens) for p in prompts]
    return {"results": results, "calls": log.calls, "prompts_after": given, "same_objects": same, "alone": alone}


def _greedy_uncached(model, prompt: list[int], max_new_tokens: int) -> tuple[list[int], list[torch.Tensor]]:
    """Greedy decoding without a cache (every step re-runs the sequence): the tokens and each step's logits."""
    tokens, steps = list(prompt), []
    with torch.no_grad():
        for _step in range(max_new_tokens):
            steps.append(model(torch.tensor([tokens], dtype=torch.long))[0, -1])
            tokens.append(int(steps[-1].argmax()))
    return tokens, steps


def batch_real(kv, config: dict, seed: int, prompts: list[list[int]], max_new_tokens: int, pad_id: int = 0,
               max_seq_len: int = 32) -> dict:
    """``generate_batch`` on a real seeded model and its own ``KVCache``; ``greedy``: each prompt decoded alone
    without a cache; ``margin``: the smallest top-2 logit gap over those steps and the batch's."""
    model = build_model(kv, config, seed)
    batch_steps: list[torch.Tensor] = []
    model.register_forward_hook(lambda _m, _i, out: batch_steps.extend(out[:, -1]))
    generator = kv.BatchGenerator(model, max_seq_len, pad_id=pad_id)
    outputs = attempt(kv, generator.generate_batch, [list(p) for p in prompts], max_new_tokens)
    margin_steps = list(batch_steps)
    greedy = []
    for prompt in prompts:
        tokens, steps = _greedy_uncached(model, prompt, max_new_tokens)
        greedy.append(tokens)
        margin_steps += steps
    return {"outputs": outputs, "greedy": greedy, "margin": greedy_margin(margin_steps)}


def _write(cache, layers: int, n: int, seed: int) -> list[list[torch.Tensor]]:
    """Store ``n`` seeded positions in every layer through the provided ``update``, then advance; returns a copy
    of what each ``update`` returned (later writes change the views it returns)."""
    shape = [cache.batch_size, cache.num_kv_heads, n, cache.head_dim]
    returned = []
    for layer in range(layers):
        keys, values = seeded_tensor(shape, seed + 2 * layer), seeded_tensor(shape, seed + 2 * layer + 1)
        returned.append([t.clone() for t in cache.update(layer, keys, values)])
    cache.advance(n)
    return returned


def crop_ops(kv, config: dict, seed: int, ops: list[dict]) -> dict:
    """A ``KVCache`` of ``config`` through writes and crops (TODO 5 on its own: ``update`` is provided).

    ``{"op": "write", "n": n}`` stores ``n`` positions of seeded keys and
    values in every layer and advances; ``{"op": "crop", "length": m}`` calls
    ``crop(m)``. Each step records what came back (``returned``: each layer's
    ``[keys, values]`` for a write) or the error, ``current_length``
    afterwards, whether every buffer value is bit for bit what it was before
    the step (``unchanged``), whether the cache still holds the buffers
    allocated at construction, and those buffers' contents.
    """
    cache = kv.KVCache(**config)
    buffers = list(cache.keys) + list(cache.values)
    steps = []
    for i, op in enumerate(ops):
        before = [b.clone() for b in buffers]
        if op["op"] == "write":
            step = attempt(kv, _write, cache, config["num_layers"], op["n"], seed + 100 * i)
            step["returned"] = step.pop("value", None)
        else:
            step = attempt(kv, cache.crop, op["length"])
            step.pop("value", None)
        step["length"] = cache.current_length
        step["unchanged"] = all(torch.equal(a, b) for a, b in zip(before, buffers))
        step["same_buffers"] = (len(cache.keys) + len(cache.values) == len(buffers)
                                and all(a is b for a, b in zip(list(cache.keys) + list(cache.values), buffers)))
        step["keys"] = [b.clone() for b in buffers[:len(buffers) // 2]]
        step["values"] = [b.clone() for b in buffers[len(buffers) // 2:]]
        steps.append(step)
    return {"steps": steps}


def crop_model(kv, config: dict, seed: int, turns: list[list[int]], crop_to: int, max_seq_len: int = 32) -> dict:
    """Roll a real model's ``KVCache`` back, then go on: the continuation must not see what was rolled back.

    ``turns[0]`` is prefilled in one call, ``turns[1]`` fed one token per
    call; ``crop(crop_to)``; then ``turns[2]`` goes in one call. Returns the
    continuation's logits ``[1, len(turns[2]), vocab]`` (``continued``), the
    same positions' logits of one uncached run of ``(turns[0] + turns[1])[:crop_to]
    + turns[2]`` (``straight``), ``current_length`` after each stage and the
    crop's outcome.
    """
    model = build_model(kv, config, seed)
    cache = new_cache(kv, config, 1, max_seq_len)
    ids = lambda tokens: torch.tensor([tokens], dtype=torch.long)  # noqa: E731
    lengths = []
    with torch.no_grad():
        model(ids(turns[0]), kv_cache=cache)
        lengths.append(cache.current_length)
        for token in turns[1]:
            model(ids([token]), kv_cache=cache)
        lengths.append(cache.current_length)
        crop = attempt(kv, cache.crop, crop_to)
        lengths.append(cache.current_length)
        continued = model(ids(turns[2]), kv_cache=cache)
        lengths.append(cache.current_length)
        kept = (turns[0] + turns[1])[:crop_to]
        straight = model(ids(kept + turns[2]))[:, len(kept):]
    return {"continued": continued, "straight": straight, "lengths": lengths, "crop": crop}


@stand_in
class StandInCache:
    """A stand-in cache for TODO 6's checks: ``current_length``, ``max_seq_len``, ``batch_size``, ``advance``,
    ``reset`` and a correct ``crop``.

    Every ``crop`` call goes to the shared ``crops`` log as ``{"cache", "from",
    "to"}``; a crop outside ``0 .. current_length`` raises ``ValueError`` and
    changes nothing, as ``KVCache.crop`` does.
    """

    def __init__(self, name: str, batch_size: int, max_seq_len: int, crops: list[dict]) -> None:
        self.name = name
        self.owner = name.split()[0]
        self.batch_size = batch_size
        self.max_seq_len = max_seq_len
        self.current_length = 0
        self.crops = crops

    def advance(self, n: int) -> None:
        self.current_length += n

    def crop(self, length: int) -> None:
        self.crops.append({"cache": self.name, "from": self.current_length, "to": length})
        if length < 0 or length > self.current_length:  # (a stand-in for the student's own crop: TODO 5)
            raise ValueError(f"cannot crop the {self.owner} model's cache to {length}: it holds "
                             f"{_positions(self.current_length)}")
        self.current_length = int(length)

    def reset(self) -> None:
        self.current_length = 0


def spec_rule(vocab: int, salt: int, draft: str | None = None):
    """The scripted target's rule after token ``t`` at position ``p``: ``(7 t + 3 p + salt) % vocab``. A draft
    predicts the same (``same``), never the same (``never``), or something else at positions ``p`` with ``(p +
    salt) % 3 == 0`` (``mixed``)."""

    def rule(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        target = (7 * tokens + 3 * positions + salt) % vocab
        if draft is None or draft == "same":
            return target
        off = torch.ones_like(target) if draft == "never" else ((positions + salt) % 3 == 0).long()
        return (target + off) % vocab

    return rule


def spec_forward(kv, vocab: int, rule, log: CallLog, name: str):
    """A forward for TODO 6 that predicts ``rule(token, position)`` (positions: as given, else the sequence
    indices), raises ``CacheOverflowError`` past the cache's ``max_seq_len`` and records each call as made by
    model ``name``."""

    def forward(tokens, kv_cache=None, positions=None, attention_mask=None):
        batch, seq = tokens.shape
        past = 0 if kv_cache is None else kv_cache.current_length
        if log.recording:
            log.calls.append({"model": name, "tokens": tokens.tolist(), "cache": log.cache_id(kv_cache),
                              "length": past})
        if positions is None:
            positions = torch.arange(past, past + seq).expand(batch, seq)
        if kv_cache is not None:
            _check_room(kv, kv_cache, seq)
            kv_cache.advance(seq)
        return ONE_HOT * F.one_hot(rule(tokens.long(), positions.long()) % vocab, vocab).float()

    return forward


def _stats(decoder):
    """A copy of ``decoder.stats`` (as it is, when it is not a dict)."""
    stats = getattr(decoder, "stats", None)
    return dict(stats) if isinstance(stats, dict) else stats


def speculative_scripted(kv, config: dict, prompt: list[int], max_new_tokens: int, seed: int, draft: str = "mixed",
                         draft_tokens: int = 4, generator_len: int | None = None, repeats: int = 1) -> dict:
    """``SpeculativeDecoder.generate`` with a scripted target and draft (:func:`spec_rule`, salt from ``seed``)
    and :class:`StandInCache` caches, named ``target cache 1``, ``draft cache 1``, ``target cache 2``, ... in
    the order ``new_cache`` makes them (TODO 6 on its own).

    ``generate`` runs ``repeats`` times on new copies of ``prompt``. Returns
    each call's ``results`` and ``stats`` afterwards, whether each result is
    the caller's list object (``same_object``), what the caller's lists hold
    afterwards (``prompts_after``), every model call in order (``calls``:
    which model, token ids, cache, its length at the call), every crop
    (``crops``) and ``greedy``: ``Generator.generate`` on the scripted target.
    """
    vocab, salt = config["vocab_size"], salt_of(seed)
    max_seq_len = generator_len or config["max_seq_len"]
    target, drafter = _shell(kv, config), _shell(kv, config)
    log, crops = CallLog(), []
    target.forward = spec_forward(kv, vocab, spec_rule(vocab, salt), log, "target")
    drafter.forward = spec_forward(kv, vocab, spec_rule(vocab, salt, draft), log, "draft")
    decoder = kv.SpeculativeDecoder(target, drafter, max_seq_len, draft_tokens=draft_tokens)
    made = {"target": 0, "draft": 0}

    def maker(owner: str):
        def new_cache(batch_size: int = 1) -> StandInCache:
            made[owner] += 1
            return StandInCache(f"{owner} cache {made[owner]}", batch_size, max_seq_len, crops)
        return new_cache

    decoder.target.new_cache, decoder.draft.new_cache = maker("target"), maker("draft")
    given = [list(prompt) for _ in range(repeats)]
    results, stats, same = [], [], []
    for mine in given:
        results.append(attempt(kv, decoder.generate, mine, max_new_tokens))
        stats.append(_stats(decoder))
        same.append(results[-1].get("value") is mine)
    log.recording = False
    greedy = attempt(kv, kv.Generator(target, max_seq_len).generate, list(prompt), max_new_tokens)
    return {"results": results, "stats": stats, "same_object": same, "prompts_after": given, "calls": log.calls,
            "crops": crops, "greedy": greedy}


def speculative_real(kv, config: dict, seed: int, prompt: list[int], max_new_tokens: int,
                     draft_config: dict | None = None, draft_tokens: int = 4, max_seq_len: int = 40) -> dict:
    """``SpeculativeDecoder.generate`` on real seeded models and the student's ``KVCache``s.

    The target is ``config`` from ``seed``; the draft ``draft_config`` from
    ``seed + 1``, or (``draft_config=None``) the target's twin (same
    configuration and seed: every proposal is accepted). Returns the
    ``result``, ``stats``, ``greedy`` (the target's decoding without a cache)
    and its ``margin``.
    """
    target = build_model(kv, config, seed)
    draft = build_model(kv, draft_config, seed + 1) if draft_config else build_model(kv, config, seed)
    decoder = kv.SpeculativeDecoder(target, draft, max_seq_len, draft_tokens=draft_tokens)
    result = attempt(kv, decoder.generate, list(prompt), max_new_tokens)
    greedy, steps = _greedy_uncached(target, prompt, max_new_tokens)
    return {"result": result, "stats": _stats(decoder), "greedy": greedy, "margin": greedy_margin(steps)}


PROBES = {fn.__name__: fn for fn in (batch_scripted, batch_real, crop_ops, crop_model, speculative_scripted,
                                     speculative_real)}

MISTAKES: tuple[Mistake, ...] = (
    # Rotary attention depends on position differences only, so on a real model this mistake's constant shift
    # per row cancels out; the scripted model's rule reads absolute positions and shows it.
    Mistake("todo4_positions_count_padding", 4, "batch_scripted",
            N_("your rows equal a batch whose positions count the padding (positions from arange over the padded "
               "row, or no positions passed, so the model uses sequence indices): a left-padded prompt then starts "
               "at position P - len(prompt) instead of 0, not where it starts when generated alone. A real token's "
               "position is the number of real tokens before it in its row (attention_mask.cumsum(1) - 1), padding "
               "0; each decode step adds one.")),
    Mistake("todo4_no_attention_mask", 4, "batch_real",
            N_("your rows equal a batch run without attention_mask: the shorter prompts then attend to their "
               "padding. Pass attention_mask [B, L + S] on every call, 0 for each padding column and 1 for every "
               "real or generated token, one more column each step.")),
)

_STAND_IN = re.compile(re.escape(SHOWN_AS))
_CROP = re.compile(r"cannot crop the (target|draft) model's cache to (-?\d+): it holds (\d+) position")
_MASK = re.compile(r"attention_mask must be \[B=\d+, L \+ S=\d+\]")
_POSITIONS = re.compile(r"positions (must be|of) \[B=\d+, S=\d+\]")
_OVERFLOW = re.compile(r"the scripted model cannot store")


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """A hint for an exception of these TODOs whose cause is known from its kind and message alone, or ``""``."""
    crop = _CROP.search(message)
    if kind == "ValueError" and crop:
        held = int(crop.group(3))
        if crop.group(1) == "target":
            text = ngettext("your decoder cropped the target's cache to {length} while it held {held} position, but a "
                            "crop keeps 0 .. current_length of them. After each round the target's cache keeps the "
                            "committed tokens but the last, and the draft's min(its length, that).",
                            "your decoder cropped the target's cache to {length} while it held {held} positions, but a "
                            "crop keeps 0 .. current_length of them. After each round the target's cache keeps the "
                            "committed tokens but the last, and the draft's min(its length, that).", held)
        else:
            text = ngettext("your decoder cropped the draft's cache to {length} while it held {held} position, but a "
                            "crop keeps 0 .. current_length of them. After each round the target's cache keeps the "
                            "committed tokens but the last, and the draft's min(its length, that).",
                            "your decoder cropped the draft's cache to {length} while it held {held} positions, but a "
                            "crop keeps 0 .. current_length of them. After each round the target's cache keeps the "
                            "committed tokens but the last, and the draft's min(its length, that).", held)
        return text.format(length=crop.group(2), held=crop.group(3))
    if todo == 6 and kind == "AttributeError" and _STAND_IN.search(message):
        return _("the checks of TODO 6 give your decoder stand-in caches (from self.target.new_cache() and "
                 "self.draft.new_cache()) that offer current_length, max_seq_len, batch_size, advance(n), "
                 "crop(length) and reset() only.")
    if todo == 4 and kind == "ValueError" and _MASK.search(message):
        return _("attention_mask covers every sequence index so far, the cache's L and this call's S: [B, L + S], "
                 "one column more on each decode step.")
    if todo == 4 and kind == "ValueError" and _POSITIONS.search(message):
        return _("positions has one entry per new token: [B, P] for the prefill, [B, 1] for each decode step.")
    if todo == 6 and _OVERFLOW.search(message):
        return _("a decoder that follows the contract never holds more than len(prompt) + max_new_tokens - 1 "
                 "positions in a cache, which fits max_seq_len for every request it accepts. So a cache kept "
                 "positions it should have cropped, a round drafted more than min(draft_tokens, missing - 1) "
                 "tokens, or a request too long for max_seq_len got through.")
    return ""
