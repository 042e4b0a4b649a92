"""Timing for the benches: stamps taken after the device has finished, and the median step between them."""

from __future__ import annotations

import statistics

import torch


def sync(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (CUDA runs asynchronously; the CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step_s(stamps: list[float]) -> float:
    """Median gap between consecutive time stamps, in seconds."""
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
