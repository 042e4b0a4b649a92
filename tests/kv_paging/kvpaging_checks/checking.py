"""Comparisons the tests of several TODOs share: refusals with ``OutOfBlocks``, where a pool entry belongs, the
hints of known mistakes."""

from __future__ import annotations

import torch

from kvchecks import context, expect, mistakes as known
from kvchecks.i18n import _

from .common import entry


def out_of_blocks(step: dict, what: str, hint: str) -> None:
    """Fail unless the student's code raised ``OutOfBlocks``."""
    error = step.get("error")
    if error is None:
        expect.fail(_("{what} should raise OutOfBlocks, but it returned {value!r}.").format(
            what=what, value=step.get("value")), hint)
    if not error.get("out_of_blocks"):
        expect.fail(_("{what} should raise OutOfBlocks, but it raised {other}: {message}.").format(
            what=what, other=error.get("type"), message=error.get("message")), hint)


def raised(step: dict, kind: str, what: str, hint: str) -> None:
    """Fail unless the student's code raised ``kind`` (``ValueError``, ``KeyError``, ``IndexError``)."""
    error = step.get("error")
    if error is None:
        expect.fail(_("{what} should raise {kind}, but it returned {value!r}.").format(
            what=what, kind=kind, value=step.get("value")), hint)
    if error.get("type") != kind and not (kind == "ValueError" and error.get("value_error")) and not (
            kind == "IndexError" and error.get("index_error")):
        expect.fail(_("{what} should raise {kind}, but it raised {other}: {message}.").format(
            what=what, kind=kind, other=error.get("type"), message=error.get("message")), hint)


def pool_entry(value: float, fill: float) -> str:
    """What one pool entry holds, in words."""
    found = entry(value, fill)
    if value == fill:
        return _("the initial value {fill:g}").format(fill=fill)
    if found is None:
        return f"{value:g}"
    kind, seq, position = found
    if kind == "key":
        return _("the key of sequence {seq}, position {position}").format(seq=seq, position=position)
    return _("the value of sequence {seq}, position {position}").format(seq=seq, position=position)


def pool_difference(got, want, fill: float) -> str:
    """Where two pools ``[L, NB, Hkv, bs, hd]`` first differ, and what each holds there ("" when equal)."""
    wrong = (got != want).nonzero()
    if not len(wrong):
        return ""
    layer, block, head, slot, _dim = (int(i) for i in wrong[0])
    index = tuple(int(i) for i in wrong[0])
    return _("layer {layer}, block {block}, slot {slot} (head {head}) holds {got} where {meant} belongs").format(
        layer=layer, block=block, slot=slot, head=head, got=pool_entry(float(got[index]), fill),
        meant=pool_entry(float(want[index]), fill))


def mistake_hint(seen: dict, pick, got) -> str:
    """The hints of the known mistakes (``seen``: name -> observation) whose ``pick(observation)`` equals ``got``,
    or ``""``; the blame learns of them."""
    names = [name for name, observed in seen.items() if _same(pick(observed), got)]
    if names:
        context.recognised(known.registry()[name].todo for name in names)
    return " ".join(known.hint(name) for name in names)


def _same(a, b) -> bool:
    try:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and \
                bool((a == b).all())
        return a == b
    except Exception:  # values that do not compare: not the same
        return False
