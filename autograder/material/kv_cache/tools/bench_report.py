"""What ``kvkit bench`` prints and draws: the table, what each column compares, and plain facts.

The kit's performance targets are bars for the kit's own reference
implementation; they are printed only when the bench ran it. On any other
code (a student's) the bench states what it measured and nothing that reads
as a verdict: timings are not graded.
"""

from __future__ import annotations

from pathlib import Path

from kvkit.plotting import pyplot

# name -> (what is measured, bar, "ge" or "le"); checked on the CPU rows
TARGETS = {
    "cached_vs_hf_min": ("cached tokens/s at least 2x HF generate's, at every context length (worst ratio)", 2.0, "ge"),
    "speedup_at_1024": ("cached at least 20x faster than uncached at 1024 tokens of context", 20.0, "ge"),
    "cached_2048_over_64": ("cached time per token at 2048 tokens at most 2x that at 64", 2.0, "le"),
}

LEGEND = """\
What each column measures, per generated token (greedy, batch 1), after a prompt of `context` random tokens:
  cached    {whose} Transformer with its KVCache: each step feeds only the new token and reads every
            earlier key and value from the cache
  uncached  the same model and weights without a cache: every new token re-runs the whole sequence (prompt and
            the tokens so far), so its cost grows with the context; speed-up = uncached ms / cached ms
  HF        transformers' GPT2LMHeadModel.generate (with its own KV cache) at the same size and random weights,
            a widely used implementation for scale; cached/HF = HF ms / cached ms (above 1x: faster than HF)
  ms/tok is the median time of one decode step (the prefill is not counted), best of {rounds}; tok/s = 1000 / ms."""

NOT_GRADED = (
    "These timings are not graded: the checks (pytest, kvkit grade) test what the cache stores and computes, "
    "not how fast it runs."
)


def targets(rows: list[dict]) -> dict:
    """The kit's bars for its reference, on the CPU rows: each ``{"value", "bar", "met"}``, None if not measured."""
    cpu = {row["length"]: row for row in rows if row["device"] == "cpu"}
    ratios = [row["cached_vs_hf"] for row in cpu.values() if row["cached_vs_hf"] is not None]
    values = {
        "cached_vs_hf_min": min(ratios) if ratios else None,
        "speedup_at_1024": cpu[1024]["speedup"] if 1024 in cpu else None,
        "cached_2048_over_64": cpu[2048]["cached_ms"] / cpu[64]["cached_ms"] if {64, 2048} <= cpu.keys() else None,
    }
    found = {}
    for name, (_, bar, op) in TARGETS.items():
        value = values[name]
        met = None if value is None else (value >= bar if op == "ge" else value <= bar)
        found[name] = None if value is None else {"value": value, "bar": bar, "met": met}
    return found


def summary(rows: list[dict]) -> dict:
    """Plain figures of one device's rows (sorted by length): speed-ups, growth of the time per token, vs HF."""
    first, last = rows[0], rows[-1]
    ratios = [row["cached_vs_hf"] for row in rows if row["cached_vs_hf"] is not None]
    return {
        "device": first["device"],
        "shortest": first["length"],
        "longest": last["length"],
        "speedup_shortest": first["speedup"],
        "speedup_longest": last["speedup"],
        "cached_growth": last["cached_ms"] / first["cached_ms"],
        "uncached_growth": last["uncached_ms"] / first["uncached_ms"],
        "cached_vs_hf_range": [min(ratios), max(ratios)] if ratios else None,
    }


