"""Warm grading: what a grading worker keeps from one submission to the next, and never gives a child.

A worker process that grades many submissions (``grade-all``'s local
workers, a Dask worker) keeps one :class:`Warm`:

- a **zygote** per assignment (:class:`kvkit.grading.remote.zygote.Zygote`), which
  has imported torch and the probe code once and forks each submission's
  child, which then enters the same jail as a cold child, before it sees the
  submission. A child never sees two submissions; the zygote never sees one.
  Only in modes where a forked child is as confined as a cold one and cannot
  reach the zygote: :data:`WARM_MODES`. In ``bwrap`` mode a process outside
  bwrap cannot fork into one, and in ``none`` mode the child shares the
  zygote's user unconfined: both start each child cold.
- a **kernel zygote** (``nbgrader autograde``'s process: :class:`kvkit.course.autograde.ConfinedKernelManager`),
  which has imported torch and ipykernel once and forks each notebook's kernel, which then enters the same jail as
  a cold kernel before it runs a cell; in the same modes.
- the **fresh inputs' draw and the reference's observations of it**
  (:class:`kvkit.grading.fresh.FreshInputs`), computed here in the trusted worker and
  shared by the worker's gradings, only where nothing a child does can reach
  a later child (:data:`SHARED_DRAW_MODES`: private scratch, every other
  mount read-only, IPC, network and pid namespaces of its own). A child sees
  the fresh inputs only in its own grading, as probe arguments; the
  observations never leave this process. Elsewhere each grading draws anew.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
from typing import TYPE_CHECKING

from ...errors import GraderError
from ...paths import Layout
from ..sandbox import isolation_mode
from .zygote import Zygote

if TYPE_CHECKING:  # (it imports torch, which the zygotes are started before: kvkit autograde)
    from ..fresh import FreshInputs

WARM_MODES = ("namespace", "uid", "userns")
SHARED_DRAW_MODES = ("namespace", "userns")


class Warm:
    """A worker's zygotes and shared draws, per assignment; :meth:`close` ends the zygotes."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode or isolation_mode()
        self.zygotes: dict[tuple[str, str], Zygote] = {}  # (assignment, kind) -> its zygote
        self.draws: dict[str, FreshInputs] = {}

    def zygote(self, layout: Layout, kind: str = "probe") -> Zygote | None:
        """The running zygote of ``kind`` (``probe``: grading children; ``kernel``: notebooks' kernels) for
        ``layout``'s assignment (started, or started again if it ended), or None where children start cold."""
        if self.mode not in WARM_MODES:
            return None
        key = (layout.assignment.name, kind)
        zygote = self.zygotes.get(key)
        if zygote is not None and not zygote.ready:  # launched: wait for it
            try:
                return zygote.wait_ready()
            except GraderError:
                del self.zygotes[key]
                raise
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.close()
            self.zygotes[key] = zygote = Zygote(layout, self.mode, kind).start()
        return zygote

    def launch(self, layout: Layout, kind: str = "probe") -> None:
        """Start the zygote of ``kind`` for ``layout``'s assignment without waiting for it (:meth:`zygote` does), so
        that several import torch at once; from a thread that outlives its use (:meth:`Zygote.spawn`)."""
        key = (layout.assignment.name, kind)
        if self.mode in WARM_MODES and key not in self.zygotes:
            self.zygotes[key] = Zygote(layout, self.mode, kind).spawn()

    def fresh_inputs(self, layout: Layout) -> FreshInputs:
        """The fresh inputs for a grading of ``layout``'s assignment: the worker's shared draw where the mode
        allows, else a draw of its own."""
        from ..fresh import FreshInputs

        if self.mode not in SHARED_DRAW_MODES:
            return FreshInputs(layout.reference)
        name = layout.assignment.name
        if name not in self.draws:
            self.draws[name] = FreshInputs(layout.reference)
        return self.draws[name]

    def close(self) -> None:
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()


_WORKER: Warm | None = None


def worker_warm() -> Warm:
    """This process's :class:`Warm` (made on first use, closed when the process exits: at the interpreter's exit, or
    at the end of a :mod:`multiprocessing` worker, which a forkserver's worker reaches without one)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = Warm()
        atexit.register(_WORKER.close)
        multiprocessing.util.Finalize(_WORKER, _WORKER.close, exitpriority=10)
    return _WORKER
