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
``--threads`` says otherwise. The report is printed; ``--json`` and ``--plot`` keep it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import torch

from kvchecks.weights import fill_parameters, seeded_tokens
from kvkit.errors import UsageError
from kvkit.impl import add_impl_argument, opened_impl
from kvkit.plotting import pyplot
from kvkit.stopwatch import sync

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
NOT_GRADED = ("These figures are not graded: the checks (pytest, kvkit grade) test what the code stores and "
              "computes, not how fast it runs.")


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="part 3's payoffs, measured: paged memory, a shared prompt, continuous batching, the int8 cache",
        description="Measure what each of part 3's techniques buys on random models: the slots a contiguous cache "
        "reserves against paged blocks, a prefix cache for requests sharing a system prompt, continuous against "
        "static batching, and an int8 cache against float32.",
    )
    add_impl_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny models, one round")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1: on a machine shared with other work, more threads make "
                        "the figures erratic)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every figure as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="draw the four parts, one panel each")
    parser.set_defaults(func=run)


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
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    rounds = settings["rounds"]
    try:
        from tqdm import tqdm
    except ImportError as err:
        raise UsageError("the bench's progress bar needs tqdm: pip install -e '.[bench]'") from err
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    parts = []
    with opened_impl(args.layout, args.impl) as impl, torch.inference_mode():
        for device in devices:
            try_everything(impl.module, device)
        with tqdm(total=len(devices) * len(PARTS) * rounds, desc="bench", unit="round") as progress:
            for device in devices:
                parts.append({"device": device.type, **{
                    name: part(impl.module, settings[name], device, rounds, progress) for name, part in PARTS.items()
                }})
    report = {
        "impl": str(impl.source), "kit_reference": impl.is_kit_reference, "quick": args.quick,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": rounds, "dtype": "float32",
        "settings": {name: settings[name] for name in PARTS}, "targets": TARGETS, "devices": parts,
    }
    report["checks"] = checks(report)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0 if all(report["checks"].values()) else 1


# the report


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Right-aligned columns."""
    cells = [header] + rows
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]


def _met(value: bool) -> str:
    return "met" if value else "NOT met"


def _size(nbytes: float) -> str:
    """Bytes in GiB, MiB or KiB, whichever reads best."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes:,.0f} bytes"


def waste_lines(report: dict) -> list[str]:
    config = report["settings"]["waste"]
    lines = [f"1. Paged memory: {config['requests']} requests of {config['shortest']} to {config['max_seq_len']} "
             f"positions, blocks of {config['block_size']} slots"]
    for part in report["devices"]:
        waste = part["waste"]
        lines.append(f"   {part['device']}: {waste['used']:,} positions written; bytes for a Llama-like cache of "
                     f"{_size(waste['bytes_per_slot'])} per slot")
        lines += ["   " + line for line in _table(
            ["layout", "slots reserved", "unused", "unused per sequence", "bytes reserved", "bytes unused"],
            [[row["layout"], f"{row['reserved']:,}", f"{row['unused']:,}", f"{row['unused_per_sequence']:.1f}",
              _size(row["bytes"]), _size(row["unused_bytes"])] for row in waste["rows"]])]
        lines.append(f"   paged waste: {waste['paged_waste_blocks']:.2f} of a block per sequence (target < "
                     f"{TARGETS['paged_waste_blocks']:g}: {_met(waste['paged_waste_blocks'] < 1)})")
    return lines


def prefix_lines(report: dict) -> list[str]:
    config = report["settings"]["prefix"]
    lines = [f"2. A shared system prompt: {config['requests']} requests, a {config['system']}-token prompt and "
             f"{config['shortest']} to {config['longest']} tokens each, all held at once, blocks of "
             f"{config['block_size']}"]
    for part in report["devices"]:
        prefix = part["prefix"]
        lines += ["   " + line for line in _table(
            ["prefix cache", "blocks in use", "prompt positions computed", "prefill ms"],
            [[row["prefix_cache"], f"{row['blocks']:,}", f"{row['computed']:,}", f"{row['prefill_ms']:,.0f}"]
             for row in prefix["rows"]])]
        lines.append(f"   {part['device']}: {prefix['saved']:,} positions saved, {prefix['saved_share']:.1%} of the "
                     f"{prefix['shared_positions']:,} shared-prompt positions (target >= "
                     f"{TARGETS['prefix_saved_share']:.0%}: {_met(prefix['saved_share'] >= 0.9)}); first new tokens "
                     f"equal: {'yes' if prefix['same_first_tokens'] else 'NO'}")
    return lines


