"""``kvkit --assignment kv_paging bench``: what part 3's techniques buy, measured on this machine.

Four parts, each the payoff of some TODOs, on models of random weights
(:func:`kvchecks.weights.fill_parameters`), float32, on the CPU and on CUDA when there is one:

1. **Paged memory** (TODOs 1, 2): 64 requests of mixed lengths, each in a contiguous cache of ``max_seq_len``
   slots against blocks taken as it grows (``PagedKVCache.append``): slots reserved, slots unused, and what
   they would cost for a Llama-like cache (``2 x layers x kv_heads x head_dim x bytes`` per slot).
2. **A shared system prompt** (TODOs 1-4): 32 requests that start with the same 512-token prompt, all held at
   once, with and without a ``PrefixCache``: blocks in use, prompt positions prefilled, prefill time, and
   whether the first new tokens agree.
3. **Continuous against static batching** (TODOs 1-3, 5): a mixed workload of short and long replies, served by
   ``Scheduler`` (continuous) and by static batches that hold their places until their longest request is done
   (every row computed until then, as a padded batch does): tokens/s and mean time to the first token.
4. **int8** (TODO 6): greedy decoding on ``Int8KVCache`` against ``KVCache`` (float32): cache bytes, the largest
   logit difference, and how many greedy tokens agree.

Times are best of ``rounds`` rounds in which the methods compared take turns; torch runs one CPU thread unless
``--threads`` says otherwise. The report is printed (``bench_report``, beside this module); ``--json``
and ``--plot`` keep it.
"""

from __future__ import annotations

import time
from types import ModuleType

import torch

from kvchecks.weights import fill_parameters, seeded_tokens
from kvkit import benching
from kvkit.stopwatch import sync

from .bench_report import plot, print_report

MODEL_KEYS = ("depth", "hidden_dim", "vocab_size", "num_heads", "num_kv_heads")
FULL = {
    "rounds": 3,
    "waste": {"requests": 64, "shortest": 16, "max_seq_len": 2048, "block_size": 16,
              "llama": {"layers": 32, "kv_heads": 8, "head_dim": 128, "element_size": 2}},
    "prefix": {"depth": 2, "hidden_dim": 128, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 512,
               "requests": 32, "system": 512, "shortest": 8, "longest": 48, "block_size": 16},
    "batch": {"depth": 2, "hidden_dim": 128, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 512,
              "requests": 48, "prompt": [16, 64], "short": [8, 32], "long": [96, 192], "long_share": 0.25,
              "max_running": 8, "block_size": 16},
    "int8": {"depth": 4, "hidden_dim": 256, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 512, "prompt": 32,
             "steps": 64},
}
QUICK = {
    "rounds": 1,
    "waste": {"requests": 64, "shortest": 16, "max_seq_len": 256, "block_size": 16,
              "llama": {"layers": 32, "kv_heads": 8, "head_dim": 128, "element_size": 2}},
    "prefix": {"depth": 1, "hidden_dim": 32, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 64,
               "requests": 16, "system": 64, "shortest": 2, "longest": 8, "block_size": 8},
    "batch": {"depth": 1, "hidden_dim": 32, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 64,
              "requests": 12, "prompt": [4, 12], "short": [2, 6], "long": [16, 24], "long_share": 0.25,
              "max_running": 4, "block_size": 8},
    "int8": {"depth": 2, "hidden_dim": 128, "num_heads": 2, "num_kv_heads": 1, "vocab_size": 64, "prompt": 8,
             "steps": 12},
}
SEED = 0
TARGETS = {"paged_waste_blocks": 1.0, "prefix_saved_share": 0.9, "continuous_speedup": 1.5, "int8_bytes_share": 0.3}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="part 3's payoffs, measured: paged memory, a shared prompt, continuous batching, the int8 cache",
        description="Measure what each of part 3's techniques buys on random models: the slots a contiguous cache "
        "reserves against paged blocks, a prefix cache for requests sharing a system prompt, continuous against "
        "static batching, and an int8 cache against float32.",
    )
    benching.add_options(parser, run, plot="draw the four parts, one panel each")


def build(kv: ModuleType, config: dict, device: torch.device, seed: int) -> torch.nn.Module:
    """``kv.Transformer`` of ``config``'s dimensions, weights from ``seed``, on ``device``."""
    model = kv.Transformer(**{key: config[key] for key in MODEL_KEYS})
    fill_parameters(model, seed)
    return model.to(device).eval()


