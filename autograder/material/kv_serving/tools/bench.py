"""``kvkit --assignment kv_serving bench``: what part 2's techniques buy, measured on this machine.

Four parts, each the payoff of one TODO, on models of random weights
(:func:`kvchecks.weights.fill_parameters`), float32, on the CPU and on CUDA when there is one:

1. **GQA memory** (TODO 1): ``KVCache.nbytes()`` for a fixed model against its
   number of key/value heads, checked against ``2 x layers x batch x kv_heads x
   max_len x head_dim x bytes``, and the decode time per token at a long context.
2. **A long chat** (TODO 3): a chat far longer than the budget of a
   ``SinkWindowCache`` on a model with the same sinks-and-window rule, against a
   ``KVCache`` sized for the whole chat on the same model: bytes and decode time
   after every turn, and whether the replies agree.
3. **Batching** (TODO 4): ``BatchGenerator.generate_batch`` tokens/s against the
   batch size, prompts of different lengths.
4. **Speculative decoding** (TODOs 5, 6): ``SpeculativeDecoder.generate``
   against ``Generator.generate`` of the target alone, for several draft lengths,
   with a draft made from the target's own first blocks (see :func:`draft_pair`)
   and with an unrelated draft.

Times are best of ``rounds`` rounds in which the methods compared take turns, so a burst of other load slows
one round of each rather than one method; torch runs one CPU thread unless ``--threads`` says otherwise. The
report is printed (``bench_report``, beside this module); ``--json`` and ``--plot`` keep it.
"""

from __future__ import annotations

import math
import time
from types import ModuleType

import torch

from kvchecks.weights import fill_parameters, seeded_tensor, seeded_tokens
from kvkit import benching
from kvkit.stopwatch import greedy_step_s, median_step_s, sync

from .bench_report import plot, print_report

FULL = {
    "rounds": 5,
    "gqa": {"depth": 8, "hidden_dim": 512, "num_heads": 16, "vocab_size": 512, "kv_heads": [16, 8, 4, 2, 1],
            "max_len": 4096, "steps": 16},
    "chat": {"depth": 4, "hidden_dim": 256, "num_heads": 8, "num_kv_heads": 2, "vocab_size": 512,
             "sinks": 4, "window": 252, "turns": 40, "user_tokens": 50, "reply_tokens": 20},
    "batch": {"depth": 4, "hidden_dim": 256, "num_heads": 8, "num_kv_heads": 2, "vocab_size": 512,
              "batch_sizes": [1, 2, 4, 8, 16], "shortest": 8, "longest": 64, "new_tokens": 32},
    "speculative": {"depth": 8, "draft_depth": 2, "hidden_dim": 256, "num_heads": 8, "num_kv_heads": 2,
                    "vocab_size": 512, "scale": 0.05, "draft_tokens": [1, 2, 3, 4, 6, 8], "unrelated_k": 4,
                    "prompt_tokens": 32, "new_tokens": 64},
}
QUICK = {
    "rounds": 1,
    "gqa": {"depth": 2, "hidden_dim": 128, "num_heads": 16, "vocab_size": 64, "kv_heads": [16, 8, 4, 2, 1],
            "max_len": 128, "steps": 4},
    "chat": {"depth": 2, "hidden_dim": 64, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 64,
             "sinks": 2, "window": 14, "turns": 6, "user_tokens": 10, "reply_tokens": 5},
    "batch": {"depth": 2, "hidden_dim": 64, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 64,
              "batch_sizes": [1, 2, 4, 8], "shortest": 4, "longest": 12, "new_tokens": 6},
    "speculative": {"depth": 4, "draft_depth": 2, "hidden_dim": 64, "num_heads": 4, "num_kv_heads": 2,
                    "vocab_size": 64, "scale": 0.05, "draft_tokens": [1, 2, 4], "unrelated_k": 4,
                    "prompt_tokens": 8, "new_tokens": 12},
}
MODEL_KEYS = ("depth", "hidden_dim", "vocab_size", "num_heads", "num_kv_heads")
SEED = 0



def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="part 2's payoffs, measured: GQA memory, a bounded cache over a long chat, batching, speculative decoding",
        description="Measure what each of part 2's techniques buys on random models: the cache's bytes against "
        "the number of key/value heads, a sink-and-window cache over a chat far longer than its budget, "
        "generate_batch tokens/s against the batch size, and speculative decoding against the target alone.",
    )
    benching.add_options(parser, run, plot="draw the four parts, one panel each")


def _timed(device: torch.device, call):
    """``(seconds, result)`` of ``call()``, the device's queued work included."""
    sync(device)
    start = time.perf_counter()
    result = call()
    sync(device)
    return time.perf_counter() - start, result


