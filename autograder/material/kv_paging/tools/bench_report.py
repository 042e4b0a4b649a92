"""What ``kvkit --assignment kv_paging bench`` prints and draws: one table and one panel per part, each against its
target, and the checks."""

from __future__ import annotations

from pathlib import Path

from kvkit import benching
from kvkit.plotting import pyplot

NOT_GRADED = ("These figures are not graded: the checks (pytest, kvkit grade) test what the code stores and "
              "computes, not how fast it runs.")


def _met(value: bool) -> str:
    return "met" if value else "NOT met"


def waste_lines(report: dict) -> list[str]:
    config, target = report["settings"]["waste"], report["targets"]["paged_waste_blocks"]
    lines = [f"1. Paged memory: {config['requests']} requests of {config['shortest']} to {config['max_seq_len']} "
             f"positions, blocks of {config['block_size']} slots"]
    for part in report["devices"]:
        waste = part["waste"]
        lines.append(f"   {part['device']}: {waste['used']:,} positions written; bytes for a Llama-like cache of "
                     f"{benching.size(waste['bytes_per_slot'])} per slot")
        lines += ["   " + line for line in benching.table(
            ["layout", "slots reserved", "unused", "unused per sequence", "bytes reserved", "bytes unused"],
            [[row["layout"], f"{row['reserved']:,}", f"{row['unused']:,}", f"{row['unused_per_sequence']:.1f}",
              benching.size(row["bytes"]), benching.size(row["unused_bytes"])] for row in waste["rows"]])]
        lines.append(f"   paged waste: {waste['paged_waste_blocks']:.2f} of a block per sequence (target < "
                     f"{target:g}: {_met(waste['paged_waste_blocks'] < target)})")
    return lines


def prefix_lines(report: dict) -> list[str]:
    config, target = report["settings"]["prefix"], report["targets"]["prefix_saved_share"]
    lines = [f"2. A shared system prompt: {config['requests']} requests, a {config['system']}-token prompt and "
             f"{config['shortest']} to {config['longest']} tokens each, all held at once, blocks of "
             f"{config['block_size']}"]
    for part in report["devices"]:
        prefix = part["prefix"]
        lines += ["   " + line for line in benching.table(
            ["prefix cache", "blocks in use", "prompt positions computed", "prefill ms"],
            [[row["prefix_cache"], f"{row['blocks']:,}", f"{row['computed']:,}", f"{row['prefill_ms']:,.0f}"]
             for row in prefix["rows"]])]
        lines.append(f"   {part['device']}: {prefix['saved']:,} positions saved, {prefix['saved_share']:.1%} of the "
                     f"{prefix['shared_positions']:,} shared-prompt positions (target >= "
                     f"{target:.0%}: {_met(prefix['saved_share'] >= target)}); first new tokens "
                     f"equal: {'yes' if prefix['same_first_tokens'] else 'NO'}")
    return lines


def batch_lines(report: dict) -> list[str]:
    config, target = report["settings"]["batch"], report["targets"]["continuous_speedup"]
    lines = [f"3. Continuous against static batching: {config['requests']} requests, prompts of "
             f"{config['prompt'][0]}-{config['prompt'][1]} tokens, replies of {config['short'][0]}-"
             f"{config['short'][1]} tokens ({1 - config['long_share']:.0%}) or {config['long'][0]}-"
             f"{config['long'][1]}, {config['max_running']} at a time"]
    for part in report["devices"]:
        batch = part["batch"]
        lines += ["   " + line for line in benching.table(
            ["batching", "seconds", "new tokens/s", "mean time to first token"],
            [[row["batching"], f"{row['seconds']:.2f}", f"{row['tok_s']:,.0f}", f"{row['mean_ttft_ms']:,.0f} ms"]
             for row in batch["rows"]])]
        lines.append(f"   {part['device']}: continuous {batch['speedup']:.2f}x static tokens/s (target >= "
                     f"{target:g}: {_met(batch['speedup'] >= target)}); same outputs: "
                     f"{'yes' if batch['same_outputs'] else 'NO'}")
    return lines


def int8_lines(report: dict) -> list[str]:
    config, target = report["settings"]["int8"], report["targets"]["int8_bytes_share"]
    lines = [f"4. int8 against float32: depth {config['depth']}, head size "
             f"{config['hidden_dim'] // config['num_heads']}, {config['steps']} greedy tokens after "
             f"{config['prompt']}"]
    for part in report["devices"]:
        int8 = part["int8"]
        nbytes = {row["cache"]: row["nbytes"] for row in int8["rows"]}
        lines.append(f"   {part['device']}: bytes float32 {nbytes['float32']:,}, int8 {nbytes['int8']:,} = "
                     f"{int8['bytes_share']:.3f}x ((hd + 4) / (4 hd) = {int8['formula_share']:.3f}; target <= "
                     f"{target:g}: {_met(int8['bytes_share'] <= target)})")
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
    benching.print_report(report, "kvpaging", [waste_lines, prefix_lines, batch_lines, int8_lines], CHECK_WORDS,
                          NOT_GRADED)


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
