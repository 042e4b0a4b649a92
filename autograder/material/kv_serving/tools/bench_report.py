"""What ``kvkit --assignment kv_serving bench`` prints and draws: one table and one panel per part, and what
the figures show."""

from __future__ import annotations

from pathlib import Path

from kvkit import benching
from kvkit.plotting import pyplot

NOT_GRADED = (
    "These timings are not graded: the checks (pytest, kvkit grade) test what the code stores and computes, "
    "not how fast it runs."
)


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def gqa_lines(report: dict) -> list[str]:
    """Part 1 in words: the set-up, a row per number of key/value heads, the saving against MHA."""
    config = report["settings"]["gqa"]
    head_dim = config["hidden_dim"] // config["num_heads"]
    context = report["devices"][0]["gqa"]["context"]
    lines = [
        f"1. GQA memory (TODO 1): the KVCache of one model (depth {config['depth']}, width {config['hidden_dim']}, "
        f"{config['num_heads']} query heads of size {head_dim}, batch 1, {config['max_len']} positions) against its "
        f"key/value heads; decode ms/token with {context} to {config['max_len']} positions in the cache.",
    ]
    rows = [row for part in report["devices"] for row in part["gqa"]["rows"]]
    lines += benching.table(
        ["device", "kv heads", "q heads per kv", "cache bytes", "= 2 x layers x batch x kv_heads x max_len x head_dim "
         "x bytes", "MHA / this", "decode ms/tok", "tok/s"],
        [[row["device"], str(row["kv_heads"]), str(row["groups"]), f"{row['nbytes']:,}",
          f"{row['formula_text']}: {'equal' if row['equal'] else 'NOT EQUAL'}", f"{row['mha_over_this']:.1f}x",
          f"{row['decode_ms']:.2f}", f"{row['tok_s']:.0f}"] for row in rows],
    )
    for part in report["devices"]:
        mha, fewest = part["gqa"]["rows"][0], part["gqa"]["rows"][-1]
        lines.append(
            f"On {part['device']}: with {fewest['kv_heads']} key/value head{'s' if fewest['kv_heads'] > 1 else ''} "
            f"the cache holds {fewest['mha_over_this']:.0f}x fewer bytes than with {mha['kv_heads']} (MHA): "
            f"{benching.size(fewest['nbytes'])} instead of {benching.size(mha['nbytes'])}, and a decode step takes "
            f"{fewest['decode_ms']:.2f} ms instead of {mha['decode_ms']:.2f} ms "
            f"({mha['decode_ms'] / fewest['decode_ms']:.2f}x): each step reads "
            f"{benching.size(fewest['read_per_step'])} of keys and values instead of "
            f"{benching.size(mha['read_per_step'])}, besides the model's weights."
        )
    return lines


