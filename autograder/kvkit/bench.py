"""``kvkit bench``: what the KV cache buys, measured on this machine.

For each context length ``L`` the bench prefills ``L`` random tokens, then
times greedy decode steps three ways, batch 1:

- cached: the kit's ``Transformer`` feeds one new token ``[1, 1]`` on its ``KVCache``;
- uncached: the same model re-runs the whole sequence ``[1, L + i]`` each step (``kv_cache=None``);
- HF: ``transformers``' ``GPT2LMHeadModel.generate`` (its own cache, greedy) at the same
  depth, width, heads and vocabulary, random weights (nothing is downloaded).

Each figure is the median time of one decode step (ms per token), the best of
``ROUNDS`` rounds, and its inverse (tokens/s). The cache's buffers are also counted and checked against
``2 x layers x batch x heads x max_len x head_dim x bytes_per_element``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from types import ModuleType

import torch

from .errors import UsageError
from .impl import add_impl_argument, load_impl, resolve_impl, todos_as_usage_errors

MODEL = {"depth": 4, "hidden_dim": 128, "nheads": 4, "vocab_size": 512}
LENGTHS = [64, 128, 256, 512, 1024, 2048]
QUICK_LENGTHS = [16, 32]
CACHED_STEPS, UNCACHED_STEPS, QUICK_STEPS = 64, 8, 4
ROUNDS = 3
UNCACHED_BUDGET_S = 1.5


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="time greedy decoding with and without the KV cache, and against transformers' GPT-2",
        description="Time greedy decoding with the KV cache, without it (full re-run each step) and with "
        "transformers' GPT2LMHeadModel.generate at equal dimensions, over context lengths; report the "
        "cache's bytes against the formula.",
    )
    add_impl_argument(parser)
    parser.add_argument("--lengths", type=int, nargs="+", metavar="L", help=f"context lengths (default {LENGTHS})")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: lengths {QUICK_LENGTHS}, {QUICK_STEPS} steps")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="draw latency against context length")
    parser.set_defaults(func=run)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_step_s(stamps: list[float]) -> float:
    """Median gap between consecutive time stamps, in seconds."""
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def time_cached(kvcache: ModuleType, model, prompt: torch.Tensor, steps: int):
    """Prefill ``prompt [1, L]`` into a fresh cache, then time ``steps`` one-token decode steps.

    Returns:
        ``(seconds per token, cache)``; the cache is returned so its buffers can be measured.
    """
    device = prompt.device
    attn = model.layers[0].attn
    cache = kvcache.KVCache(
        num_layers=model.depth, batch_size=1, num_heads=attn.nheads, head_dim=attn.head_dim,
        max_seq_len=model.max_seq_len, device=device, dtype=model.emb.weight.dtype,
    )
    token = model(prompt, kv_cache=cache)[:, -1:].argmax(-1)  # [1, 1]
    _sync(device)
    stamps = [time.perf_counter()]
    for _ in range(steps):
        token = model(token, kv_cache=cache)[:, -1:].argmax(-1)
        _sync(device)
        stamps.append(time.perf_counter())
    return _median_step_s(stamps), cache


def time_uncached(model, prompt: torch.Tensor, steps: int, budget_s: float) -> tuple[float, int]:
    """Greedy steps that re-run the whole sequence ``[1, L + i]`` with no cache.

    Stops after ``steps`` steps, or earlier (but after at least 2) once ``budget_s`` has passed.

    Returns:
        ``(median seconds per token, steps run)``.
    """
    tokens = prompt
    _sync(prompt.device)
    stamps = [time.perf_counter()]
    while len(stamps) <= steps and (len(stamps) < 3 or stamps[-1] - stamps[0] < budget_s):
        token = model(tokens)[:, -1:].argmax(-1)
        tokens = torch.cat([tokens, token], dim=1)
        _sync(prompt.device)
        stamps.append(time.perf_counter())
    return _median_step_s(stamps), len(stamps) - 1


def hf_model(max_seq_len: int, device: torch.device):
    """A random ``GPT2LMHeadModel`` at the bench dimensions, or None when transformers is missing."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    config = GPT2Config(
        n_layer=MODEL["depth"], n_embd=MODEL["hidden_dim"], n_head=MODEL["nheads"], vocab_size=MODEL["vocab_size"],
        n_positions=max_seq_len, bos_token_id=None, eos_token_id=None, pad_token_id=0,
    )
    return GPT2LMHeadModel(config).to(device).eval()


