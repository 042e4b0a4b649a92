"""The ``probe`` backend of grading: each probe runs in a child process, under the timeout policy, with a warm
spare child once one has been lost."""

from __future__ import annotations

import time
from typing import Callable

from kvchecks import codec, context
from kvchecks.failures import StudentCodeError, format_error
from kvchecks.i18n import N_, _
from kvchecks.timing import TimeoutPolicy

from ...errors import GraderError
from .process import ProbeLost, SubmissionProcess
from .replies import check_reply


class RemoteBackend:
    """The ``probe`` fixture for grading: ``backend(name, **args)`` runs the probe in the child.

    ``spawn()`` makes a new (not yet started) :class:`SubmissionProcess`.
    Time limits follow :class:`kvchecks.timing.TimeoutPolicy`, for the TODO
    of the check that is running (``kvchecks.context``).
    """

    def __init__(self, spawn: Callable[[], SubmissionProcess], timeout: float, retry_timeout: float | None = None,
                 budget: float | None = None, memory_note: str | None = None) -> None:
        self.spawn = spawn
        self.memory_note = memory_note or N_("a limited amount")  # "1536 MB", or translated where shown
        self.policy = TimeoutPolicy(timeout, retry_timeout or timeout)
        self.budget = budget
        self.deadline: float | None = None
        self.active: SubmissionProcess | None = None
        self.spare: SubmissionProcess | None = None
        self.import_error: str | None = None
        self.grader_error: GraderError | None = None
        self.timeouts = self.crashes = 0
        self.info: dict | None = None

    def start(self) -> None:
        if self.deadline is None and self.budget:
            self.deadline = time.monotonic() + self.budget
        if self.active is None and self.import_error is None:
            self.active = self.spare or self._new()
            self.spare = None
            if self.timeouts or self.crashes:  # one was lost before: keep the next one booting meanwhile
                self.spare = self._new()

    def _new(self) -> SubmissionProcess:
        process = self.spawn()
        process.start()
        return process

    def _lose(self, probe: str, args: dict, why: str, timed_out: bool) -> StudentCodeError:
        """Forget the child that failed this call (a spare takes over) and the error to raise."""
        if timed_out:
            self.timeouts += 1
        else:
            self.crashes += 1
        self.policy.record_loss(probe, args, context.CURRENT.todo, why, timed_out)
        if self.active is not None:
            self.active.stop()
        self.active = None
        if self.spare is None and self.import_error is None:
            self.spare = self._new()
        return StudentCodeError(why)

    def __call__(self, probe: str, **args):
        if self.grader_error is not None:
            raise self.grader_error
        if self.import_error is not None:
            context.import_failed()
            raise StudentCodeError(self.import_error)
        self.start()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise StudentCodeError(_("not run: the grading time limit ({budget:g} s) was used up by earlier checks "
                                     "that timed out").format(budget=self.budget))
        args = codec.from_jsonable(codec.to_jsonable(args))
        why = self.policy.lost(probe, args)
        if why is not None:
            raise StudentCodeError(_("{why} (the same call, made by an earlier check)").format(why=why))
        try:
            ready = self.active.handshake()
        except GraderError as err:  # not the student's doing: the grader stops, it does not fail the checks
            self.grader_error = err
            self.close()
            raise
        self.info = self.info or self.active.info
        if "import_error" in ready:
            self.import_error = ready["import_error"]
            context.import_failed()
            self.close()
            raise StudentCodeError(self.import_error)
        timeout = self.policy.limit(context.CURRENT.todo)
        if self.deadline is not None:
            timeout = max(0.1, min(timeout, self.deadline - time.monotonic()))
        try:
            reply = self.active.request(probe, args, timeout)
        except ProbeLost as err:
            raise self._lose(probe, args, str(err), err.timed_out) from None
        if "error" in reply and isinstance(reply["error"], dict):
            message = format_error(reply["error"], context.CURRENT.todo)
            if str(reply["error"].get("type")) == "MemoryError" or "can't allocate memory" in message:
                message += "\n  " + _("(the submission's process may use {amount} of memory)").format(
                    amount=_(self.memory_note))
            raise StudentCodeError(message)
        try:
            if "ok" not in reply:
                raise ValueError(_("no result in it"))
            check_reply(reply["ok"])
            return codec.from_jsonable(reply["ok"])
        except (ValueError, TypeError, KeyError, RecursionError) as err:
            # something other than the probe code wrote into the pipe: the process cannot be trusted to stay in step
            raise self._lose(probe, args, _("the submission's process sent an unreadable reply during this check: "
                                            "{error}").format(probe=probe, error=err), False) from None

    def close(self) -> None:
        for process in (self.active, self.spare):
            if process is not None:
                process.stop()
        self.active = self.spare = None