def chat_lines(report: dict) -> list[str]:
    """Part 2 in words: the set-up, about eight of the turns, the bytes and times at the first and last turn."""
    config = report["settings"]["chat"]
    first = report["devices"][0]["chat"]
    lines = [
        f"2. A long chat (TODO 3): {config['turns']} turns of {config['user_tokens']} user tokens and a "
        f"{config['reply_tokens']}-token greedy reply ({first['positions']} tokens) on one model (depth "
        f"{config['depth']}, width {config['hidden_dim']}, {config['num_kv_heads']} key/value heads) whose tokens see "
        f"the first {config['sinks']} positions and the latest {config['window']}: a SinkWindowCache of that rule "
        f"(budget {first['budget']} positions) against a KVCache sized for the whole chat. ms/token: the reply's "
        "one-token steps.",
    ]
    step = max(1, config["turns"] // 8)
    shown = sorted({1, *range(step, config["turns"] + 1, step)})
    rows = [row for part in report["devices"] for row in part["chat"]["rows"] if row["turn"] in shown]
    lines += benching.table(
        ["device", "turn", "chat tokens", "window cache bytes", "a growing cache's", "KVCache for the chat",
         "window ms/tok", "KVCache ms/tok"],
        [[row["device"], str(row["turn"]), str(row["positions"]), f"{row['window_bytes']:,}",
          f"{row['growing_bytes']:,}", f"{row['full_cache_bytes']:,}", f"{row['window_ms']:.3f}",
          f"{row['full_ms']:.3f}"] for row in rows],
    )
    for part in report["devices"]:
        chat = part["chat"]
        start, end = chat["rows"][0], chat["rows"][-1]
        held = ("holds the same bytes after every turn" if chat["window_bytes_constant"]
                else "changed its bytes during the chat")
        replies = ("the same on both caches in every turn" if chat["same_replies"]
                   else f"the same on both caches in {chat['same_turns']} of {len(chat['rows'])} turns")
        lines.append(
            f"On {part['device']}: the SinkWindowCache {held} ({benching.size(end['window_bytes'])}) while the chat "
            f"grows to {end['positions']} tokens, {end['positions'] / chat['budget']:.1f}x its budget; a cache that "
            "keeps every "
            f"position would hold {benching.size(end['growing_bytes'])} by then "
            f"({end['growing_bytes'] / end['window_bytes']:.1f}x). A reply step took {start['window_ms']:.3f} ms at "
            f"turn 1 and {end['window_ms']:.3f} ms at turn "
            f"{end['turn']} with the window, {start['full_ms']:.3f} ms and {end['full_ms']:.3f} ms with the KVCache. "
            f"Replies: {replies}."
        )
    return lines


def batch_lines(report: dict) -> list[str]:
    """Part 3 in words: the set-up, a row per batch size, batch 8 (or the largest) against batch 1."""
    config = report["settings"]["batch"]
    lines = [
        f"3. Batching (TODO 4): BatchGenerator.generate_batch of {config['new_tokens']} new tokens per row, prompts of "
        f"{config['shortest']} to {config['longest']} tokens (left-padded), one model (depth {config['depth']}, width "
        f"{config['hidden_dim']}); ms/step: the median decode step (one new token for every row; the prefill not "
        "counted); tok/s = batch / that step; s/call: the whole call.",
    ]
    rows = [row for part in report["devices"] for row in part["batch"]["rows"]]
    lines += benching.table(
        ["device", "batch", "ms/step", "tok/s", "tok/s vs batch 1", "s/call", "row 0 as in batch 1"],
        [[row["device"], str(row["batch"]), f"{row['step_ms']:.3f}", f"{row['tok_s']:.0f}",
          f"{row['vs_batch_1']:.2f}x", f"{row['seconds']:.3f}", _yes(row["row0_same"])] for row in rows],
    )
    for part in report["devices"]:
        by_size = {row["batch"]: row for row in part["batch"]["rows"]}
        size = 8 if 8 in by_size else max(by_size)
        lines.append(
            f"On {part['device']}: batch {size} generates {by_size[size]['vs_batch_1']:.2f}x the tokens per second of "
            f"batch 1 ({by_size[size]['tok_s']:.0f} against {by_size[1]['tok_s']:.0f} tok/s): one call per step "
            "serves every row."
        )
    return lines


def speculative_lines(report: dict) -> list[str]:
    """Part 4 in words: how the pair is built, a row per draft, the best draft length and the unrelated draft."""
    config = report["settings"]["speculative"]
    lines = [
        f"4. Speculative decoding (TODOs 5, 6): SpeculativeDecoder.generate of {config['new_tokens']} tokens after a "
        f"{config['prompt_tokens']}-token prompt against Generator.generate of the target alone (depth "
        f"{config['depth']}, width {config['hidden_dim']}). The shared draft is the target's own first "
        f"{config['draft_depth']} blocks, embedding and unembedding, the target's later blocks having their output "
        f"projections (attn.Wo, mlp.proj) scaled by {config['scale']}; the unrelated draft has weights of its own. "
        "ms/token: the whole call / new tokens (prefill included); speed-up = the target alone's time / this.",
    ]
    rows = [row for part in report["devices"] for row in part["speculative"]["rows"]]
    lines += benching.table(
        ["device", "draft", "k", "ms/tok", "speed-up", "accepted", "tokens per target call", "target calls",
         "draft calls", "same output"],
        [[row["device"], row["draft"], str(row["k"]), f"{row['ms_per_token']:.3f}", f"{row['speedup']:.2f}x",
          "-" if row["acceptance"] is None else f"{row['acceptance']:.0%}", f"{row['tokens_per_target_call']:.2f}",
          str(row["target_calls"]), str(row["draft_calls"]), _yes(row["same"])] for row in rows],
    )
    for part in report["devices"]:
        spec = part["speculative"]
        shared = [row for row in spec["rows"] if row["draft"] == "shared"]
        top = max(shared, key=lambda row: row["speedup"])
        (other,) = [row for row in spec["rows"] if row["draft"] == "unrelated"]
        lines.append(
            f"On {part['device']}: the target alone takes {spec['alone_ms_per_token']:.3f} ms/token. With the shared "
            f"draft the best is k={top['k']}: {top['speedup']:.2f}x, {top['acceptance']:.0%} of the drafts accepted. "
            f"The unrelated draft (k={other['k']}) has {other['acceptance']:.0%} accepted and runs at "
            f"{other['speedup']:.2f}x."
        )
    lines.append(
        "The speed-up depends on how often the draft agrees with the target: a draft of random weights of its own "
        "almost never does, and then each round pays k draft calls for the one token the target commits."
    )
    return lines


CHECK_WORDS = {
    "bytes_equal_formula": "cache bytes equal the formula",
    "window_bytes_constant": "the window's bytes constant over the chat",
    "window_replies_equal_full_cache": "chat replies equal on both caches",
    "batch_row0_equal_alone": "batch row 0 equal in every batch",
    "speculative_equal_target": "speculative output equal to the target's",
}


def print_report(report: dict) -> None:
    """The set-up, each part's table, what it compares and plain facts, then the checks."""
    benching.print_report(report, "kvserving", [gqa_lines, chat_lines, batch_lines, speculative_lines], CHECK_WORDS,
                          NOT_GRADED)


def _gqa_panel(ax, report: dict) -> None:
    """Cache MiB (left axis) and decode ms/token (right axis) against the key/value heads."""
    twin = ax.twinx()
    for part in report["devices"]:
        rows = part["gqa"]["rows"]
        heads = [row["kv_heads"] for row in rows]
        ax.plot(heads, [row["nbytes"] / 2**20 for row in rows], "o-", label=f"cache MiB ({part['device']})")
        twin.plot(heads, [row["decode_ms"] for row in rows], "s--", color="tab:red",
                  label=f"decode ms/token ({part['device']})")
    config = report["settings"]["gqa"]
    ax.set_xscale("log", base=2)
    ax.set_xticks(heads, [str(h) for h in heads])
    ax.invert_xaxis()
    ax.set_xlabel(f"key/value heads ({config['num_heads']} = MHA)")
    ax.set_ylabel("cache MiB")
    twin.set_ylim(bottom=0)
    twin.set_ylabel(f"decode ms/token, {report['devices'][0]['gqa']['context']} positions cached")
    ax.set_title(f"1. GQA: depth {config['depth']}, width {config['hidden_dim']}, {config['num_heads']} query heads, "
                 f"{config['max_len']} positions", fontsize=10)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8)


