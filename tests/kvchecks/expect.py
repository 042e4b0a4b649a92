"""Assertions with messages a student can act on: which TODO, what was expected, what came back.

The TODO comes from the running check's marker (:mod:`kvchecks.context`).
A hint is a statement of the contract that the failed comparison checks, or
(``mistakes``) a diagnosis shown only when the student's observation equals
what a known mistake produces. ``needs`` names the other TODOs a whole-model
check runs (besides its ``uses`` marker); the runner then adds to the message
whether it is blocked by one of them (:mod:`kvchecks.blame`).
"""

from __future__ import annotations

import torch

from . import context, mistakes as known
from .failures import format_error, todo_label
from .i18n import _, ngettext


def _prefix() -> str:
    todo = context.CURRENT.todo
    return f"{todo_label(todo)}: " if todo is not None else ""


def fail(message: str, hint: str = "", needs: tuple[int, ...] = ()) -> None:
    text = _prefix() + message
    if hint:
        text += f"\n  {hint}"
    context.runs(needs)  # the runner's blame (kvchecks.blame) says what they mean for this failure
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


def _show(value) -> str:
    """``repr`` of ``value`` with every dict's keys in sorted order, so got and expected read alike."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (type(key).__name__, str(key)))
        return "{" + ", ".join(f"{key!r}: {_show(value[key])}" for key in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _short(value, limit: int = 300) -> str:
    text = _show(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _differ(a, b) -> bool:
    try:
        return bool(a != b)
    except Exception:  # e.g. tensors of different shapes: not equal
        return True


_MISSING = object()


def _first_difference(actual, expected, path: tuple = ()) -> tuple | None:
    """Where two nested lists or dicts first differ (dict keys in sorted order): ``(path, index, actual_container,
    expected_container)`` of the innermost ones holding the difference, or None when they are neither."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=lambda k: (type(k).__name__, str(k))):
            a, b = actual.get(key, _MISSING), expected.get(key, _MISSING)
            if a is _MISSING or b is _MISSING or _differ(a, b):
                return _first_difference(a, b, path + (key,)) or (path, key, actual, expected)
        return None
    if not (isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple))):
        return None
    for i, (a, b) in enumerate(zip(actual, expected)):
        if _differ(a, b):
            return _first_difference(a, b, path + (i,)) or (path, i, actual, expected)
    return path, min(len(actual), len(expected)), actual, expected


def _window(items, index, before: int = 3, after: int = 4) -> str:
    """The items around ``index``, ``[..., a, b, c, ...]`` where some are left out; of a dict, the entry at key
    ``index`` (or ``{}`` where it has none)."""
    if isinstance(items, dict):
        return _show({index: items[index]}) if index in items else "{}"
    start, stop = max(0, index - before), min(len(items), index + after)
    shown = [_short(item, 80) for item in items[start:stop]]
    return "[" + ", ".join((["..."] if start else []) + shown + (["..."] if stop < len(items) else [])) + "]"


def _sequence_message(what: str, actual, expected) -> str | None:
    """A message naming where two nested lists or dicts first differ and the values around it (None: neither, or
    short enough to show whole)."""
    found = _first_difference(actual, expected)
    if found is None or len(_show(actual)) + len(_show(expected)) <= 160:
        return None
    path, index, mine, right = found
    place = "".join(f"[{i!r}]" for i in path + (index,))
    if isinstance(mine, (list, tuple)) and isinstance(right, (list, tuple)) and len(mine) != len(right):
        return _("{what}: the first difference is at index {place} (length {got_length}, expected "
                 "{expected_length}): got {got}, expected {expected}.").format(
            what=what, place=place, got_length=len(mine), expected_length=len(right), got=_window(mine, index),
            expected=_window(right, index))
    return _("{what}: the first difference is at index {place}: got {got}, expected {expected}.").format(
        what=what, place=place, got=_window(mine, index), expected=_window(right, index))