def pool(kv: ModuleType, model, num_blocks: int, block_size: int, device: torch.device):
    """An empty ``PagedKVCache`` over a ``BlockAllocator`` shaped for ``model``."""
    allocator = kv.BlockAllocator(num_blocks, block_size, model.depth, model.num_kv_heads, model.head_dim,
                                  device=device)
    return kv.PagedKVCache(allocator)


def draw(low: int, high: int, count: int, seed: int) -> list[int]:
    """``count`` integers uniform in ``low .. high``, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, (count,), generator=generator).tolist()


# 1. paged memory


def waste_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """Slots reserved for ``requests`` sequences of lengths ``shortest .. max_seq_len``: ``max_seq_len`` each when
    contiguous, whole blocks taken by ``append`` when paged (on a pool of one number per slot: only the counting
    matters). The bytes are those of the Llama-like cache of ``config["llama"]``."""
    size, limit, count = config["block_size"], config["max_seq_len"], config["requests"]
    lengths = draw(config["shortest"], limit, count, SEED + 1)
    allocator = kv.BlockAllocator(count * limit // size, size, 1, 1, 1, device=device)
    cache = kv.PagedKVCache(allocator)
    for seq, length in enumerate(lengths):
        cache.add_sequence(seq)
        cache.append(seq, length)
    for _ in range(rounds):
        progress.update()
    used = sum(lengths)
    paged = size * (allocator.num_blocks - allocator.num_free())
    llama = config["llama"]
    per_slot = 2 * llama["layers"] * llama["kv_heads"] * llama["head_dim"] * llama["element_size"]
    rows = [{"layout": name, "reserved": reserved, "unused": reserved - used, "unused_per_sequence":
             (reserved - used) / count, "bytes": reserved * per_slot, "unused_bytes": (reserved - used) * per_slot}
            for name, reserved in (("contiguous", count * limit), ("paged", paged))]
    return {"lengths": lengths, "used": used, "bytes_per_slot": per_slot, "rows": rows,
            "paged_waste_blocks": rows[1]["unused_per_sequence"] / size,
            "tables_cover_lengths": all(len(cache.block_tables[s]) == -(-n // size) for s, n in enumerate(lengths))}


# 2. a shared system prompt


def prefix_run(kv: ModuleType, model, config: dict, prompts: list[list[int]], shared: bool,
               device: torch.device) -> dict:
    """Every prompt admitted and prefilled on one pool, all held at once (prefill one by one); returns the blocks
    in use at the end, the prompt positions computed, the prefill seconds and each request's first new token."""
    size = config["block_size"]
    blocks = sum(-(-len(p) // size) for p in prompts) + 1
    cache = pool(kv, model, blocks, size, device)
    prefix = kv.PrefixCache(cache) if shared else None
    computed, firsts = 0, []
    sync(device)
    start = time.perf_counter()
    for seq, prompt in enumerate(prompts):
        if shared:
            reused = prefix.admit(seq, prompt)
        else:
            cache.add_sequence(seq)
            reused = 0
        logits = model([prompt[reused:]], cache, [seq])
        computed += len(prompt) - reused
        firsts.append(int(logits[-1].argmax()))
        if shared:
            prefix.commit(seq)
    sync(device)
    seconds = time.perf_counter() - start
    allocator = cache.allocator
    return {"blocks": allocator.num_blocks - allocator.num_free(), "computed": computed, "seconds": seconds,
            "firsts": firsts}


def prefix_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """The same ``requests`` prompts (a ``system`` prompt, then ``shortest .. longest`` tokens of their own) with
    and without a ``PrefixCache``; times best of the rounds."""
    model = build(kv, config, device, SEED)
    system = seeded_tokens(1, config["system"], config["vocab_size"], SEED + 2)[0].tolist()
    tails = draw(config["shortest"], config["longest"], config["requests"], SEED + 3)
    prompts = [system + seeded_tokens(1, n, config["vocab_size"], SEED + 10 + i)[0].tolist()
               for i, n in enumerate(tails)]
    runs: dict[str, list] = {"without": [], "with": []}
    for _ in range(rounds):
        for name in runs:
            runs[name].append(prefix_run(kv, model, config, prompts, name == "with", device))
        progress.update()
    best = {name: min(runs[name], key=lambda run: run["seconds"]) for name in runs}
    shared_positions = config["requests"] * config["system"]
    saved = best["without"]["computed"] - best["with"]["computed"]
    return {
        "rows": [{"prefix_cache": name, "blocks": run["blocks"], "computed": run["computed"],
                  "prefill_ms": run["seconds"] * 1e3} for name, run in best.items()],
        "shared_positions": shared_positions, "saved": saved, "saved_share": saved / shared_positions,
        "same_first_tokens": best["with"]["firsts"] == best["without"]["firsts"],
    }


# 3. continuous against static batching


def workload(config: dict) -> list[tuple[list[int], int]]:
    """``requests`` prompts of ``prompt`` lengths, each asking for a short reply or (``long_share`` of them) a long
    one: the mix of a chat server, where a few long answers share the machine with many short ones."""
    count = config["requests"]
    lengths = draw(*config["prompt"], count, SEED + 4)
    generator = torch.Generator().manual_seed(SEED + 5)
    long = (torch.rand(count, generator=generator) < config["long_share"]).tolist()
    short, longer = draw(*config["short"], count, SEED + 6), draw(*config["long"], count, SEED + 7)
    return [(seeded_tokens(1, n, config["vocab_size"], SEED + 100 + i)[0].tolist(), longer[i] if long[i] else short[i])
            for i, n in enumerate(lengths)]


def continuous(kv: ModuleType, model, config: dict, jobs, device: torch.device) -> dict:
    """``Scheduler`` with every request waiting at the start; the time each one's first token appears."""
    blocks = config["max_running"] * -(-max(len(p) + n for p, n in jobs) // config["block_size"])
    scheduler = kv.Scheduler(model, pool(kv, model, blocks, config["block_size"], device),
                             max_running=config["max_running"])
    for i, (prompt, new) in enumerate(jobs):
        scheduler.submit(i, prompt, new)
    first: dict[int, float] = {}
    sync(device)
    start = time.perf_counter()
    while scheduler.waiting or scheduler.running:
        scheduler.step()
        now = time.perf_counter()
        for request in scheduler.running + [scheduler.finished[i] for i in scheduler.finished if i not in first]:
            if request.output and request.request_id not in first:
                first[request.request_id] = now - start
    sync(device)
    return {"seconds": time.perf_counter() - start, "first": [first[i] for i in range(len(jobs))],
            "outputs": [scheduler.finished[i].output for i in range(len(jobs))]}


def static(kv: ModuleType, model, config: dict, jobs, device: torch.device) -> dict:
    """Batches of ``max_running`` requests in arrival order, each run to the end before the next starts: one
    prefill of the batch, then decode steps until its longest request is done, every row computed (a finished row
    keeps decoding, its tokens thrown away, as in a padded batch)."""
    size, group = config["block_size"], config["max_running"]
    outputs, first = [], []
    sync(device)
    start = time.perf_counter()
    for base in range(0, len(jobs), group):
        batch = jobs[base:base + group]
        steps = max(new for _, new in batch)
        longest = max(len(prompt) for prompt, _ in batch) + steps
        cache = pool(kv, model, len(batch) * -(-longest // size), size, device)
        seqs = list(range(len(batch)))
        for seq in seqs:
            cache.add_sequence(seq)
        logits = model([prompt for prompt, _ in batch], cache, seqs)
        ends = torch.tensor([len(p) for p, _ in batch]).cumsum(0) - 1
        tokens = [[int(logits[end].argmax())] for end in ends.tolist()]
        sync(device)
        first += [time.perf_counter() - start] * len(batch)
        for _ in range(steps - 1):
            logits = model([row[-1:] for row in tokens], cache, seqs)
            for row, out in zip(tokens, logits):
                row.append(int(out.argmax()))
        outputs += [row[:new] for row, (_, new) in zip(tokens, batch)]
    sync(device)
    return {"seconds": time.perf_counter() - start, "first": first, "outputs": outputs}


def batch_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """The same workload, static and continuous in turn each round; the best round of each."""
    model = build(kv, config, device, SEED)
    jobs = workload(config)
    tokens = sum(new for _, new in jobs)
    runs: dict[str, list] = {"static": [], "continuous": []}
    for _ in range(rounds):
        for name, serve in (("static", static), ("continuous", continuous)):
            runs[name].append(serve(kv, model, config, jobs, device))
        progress.update()
    best = {name: min(runs[name], key=lambda run: run["seconds"]) for name in runs}
    rows = [{"batching": name, "seconds": run["seconds"], "tok_s": tokens / run["seconds"],
             "mean_ttft_ms": 1e3 * sum(run["first"]) / len(jobs)} for name, run in best.items()]
    return {"requests": len(jobs), "new_tokens": tokens, "rows": rows,
            "speedup": rows[1]["tok_s"] / rows[0]["tok_s"],
            "same_outputs": best["static"]["outputs"] == best["continuous"]["outputs"]}


# 4. int8


def greedy(model, cache, prompt: list[int], steps: int) -> tuple[list[int], torch.Tensor]:
    """``steps`` greedy tokens on ``cache`` (a prefill, then one token per call) and the logits that chose them."""
    tokens, rows, fed = list(prompt), [], list(prompt)
    for _ in range(steps):
        rows.append(model([fed], cache)[-1])
        tokens.append(int(rows[-1].argmax()))
        fed = tokens[-1:]
    return tokens[len(prompt):], torch.stack(rows)


def int8_part(kv: ModuleType, config: dict, device: torch.device, rounds: int, progress) -> dict:
    """Greedy decoding on ``Int8KVCache`` and on ``KVCache`` (float32): bytes, the largest logit difference over
    the steps both runs saw the same history, and how many of the first tokens agree."""
    model = build(kv, config, device, SEED)
    prompt = seeded_tokens(1, config["prompt"], config["vocab_size"], SEED + 8)[0].tolist()
    length = config["prompt"] + config["steps"]
    shape = (model.depth, model.num_kv_heads, model.head_dim, length)
    runs = {}
    for name, make in (("float32", lambda: kv.KVCache(*shape, device=device)),
                       ("int8", lambda: kv.Int8KVCache(*shape, device=device))):
        cache = make()
        tokens, logits = greedy(model, cache, prompt, config["steps"])
        runs[name] = {"tokens": tokens, "logits": logits, "nbytes": cache.nbytes()}
    for _ in range(rounds):
        progress.update()
    agree = next((i for i, (a, b) in enumerate(zip(runs["int8"]["tokens"], runs["float32"]["tokens"])) if a != b),
                 config["steps"])
    seen = max(1, min(agree + 1, config["steps"]))  # step `agree` still had the same history
    difference = float((runs["int8"]["logits"][:seen] - runs["float32"]["logits"][:seen]).abs().max())
    top = runs["float32"]["logits"][min(agree, config["steps"] - 1)].topk(2).values
    gap = float(top[0] - top[1]) if agree < config["steps"] else None
    return {"head_dim": model.head_dim, "steps": config["steps"],
            "rows": [{"cache": name, "nbytes": run["nbytes"]} for name, run in runs.items()],
            "bytes_share": runs["int8"]["nbytes"] / runs["float32"]["nbytes"],
            "formula_share": (model.head_dim + 4) / (4 * model.head_dim), "max_logit_difference": difference,
            "tokens_equal": agree, "gap_where_they_part": gap,
            "logit_scale": float(runs["float32"]["logits"].abs().max())}


PARTS = {"waste": waste_part, "prefix": prefix_part, "batch": batch_part, "int8": int8_part}


def try_everything(kv: ModuleType, device: torch.device) -> None:
    """Each TODO's path once, in the TODOs' order, on a tiny model, before the progress bar starts: an unfinished
    TODO then stops the bench with its error as the only line on stderr."""
    config = QUICK["prefix"]
    model = build(kv, config, device, SEED)
    cache = pool(kv, model, 8, 4, device)
    cache.allocator.free(cache.allocator.allocate(1))
    cache.add_sequence(0)
    model([[1, 2, 3, 4, 5]], cache, [0])
    kv.PrefixCache(pool(kv, model, 8, 4, device)).admit(0, [1, 2, 3, 4, 5])
    scheduler = kv.Scheduler(model, pool(kv, model, 8, 4, device))
    scheduler.submit(0, [1, 2], 2)
    scheduler.run()
    model([[1, 2]], kv.Int8KVCache(model.depth, model.num_kv_heads, model.head_dim, 4, device=device))


def checks(report: dict) -> dict:
    """What must hold whatever the timings, over every device: each ``True`` or ``False``."""
    parts = report["devices"]
    return {
        "paged_tables_cover_lengths": all(part["waste"]["tables_cover_lengths"] for part in parts),
        "paged_waste_below_one_block": all(part["waste"]["paged_waste_blocks"] < 1 for part in parts),
        "prefix_first_tokens_equal": all(part["prefix"]["same_first_tokens"] for part in parts),
        "prefix_saves_90_percent": all(part["prefix"]["saved_share"] >= TARGETS["prefix_saved_share"]
                                       for part in parts),
        "batching_outputs_equal": all(part["batch"]["same_outputs"] for part in parts),
        "int8_bytes_within_target": all(part["int8"]["bytes_share"] <= TARGETS["int8_bytes_share"] for part in parts),
    }


def run(args) -> int:
    return benching.run_parts(args, parts=PARTS, full=FULL, quick=QUICK, try_everything=try_everything,
                              checks=checks, print_report=print_report, plot=plot, extra={"targets": TARGETS})
