"""Run probes in a child process that holds the student's code; the grader only reads its replies.

The child imports the submission; this process never does. Replies are
JSON (see ``kvchecks.codec``), so nothing the child sends can run code here.
A probe that hangs is killed after ``timeout`` seconds and the child is
restarted for the next check; a child that dies costs only the check that
was running.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from kvchecks import codec, protocol
from kvchecks.backends import StudentCodeError

BOOT = "import sys; sys.path.insert(0, sys.argv[4]); from kvchecks.child import serve; serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])"


class SubmissionProcess:
    """One child process serving probes for one submission folder."""

    def __init__(self, submission: Path, harness: Path, workdir: Path, log: Path, startup_timeout: float) -> None:
        self.submission, self.harness, self.workdir, self.log = submission, harness, workdir, log
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.ready: dict | None = None

    def start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOT, str(to_child_r), str(from_child_w), str(self.submission),
                 str(self.harness)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.workdir, start_new_session=True,
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self.write_fd, self.read_fd = to_child_w, from_child_r
        self.ready = None

    def handshake(self) -> dict:
        """``{"ready": True}`` or ``{"import_error": ...}`` (waits for the child's imports)."""
        if self.ready is None:
            self.ready = self.receive(self.startup_timeout, "starting and importing the submission")
        return self.ready

    def receive(self, timeout: float, doing: str) -> dict:
        readable, _, _ = select.select([self.read_fd], [], [], timeout)
        if not readable:
            self.stop()
            raise StudentCodeError(f"timed out after {timeout:g} s while {doing} (an endless loop?)")
        try:
            reply = protocol.receive(self.read_fd)
        except (ValueError, OSError) as err:
            self.stop()
            raise StudentCodeError(f"the submission's process sent a broken reply while {doing}: {err}")
        if reply is None:
            code = self.stop()
            raise StudentCodeError(f"the submission's process ended (exit code {code}) while {doing}")
        return reply

    def request(self, probe: str, args: dict, timeout: float) -> dict:
        try:
            protocol.send(self.write_fd, {"probe": probe, "args": codec.to_jsonable(args)})
        except OSError:
            code = self.stop()
            raise StudentCodeError(f"the submission's process ended (exit code {code}) before {probe} could run")
        return self.receive(timeout, f"running {probe}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """Kill the child and everything it started; its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = self.proc.wait()
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        return code


class RemoteBackend:
    """The ``probe`` fixture for grading: ``backend(name, **args)`` runs the probe in the child."""

    def __init__(self, process: SubmissionProcess, timeout: float) -> None:
        self.process = process
        self.timeout = timeout
        self.import_error: str | None = None

    def start(self) -> None:
        if not self.process.alive():
            self.process.start()

    def __call__(self, probe: str, **args):
        if self.import_error is None:
            self.start()
            ready = self.process.handshake()
            if "import_error" in ready:
                err = ready["import_error"]
                self.process.stop()
                self.import_error = f"importing kvcache failed: {err.get('type')}: {err.get('message')}"
        if self.import_error is not None:
            raise StudentCodeError(self.import_error)
        reply = self.process.request(probe, args, self.timeout)
        if "error" in reply:
            err = reply["error"]
            raise StudentCodeError(f"{err.get('type')}: {err.get('message')}\n{_student_frames(err.get('traceback', ''))}")
        if "ok" not in reply:
            raise StudentCodeError(f"the submission's process sent an unexpected reply to {probe}")
        return codec.from_jsonable(reply["ok"])

    def close(self) -> None:
        self.process.stop()


def _student_frames(text: str) -> str:
    """The traceback lines that point into the student's kvcache package (the rest is the grader's)."""
    lines = text.splitlines()
    keep = [i for i, line in enumerate(lines) if "/kvcache/" in line and line.lstrip().startswith("File ")]
    return "\n".join(line for i in keep for line in lines[i:i + 2])
