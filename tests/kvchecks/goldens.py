"""Saved reference observations: the expected side of every comparison.

A golden file (``goldens.json`` beside the tests that use it) maps a probe
call, written as canonical JSON of its name and arguments (and, for the
observations of a known mistake, the mistake's name), to what the reference
implementation observed. Only instructors write them (``kvkit goldens``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from . import mistakes as known
from .i18n import _


def key(probe: str, args: dict, mistake: str | None = None) -> str:
    """The canonical text of one probe call (made by the reference, or by the package with ``mistake``)."""
    from . import codec  # (torch: not imported with the plugin, which a run's bad options stop first)

    call = {"probe": probe, "args": codec.to_jsonable(args)}
    if mistake is not None:
        call["mistake"] = mistake
    return json.dumps(call, sort_keys=True, separators=(",", ":"))


def published(observation):
    """``observation`` as a golden file keeps it: the description of an exception the reference raised loses its
    message and its source lines (the checks compare only what kind of error was raised, and the lines are the
    reference's own code, which a public golden file must not show): its frames, the TODO's frame and its caller's."""
    if isinstance(observation, dict):
        if "frames" in observation and "type" in observation:
            return {k: v for k, v in observation.items() if k not in ("frames", "message", "todo_frame", "caller")}
        return {k: published(v) for k, v in observation.items()}
    if isinstance(observation, list):
        return [published(v) for v in observation]
    return observation


class MissingGolden(LookupError):
    """The goldens hold no reference output for a call: the kit's own files are out of date, not the student's code."""


class GoldenFile:
    """One ``goldens.json``, read on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._saved: dict | None = None

    def lookup(self, probe: str, args: dict, mistake: str | None = None):
        if self._saved is None:
            self._saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        entry = self._saved.get(key(probe, args, mistake))
        if entry is None:
            if mistake:
                raise MissingGolden(_("{path} has no reference output for {probe}({args}) with mistake {mistake}: "
                                    "instructors run `kvkit goldens`").format(path=self.path, probe=probe, args=args,
                                                                              mistake=mistake))
            raise MissingGolden(_("{path} has no reference output for {probe}({args}): instructors run `kvkit "
                                "goldens`").format(path=self.path, probe=probe, args=args))
        from . import codec

        return codec.from_jsonable(entry)

    def write(self, entries: dict[str, object]) -> None:
        """Replace the file with ``entries`` (``key -> observation``), each as :func:`published` keeps it."""
        from . import codec

        data = {k: codec.to_jsonable(published(v)) for k, v in sorted(entries.items())}
        self.path.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")


class Expected:
    """The ``expected`` fixture: ``expected(probe, **args)`` is the reference's observation of that call;
    ``expected.mistakes(probe, **args)`` maps each known mistake of that probe to what it observes there.

    ``observe(probe, args, mistake)`` supplies them (saved goldens, the live
    reference, a recorder); without ``diagnose`` there are no mistakes to
    compare with.
    """

    def __init__(self, observe: Callable[[str, dict, str | None], object], diagnose: bool = True) -> None:
        self._observe = observe
        self.diagnose = diagnose

    def __call__(self, probe: str, **args):
        return self._observe(probe, args, None)

    def mistakes(self, probe: str, **args) -> dict[str, object]:
        """Known mistake -> its observation of this call (left out: a mistake that crashed there, or none at all)."""
        if not self.diagnose:
            return {}
        observed = {m.name: self._observe(probe, args, m.name) for m in known.for_probe(probe)}
        return {name: seen for name, seen in observed.items() if seen is not None}
