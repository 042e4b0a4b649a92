"""Assertions with messages a student can act on: which TODO, what was expected, what came back."""

from __future__ import annotations

import torch

from .todos import TODOS


def _prefix(todo: int) -> str:
    return f"TODO {todo} ({TODOS[todo].function})"


def fail(todo: int, message: str) -> None:
    raise AssertionError(f"{_prefix(todo)}: {message}")


def that(condition: bool, todo: int, message: str) -> None:
    """Fail with ``message`` unless ``condition``."""
    if not condition:
        fail(todo, message)


def tensor(value, todo: int, what: str) -> torch.Tensor:
    """``value`` if it is a tensor; otherwise fail saying what came back instead."""
    if not isinstance(value, torch.Tensor):
        fail(todo, f"{what} should be a tensor, got {value!r}")
    return value


def close(actual, expected: torch.Tensor, todo: int, what: str, *, atol: float = 1e-5, rtol: float = 1e-5,
          hint: str = "") -> None:
    """Fail unless ``actual`` is a tensor of ``expected``'s shape, equal within ``atol + rtol * |expected|``."""
    actual = tensor(actual, todo, what)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(todo, f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}. {hint}".rstrip())
    actual64, expected64 = actual.double(), expected.double()
    bad = ~torch.isclose(actual64, expected64, atol=atol, rtol=rtol, equal_nan=False)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        diff = float((actual64 - expected64).abs().nan_to_num(float("inf")).max())
        fail(todo, f"{what} differs from the reference: max |difference| {diff:.3g} (tolerance {atol:g}); first at "
                   f"index {index}: got {float(actual64[index]):.6g}, expected {float(expected64[index]):.6g}. "
                   f"{hint}".rstrip())


def equal(actual, expected, todo: int, what: str, hint: str = "") -> None:
    """Fail unless ``actual == expected`` (plain values: lists, ints, strings)."""
    if actual != expected:
        fail(todo, f"{what}: got {actual!r}, expected {expected!r}. {hint}".rstrip())


def no_error(observed: dict, todo: int, what: str) -> object:
    """The probe's ``value``; fail with the error's name and message if the student's code raised."""
    if "error" in observed:
        err = observed["error"]
        fail(todo, f"{what} raised {err['type']}: {err['message']}")
    return observed.get("value")
