"""The grader's side of a zygote (:mod:`kvkit.grading.child.zygote`): a process with torch and the probe code (or the
Jupyter kernel) imported that forks one confined child per submission, so a grading worker pays torch's import once,
not once per submission (and ``nbgrader autograde`` once, not once per notebook's kernel).

:class:`Zygote` starts it from a harness sandbox of its own (the public probe
code, readable by every child: :func:`kvkit.grading.sandbox.harness_sandbox`) and asks
it to fork; :class:`ForkedChild` is the grader's handle of one forked child,
used as a :class:`subprocess.Popen` is (``pid``, ``poll``, ``wait``,
``returncode``, ``send_signal``, ``kill``, ``terminate``): the zygote, the child's parent, reports its pid and how it
ended on a pipe of that child's own.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time

from ...errors import GraderError
from ...paths import Layout
from ...stopping import shielded
from ..child import protocol
from ..child.boot import argv
from ..sandbox import CHILD_MANIFEST, Sandbox, harness_sandbox
from .output import OutputTail

START_TIMEOUT = 120.0  # the zygote's imports (torch), once per worker


class ForkedChild:
    """A child the zygote forked, handled like a :class:`subprocess.Popen` of it."""

    stdin = stdout = stderr = None  # its pipes are the grader's own (as a Popen's attributes, for jupyter_client)

    def __init__(self, status_fd: int, timeout: float) -> None:
        self.status_fd = status_fd
        self.returncode: int | None = None
        message = self._receive(time.monotonic() + timeout)
        if not message or not isinstance(message.get("pid"), int):
            self.returncode = -signal.SIGKILL
            os.close(status_fd)
            raise GraderError("the warm grading process did not fork a child for this submission")
        self.pid = message["pid"]

    def _receive(self, deadline: float | None) -> dict | None:
        try:
            header = protocol.read_exactly(self.status_fd, protocol.HEADER.size, deadline)
            if header is None:
                return None
            data = protocol.read_exactly(self.status_fd, protocol.HEADER.unpack(header)[0], deadline)
            return json.loads(data) if data else None
        except (OSError, ValueError):
            return None

    def _ended(self, message: dict | None) -> int:
        status = message.get("status") if isinstance(message, dict) else None
        self.returncode = os.waitstatus_to_exitcode(status) if isinstance(status, int) else -signal.SIGKILL
        os.close(self.status_fd)
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.status_fd], [], [], 0)[0]:
            self._ended(self._receive(time.monotonic() + 5))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self.status_fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired("kvkit child", timeout)
            self._ended(self._receive(None))
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # the zygote has not reaped it: the pid is still the child's
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """A zygote for ``layout``'s assignment in isolation ``mode``, of ``kind`` ``probe`` (:meth:`fork` starts a
    grading child for one sandbox) or ``kernel`` (:meth:`fork_kernel` starts a notebook's kernel).

    Processes forked from the one that started it (``kvkit autograde --jobs``'s workers) share it: each sends its
    own requests on the shared socket (one message each, each child's pipes its own); only the starter ends it."""

    def __init__(self, layout: Layout, mode: str, kind: str = "probe") -> None:
        self.layout, self.mode, self.kind = layout, mode, kind
        self.box: Sandbox | None = None
        self.proc: subprocess.Popen | None = None
        self.output = OutputTail()
        self.ready = False  # it said so (:meth:`wait_ready`)

    def start(self) -> "Zygote":
        """Start the zygote and wait until it has imported what its children need; stopped meanwhile (Ctrl-C, a stop
        signal: :mod:`kvkit.stopping`), end it and remove its harness, which no one else knows of yet."""
        self.spawn()
        try:
            return self.wait_ready()
        except BaseException:
            self.close()
            raise

    def spawn(self) -> "Zygote":
        """Start the zygote without waiting for its imports (:meth:`wait_ready`), so that several import at once.

        The zygote ends when the *thread* that called this ends (Linux's parent-death signal follows the thread):
        call it from a thread that lives as long as the zygote is used."""
        self.box = harness_sandbox(self.layout, self.mode).__enter__()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        settings = {"manifest": str(self.box.path(CHILD_MANIFEST)), "kind": self.kind}
        try:
            self.proc = subprocess.Popen(
                argv(self.box.harness, "zygote", theirs.fileno(), json.dumps(settings)), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, cwd=self.box.root, env=self.box.child_env(),
                start_new_session=True)
        except BaseException:
            mine.close()
            self.box.__exit__(None, None, None)
            raise
        finally:
            theirs.close()
            os.close(out_w)
        self.output.drain(out_r)
        self.control, self.owner, self.ready = mine, os.getpid(), False
        return self

    def wait_ready(self) -> "Zygote":
        """Wait until the zygote says it is ready; one line (and the zygote ended) if it does not start."""
        if not self.ready:
            said = b""
            if select.select([self.control], [], [], START_TIMEOUT)[0]:
                said = self.control.recv(64)
            if said != b'{"ready": true}':
                self.close()
                raise GraderError(f"the warm grading process did not start:\n{self.output.text()}")
            self.ready = True
        return self

    def alive(self) -> bool:
        if self.proc is None:
            return False
        if os.getpid() == self.owner:
            return self.proc.poll() is None
        watch = select.poll()  # a process forked from the zygote's starter: its socket to the zygote tells
        watch.register(self.control, select.POLLHUP)
        return not any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, events in watch.poll(0))

    def fork(self, box: Sandbox, config: dict, settings: dict, pipes: tuple[int, int, int],
             timeout: float) -> ForkedChild:
        """A child for ``box`` (jail ``config``, serve ``settings``) on ``pipes`` (its request, reply and output
        ends), started the way a cold child of the ``probe`` role is."""
        config = {**config, "keep": [*config["keep"], str(self.box.root)]}  # the harness its modules came from
        settings = {**settings, "manifest": str(self.box.path(CHILD_MANIFEST))}
        request = {"cwd": str(box.root), "submission": str(box.path("submission")), "config": config,
                   "settings": settings, "env": box.child_env()}
        return self._request(request, list(pipes), timeout)

    def fork_kernel(self, box: Sandbox, config: dict, info_file: str, kernel_args: list[str], output: int,
                    env: dict, timeout: float) -> ForkedChild:
        """A notebook's kernel for ``box`` (jail ``config``), writing to ``output``, started the way a cold child of
        the ``kernel`` role is (in ``box``'s work folder, with the environment ``env``)."""
        config = {**config, "keep": [*config["keep"], str(self.box.root)]}
        request = {"cwd": str(box.workdir), "config": config, "info_file": info_file, "kernel_args": kernel_args,
                   "env": env}
        return self._request(request, [output], timeout)

    def _request(self, request: dict, fds: list[int], timeout: float) -> ForkedChild:
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()], [*fds, status_w])
        except OSError as err:
            os.close(status_r)
            raise GraderError(f"the warm grading process has ended ({err.strerror})") from None
        finally:
            os.close(status_w)
        return ForkedChild(status_r, timeout)

    def close(self) -> None:
        """End the zygote (its children end with their own pipes) and remove its harness; in a process forked from
        the one that started it, only let go of it (the starter ends it)."""
        if self.proc is not None and os.getpid() != self.owner:
            self.control.close()
            self.proc = self.box = None
            return
        with shielded():  # a stop signal (kvkit.stopping) waits until the zygote and its harness are gone
            if self.proc is not None:
                self.control.close()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None
            if self.box is not None:
                self.box.__exit__(None, None, None)
                self.box = None
