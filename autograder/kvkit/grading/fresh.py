"""When grading, every check runs twice: on the published inputs, then on inputs drawn now.

The published inputs and the reference's observations of them ship to
students (``tests/goldens.json``), so code that recognises them could replay
the answers. The second run redraws each probe call's seeds, prompts and
synthetic values (:func:`kvchecks.fresh.redraw`, from a key drawn per
grading) and compares with what the reference observes on those inputs,
computed here, in the grading process, which the student's code cannot
reach. A check earns its points only when both runs pass; a failure on the
fresh inputs alone says so.
"""

from __future__ import annotations

import inspect
import math
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

import pytest

from kvchecks import context
from kvchecks.backends import InProcessBackend
from kvchecks.failures import StudentCodeError, todo_label
from kvchecks.fresh import redraw
from kvchecks.goldens import Expected, GoldenFile, key
from kvchecks.i18n import N_, _

ATTEMPTS = 3  # draws per check: a draw whose greedy choices sit near a tie is replaced
MIN_MARGIN = 1e-3  # top-2 logit gap the reference needs for greedy token ids to be compared
FRESH_ONLY = N_("passes on the published inputs but not on fresh ones (new seeds and values, the same shapes and "
                "schedules): does your code depend on the test's values?")  # shown as _(FRESH_ONLY)


class RedrawInputs(Exception):
    """The reference's greedy choices on this draw are too close to a tie to be compared."""


class FreshInputs:
    """The grader's ``probe`` and ``expected``, which follow the current draw, and the check runner."""

    def __init__(self, reference: Path, draw_key: str | None = None) -> None:
        self.secret = draw_key or os.environ.get("KVKIT_FRESH_KEY") or secrets.token_hex(8)
        self.reference_folder = Path(reference)
        self.draw_key: str | None = None  # None: the published inputs
        self._reference: InProcessBackend | None = None
        self._observed: dict[str, object] = {}
        self._goldens: dict[Path, GoldenFile] = {}

    @contextmanager
    def drawing(self, attempt: int):
        self.draw_key = f"{self.secret}:{attempt}"
        try:
            yield
        finally:
            self.draw_key = None

    def probe(self, backend):
        """``backend`` behind a ``probe(name, **args)`` that redraws the arguments during a fresh run."""
        def run(probe: str, **args):
            return backend(probe, **(redraw(probe, args, self.draw_key) if self.draw_key else args))
        return run

    def _reference_observation(self, probe: str, args: dict):
        call = key(probe, args)
        if call not in self._observed:
            if self._reference is None:
                self._reference = InProcessBackend(self.reference_folder, trusted=True)
            self._observed[call] = self._reference(probe, **args)
        return self._observed[call]

    def expected(self, folder: Path) -> Expected:
        """``expected`` for the checks in ``folder``: their goldens, or the reference on the current draw."""
        golden = self._goldens.setdefault(Path(folder), GoldenFile(Path(folder) / "goldens.json"))

        def observe(probe: str, args: dict, mistake: str | None):
            if self.draw_key is None:
                return golden.lookup(probe, args, mistake)
            if mistake is not None:  # mistakes are diagnosed on the published inputs only
                return None
            observed = self._reference_observation(probe, redraw(probe, args, self.draw_key))
            if isinstance(observed, dict) and observed.get("margin", math.inf) < MIN_MARGIN:
                raise RedrawInputs()
            return observed

        return Expected(observe)

    def run_check(self, item: pytest.Function) -> None:
        """Run the test function on the published inputs, then (if it runs probes) on fresh ones."""
        kwargs = {name: item.funcargs[name] for name in inspect.signature(item.obj).parameters}
        item.obj(**kwargs)
        if "probe" not in kwargs:
            return
        for attempt in range(ATTEMPTS):
            try:
                with self.drawing(attempt):
                    item.obj(**kwargs)
                return
            except RedrawInputs:
                continue
            except (AssertionError, StudentCodeError) as err:
                todo = context.CURRENT.todo
                prefix = f"{todo_label(todo)}: " if todo is not None else ""
                raise AssertionError(f"{prefix}{_(FRESH_ONLY)}\n  " + _("On the fresh inputs: {error}").format(
                    error=err)) from None
        raise RuntimeError(f"{item.nodeid}: {ATTEMPTS} fresh draws in a row were too close to a tie to compare")
