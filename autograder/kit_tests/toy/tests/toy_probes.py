"""The toy assignment's probes: drive the student's package and return what they observe."""

import torch


def scale(package, factor: float, seed: int) -> dict:
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(seed))
    kept = x.clone()
    y = package.Scaler(factor).apply(x)
    return {"y": y, "x_unchanged": bool(torch.equal(x, kept))}


def running(package, values: list[float]) -> dict:
    adder = package.RunningSum()
    return {"totals": [adder.add(v) for v in values]}


PROBES = {"scale": scale, "running": running}