def build(kv: ModuleType, config: dict, device: torch.device, seed: int, **rule) -> torch.nn.Module:
    """``kv.Transformer`` of ``config``'s dimensions (``rule``: ``sinks``, ``window``), weights from ``seed``."""
    model = kv.Transformer(**{key: config[key] for key in MODEL_KEYS if key in config}, **rule, device=device).eval()
    fill_parameters(model, seed)
    return model


def _ids(tokens: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor([tokens], dtype=torch.long, device=device)


def cache_formula(layers: int, batch: int, kv_heads: int, max_len: int, head_dim: int, element_size: int) -> dict:
    """``2 x layers x batch x kv_heads x max_len x head_dim x bytes``, its value and its factors in words."""
    factors = [2, layers, batch, kv_heads, max_len, head_dim, element_size]
    return {"formula": math.prod(factors), "formula_text": " x ".join(map(str, factors))}


# 1. GQA memory


def gqa_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """Cache bytes and decode ms/token for each number of key/value heads, all else fixed.

    Each cache is filled through ``KVCache.update`` with random keys and values
    up to ``max_len - (rounds + 1) * steps`` positions (what they hold does not
    change the time of a step, and it spares a long prefill per model), then
    every round times ``steps`` one-token decode steps on it (one warm-up round first).
    """
    depth, heads, max_len, steps = config["depth"], config["num_heads"], config["max_len"], config["steps"]
    head_dim = config["hidden_dim"] // heads
    context = max_len - (rounds + 1) * steps
    setups = []
    for seed, kv_heads in enumerate(config["kv_heads"]):
        model = build(kv, {**config, "num_kv_heads": kv_heads}, device, SEED + seed)
        cache = kv.KVCache(depth, 1, kv_heads, head_dim, max_len, device=device)
        shape = [1, kv_heads, context, head_dim]
        for layer in range(depth):
            keys, values = (seeded_tensor(shape, 2 * layer + i).to(device) for i in (0, 1))
            cache.update(layer, keys, values)
        cache.advance(context)
        setups.append((kv_heads, model, cache))
    best = {kv_heads: math.inf for kv_heads in config["kv_heads"]}
    for round_ in range(rounds + 1):
        for kv_heads, model, cache in setups:
            token = torch.zeros(1, 1, dtype=torch.long, device=device)
            step_s = greedy_step_s(model, token, cache, steps)
            if round_:  # round 0 warms up
                best[kv_heads] = min(best[kv_heads], step_s)
        if round_:
            progress.update()
    mha = setups[0][2].nbytes()
    rows = []
    for kv_heads, _, cache in setups:
        nbytes = cache.nbytes()
        formula = cache_formula(depth, 1, kv_heads, max_len, head_dim, cache.keys[0].element_size())
        rows.append({
            "device": device.type, "kv_heads": kv_heads, "groups": heads // kv_heads, "nbytes": nbytes, **formula,
            "equal": nbytes == formula["formula"], "mha_over_this": mha / nbytes,
            "read_per_step": nbytes * context // max_len, "decode_ms": best[kv_heads] * 1e3,
            "tok_s": 1 / best[kv_heads],
        })
    return {"context": context, "rows": rows}


# 2. memory over a long chat


def chat(model, cache, turns: list[list[int]], reply_tokens: int, device: torch.device) -> tuple[list, list]:
    """Run the chat on ``cache``: each turn feeds the user's tokens (after the last reply token), then decodes a
    greedy reply one token at a time.

    Returns:
        ``(replies, per-turn rows)``; a row has ``positions`` (tokens in the chat
        so far), ``nbytes`` (the cache's) and ``ms`` (median of the reply's
        one-token steps, the user's chunk not counted).
    """
    replies, rows, pending = [], [], []
    for user in turns:
        token = int(model(_ids(pending + user, device), kv_cache=cache)[0, -1].argmax())
        reply = [token]
        sync(device)
        stamps = [time.perf_counter()]
        for _ in range(reply_tokens - 1):
            token = int(model(_ids([token], device), kv_cache=cache)[0, -1].argmax())
            reply.append(token)
            stamps.append(time.perf_counter())
        pending = [token]  # fed with the next turn
        replies.append(reply)
        rows.append({"positions": cache.current_length + 1, "nbytes": cache.nbytes(),
                     "ms": median_step_s(stamps) * 1e3})
    return replies, rows


def chat_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """The same chat on one model whose rule is "``sinks`` first positions and the latest ``window``", kept in a
    ``SinkWindowCache`` of that rule and in a ``KVCache`` sized for the whole chat.

    Every turn's figures are the best of the rounds (ms) and the bytes after
    the turn; ``growing_bytes`` is what a cache that keeps every position holds
    then (the formula for ``positions``).
    """
    sinks, window, reply_tokens = config["sinks"], config["window"], config["reply_tokens"]
    model = build(kv, config, device, SEED, sinks=sinks, window=window)
    turns = seeded_tokens(config["turns"], config["user_tokens"], config["vocab_size"], SEED + 1).tolist()
    total = config["turns"] * (config["user_tokens"] + reply_tokens)
    shape = (config["depth"], 1, config["num_kv_heads"], config["hidden_dim"] // config["num_heads"])
    runs: dict[str, list] = {"window": [], "full": []}
    for _ in range(rounds):
        for name, make in (("window", lambda: kv.SinkWindowCache(*shape, sinks, window, device=device)),
                           ("full", lambda: kv.KVCache(*shape, total, device=device))):
            runs[name].append(chat(model, make(), turns, reply_tokens, device))
        progress.update()
    (window_replies, window_rows), (full_replies, full_rows) = runs["window"][-1], runs["full"][-1]
    per_position = cache_formula(*shape[:3], 1, shape[3], 4)["formula"]
    rows = []
    for turn, (held, kept) in enumerate(zip(window_rows, full_rows), start=1):
        rows.append({
            "device": device.type, "turn": turn, "positions": held["positions"], "window_bytes": held["nbytes"],
            "growing_bytes": per_position * held["positions"], "full_cache_bytes": kept["nbytes"],
            "window_ms": min(run[1][turn - 1]["ms"] for run in runs["window"]),
            "full_ms": min(run[1][turn - 1]["ms"] for run in runs["full"]),
        })
    return {
        "budget": sinks + window, "positions": rows[-1]["positions"], "rows": rows,
        "window_bytes_constant": len({row["window_bytes"] for row in rows}) == 1,
        "same_replies": window_replies == full_replies,
        "same_turns": sum(a == b for a, b in zip(window_replies, full_replies)),
    }


# 3. throughput against batch size


def batch_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """``generate_batch`` of the first ``B`` of one set of prompts (seeded lengths), for each batch size ``B``.

    A forward hook on the model stamps the time after each of its calls, so a
    figure is the median decode step (the prefill not counted), best of the
    rounds; tokens/s counts every row's new token of a step. ``seconds`` is the
    whole call's time in the same round. ``row0_same`` says whether row 0 (the
    same prompt in every batch) came out as it did in batch 1.
    """
    sizes, new_tokens = config["batch_sizes"], config["new_tokens"]
    model = build(kv, config, device, SEED)
    generator = torch.Generator().manual_seed(SEED + 2)
    lengths = torch.randint(config["shortest"], config["longest"] + 1, (max(sizes),), generator=generator).tolist()
    prompts = [seeded_tokens(1, n, config["vocab_size"], SEED + 3 + i)[0].tolist() for i, n in enumerate(lengths)]
    batcher = kv.BatchGenerator(model, config["longest"] + new_tokens)
    stamps: list[float] = []

    def stamp(*_) -> None:
        sync(device)
        stamps.append(time.perf_counter())

    best, outputs = {size: (math.inf, math.inf) for size in sizes}, {}
    hook = model.register_forward_hook(stamp)
    try:
        for _ in range(rounds):
            for size in sizes:
                stamps.clear()
                seconds, outputs[size] = _timed(device, lambda: batcher.generate_batch(prompts[:size], new_tokens))
                best[size] = min(best[size], (median_step_s(stamps), seconds))
            progress.update()
    finally:
        hook.remove()
    rows = [{
        "device": device.type, "batch": size, "step_ms": best[size][0] * 1e3, "seconds": best[size][1],
        "tok_s": size / best[size][0], "row0_same": outputs[size][0] == outputs[sizes[0]][0],
    } for size in sizes]
    for row in rows:
        row["vs_batch_1"] = row["tok_s"] / rows[0]["tok_s"]
    return {"prompt_lengths": lengths, "rows": rows}


# 4. speculative decoding


def draft_pair(kv: ModuleType, config: dict, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A target and a draft that often agrees with it, from one set of random weights.

    The draft is the target's first ``draft_depth`` blocks with its embedding,
    final norm and unembedding (the same tensors' values). The target's later
    blocks have their output projections (``attn.Wo``, ``mlp.proj``, weight and
    bias) scaled by ``scale``, so they add little to the residual stream and
    move the target's logits only a little away from the draft's.
    """
    target = build(kv, config, device, SEED)
    with torch.no_grad():
        for block in target.layers[config["draft_depth"]:]:
            for linear in (block.attn.Wo, block.mlp.proj):
                linear.weight.mul_(config["scale"])
                linear.bias.mul_(config["scale"])
    draft = build(kv, {**config, "depth": config["draft_depth"]}, device, SEED)
    own = draft.state_dict()
    draft.load_state_dict({name: value for name, value in target.state_dict().items() if name in own})
    return target, draft


def speculative_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """``SpeculativeDecoder.generate`` for each draft length, and for an unrelated draft, against the target alone.

    Every figure is the whole call (prefill included) over ``new_tokens``, best of the rounds; ``acceptance`` is
    accepted over proposed drafts (``stats``), ``same`` whether the output equals the target's own greedy decoding.
    """
    target, draft = draft_pair(kv, config, device)
    unrelated = build(kv, {**config, "depth": config["draft_depth"]}, device, SEED + 7)
    prompt = seeded_tokens(1, config["prompt_tokens"], config["vocab_size"], SEED + 8)[0].tolist()
    new_tokens = config["new_tokens"]
    max_len = len(prompt) + new_tokens
    alone = kv.Generator(target, max_len)
    setups = [("shared", k, kv.SpeculativeDecoder(target, draft, max_len, k)) for k in config["draft_tokens"]]
    setups.append(("unrelated", config["unrelated_k"], kv.SpeculativeDecoder(target, unrelated, max_len,
                                                                             config["unrelated_k"])))
    best = {"alone": math.inf, **{(name, k): math.inf for name, k, _ in setups}}
    for _ in range(rounds):
        seconds, expected = _timed(device, lambda: alone.generate(prompt, new_tokens))
        best["alone"] = min(best["alone"], seconds)
        results = {}
        for name, k, decoder in setups:
            seconds, out = _timed(device, lambda: decoder.generate(prompt, new_tokens))
            best[name, k] = min(best[name, k], seconds)
            results[name, k] = out, dict(decoder.stats)
        progress.update()
    rows = []
    for name, k, _ in setups:
        out, stats = results[name, k]
        rows.append({
            "device": device.type, "draft": name, "k": k, "seconds": best[name, k],
            "ms_per_token": best[name, k] * 1e3 / new_tokens, "speedup": best["alone"] / best[name, k],
            "acceptance": stats["accepted"] / stats["proposed"] if stats["proposed"] else None,
            "tokens_per_target_call": new_tokens / stats["target_calls"], **stats, "same": out == expected,
        })
    return {"alone_seconds": best["alone"], "alone_ms_per_token": best["alone"] * 1e3 / new_tokens, "rows": rows}


PARTS = {"gqa": gqa_part, "chat": chat_part, "batch": batch_part, "speculative": speculative_part}


def try_everything(kv: ModuleType, device: torch.device) -> None:
    """Each TODO's path once on a tiny model, before the progress bar starts: an unfinished TODO then stops the
    bench with its error as the only line on stderr (and on a device that works, it is a warm-up)."""
    config = QUICK["speculative"]
    model = build(kv, config, device, SEED, sinks=1, window=3)
    shape = (config["depth"], 1, config["num_kv_heads"], config["hidden_dim"] // config["num_heads"])
    model(_ids([1, 2, 3], device), kv_cache=kv.KVCache(*shape, 4, device=device))
    model(_ids([1, 2, 3], device), kv_cache=kv.SinkWindowCache(*shape, 1, 3, device=device))
    plain = build(kv, config, device, SEED)
    kv.BatchGenerator(plain, 6).generate_batch([[1], [2, 3]], 2)
    kv.SpeculativeDecoder(plain, plain, 8, 2).generate([1, 2], 4)


def checks(report: dict) -> dict:
    """What must hold whatever the timings, over every device: each ``True`` or ``False``."""
    rows = {name: [row for part in report["devices"] for row in part[name]["rows"]] for name in PARTS}
    return {
        "bytes_equal_formula": all(row["equal"] for row in rows["gqa"]),
        "window_bytes_constant": all(part["chat"]["window_bytes_constant"] for part in report["devices"]),
        "window_replies_equal_full_cache": all(part["chat"]["same_replies"] for part in report["devices"]),
        "batch_row0_equal_alone": all(row["row0_same"] for row in rows["batch"]),
        "speculative_equal_target": all(row["same"] for row in rows["speculative"]),
    }


def run(args) -> int:
    return benching.run_parts(args, parts=PARTS, full=FULL, quick=QUICK, try_everything=try_everything,
                              checks=checks, print_report=print_report, plot=plot)
