"""``kvkit bench``: what the KV cache buys, measured on this machine.

For each context length ``L`` the bench prefills ``L`` random tokens, then
times greedy decode steps three ways, batch 1:

- cached: the ``--impl`` package's ``Transformer`` feeds one new token ``[1, 1]`` on its ``KVCache``;
- uncached: the same model re-runs the whole sequence ``[1, L + i]`` each step (``kv_cache=None``);
- HF: ``transformers``' ``GPT2LMHeadModel.generate`` (its own cache, greedy) at the same
  depth, width, heads and vocabulary, random weights (nothing is downloaded).

Each figure is the median time of one decode step (ms per token), the best of
``ROUNDS`` rounds, and its inverse (tokens/s). The cache's buffers are also counted and checked against
``2 x layers x batch x heads x max_len x head_dim x bytes_per_element``.
``bench_report`` (beside it) prints the figures (and the kit's targets, for its reference only).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import ModuleType

import torch

from .bench_report import plot, print_report, summary, targets
from kvkit import benching
from kvkit.errors import UsageError
from kvkit.impl import add_impl_argument, opened_impl
from kvkit.stopwatch import greedy_step_s, median_step_s, sync

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
    return greedy_step_s(model, token, cache, steps), cache


def time_uncached(model, prompt: torch.Tensor, steps: int, budget_s: float) -> tuple[float, int]:
    """Greedy steps that re-run the whole sequence ``[1, L + i]`` with no cache.

    Stops after ``steps`` steps, or earlier (but after at least 2) once ``budget_s`` has passed.

    Returns:
        ``(median seconds per token, steps run)``.
    """
    tokens = prompt
    sync(prompt.device)
    stamps = [time.perf_counter()]
    while len(stamps) <= steps and (len(stamps) < 3 or stamps[-1] - stamps[0] < budget_s):
        token = model(tokens)[:, -1:].argmax(-1)
        tokens = torch.cat([tokens, token], dim=1)
        sync(prompt.device)
        stamps.append(time.perf_counter())
    return median_step_s(stamps), len(stamps) - 1


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
            sync(input_ids.device)
            self.stamps.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    clock = Clock()
    model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=steps + 1, do_sample=False,
        stopping_criteria=StoppingCriteriaList([clock]),
    )
    return median_step_s(clock.stamps)


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


def try_decoding(kvcache: ModuleType) -> None:
    """A few cached and uncached steps on a tiny model, so that an unfinished TODO stops the bench before its
    progress bar starts (the error is then the only line on stderr)."""
    model = kvcache.Transformer(max_seq_len=8, **MODEL).eval()
    prompt = torch.zeros(1, 4, dtype=torch.long)
    time_cached(kvcache, model, prompt, steps=2)
    time_uncached(model, prompt, steps=2, budget_s=1.0)


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


def run(args) -> int:
    lengths = sorted(args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS))
    if min(lengths) < 1:
        raise UsageError(f"--lengths must be positive, got {lengths}")
    try:
        from tqdm import tqdm
    except ImportError as err:
        raise UsageError("the bench's progress bar needs tqdm: pip install -e '.[bench]'") from err

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows, nbytes = [], None
    with opened_impl(args.layout, args.impl) as impl, torch.inference_mode():
        try_decoding(impl.module)
        with tqdm(total=len(devices) * len(lengths), desc="bench", unit="length") as progress:
            for device in devices:
                device_rows, device_bytes = bench_device(impl.module, device, lengths, args.quick, progress)
                rows += device_rows
                nbytes = nbytes or device_bytes
    try:
        import transformers

        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    report = {
        "impl": str(impl.source), "kit_reference": impl.is_kit_reference,
        "model": {**MODEL, "max_seq_len": bench_max_seq_len(lengths, args.quick),
                  "dtype": "float32", "batch_size": 1},
        "torch": torch.__version__, "threads": torch.get_num_threads(), "transformers": hf_version,
        "rounds": 1 if args.quick else ROUNDS,
        "results": rows, "cache_bytes": nbytes,
        "summary": [summary([row for row in rows if row["device"] == device.type]) for device in devices],
        "targets": targets(rows) if impl.is_kit_reference else None,
    }
    print_report(report)
    benching.keep(report, args, plot)
    return 0 if nbytes["equal"] else 1
