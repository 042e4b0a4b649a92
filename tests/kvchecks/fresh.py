"""Fresh inputs: the same probe calls with seeds, token ids and synthetic values drawn anew.

The published checks' inputs and expected outputs ship to students, so a
submission could recognise them and replay the answers. Graders therefore run
every check a second time on inputs drawn when grading: :func:`redraw` keeps
each call's shapes, lengths and schedule (configs, chunk sizes, layers,
``set_length`` steps) and replaces what a replay would key on. It depends
only on the draw's key and the argument values, so the same published call
made by the probe and by ``expected`` gets the same fresh inputs, and
observations that a check compares across probes (a conversation's history
against ``model_run`` with the same seed) stay consistent.
"""

from __future__ import annotations

import hashlib
import json
import random

# Synthetic cache entries are 10000 * tag + ... (probes.synthetic_kv); tags and fills stay small and apart.
TAGS = range(1, 10)


def _rng(draw_key: str, name: str, value) -> random.Random:
    text = json.dumps([draw_key, name, value], sort_keys=True)
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _tokens(draw_key: str, name: str, tokens: list[int], vocab: int) -> list[int]:
    rng = _rng(draw_key, name, tokens)
    return [rng.randrange(vocab) for _ in tokens]


def redraw(probe: str, args: dict, draw_key: str) -> dict:
    """``args`` of one call of ``probe`` with fresh seeds, prompts, turns, scripted rule, cache tags and fill value."""
    fresh = dict(args)
    vocab = (args.get("config") or {}).get("vocab_size")
    if isinstance(args.get("seed"), int):
        fresh["seed"] = _rng(draw_key, "seed", args["seed"]).randrange(10**5, 10**9)
    if vocab and isinstance(args.get("prompt"), list):
        fresh["prompt"] = _tokens(draw_key, "prompt", args["prompt"], vocab)
    if vocab and isinstance(args.get("turns"), list):
        fresh["turns"] = [_tokens(draw_key, f"turn{i}", turn, vocab) for i, turn in enumerate(args["turns"])]
    if probe == "generate_scripted":  # a new rule for the scripted model, even for an empty prompt
        fresh["salt"] = _rng(draw_key, "salt", [args.get("salt", 0), args.get("prompt")]).randrange(1, 10**4)
    if probe == "cache_ops":
        rng = _rng(draw_key, "ops", args["ops"])
        fresh["fill"] = -float(rng.randrange(11, 99))
        fresh["ops"] = [dict(op, tag=rng.choice(TAGS)) if op.get("op") == "update" else op for op in args["ops"]]
    return fresh