def time_hf(model, prompt: torch.Tensor, steps: int) -> float:
    """Median seconds per decode step of ``model.generate`` (greedy), prefill excluded.

    A stopping criterion stamps the time after every generated token; the
    first stamp follows the prefill, so the gaps are pure decode steps.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Clock(StoppingCriteria):
        def __init__(self) -> None:
            self.stamps: list[float] = []

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
            _sync(input_ids.device)
            self.stamps.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    clock = Clock()
    model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=steps + 1, do_sample=False,
        stopping_criteria=StoppingCriteriaList([clock]),
    )
    return _median_step_s(clock.stamps)


def cache_bytes(cache) -> dict:
    """Bytes of the cache's key and value buffers, measured and by the formula."""
    buffers = list(cache.keys) + list(cache.values)
    measured = sum(t.element_size() * t.numel() for t in buffers)
    batch, heads, max_len, head_dim = cache.keys[0].shape
    factors = [2, len(cache.keys), batch, heads, max_len, head_dim, cache.keys[0].element_size()]
    return {
        "measured": measured,
        "formula": math.prod(factors),
        "formula_text": " x ".join(map(str, factors)),
        "equal": measured == math.prod(factors),
    }


def bench_max_seq_len(lengths: list[int], quick: bool) -> int:
    """Positions the model and cache need: the longest prompt plus every decode step."""
    return max(lengths) + (QUICK_STEPS if quick else CACHED_STEPS) + 1


def measure(kvcache: ModuleType, model, hf, prompt: torch.Tensor, quick: bool) -> dict:
    """Seconds per token at one context length, each the best of ``ROUNDS`` medians.

    The three methods take turns within every round, so a burst of load from
    another process slows one round of each rather than one method.

    Returns:
        ``{"cached", "uncached", "hf"}`` seconds per token (``"hf"`` None without
        transformers), ``"uncached_steps"`` run in the last round, and ``"cache_bytes"``.
    """
    steps = QUICK_STEPS if quick else CACHED_STEPS
    best = {"cached": math.inf, "uncached": math.inf, "hf": math.inf if hf is not None else None}
    for _ in range(1 if quick else ROUNDS):
        cached_s, cache = time_cached(kvcache, model, prompt, steps)
        nbytes = cache_bytes(cache)
        del cache
        uncached_s, ran = time_uncached(
            model, prompt, QUICK_STEPS if quick else UNCACHED_STEPS, UNCACHED_BUDGET_S / ROUNDS
        )
        best["cached"], best["uncached"] = min(best["cached"], cached_s), min(best["uncached"], uncached_s)
        if hf is not None:
            best["hf"] = min(best["hf"], time_hf(hf, prompt, steps))
    return {**best, "uncached_steps": ran, "cache_bytes": nbytes}


def bench_device(kvcache: ModuleType, device: torch.device, lengths: list[int], quick: bool, progress) -> tuple[list, dict]:
    """Time every length on one device.

    Returns:
        ``(rows, cache bytes)``: one dict per length, and :func:`cache_bytes` of the last cache.
    """
    max_seq_len = bench_max_seq_len(lengths, quick)
    torch.manual_seed(0)
    model = kvcache.Transformer(max_seq_len=max_seq_len, device=device, **MODEL).eval()
    hf = hf_model(max_seq_len, device)
    warm = torch.randint(0, MODEL["vocab_size"], (1, 8), device=device)
    measure(kvcache, model, hf, warm, quick=True)
    rows = []
    for length in lengths:
        prompt = torch.randint(0, MODEL["vocab_size"], (1, length), device=device)
        got = measure(kvcache, model, hf, prompt, quick)
        cached, uncached, hf_s = got["cached"], got["uncached"], got["hf"]
        row = {
            "device": device.type, "length": length,
            "cached_ms": cached * 1e3, "cached_tok_s": 1 / cached,
            "uncached_ms": uncached * 1e3, "uncached_tok_s": 1 / uncached, "speedup": uncached / cached,
            "hf_ms": None, "hf_tok_s": None, "cached_vs_hf": None, "uncached_steps": got["uncached_steps"],
        }
        if hf_s is not None:
            row.update(hf_ms=hf_s * 1e3, hf_tok_s=1 / hf_s, cached_vs_hf=hf_s / cached)
        rows.append(row)
        progress.update()
    return rows, got["cache_bytes"]


