"""How a ``kvkit`` command stops when it is asked to, and how the processes it starts for its work stop with it.

A command gets SIGTERM from ``kill`` or a batch system's time limit, SIGHUP when its terminal closes (an SSH session
that ends), SIGINT from Ctrl-C. Python's default for the first two ends the process at once: its sandboxes stay in
the temporary folder, and worker processes it started (``grade-all``'s, ``autograde --jobs``'s) go on as orphans,
each with a zygote that has imported torch. Here every one of them ends the command the way an error does, through
every ``finally`` (a grading's sandbox removed and its child ended, the CSV written from the grades finished so far),
then the command's ``atexit`` functions (the zygotes end), with one line and exit status 128 + the signal
(:func:`kvkit.cli.run`). A worker process follows its parent: it stops on the same signals, and gets SIGTERM when
the command ends without a chance to stop it (SIGKILL), by Linux's parent-death signal.

A cleanup that a signal must not cut short (removing a sandbox, ending a zygote) runs :func:`shielded`; a process
that is already stopping ignores further stop signals; the kit's own threads block them (:func:`main_thread_only`),
so that they interrupt the main thread's blocking calls at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class Stopped(KeyboardInterrupt):
    """The command was asked to stop by ``signum``, raised in the main thread. A ``KeyboardInterrupt``, so that pytest
    (the grader runs the checks with it) ends its session instead of counting the check that was running as failed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals(handler=None) -> None:
    """From now on SIGTERM and SIGHUP call ``handler`` (default: :func:`raise_stopped`, which raises :class:`Stopped`
    in this process's main thread); a signal the process was started ignoring (``nohup``) stays ignored."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler or raise_stopped)


_received: int | None = None  # the stop signal this process got, if any
_shields = 0  # how many cleanups (:func:`shielded`) are running
_pending: int | None = None  # a stop signal that came during one


def raise_stopped(signum: int, _frame=None) -> None:
    """The handler of :func:`stop_on_signals`: note ``signum`` (:func:`received`) and raise :class:`Stopped`; during a
    cleanup (:func:`shielded`), at its end. A process that is already stopping ignores further stop signals, which
    would cut its cleanup short."""
    global _received, _pending
    if _received is not None:
        return
    _received = signum
    if _shields:
        _pending = signum
        return
    raise Stopped(signum)


def note_stop(signum: int) -> None:
    """This process is stopping (by ``signum``) without raising :class:`Stopped`: further stop signals are ignored."""
    global _received
    if _received is None:
        _received = signum


@contextlib.contextmanager
def shielded():
    """A cleanup that a stop signal does not cut short (removing a sandbox, ending a zygote): the signal's
    :class:`Stopped` is raised when the cleanup is done."""
    global _shields, _pending
    _shields += 1
    try:
        yield
    finally:
        _shields -= 1
        if not _shields and _pending is not None:
            signum, _pending = _pending, None
            raise Stopped(signum)


def received() -> int | None:
    """The stop signal this process got (:func:`stop_on_signals`), or None."""
    return _received


def interruption() -> KeyboardInterrupt:
    """What to raise where a run was interrupted (pytest returned ``INTERRUPTED``): :class:`Stopped` if a stop
    signal came, else Ctrl-C's ``KeyboardInterrupt``."""
    return Stopped(_received) if _received is not None else KeyboardInterrupt()


def stopped_line(err: BaseException) -> tuple[str, int]:
    """What a command stopped by ``err`` (:class:`Stopped` or ``KeyboardInterrupt``) prints, with what the command
    noted it keeps (``err.add_note``), and its exit status."""
    signum = err.signum if isinstance(err, Stopped) else signal.SIGINT
    return "; ".join([f"kvkit: stopped by {signal.Signals(signum).name}", *getattr(err, "__notes__", ())]), 128 + signum


def main_thread_only() -> None:
    """Block the stop signals and SIGINT in the calling thread (one the kit starts), so that the kernel delivers them
    to the main thread, whose blocking call they interrupt: delivered to another thread, they would wait for the main
    thread's next Python instruction."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, *STOP_SIGNALS})


def follow_parent(command: int) -> None:
    """This process gets SIGTERM when ``command`` ends; if ``command`` has already gone, it stops now. Where
    ``command`` started it (from the thread that lives as long as the work), by Linux's parent-death signal; where the
    command's forkserver did (:mod:`multiprocessing.forkserver`, which lives as long as any process it forked), from a
    thread that waits for the command's end."""
    if os.getppid() == command:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != command:  # it ended meanwhile
            os.kill(os.getpid(), signal.SIGTERM)
        return
    try:
        ended = os.pidfd_open(command)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGTERM)
        return
    except OSError:  # a kernel before Linux 5.3 has no pidfds: follow the forkserver, which ends after its workers
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        return
    threading.Thread(target=_stop_when_readable, args=(ended,), name="kvkit-follow-command", daemon=True).start()


def _stop_when_readable(fd: int) -> None:
    main_thread_only()
    select.select([fd], [], [])
    os.kill(os.getpid(), signal.SIGTERM)
