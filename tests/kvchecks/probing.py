"""What every assignment's probes share: calling the student's code so that its exceptions become data, counting
the positions a projection sees, a greedy chat on one cache, and how far greedy choices are from a tie.

A probe never judges; it returns what it observed. ``NotImplementedError``
always propagates, so an unfinished TODO fails its checks by name.
"""

from __future__ import annotations

import torch

from .failures import describe, student_files_of


def describe_error(err: BaseException, kv) -> dict:
    """What a test needs to know about an exception the student's code raised (see ``failures.describe``), and
    whether it is a ``ValueError``, an ``IndexError`` or the package's ``CacheOverflowError``."""
    overflow = getattr(kv, "CacheOverflowError", None)
    return {
        **describe(err, student_files_of(kv)),
        "value_error": isinstance(err, ValueError),
        "index_error": isinstance(err, IndexError),
        "overflow": isinstance(overflow, type) and isinstance(err, overflow),
    }


def attempt(kv, fn, *args, **kwargs) -> dict:
    """``{"value": result}`` or ``{"error": description}``; ``NotImplementedError`` propagates."""
    try:
        return {"value": fn(*args, **kwargs)}
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code may raise anything; the test judges it
        return {"error": describe_error(err, kv)}


def greedy_margin(last_logits: list[torch.Tensor]) -> float:
    """The smallest gap between the best and the second-best logit over greedy steps (how far from a tie)."""
    margin = float("inf")
    for logits in last_logits:
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
    return margin


def count_rows(module: torch.nn.Module, log: list[int]):
    """Record in ``log`` how many positions (the ``S`` of an ``[B, S, D]`` input) each call of ``module`` sees;
    returns the hook's handle."""
    return module.register_forward_hook(lambda _m, inputs, _out: log.append(int(inputs[0].shape[-2])))


def greedy_chat(model, cache, turns: list[list[int]], reply_tokens: int, observe=None) -> dict:
    """A chat on one warm ``cache``: each turn feeds its new tokens in one call, then decodes a reply greedily.

    A turn's call carries the previous reply's last token (not yet in the
    cache) and the turn's user tokens; each further reply token takes one
    call of one token; ``reply_tokens`` calls per turn. Returns the whole
    ``history`` (the last reply token is never fed), the ``logits`` of every
    fed position ``[1, len(history) - 1, vocab]``, ``observed`` (what
    ``observe(cache)`` returns after each call, when given) and the greedy
    ``margin`` (see :func:`greedy_margin`).
    """
    history: list[int] = []
    pending: list[int] = []
    logits, observed = [], []
    with torch.no_grad():
        for turn in turns:
            pending += turn
            for _step in range(reply_tokens):
                out = model(torch.tensor([pending], dtype=torch.long), kv_cache=cache)
                logits.append(out)
                history += pending
                pending = [int(out[0, -1].argmax())]
                if observe is not None:
                    observed.append(observe(cache))
    return {"history": history + pending, "logits": torch.cat(logits, dim=1), "observed": observed,
            "margin": greedy_margin([step[0, -1] for step in logits])}