def targets(rows: list[dict]) -> dict:
    """The issue's performance bars, on the CPU rows: each ``{"value", "bar", "met"}`` or None if not measured."""
    cpu = {row["length"]: row for row in rows if row["device"] == "cpu"}
    ratios = [row["cached_vs_hf"] for row in cpu.values() if row["cached_vs_hf"] is not None]
    found = {
        "cached_vs_hf_min": (min(ratios) if ratios else None, 2.0, "ge"),
        "speedup_at_1024": (cpu[1024]["speedup"] if 1024 in cpu else None, 20.0, "ge"),
        "cached_2048_over_64": (
            cpu[2048]["cached_ms"] / cpu[64]["cached_ms"] if {64, 2048} <= cpu.keys() else None, 2.0, "le",
        ),
    }
    return {
        name: None if value is None else {"value": value, "bar": bar, "met": value >= bar if op == "ge" else value <= bar}
        for name, (value, bar, op) in found.items()
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict) -> None:
    """The table, the cache bytes and the targets, on stdout."""
    model = report["model"]
    print(
        f"model: depth {model['depth']}, width {model['hidden_dim']}, {model['nheads']} heads, vocab "
        f"{model['vocab_size']}, max_seq_len {model['max_seq_len']}, float32, batch 1; torch {report['torch']} "
        f"({report['threads']} threads), transformers {report['transformers'] or 'not installed'}"
    )
    header = ["device", "context", "cached ms/tok", "tok/s", "uncached ms/tok", "tok/s", "speed-up",
              "HF ms/tok", "tok/s", "cached/HF"]
    lines = [header] + [
        [row["device"], str(row["length"]), _fmt(row["cached_ms"], ".3f"), _fmt(row["cached_tok_s"], ".0f"),
         _fmt(row["uncached_ms"], ".2f"), _fmt(row["uncached_tok_s"], ".1f"), _fmt(row["speedup"], ".1f") + "x",
         _fmt(row["hf_ms"], ".3f"), _fmt(row["hf_tok_s"], ".0f"), _fmt(row["cached_vs_hf"], ".2f") + "x"]
        for row in report["results"]
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
    if report["transformers"] is None:
        print("note: transformers is not installed, so the HF columns are empty; pip install -e '.[hf]' to fill them")
    nbytes = report["cache_bytes"]
    print(
        f"cache bytes: measured {nbytes['measured']:,}, formula 2 x layers x batch x heads x max_len x head_dim x "
        f"bytes = {nbytes['formula_text']} = {nbytes['formula']:,}: {'equal' if nbytes['equal'] else 'NOT EQUAL'}"
    )
    for name, target in report["targets"].items():
        status = "not measured" if target is None else (
            f"{target['value']:.2f} (bar {target['bar']:g}): {'met' if target['met'] else 'NOT met'}"
        )
        print(f"target {name}: {status}")


def plot(report: dict, out: Path) -> None:
    """Latency per token against context length, log-log, one line per method and device."""
    try:
        import matplotlib
    except ImportError as err:
        raise UsageError("--plot needs matplotlib: pip install -e '.[bench]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for device in sorted({row["device"] for row in report["results"]}):
        rows = [row for row in report["results"] if row["device"] == device]
        lengths = [row["length"] for row in rows]
        for key, label, style in [("uncached_ms", "no cache", "o-"), ("hf_ms", "transformers GPT-2", "s--"),
                                  ("cached_ms", "kit KV cache", "^-")]:
            if rows[0][key] is not None:
                ax.plot(lengths, [row[key] for row in rows], style, label=f"{label} ({device})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.set_yscale("log")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("latency per generated token (ms)")
    model = report["model"]
    ax.set_title(f"Greedy decoding, depth {model['depth']}, width {model['hidden_dim']}, batch 1")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def run(args) -> int:
    lengths = args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS)
    if min(lengths) < 1:
        raise UsageError(f"--lengths must be positive, got {lengths}")
    kvcache = load_impl(args.impl)
    try:
        from tqdm import tqdm
    except ImportError as err:
        raise UsageError("the bench's progress bar needs tqdm: pip install -e '.[bench]'") from err

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows, nbytes = [], None
    with todos_as_usage_errors(args.impl), torch.inference_mode(), tqdm(
        total=len(devices) * len(lengths), desc="bench", unit="length"
    ) as progress:
        for device in devices:
            device_rows, device_bytes = bench_device(kvcache, device, sorted(lengths), args.quick, progress)
            rows += device_rows
            nbytes = nbytes or device_bytes
    try:
        import transformers

        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    report = {
        "impl": str(resolve_impl(args.impl)),
        "model": {**MODEL, "max_seq_len": bench_max_seq_len(lengths, args.quick),
                  "dtype": "float32", "batch_size": 1},
        "torch": torch.__version__, "threads": torch.get_num_threads(), "transformers": hf_version,
        "results": rows, "cache_bytes": nbytes, "targets": targets(rows),
    }
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0 if nbytes["equal"] else 1