def _chat_panel(ax, report: dict) -> None:
    """Cache MiB (left axis) and reply ms/token (right axis) against the tokens in the chat."""
    twin = ax.twinx()
    for part in report["devices"]:
        rows, device = part["chat"]["rows"], part["device"]
        positions = [row["positions"] for row in rows]
        for key, label, style in [("growing_bytes", "MiB, a cache keeping every position", "o-"),
                                  ("full_cache_bytes", "MiB, KVCache sized for the chat", "--"),
                                  ("window_bytes", "MiB, SinkWindowCache", "^-")]:
            ax.plot(positions, [row[key] / 2**20 for row in rows], style, markersize=3, label=f"{label} ({device})")
        for key, label, color in [("full_ms", "ms/token, KVCache", "tab:red"),
                                  ("window_ms", "ms/token, SinkWindowCache", "tab:purple")]:
            twin.plot(positions, [row[key] for row in rows], ":", color=color, label=f"{label} ({device})")
    config = report["settings"]["chat"]
    ax.set_xlabel("tokens in the chat")
    ax.set_ylabel("cache MiB")
    ax.set_ylim(0, 1.6 * ax.get_ylim()[1])  # room above the lines for the legend
    twin.set_ylim(0, 2 * twin.get_ylim()[1])
    twin.set_ylabel("reply ms/token")
    ax.set_title(f"2. {config['turns']}-turn chat, sinks {config['sinks']} + window {config['window']}", fontsize=10)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")


def _batch_panel(ax, report: dict) -> None:
    """New tokens/s of all rows against the batch size."""
    for part in report["devices"]:
        rows = part["batch"]["rows"]
        ax.plot([row["batch"] for row in rows], [row["tok_s"] for row in rows], "o-", label=part["device"])
    config = report["settings"]["batch"]
    ax.set_xscale("log", base=2)
    ax.set_xticks(config["batch_sizes"], [str(b) for b in config["batch_sizes"]])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("batch size")
    ax.set_ylabel("new tokens/s, all rows")
    ax.set_title(f"3. generate_batch, {config['new_tokens']} new tokens, prompts {config['shortest']}-"
                 f"{config['longest']} tokens", fontsize=10)
    ax.legend(fontsize=8)


def _speculative_panel(ax, report: dict) -> None:
    """Speed-up and acceptance rate against the draft length; the unrelated draft as one point."""
    for part in report["devices"]:
        device, rows = part["device"], part["speculative"]["rows"]
        shared = [row for row in rows if row["draft"] == "shared"]
        others = [row for row in rows if row["draft"] == "unrelated"]
        ax.plot([row["k"] for row in shared], [row["speedup"] for row in shared], "o-",
                label=f"speed-up, shared draft ({device})")
        ax.plot([row["k"] for row in shared], [row["acceptance"] for row in shared], "s:",
                label=f"acceptance, shared draft ({device})")
        ax.plot([row["k"] for row in others], [row["speedup"] for row in others], "x", markersize=10,
                label=f"speed-up, unrelated draft ({device})")
    config = report["settings"]["speculative"]
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("draft tokens per round k")
    ax.set_ylabel("speed-up over the target alone; acceptance rate")
    ax.set_title(f"4. speculative: target depth {config['depth']}, draft = its first {config['draft_depth']} blocks",
                 fontsize=10)
    ax.legend(fontsize=8)


def plot(report: dict, out: Path) -> None:
    """A 2x2 figure, one panel per part, one line per device."""
    plt = pyplot()

    fig, axes = plt.subplots(2, 2, figsize=(13, 9), dpi=100)
    for ax, draw in zip(axes.flat, (_gqa_panel, _chat_panel, _batch_panel, _speculative_panel)):
        draw(ax, report)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
