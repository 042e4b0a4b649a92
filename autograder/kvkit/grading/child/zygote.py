"""The zygote: a process that has imported torch (and the probe code, or the Jupyter kernel), and forks one confined
child per submission.

Started by a grading worker as ``kvchild.boot``'s ``zygote`` role, unconfined
(it runs no student code: it never imports a submission, never answers a
probe, never runs a cell). Its ``kind`` says what it forks:

- ``probe`` (a grading worker): it imports what every probe child needs
  before its submission (torch, the harness's ``kvchecks``, the assignment's
  probes, :mod:`kvchild.serve`). A request carries four file descriptors: the
  child's request pipe, reply pipe, output pipe and a status pipe; the child
  goes on exactly as a cold child of the ``probe`` role would
  (:func:`kvchild.boot.probe`: the jail first, then the submission).
- ``kernel`` (``nbgrader autograde``): it imports torch, ipykernel and the
  libraries a notebook's setup and demo cells import (:data:`KERNEL_LIBRARIES`:
  matplotlib's font list is built once here instead of in every kernel),
  nothing of the kit's checks (a notebook imports its own copy of them). A request
  carries two: the kernel's output pipe and a status pipe; the child goes on
  exactly as a cold child of the ``kernel`` role would
  (:func:`kvchild.boot.kernel`: the jail first, then the notebook's kernel).

Each request is one JSON message with its descriptors attached (``SCM_RIGHTS``).
For each, it forks: the child starts a session of its own, keeps only its
pipes and never comes back here. The zygote writes the child's pid, and later
how it ended, on the status pipe (the grader's handle of the child:
:class:`kvkit.grading.remote.zygote.ForkedChild`), and keeps nothing of it.

What a child does cannot reach the zygote: the fork happens before the jail,
so the child's memory is a copy; in its jail the child runs as another user
or in namespaces where the zygote has no name; its pipes are its own. The
zygote is not dumpable, and it ends when the grader does (its parent-death
signal, and its socket's end).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket

from . import protocol

PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
MAX_REQUEST = 1 << 20
FDS = {"probe": 4, "kernel": 2}  # a request's descriptors, by the zygote's kind
KERNEL_LIBRARIES = ("numpy", "pytest", "matplotlib.pyplot")  # those a notebook lacks are left to it


def preload(settings: dict) -> None:
    """Import everything a child needs before its submission (never the submission)."""
    import torch

    if settings.get("kind") == "kernel":
        import importlib

        import ipykernel.kernelapp  # noqa: F401 (imported for the kernels)

        for name in KERNEL_LIBRARIES:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        from . import jail  # noqa: F401
        return
    from kvchecks import assignment, codec, failures, i18n  # noqa: F401 (imported for the children)

    from . import jail, serve  # noqa: F401

    torch.set_num_threads(1)
    assignment.use(settings["manifest"])
    assignment.current().probe_table()


def run(control_fd: int, settings: dict) -> None:
    """Serve fork requests on ``control_fd`` until the grader closes it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    control = socket.socket(fileno=control_fd)
    if os.getppid() == 1:  # the grader ended before the line above
        return
    preload(settings)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid -> its status pipe
    kind = settings.get("kind", "probe")
    control.send(b'{"ready": true}')  # one packet (the socket keeps message boundaries)
    while True:
        ready = select.select([control, wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(children)
        if control in ready:
            try:
                data, fds, _flags, _addr = socket.recv_fds(control, MAX_REQUEST, FDS[kind])
            except OSError:
                data, fds = b"", []
            if not data:
                return
            if len(fds) != FDS[kind]:
                for fd in fds:
                    os.close(fd)
                continue
            request = json.loads(data)
            pid = os.fork()
            if pid == 0:
                _child(control, kind, fds, request)
            for fd in fds[:-1]:
                os.close(fd)
            children[pid] = fds[-1]
            _tell(fds[-1], {"pid": pid})
            _reap(children)


def _tell(fd: int, message: dict) -> None:
    try:
        protocol.send(fd, message)
    except OSError:
        pass  # the grader gave up on this child


def _reap(children: dict[int, int]) -> None:
    """Write how each ended child ended on its status pipe, and forget it."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = children.pop(pid, None)
        if fd is not None:
            _tell(fd, {"status": status})
            os.close(fd)


def _child(control: socket.socket, kind: str, fds: list[int], request: dict) -> None:
    """The forked child: its own session, its pipes as its only descriptors, then the ``probe`` or ``kernel`` role.
    Never returns (a child that came back here would be a second zygote)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.detach()  # closed below with every other descriptor of the zygote's
        if kind == "probe":
            to_child, from_child, output, _status = fds
            pipes = [to_child, from_child]
        else:
            (output, _status), pipes = fds, []
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        last = 3
        for fd in sorted(pipes):
            if fd > last:  # an empty range is skipped
                os.closerange(last, fd)
            last = fd + 1
        os.closerange(last, 65536)
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # as a cold child is: its jail decides the rest
        os.environ.clear()
        os.environ.update(request["env"])  # its own HOME and TMPDIR, as a cold child's
        os.chdir(request["cwd"])
        from . import boot

        if kind == "kernel":
            boot.kernel(request["config"], request["info_file"], request["kernel_args"])
        else:
            boot.probe(*pipes, request["submission"], request["config"], request["settings"])
        code = 0
    except BaseException:  # noqa: BLE001 (reported by the grader from the pipes; never back into the zygote)
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)
