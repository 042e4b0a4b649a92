"""``kvkit chat-demo``: a multi-turn exchange of token ids that keeps one KV cache across turns.

Each turn feeds only its new user tokens on the warm cache, then decodes a
greedy reply one token at a time. Every logit row computed with the cache is
checked against a full recompute of the whole history without a cache.
"""

from __future__ import annotations

import torch

from kvkit.impl import add_impl_argument, opened_impl

TURNS = [[5, 17, 42, 8, 99, 23, 61, 4, 77, 30, 12, 3], [64, 9, 81, 27, 50, 2, 38], [11, 70, 45, 6, 93, 58, 21, 34, 88]]
REPLY_TOKENS = 8
ATOL = 1e-4


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "chat-demo",
        help="multi-turn decoding that reuses the KV cache across turns, checked against a full recompute",
        description="Run a few turns of token ids on a small random model with one KV cache kept across turns. "
        "Prints each turn's cache length and the positions it reused, and checks every logit against a "
        "full recompute of the history.",
    )
    add_impl_argument(parser)
    parser.set_defaults(func=run)


def chat_turn(model, cache, user: list[int], reply_tokens: int) -> tuple[list[int], torch.Tensor]:
    """Feed ``user`` on the warm cache, then decode ``reply_tokens`` greedy tokens.

    Every reply token is fed too, so afterwards the cache holds the whole history.

    Returns:
        ``(reply, logits)``: the reply ids and the ``[len(user) + reply_tokens, vocab]``
        logits of every position fed this turn.
    """
    device = next(model.parameters()).device
    rows = [model(torch.tensor([user], device=device), kv_cache=cache)[0]]
    reply = []
    for _ in range(reply_tokens):
        reply.append(int(rows[-1][-1].argmax()))
        rows.append(model(torch.tensor([[reply[-1]]], device=device), kv_cache=cache)[0])
    return reply, torch.cat(rows)


def run(args) -> int:
    with opened_impl(args.layout, args.impl) as impl, torch.inference_mode():
        ok = chat(impl.module)
    print("all turns OK" if ok else "MISMATCH: cached logits differ from a full recompute")
    return 0 if ok else 1


def chat(kvcache) -> bool:
    """Run :data:`TURNS` on one cache, printing each turn; True if every cached logit matched the recompute."""
    torch.manual_seed(0)
    max_len = sum(len(turn) + REPLY_TOKENS for turn in TURNS)
    model = kvcache.Transformer(depth=2, hidden_dim=64, vocab_size=101, max_seq_len=max_len, nheads=4).eval()
    cache = kvcache.TransformerGenerator(model, max_len).new_cache(batch_size=1)
    history: list[int] = []
    ok = True
    for number, user in enumerate(TURNS, start=1):
        reused = cache.current_length
        reply, logits = chat_turn(model, cache, user, REPLY_TOKENS)
        history += user + reply
        full = model(torch.tensor([history]))[0, -logits.shape[0] :]
        same = torch.allclose(logits, full, atol=ATOL)
        ok &= same
        print(
            f"turn {number}: fed {len(user)} user + {len(reply)} reply tokens; reused {reused} cached positions "
            f"(not recomputed); cache length {cache.current_length}\n"
            f"  reply {reply}; logits vs full recompute: {'OK' if same else 'MISMATCH'} "
            f"(max diff {(logits - full).abs().max():.2e})"
        )
    return ok
