"""Timing for the benches: stamps taken after the device has finished, and the median step between them; a
greedy decode on a cache timed that way."""

from __future__ import annotations

import statistics
import time

import torch


def sync(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (CUDA runs asynchronously; the CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step_s(stamps: list[float]) -> float:
    """Median gap between consecutive time stamps, in seconds."""
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def greedy_step_s(model, token: torch.Tensor, cache, steps: int) -> float:
    """Median seconds of one greedy step: ``steps`` times, ``model`` reads ``token`` ``[1, 1]`` on ``cache`` and
    the argmax of its last logits becomes the next ``token``."""
    device = token.device
    sync(device)
    stamps = [time.perf_counter()]
    for _ in range(steps):
        token = model(token, kv_cache=cache)[:, -1:].argmax(-1)
        sync(device)
        stamps.append(time.perf_counter())
    return median_step_s(stamps)
