"""One child process serving probes for one sandbox: started confined, it boots, imports the submission and
answers one request at a time; a call that times out or kills it is reported as :class:`ProbeLost`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

from kvchecks import codec
from kvchecks.failures import StudentCodeError, format_import_error
from kvchecks.i18n import _

from ...errors import GraderError
from ..child import protocol
from ..child.boot import argv
from ..child.jail import INIT_NAME
from ..sandbox import CHILD_MANIFEST, kill_uid
from .output import OutputTail
from .replies import receive_reply

class ProbeLost(StudentCodeError):
    """The child timed out or died during a call; ``timed_out`` says which."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class SubmissionProcess:
    """One child process serving probes for one grading sandbox (:func:`kvkit.grading.sandbox.submission_sandbox`), of
    the assignment whose package is ``package``, its messages in ``lang``: started cold (a new interpreter, the
    ``probe`` role of :mod:`kvkit.grading.child.boot`), or forked by ``zygote``
    (:class:`kvkit.grading.remote.zygote.Zygote`), which then brings the harness."""

    def __init__(self, box, output: OutputTail, memory_bytes: int | None, boot_timeout: float,
                 import_timeout: float, package: str, lang: str, zygote=None) -> None:
        self.box, self.output, self.zygote = box, output, zygote
        self.package, self.lang = package, lang
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
        config = self.box.jail_config(self.memory_bytes, self.uid)
        self.started = time.monotonic()
        try:
            if self.zygote is not None:
                self.proc = self.zygote.fork(self.box, config, self.settings(), (to_child_r, from_child_w, out_w),
                                             self.boot_timeout)
            else:
                self.proc = subprocess.Popen(
                    self.box.command(argv(self.box.harness, "probe", to_child_r, from_child_w,
                                          self.box.path("submission"), json.dumps(config),
                                          json.dumps(self.settings()))),
                    pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                    cwd=self.box.root, env=self.box.child_env(), start_new_session=True,
                )
        except BaseException:
            os.close(to_child_w)
            os.close(from_child_r)
            os.close(out_r)
            raise
        finally:
            for fd in (to_child_r, from_child_w, out_w):
                os.close(fd)
        self.output.drain(out_r)
        self.write_fd, self.read_fd = to_child_w, from_child_r
        self.ready = None

    def settings(self) -> dict:
        """What the child serves with (:func:`kvchild.serve.serve`): its assignment's manifest, as the child sees it
        (the sandbox's copy), and the language of its messages."""
        return {"manifest": str(self.box.path(CHILD_MANIFEST)), "lang": self.lang}

    def handshake(self) -> dict:
        """``{"ready": True}`` or ``{"import_error": "..."}`` (waits for the child's start and imports)."""
        if self.ready is not None:
            return self.ready
        try:
            booted = receive_reply(self.read_fd, max(1.0, self.boot_timeout - (time.monotonic() - self.started)))
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
            reply = receive_reply(self.read_fd, self.import_timeout)
        except TimeoutError:
            self.stop()
            reply = {"import_error": _("importing {package} failed: timed out after {seconds:g} s (an endless loop "
                                       "at import time?)").format(package=self.package, seconds=self.import_timeout)}
        except ValueError as err:
            self.stop()
            reply = {"import_error": _("importing {package} failed: the submission's process sent a broken message: "
                                       "{error}").format(package=self.package, error=err)}
        if reply is None:
            code = self.stop()
            reply = {"import_error": _("importing {package} failed: the submission's process ended (exit code "
                                       "{code}) (sys.exit or os._exit at import time?)").format(package=self.package,
                                                                                                code=code)}
        if "import_error" in reply:
            err = reply["import_error"]
            if isinstance(err, dict):
                reply = {"import_error": format_import_error(err)}
        elif reply.get("ready") is not True:
            self.stop()
            reply = {"import_error": _("importing {package} failed: the submission's process sent an unexpected "
                                       "message").format(package=self.package)}
        self.ready = reply
        return reply

    def request(self, probe: str, args: dict, timeout: float) -> dict:
        try:
            protocol.send(self.write_fd, {"probe": probe, "args": codec.to_jsonable(args)})
        except OSError:
            code = self.stop()
            raise ProbeLost(_("the submission's process ended (exit code {code}) before this check could call your code").format(
                code=code, probe=probe), False)
        try:
            reply = receive_reply(self.read_fd, timeout)
        except TimeoutError:
            self.stop()
            raise ProbeLost(_("timed out after {seconds:g} s in your code during this check (an endless loop?)").format(
                seconds=timeout, probe=probe), True)
        except ValueError as err:
            self.stop()
            raise ProbeLost(_("the submission's process sent a broken reply during this check: {error}").format(
                probe=probe, error=err), False)
        if reply is None:
            code = self.stop()
            raise ProbeLost(_("the submission's process ended (exit code {code}) during this check "
                              "(sys.exit/os._exit, a crash, or the memory limit?)").format(code=_describe_exit(code),
                                                                                          probe=probe), False)
        return reply

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """Kill the child and everything it started; its exit code.

        In every confined mode but ``bwrap`` the child runs in a pid namespace
        of its own under the jail's init (:func:`kvchild.jail.enter_pid_namespace`):
        killing that init ends every process in the namespace at once, and the
        process this one started exits only after that. A child that has ended by
        itself is given a moment to report how.
        """
        if self.proc is None:
            return None
        if self._reply_pipe_closed():
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        while self.proc.poll() is None:  # again, for a child killed while it was still entering its jail
            _kill(self.proc)
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.wait()
        if self.uid is not None:
            kill_uid(self.uid)  # a fallback: whatever still runs as the child's user (nothing, with a pid namespace)
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        return code

    def _reply_pipe_closed(self) -> bool:
        """Whether every process that could write to the reply pipe has closed it (the child ended by itself)."""
        try:
            poller = select.poll()
            poller.register(self.read_fd, select.POLLIN)
            return any(event & select.POLLHUP for _fd, event in poller.poll(0))
        except (OSError, ValueError):
            return False


def namespace_init(pid: int) -> int | None:
    """The first process of the pid namespace the jail made below process ``pid`` (named in ``pid``'s comm), or
    ``None`` (no such namespace: ``none`` and ``bwrap`` modes, or not made yet)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            name = f.read().strip()
        prefix = INIT_NAME.split("{")[0]
        if not name.startswith(prefix):
            return None
        init = int(name[len(prefix):])
        with open(f"/proc/{init}/status") as f:
            status = dict(line.split(":", 1) for line in f if line.startswith(("PPid:", "NSpid:")))
        if int(status["PPid"]) == pid and status["NSpid"].split()[-1] == "1":
            return init
    except (OSError, ValueError, KeyError):
        pass
    return None


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child: its pid namespace's init first, where it has one (the kernel then kills every process in
    the namespace before that init is gone, and the process outside follows it), else its process group."""
    init = namespace_init(proc.pid)
    if init is not None:
        try:
            os.kill(init, signal.SIGKILL)
            proc.wait(timeout=5)
            return
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap's init dies with bwrap (--die-with-parent), and its namespace
    except (ProcessLookupError, PermissionError):
        pass


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"{code}, {signal.Signals(-code).name}"
        except ValueError:
            pass
    return str(code)