def summary_lines(facts: dict, whose: str, device_note: str) -> list[str]:
    """``facts`` (see :func:`summary`) in words."""
    several = facts["shortest"] != facts["longest"]
    lines = [
        f"{whose.capitalize()} cached decode is {facts['speedup_longest']:.1f}x faster than uncached at "
        f"{facts['longest']} tokens of context{device_note}"
        + (f" ({facts['speedup_shortest']:.1f}x at {facts['shortest']})." if several else ".")
    ]
    if several:
        lines.append(
            f"From {facts['shortest']} to {facts['longest']} tokens the time per token grows "
            f"{facts['cached_growth']:.2f}x with the cache and {facts['uncached_growth']:.1f}x without it."
        )
    if facts["cached_vs_hf_range"] is not None:
        low, high = facts["cached_vs_hf_range"]
        span = f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}x to {high:.2f}x"
        lines.append(f"Against HF generate, {whose} cached decode runs at {span} its tokens/s.")
    return lines


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_lines(results: list[dict]) -> list[str]:
    """One right-aligned row per device and context length."""
    header = ["device", "context", "cached ms/tok", "tok/s", "uncached ms/tok", "tok/s", "speed-up",
              "HF ms/tok", "tok/s", "cached/HF"]
    cells = [header] + [
        [row["device"], str(row["length"]), _fmt(row["cached_ms"], ".3f"), _fmt(row["cached_tok_s"], ".0f"),
         _fmt(row["uncached_ms"], ".2f"), _fmt(row["uncached_tok_s"], ".1f"), _fmt(row["speedup"], ".1f") + "x",
         _fmt(row["hf_ms"], ".3f"), _fmt(row["hf_tok_s"], ".0f"), _fmt(row["cached_vs_hf"], ".2f") + "x"]
        for row in results
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]


def print_report(report: dict) -> None:
    """The set-up, the table, what it compares, plain facts, the cache bytes; the kit's targets for its reference."""
    model, reference = report["model"], report["kit_reference"]
    whose = "the kit's reference" if reference else "your"
    print(
        f"model: depth {model['depth']}, width {model['hidden_dim']}, {model['nheads']} heads, vocab "
        f"{model['vocab_size']}, max_seq_len {model['max_seq_len']}, float32, batch 1; torch {report['torch']} "
        f"({report['threads']} threads), transformers {report['transformers'] or 'not installed'}"
    )
    print(f"kvcache: {report['impl']}" + (" (the kit's reference)" if reference else ""))
    print()
    for line in table_lines(report["results"]):
        print(line)
    print()
    print(LEGEND.format(whose="the kit's reference" if reference else "your",
                        rounds=f"{report['rounds']} round" + ("s" if report["rounds"] > 1 else "")))
    if report["transformers"] is None:
        print("note: transformers is not installed, so the HF columns are empty; pip install -e '.[hf]' to fill them")
    print()
    several = len(report["summary"]) > 1
    for facts in report["summary"]:
        for line in summary_lines(facts, whose, f" on {facts['device']}" if several else ""):
            print(line)
    nbytes = report["cache_bytes"]
    print(
        f"Cache bytes: measured {nbytes['measured']:,}, formula 2 x layers x batch x heads x max_len x head_dim x "
        f"bytes = {nbytes['formula_text']} = {nbytes['formula']:,}: {'equal' if nbytes['equal'] else 'NOT EQUAL'}"
    )
    print()
    if reference:
        print_targets(report["targets"])
    else:
        print(NOT_GRADED)


def print_targets(found: dict) -> None:
    """The kit's targets for its reference implementation, each with the measured value."""
    print("The kit's performance targets for its reference implementation (CPU; other load on the machine moves them):")
    for name, target in found.items():
        what = TARGETS[name][0]
        status = "not measured (needs those context lengths)" if target is None else (
            f"{target['value']:.2f}x: {'met' if target['met'] else 'not met on this run'}"
        )
        print(f"  {what}: {status}")


def plot(report: dict, out: Path) -> None:
    """Latency per token against context length, log-log, one line per method and device."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for device in sorted({row["device"] for row in report["results"]}):
        rows = [row for row in report["results"] if row["device"] == device]
        lengths = [row["length"] for row in rows]
        for key, label, style in [("uncached_ms", "no cache (whole sequence re-run)", "o-"),
                                  ("hf_ms", "transformers GPT-2 generate", "s--"),
                                  ("cached_ms", "KV cache", "^-")]:
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