def batch_lines(report: dict) -> list[str]:
    config = report["settings"]["batch"]
    lines = [f"3. Continuous against static batching: {config['requests']} requests, prompts of "
             f"{config['prompt'][0]}-{config['prompt'][1]} tokens, replies of {config['short'][0]}-"
             f"{config['short'][1]} tokens ({1 - config['long_share']:.0%}) or {config['long'][0]}-"
             f"{config['long'][1]}, {config['max_running']} at a time"]
    for part in report["devices"]:
        batch = part["batch"]
        lines += ["   " + line for line in _table(
            ["batching", "seconds", "new tokens/s", "mean time to first token"],
            [[row["batching"], f"{row['seconds']:.2f}", f"{row['tok_s']:,.0f}", f"{row['mean_ttft_ms']:,.0f} ms"]
             for row in batch["rows"]])]
        lines.append(f"   {part['device']}: continuous {batch['speedup']:.2f}x static tokens/s (target >= "
                     f"{TARGETS['continuous_speedup']:g}: {_met(batch['speedup'] >= 1.5)}); same outputs: "
                     f"{'yes' if batch['same_outputs'] else 'NO'}")
    return lines


def int8_lines(report: dict) -> list[str]:
    config = report["settings"]["int8"]
    lines = [f"4. int8 against float32: depth {config['depth']}, head size "
             f"{config['hidden_dim'] // config['num_heads']}, {config['steps']} greedy tokens after "
             f"{config['prompt']}"]
    for part in report["devices"]:
        int8 = part["int8"]
        nbytes = {row["cache"]: row["nbytes"] for row in int8["rows"]}
        lines.append(f"   {part['device']}: bytes float32 {nbytes['float32']:,}, int8 {nbytes['int8']:,} = "
                     f"{int8['bytes_share']:.3f}x ((hd + 4) / (4 hd) = {int8['formula_share']:.3f}; target <= "
                     f"{TARGETS['int8_bytes_share']:g}: {_met(int8['bytes_share'] <= 0.3)})")
        parted = "" if int8["gap_where_they_part"] is None else (
            f" (they part where the float32 run's best two logits are {int8['gap_where_they_part']:.3f} apart: a "
            f"near tie that a difference of that size can flip)")
        lines.append(f"   largest logit difference {int8['max_logit_difference']:.4f} (logits up to "
                     f"{int8['logit_scale']:.1f}); greedy tokens equal for {int8['tokens_equal']} of "
                     f"{int8['steps']} steps{parted}")
    return lines


CHECK_WORDS = {
    "paged_tables_cover_lengths": "each table holds ceil(length / block_size) blocks",
    "paged_waste_below_one_block": "paged waste below one block per sequence",
    "prefix_first_tokens_equal": "first tokens equal with and without the prefix cache",
    "prefix_saves_90_percent": "prefix cache saves >= 90% of the shared prefill",
    "batching_outputs_equal": "continuous and static outputs equal",
    "int8_bytes_within_target": "int8 bytes <= 0.3x float32",
}


def print_report(report: dict) -> None:
    """The set-up, each part's table and targets, then the checks."""
    reference = report["kit_reference"]
    print(f"kvpaging: {report['impl']}" + (" (the kit's reference)" if reference else ""))
    rounds = f"{report['rounds']} round{'s' if report['rounds'] > 1 else ''}"
    threads = f"{report['threads']} CPU thread{'s' if report['threads'] > 1 else ''}"
    print(f"torch {report['torch']} ({threads}), {report['dtype']}, random weights; times are best of {rounds}"
          + (" (--quick)" if report["quick"] else ""))
    for lines in (waste_lines, prefix_lines, batch_lines, int8_lines):
        print()
        for line in lines(report):
            print(line)
    print()
    print("Checks: " + "; ".join(f"{CHECK_WORDS[name]}: {'yes' if value else 'NO'}"
                                 for name, value in report["checks"].items()))
    if not reference:
        print(NOT_GRADED)


