"""Fresh inputs: the same probe calls with seeds, token ids and synthetic values drawn anew.

The published checks' inputs and expected outputs ship to students, so a
submission could recognise them and replay the answers. Graders therefore run
every check a second time on inputs drawn when grading: :func:`redraw` keeps
each call's shapes, lengths and schedule and replaces what a replay would key
on. It depends only on the draw's key and the argument values, so the same
published call made by the probe and by ``expected`` gets the same fresh
inputs, and observations that a check compares across probes (a
conversation's history against ``model_run`` with the same seed) stay
consistent.

Every assignment gets new values for ``seed`` and, where a ``config``
argument gives ``vocab_size``, for ``prompt``, ``prompts`` and ``turns``.
Its checks package may add rules for its own probes: ``redraw(probe, args,
fresh, rng)`` edits ``fresh`` in place, drawing from ``rng(name, value)``.
"""

from __future__ import annotations

import hashlib
import json
import random

from . import assignment


def _rng(draw_key: str, name: str, value) -> random.Random:
    text = json.dumps([draw_key, name, value], sort_keys=True)
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _tokens(draw_key: str, name: str, tokens: list[int], vocab: int) -> list[int]:
    rng = _rng(draw_key, name, tokens)
    return [rng.randrange(vocab) for _ in tokens]


def redraw(probe: str, args: dict, draw_key: str) -> dict:
    """``args`` of one call of ``probe`` with fresh seeds, prompts and turns, and the assignment's own rules."""
    fresh = dict(args)
    vocab = (args.get("config") or {}).get("vocab_size")
    if isinstance(args.get("seed"), int):
        fresh["seed"] = _rng(draw_key, "seed", args["seed"]).randrange(10**5, 10**9)
    if vocab and isinstance(args.get("prompt"), list):
        fresh["prompt"] = _tokens(draw_key, "prompt", args["prompt"], vocab)
    for name in ("turns", "prompts"):
        if vocab and isinstance(args.get(name), list):
            fresh[name] = [_tokens(draw_key, f"{name}{i}", item, vocab) for i, item in enumerate(args[name])]
    own = getattr(assignment.current().checks_module(), "redraw", None)
    if own is not None:
        own(probe, args, fresh, lambda name, value: _rng(draw_key, name, value))
    return fresh
