"""Assertions with messages a student can act on: which TODO, what was expected, what came back.

The TODO comes from the running check's marker (:mod:`kvchecks.context`).
A hint is a statement of the contract that the failed comparison checks, or
(``mistakes``) a diagnosis shown only when the student's observation equals
what a known mistake produces. ``needs`` names the other TODOs a whole-model
check runs; the message then says how their own checks have done.
"""

from __future__ import annotations

import torch

from . import context, mistakes as known
from .failures import format_error, todo_label
from .i18n import _


def _prefix() -> str:
    todo = context.CURRENT.todo
    return f"{todo_label(todo)}: " if todo is not None else ""


def fail(message: str, hint: str = "", needs: tuple[int, ...] = ()) -> None:
    text = _prefix() + message
    if hint:
        text += f"\n  {hint}"
    if needs:
        text += f"\n  {context.whole_model_note(needs)}"
    raise AssertionError(text)


def that(condition: bool, message: str, hint: str = "", needs: tuple[int, ...] = ()) -> None:
    """Fail with ``message`` unless ``condition``."""
    if not condition:
        fail(message, hint, needs)


def tensor(value, what: str) -> torch.Tensor:
    """``value`` if it is a tensor; otherwise fail saying what came back instead."""
    if not isinstance(value, torch.Tensor):
        fail(_("{what} should be a tensor, got {value}").format(what=what, value=_short(value)))
    return value


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _matches(actual: torch.Tensor, expected, atol: float, rtol: float) -> bool:
    return (isinstance(expected, torch.Tensor) and tuple(actual.shape) == tuple(expected.shape)
            and bool(torch.isclose(actual.double(), expected.double(), atol=atol, rtol=rtol).all()))


def close(actual, expected: torch.Tensor, what: str, *, atol: float = 1e-5, rtol: float = 1e-5, hint: str = "",
          mistakes: dict | None = None, needs: tuple[int, ...] = ()) -> None:
    """Fail unless ``actual`` is a tensor of ``expected``'s shape, equal within ``atol + rtol * |expected|``.

    ``mistakes`` maps a known mistake's name to what it observes here; when
    ``actual`` equals one of them, its hint replaces ``hint``.
    """
    actual = tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(_("{what} has shape {shape}, expected {expected}.").format(what=what, shape=tuple(actual.shape),
                                                                       expected=tuple(expected.shape)), hint, needs)
    actual64, expected64 = actual.double(), expected.double()
    bad = ~torch.isclose(actual64, expected64, atol=atol, rtol=rtol, equal_nan=False)
    if not bad.any():
        return
    index = tuple(int(i) for i in bad.nonzero()[0])
    diff = float((actual64 - expected64).abs().nan_to_num(float("inf")).max())
    diagnosed = [name for name, observed in (mistakes or {}).items() if _matches(actual, observed, atol, rtol)]
    if diagnosed:
        hint = " ".join(known.hint(name) for name in diagnosed)
    fail(_("{what} differs from the reference: max |difference| {diff:.3g} (tolerance {atol:g}); first at index "
           "{index}: got {got:.6g}, expected {expected:.6g}.").format(
        what=what, diff=diff, atol=atol, index=index, got=float(actual64[index]), expected=float(expected64[index])),
        hint, needs)


def equal(actual, expected, what: str, hint: str = "", needs: tuple[int, ...] = ()) -> None:
    """Fail unless ``actual == expected`` (plain values: lists, ints, strings)."""
    if actual != expected:
        fail(_("{what}: got {got}, expected {expected}.").format(what=what, got=_short(actual),
                                                                expected=_short(expected)), hint, needs)


def no_error(observed: dict, what: str, needs: tuple[int, ...] = ()):
    """The probe's ``value``; fail with the error, its TODO and the student's file and line if the code raised."""
    if "error" in observed:
        fail(f"{what}: {format_error(observed['error'], context.CURRENT.todo)}", needs=needs)
    return observed.get("value")


def raised(observed: dict, kind: str, what: str, hint: str = "") -> None:
    """Fail unless the student's code raised ``kind`` (``value_error``, ``index_error``, ``overflow``)."""
    error = observed.get("error")
    names = {"value_error": "ValueError", "index_error": "IndexError", "overflow": "CacheOverflowError"}
    if error is None:
        fail(_("{what} should raise {kind}, but it returned {value}.").format(
            what=what, kind=names[kind], value=_short(observed.get("value"), 120)), hint)
    if not error.get(kind):
        fail(_("{what} should raise {kind}, but it raised {other}: {message}.").format(
            what=what, kind=names[kind], other=error.get("type"), message=error.get("message")), hint)
