"""Fresh-input rules of part 1's own probes (the framework redraws seeds, prompts and turns)."""

from __future__ import annotations

# Synthetic cache entries are 10000 * tag + ... (kvchecks.replay.synthetic_kv); tags and fills stay small and apart.
TAGS = range(1, 10)


def redraw(probe: str, args: dict, fresh: dict, rng) -> None:
    """A new rule for the scripted model; new tags and fill value for the cache's synthetic entries."""
    if probe == "generate_scripted":  # even for an empty prompt
        fresh["salt"] = rng("salt", [args.get("salt", 0), args.get("prompt")]).randrange(1, 10**4)
    if probe == "cache_ops":
        draw = rng("ops", args["ops"])
        fresh["fill"] = -float(draw.randrange(11, 99))
        fresh["ops"] = [dict(op, tag=draw.choice(TAGS)) if op.get("op") == "update" else op for op in args["ops"]]
