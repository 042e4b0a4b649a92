"""What every assignment's probes share: calling the student's code so that its exceptions become data, counting
the positions a projection sees, and how far greedy choices are from a tie.

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
