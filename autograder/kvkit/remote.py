"""Run probes in a child process that holds the student's code; the grader only reads its replies.

The child imports the submission; this process never does. Replies are
JSON (see ``kvchecks.codec``), checked here before they are decoded, so
nothing the child sends can run code here or make this process allocate
much. The child first confines itself (``kvjail``: its own user, hidden
secrets, memory and file-size limits), reports ``{"booted": info}``, then
imports the student's ``kvcache``. What it prints goes through a pipe into a
bounded buffer (:class:`OutputTail`), never into a file or the report in
full.

Timeouts: a probe that runs past ``timeout`` seconds is killed with the
child's whole process group (and every process of its user); once a probe
of a TODO has timed out, that TODO's later probes get ``retry_timeout``
(the reference needs a few milliseconds each), a call that timed out or
killed the child is not run again, and the whole submission has a
``budget``. A warm spare child is kept once one has been lost, so a
restart costs no torch import.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

from kvchecks import codec, context, protocol
from .paths import ASSIGNMENT
from kvchecks.failures import StudentCodeError, format_error, format_import_error
from kvchecks.timing import TimeoutPolicy

from .sandbox import kill_uid

PACKAGE = ASSIGNMENT.package

BOOT = ("import sys, json; sys.path.insert(0, sys.argv[4]); import kvjail; info = kvjail.enter(json.loads(sys.argv[5])); "
        "from kvchecks import protocol; from kvchecks.child import serve; "
        "protocol.send(int(sys.argv[2]), {'booted': info}); serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])")
MAX_REPLY = 64 * 1024 * 1024
MAX_ELEMENTS = 4 * 1024 * 1024  # per tensor in a reply; the checks' tensors have a few thousand
_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}


class GraderError(RuntimeError):
    """The grading machinery itself failed (not the student's code)."""


class ProbeLost(StudentCodeError):
    """The child timed out or died during a call; ``timed_out`` says which."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class OutputTail:
    """What the child processes printed: the byte count, the first ``head`` and the last ``tail`` bytes."""

    def __init__(self, head: int = 2048, tail: int = 8192) -> None:
        self.head_limit, self.tail_limit = head, tail
        self.head, self.tail = bytearray(), bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def drain(self, fd: int) -> threading.Thread:
        def run():
            try:
                while chunk := os.read(fd, 1 << 16):
                    self.add(chunk)
            except OSError:
                pass
            finally:
                os.close(fd)

        thread = threading.Thread(target=run, name="kvkit-child-output", daemon=True)
        thread.start()
        return thread

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = self.head_limit - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk[-self.tail_limit:]
            del self.tail[:-self.tail_limit]

    def text(self, limit: int = 1500) -> str:
        """The last ``limit`` characters printed (after the head when little was printed)."""
        with self.lock:
            data = bytes(self.head + self.tail) if self.total <= self.head_limit + self.tail_limit else bytes(self.tail)
        return data.decode(errors="replace")[-limit:]


def _check_reply(data, depth: int = 0) -> None:
    """``ValueError`` unless every tensor in ``data`` is well formed and small (checked before decoding)."""
    if depth > 40:
        raise ValueError("reply nested too deeply")
    if isinstance(data, list):
        for item in data:
            _check_reply(item, depth + 1)
    elif isinstance(data, dict):
        if "__tensor__" in data:
            dtype, shape, raw = data.get("__tensor__"), data.get("shape"), data.get("data")
            if dtype not in _ITEMSIZE or not isinstance(shape, list) or not isinstance(raw, str):
                raise ValueError("malformed tensor in reply")
            if not all(type(s) is int and 0 <= s <= MAX_ELEMENTS for s in shape) or len(shape) > 8:
                raise ValueError("malformed tensor shape in reply")
            count = 1
            for s in shape:
                count *= s
            if count > MAX_ELEMENTS:
                raise ValueError(f"tensor of {count} elements in reply (limit {MAX_ELEMENTS})")
            if len(base64.b64decode(raw, validate=True)) != count * _ITEMSIZE[dtype]:
                raise ValueError("tensor data does not match its shape")
        else:
            for value in data.values():
                _check_reply(value, depth + 1)


class SubmissionProcess:
    """One child process serving probes for one sandbox."""

    def __init__(self, box, output: OutputTail, memory_bytes: int | None, boot_timeout: float,
                 import_timeout: float) -> None:
        self.box, self.output = box, output
        self.memory_bytes = memory_bytes
        self.boot_timeout, self.import_timeout = boot_timeout, import_timeout
        self.proc: subprocess.Popen | None = None
        self.ready: dict | None = None
        self.info: dict | None = None
        self.uid: int | None = None

    def start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        out_r, out_w = os.pipe()
        self.uid = self.box.new_uid()
        config = json.dumps(self.box.jail_config(self.memory_bytes, self.uid))
        try:
            self.proc = subprocess.Popen(
                self.box.command([sys.executable, "-I", "-u", "-c", BOOT, str(to_child_r), str(from_child_w),
                                  str(self.box.path("submission")), str(self.box.harness), config]),
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                cwd=self.box.root, env=self.box.child_env(), start_new_session=True,
            )
        finally:
            for fd in (to_child_r, from_child_w, out_w):
                os.close(fd)
        self.output.drain(out_r)
        self.write_fd, self.read_fd = to_child_w, from_child_r
        self.started = time.monotonic()
        self.ready = None

    def _receive(self, timeout: float) -> dict | None:
        """The next message; None if the child closed its end; ``TimeoutError``; ``ValueError`` if malformed."""
        deadline = time.monotonic() + timeout
        header = protocol.read_exactly(self.read_fd, protocol.HEADER.size, deadline)
        if header is None:
            return None
        (size,) = protocol.HEADER.unpack(header)
        if size > MAX_REPLY:
            raise ValueError(f"a reply of {size} bytes is over the {MAX_REPLY} byte limit")
        data = protocol.read_exactly(self.read_fd, size, deadline)
        if data is None:
            return None
        try:
            message = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise ValueError(f"not JSON: {str(err)[:100]}")
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
        return message

    def handshake(self) -> dict:
        """``{"ready": True}`` or ``{"import_error": "..."}`` (waits for the child's start and imports)."""
        if self.ready is not None:
            return self.ready
        try:
            booted = self._receive(max(1.0, self.boot_timeout - (time.monotonic() - self.started)))
        except (TimeoutError, ValueError) as err:
            booted = None
            why = f"{type(err).__name__}: {err}"
        else:
            why = "it ended"
        if not booted or not isinstance(booted.get("booted"), dict):
            code = self.stop()
            raise GraderError(f"the grading process did not start ({why}, exit code {code}):\n{self.output.text()}")
        self.info = booted["booted"]
        try:
            reply = self._receive(self.import_timeout)
        except TimeoutError:
            self.stop()
            reply = {"import_error": f"importing {PACKAGE} failed: timed out after {self.import_timeout:g} s "
                                     f"(an endless loop at import time?)"}
        except ValueError as err:
            self.stop()
            reply = {"import_error": f"importing {PACKAGE} failed: the submission's process sent a broken message: {err}"}
        if reply is None:
            code = self.stop()
            reply = {"import_error": f"importing {PACKAGE} failed: the submission's process ended (exit code {code}) "
                                     f"(sys.exit or os._exit at import time?)"}
        if "import_error" in reply:
            err = reply["import_error"]
            if isinstance(err, dict):
                reply = {"import_error": format_import_error(err)}
        elif reply.get("ready") is not True:
            self.stop()
            reply = {"import_error": f"importing {PACKAGE} failed: the submission's process sent an unexpected message"}
        self.ready = reply
        return reply

    def request(self, probe: str, args: dict, timeout: float) -> dict:
        try:
            protocol.send(self.write_fd, {"probe": probe, "args": codec.to_jsonable(args)})
        except OSError:
            code = self.stop()
            raise ProbeLost(f"the submission's process ended (exit code {code}) before {probe} could run", False)
        try:
            reply = self._receive(timeout)
        except TimeoutError:
            self.stop()
            raise ProbeLost(f"timed out after {timeout:g} s while running {probe} (an endless loop?)", True)
        except ValueError as err:
            self.stop()
            raise ProbeLost(f"the submission's process sent a broken reply while running {probe}: {err}", False)
        if reply is None:
            code = self.stop()
            raise ProbeLost(f"the submission's process ended (exit code {_describe_exit(code)}) while running "
                            f"{probe} (sys.exit/os._exit, a crash, or the memory limit?)", False)
        return reply

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """Kill the child and everything it started; its exit code."""
        if self.proc is None:
            return None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.uid is not None:
            kill_uid(self.uid)  # whatever it forked, even outside its process group
        code = self.proc.wait()
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        return code


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"{code}, {signal.Signals(-code).name}"
        except ValueError:
            pass
    return str(code)


class RemoteBackend:
    """The ``probe`` fixture for grading: ``backend(name, **args)`` runs the probe in the child.

    ``spawn()`` makes a new (not yet started) :class:`SubmissionProcess`.
    Time limits follow :class:`kvchecks.timing.TimeoutPolicy`, for the TODO
    of the check that is running (``kvchecks.context``).
    """

    def __init__(self, spawn: Callable[[], SubmissionProcess], timeout: float, retry_timeout: float | None = None,
                 budget: float | None = None, memory_note: str = "a limited amount") -> None:
        self.spawn = spawn
        self.memory_note = memory_note
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
            raise StudentCodeError(self.import_error)
        self.start()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise StudentCodeError(f"not run: the grading time limit ({self.budget:g} s) was used up by earlier checks "
                                   "that timed out")
        args = codec.from_jsonable(codec.to_jsonable(args))
        why = self.policy.lost(probe, args)
        if why is not None:
            raise StudentCodeError(f"{why} (the same call, made by an earlier check)")
        try:
            ready = self.active.handshake()
        except GraderError as err:  # not the student's doing: the grader stops, it does not fail the checks
            self.grader_error = err
            self.close()
            raise
        self.info = self.info or self.active.info
        if "import_error" in ready:
            self.import_error = ready["import_error"]
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
                message += f"\n  (the submission's process may use {self.memory_note} of memory)"
            raise StudentCodeError(message)
        try:
            if "ok" not in reply:
                raise ValueError("no result in it")
            _check_reply(reply["ok"])
            return codec.from_jsonable(reply["ok"])
        except (ValueError, TypeError, KeyError, RecursionError) as err:
            # something other than the probe code wrote into the pipe: the process cannot be trusted to stay in step
            raise self._lose(probe, args, f"the submission's process sent an unreadable reply to {probe}: {err}",
                             False) from None

    def close(self) -> None:
        for process in (self.active, self.spare):
            if process is not None:
                process.stop()
        self.active = self.spare = None