def _matches(actual: torch.Tensor, expected, atol: float, rtol: float) -> bool:
    return (isinstance(expected, torch.Tensor) and tuple(actual.shape) == tuple(expected.shape)
            and bool(torch.isclose(actual.double(), expected.double(), atol=atol, rtol=rtol).all()))


def _nonfinite_message(what: str, actual: torch.Tensor, expected: torch.Tensor) -> str | None:
    """A message naming NaN or infinite values where the reference's are finite (None: there are none)."""
    finite = torch.isfinite(expected)
    nan, inf = torch.isnan(actual) & finite, torch.isinf(actual) & finite
    total = actual.numel()
    if nan.any():
        count, index = int(nan.sum()), tuple(int(i) for i in nan.nonzero()[0])
        return ngettext("{what}: {count} of {total} values is NaN (not a number) where the reference's are finite; "
                        "the first at index {index}.",
                        "{what}: {count} of {total} values are NaN (not a number) where the reference's are finite; "
                        "the first at index {index}.", count).format(what=what, count=count, total=total, index=index)
    if inf.any():
        count, index = int(inf.sum()), tuple(int(i) for i in inf.nonzero()[0])
        return ngettext("{what}: {count} of {total} values is infinite where the reference's are finite; the first "
                        "at index {index}: got {got}.",
                        "{what}: {count} of {total} values are infinite where the reference's are finite; the first "
                        "at index {index}: got {got}.", count).format(what=what, count=count, total=total, index=index,
                                                                      got=float(actual[index]))
    return None


def nonfinite_hint() -> str:
    return _("A NaN or an infinity where the reference's value is finite often comes from a softmax over a row whose "
             "scores are all -inf (every key hidden from a query: look at which entries you mask), or from inf - inf "
             "or 0 / 0.")


def close(actual, expected: torch.Tensor, what: str, *, atol: float = 1e-5, rtol: float = 1e-5, hint: str = "",
          mistakes: dict | None = None, needs: tuple[int, ...] = ()) -> None:
    """Fail unless ``actual`` is a tensor of ``expected``'s shape, equal within ``atol + rtol * |expected|``.

    ``mistakes`` maps a known mistake's name to what it observes here; when
    ``actual`` equals one of them, its hint replaces ``hint``. NaN or
    infinite values where the reference's are finite are named as such, with
    a hint about where they come from instead of ``hint``.
    """
    actual = tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(_("{what}: shape {shape}, expected {expected}.").format(what=what, shape=tuple(actual.shape),
                                                                    expected=tuple(expected.shape)), hint, needs)
    actual64, expected64 = actual.double(), expected.double()
    bad = ~torch.isclose(actual64, expected64, atol=atol, rtol=rtol, equal_nan=False)
    if not bad.any():
        return
    diagnosed = [name for name, observed in (mistakes or {}).items() if _matches(actual, observed, atol, rtol)]
    nonfinite = _nonfinite_message(what, actual64, expected64)
    if diagnosed:
        context.recognised(known.registry()[name].todo for name in diagnosed)  # the blame knows the culprit
        hint = " ".join(known.hint(name) for name in diagnosed)
    elif nonfinite:
        hint = nonfinite_hint()
    if nonfinite:
        fail(nonfinite, hint, needs)
    index = tuple(int(i) for i in bad.nonzero()[0])
    diff = float((actual64 - expected64).abs().max())
    fail(_("{what}: max |difference| from the reference {diff:.3g} (tolerance {atol:g}); first at index {index}: "
           "got {got:.6g}, expected {expected:.6g}.").format(
        what=what, diff=diff, atol=atol, index=index, got=float(actual64[index]), expected=float(expected64[index])),
        hint, needs)


def equal(actual, expected, what: str, hint: str = "", needs: tuple[int, ...] = ()) -> None:
    """Fail unless ``actual == expected`` (plain values: lists, ints, strings).

    Lists too long to show whole are reported by their first differing index
    and the values around it; dicts show their keys in sorted order.
    """
    if _differ(actual, expected):
        message = _sequence_message(what, actual, expected)
        fail(message or _("{what}: got {got}, expected {expected}.").format(what=what, got=_short(actual),
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