def _waste_panel(ax, report: dict) -> None:
    """Slots written and reserved, contiguous against paged, per device."""
    labels, used, reserved = [], [], []
    for part in report["devices"]:
        for row in part["waste"]["rows"]:
            labels.append(f"{row['layout']}\n({part['device']})")
            used.append(part["waste"]["used"])
            reserved.append(row["reserved"])
    ax.bar(labels, reserved, color="tab:gray", label="slots reserved")
    ax.bar(labels, used, color="tab:blue", label="slots written")
    config = report["settings"]["waste"]
    ax.set_ylabel("slots")
    ax.set_title(f"1. {config['requests']} requests up to {config['max_seq_len']} positions, blocks of "
                 f"{config['block_size']}", fontsize=10)
    ax.legend(fontsize=8)


def _prefix_panel(ax, report: dict) -> None:
    """Prompt positions computed and blocks in use, without and with the prefix cache."""
    width = 0.38
    for offset, part in enumerate(report["devices"]):
        rows = part["prefix"]["rows"]
        x = [i + offset * 2.5 for i in range(2)]
        ax.bar([v - width / 2 for v in x], [row["computed"] for row in rows], width,
               label=f"prompt positions computed ({part['device']})")
        ax.bar([v + width / 2 for v in x], [row["blocks"] for row in rows], width,
               label=f"blocks in use ({part['device']})")
        ax.set_xticks(x, [f"{'with' if row['prefix_cache'] == 'with' else 'without'} prefix cache\n"
                          f"({part['device']})" for row in rows])
    config = report["settings"]["prefix"]
    ax.set_yscale("log")
    ax.set_title(f"2. {config['requests']} requests sharing a {config['system']}-token prompt", fontsize=10)
    ax.legend(fontsize=8)


def _batch_panel(ax, report: dict) -> None:
    """Tokens/s (left axis) and mean time to first token (right axis), static against continuous."""
    twin = ax.twinx()
    labels, tok_s, ttft = [], [], []
    for part in report["devices"]:
        for row in part["batch"]["rows"]:
            labels.append(f"{row['batching']}\n({part['device']})")
            tok_s.append(row["tok_s"])
            ttft.append(row["mean_ttft_ms"])
    x = range(len(labels))
    ax.bar([v - 0.2 for v in x], tok_s, 0.4, color="tab:green", label="new tokens/s")
    twin.bar([v + 0.2 for v in x], ttft, 0.4, color="tab:orange", label="mean time to first token, ms")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("new tokens/s")
    ax.set_ylim(0, 1.3 * ax.get_ylim()[1])  # room above the bars for the legend
    twin.set_ylim(0, 1.3 * twin.get_ylim()[1])
    twin.set_ylabel("ms")
    config = report["settings"]["batch"]
    ax.set_title(f"3. {config['requests']} requests, {config['max_running']} at a time", fontsize=10)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")


def _int8_panel(ax, report: dict) -> None:
    """Cache bytes, float32 against int8."""
    labels, sizes = [], []
    for part in report["devices"]:
        for row in part["int8"]["rows"]:
            labels.append(f"{row['cache']}\n({part['device']})")
            sizes.append(row["nbytes"] / 2**10)
    ax.bar(labels, sizes, color=["tab:gray", "tab:purple"] * len(report["devices"]))
    part = report["devices"][0]["int8"]
    ax.set_ylabel("cache KiB")
    ax.set_title(f"4. int8 {part['bytes_share']:.2f}x the bytes; largest logit difference "
                 f"{part['max_logit_difference']:.3f}; {part['tokens_equal']}/{part['steps']} tokens equal",
                 fontsize=10)


def plot(report: dict, out: Path) -> None:
    """A 2x2 figure, one panel per part."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), dpi=100)
    for ax, panel in zip(axes.flat, (_waste_panel, _prefix_panel, _batch_panel, _int8_panel)):
        panel(ax, report)
        ax.grid(True, alpha=0.3, axis="y")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
