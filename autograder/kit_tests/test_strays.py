"""Every process a submission starts is gone when its grading ends, in every isolation mode.

The submission (the reference) starts strays at import time, then fails to import (a quick grading: every check a
zero): a chain that keeps moving to new process ids (fork; the parent exits; the child calls ``setsid()`` and does
the same, for ever, writing a heartbeat now and then), a bounded fork bomb that fills each place a kill frees with a
new process id (together they outrun the sweep of ``/proc`` by user id that used to end a root-mode child), and a
plain double-forked daemon that ignores SIGTERM and SIGHUP. Each carries a marker in its command line, by which the
test finds it in ``/proc``. The notebook's kernel under ``nbgrader autograde``
(:class:`kvkit.course.autograde.ConfinedKernelManager`, booted through the same jail) starts the same strays from a
cell, and must leave none once it has shut down, before its sandbox is removed.

Each grading runs in a process of its own, in each mode this machine supports: as root (``namespace``, ``uid``,
and ``uid`` without ``CAP_SYS_ADMIN``, as in a container, where the kernel refuses a pid namespace and the grader
kills the child's user id instead) and as another user (``userns``, ``bwrap``; uid 65534, as in
``test_nonroot.py``, in a mount namespace in which the interpreter's folders are open to it). In each but the
container's, the student's code must run as pid 2 of a pid namespace (under the jail's init). Its parent reaps
orphans at once, as the init of most machines does (the first process of this test machine reaps them slowly, and
unreaped zombies would count against the child's process limit and stall the strays, which a sweep then catches:
not what a student would meet elsewhere).
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from hostile_support import make_submission
from kernel_support import kernel_run
from nonroot_support import USER, reachable_kit_lines, the_user_to_ourselves
from kvkit.grading.sandbox import _bwrap_works, _unshare_works
from layouts_support import PART1

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="the root modes and a second user need root (as CI has)")]
MODES = [pytest.param("namespace", marks=pytest.mark.skipif(not _unshare_works(0x20000), reason="no mount namespaces")),
         "uid", "uid-without-CAP_SYS_ADMIN", "userns",
         pytest.param("bwrap", marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not "
                                                         "installed (make setup installs it as root)"))]

# fork; the parent exits; the child leaves its session and does the same, for ever; a heartbeat every 64 hops
HOPPER = """
import os, sys, time
heartbeat, hops = sys.argv[2], 0
while True:
    try:
        if os.fork():
            os._exit(0)
    except OSError:
        time.sleep(0.001)
        continue
    os.setsid()
    hops += 1
    if hops % 64 == 0:
        try:
            with open(heartbeat, "w") as f:
                f.write(str(hops))
        except OSError:
            pass
"""
CHAINS = 1
# a bounded fork bomb that regrows: every member tries to fork now and then (the population capped by a lowered
# RLIMIT_NPROC, ten above what its user runs already); each one killed frees a place that another fills with a
# new process id, so a sweep that kills what it listed a moment ago never kills them all
HYDRA = """
import os, resource, signal, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombie of its own holds a place
uid, tasks = os.getuid(), 0
for entry in os.listdir("/proc"):
    try:
        with open("/proc/%s/status" % entry) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        if int(status["Uid"].split()[0]) == uid:
            tasks += int(status["Threads"])
    except (OSError, ValueError, KeyError):
        pass
_soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
cap = tasks + 10 if hard == resource.RLIM_INFINITY else min(hard, tasks + 10)
resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))
while True:
    try:
        if os.fork() == 0:
            os.setsid()
    except OSError:
        time.sleep(0.001)
"""
DAEMON = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
while True:
    time.sleep(1)
"""
# run by the submission's process (at import, or in a notebook cell): the strays, each double-forked and detached,
# then a wait until the first chain has hopped a while; the line it prints is in the report's notes (quoted)
START = """
import os as _os, sys as _sys, time as _time

def _kvkit_stray(_code, *_args):
    _pid = _os.fork()
    if _pid == 0:
        try:
            _os.setsid()
            if _os.fork() == 0:
                _os.execv(_sys.executable, [_sys.executable, "-I", "-S", "-c", _code, "__MARK__", *_args])
        finally:
            _os._exit(0)
    _os.waitpid(_pid, 0)

_heartbeat = _os.path.join(_os.getcwd(), "heartbeat-" + str(_os.getpid()))
for _chain in range(__CHAINS__):
    _kvkit_stray(__HOPPER__, _heartbeat + "-" + str(_chain))
_kvkit_stray(__HYDRA__)
_kvkit_stray(__DAEMON__)
_hops, _deadline = 0, _time.monotonic() + 10
while _hops < 200 and _time.monotonic() < _deadline:
    _time.sleep(0.02)
    try:
        _hops = int(open(_heartbeat + "-0").read() or 0)
    except (OSError, ValueError):
        pass
print("STRAYS RUNNING (pid %d): the first chain hopped %d times" % (_os.getpid(), _hops), flush=True)
"""


def stray_code(mark: str) -> str:
    return (START.replace("__MARK__", mark).replace("__HOPPER__", repr(HOPPER)).replace("__DAEMON__", repr(DAEMON))
            .replace("__HYDRA__", repr(HYDRA))
            .replace("__CHAINS__", str(CHAINS)))


def marked(mark: str) -> list[tuple[int, int]]:
    """``(pid, uid)`` of each live process whose command line holds ``mark`` (a zombie's is empty).

    Newest first, right after listing ``/proc``: a process that keeps hopping is caught before it has moved on.
    """
    found, needle = [], mark.encode()
    for pid in sorted((int(entry) for entry in os.listdir("/proc") if entry.isdigit()), reverse=True):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, ValueError, StopIteration):
            continue
        found.append((pid, uid))
    return found


def survivors(mark: str, settle: float = 2.0) -> list[tuple[int, int]]:
    """The marked processes still alive after up to ``settle`` seconds; none only when 40 scans in a row, over
    about half a second, saw none (one scan can miss a hopping process)."""
    deadline, clean = time.monotonic() + settle, 0
    while clean < 40:
        found = marked(mark)
        clean = 0 if found else clean + 1
        if found and time.monotonic() > deadline:
            return found
        time.sleep(0.01 if not found else 0.05)
    return []


def _kill_everything_of(uid: int) -> None:
    """SIGKILL every process of ``uid`` at once: ``kill(-1)`` run as that user (no fork slips past it)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, 9)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def kill_marked(mark: str) -> None:
    """The test's own cleanup, for strays that outlived a grading: every process of each marked process's user."""
    for _ in range(50):
        found = survivors(mark, settle=0)
        if not found:
            return
        for uid in {uid for _pid, uid in found if uid != 0}:
            _kill_everything_of(uid)
        for pid in (pid for pid, uid in found if uid == 0):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def alone_as_the_user():
    """Each test here runs things as another user and looks for that user's processes: one such test at a time."""
    with the_user_to_ourselves():
        yield


@pytest.fixture
def mark():
    value = f"kvkit-stray-{uuid.uuid4().hex}"
    yield value
    kill_marked(value)


@pytest.fixture
def workspace():
    """A folder the unprivileged user can use too (pytest's own temporary folders are closed to it)."""
    folder = Path(tempfile.mkdtemp(prefix="kvkit-strays-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# the grading's parent: reaps every orphan at once (a subreaper), exits as the grading did
REAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = subprocess.Popen(sys.argv[1:]).pid
while True:
    pid, status = os.wait()
    if pid == child:
        sys.exit(os.waitstatus_to_exitcode(status) & 255)
"""
# ``uid`` mode takes other users' access to the kit's folders away (chmod o-rwx, for good): not here, where other
# tests use them as another user
PYTHON = ["-c", "import sys, runpy, kvkit.grading.sandbox as s; s.protect_for_uid_mode = lambda paths: None; "
                "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"]


def run_as_grader(workspace: Path, mode: str, script: str, *args: str) -> subprocess.CompletedProcess:
    """``script`` (a file of Python) with ``args``, as the grader of ``mode`` would run: as root in the root modes,
    else as user 65534, with the interpreter's and the kit's folders reachable, under a reaping parent."""
    user = None if mode.startswith(("namespace", "uid")) else USER
    if user is not None:
        for path in [workspace, *workspace.rglob("*")]:
            os.chown(path, user, user, follow_symlinks=False)
    lines = reachable_kit_lines("strays")
    argv = [sys.executable, "-c", REAPER, sys.executable, *PYTHON, script, *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
    if mode == "uid-without-CAP_SYS_ADMIN":  # root as in a container without it: no namespace can be made
        argv = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--", *argv]
    lines.append(f"exec {shlex.join(argv)}")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8",
           "KVKIT_ISOLATION": mode.split("-")[0], **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    return subprocess.run(["unshare", "--mount", "sh", "-c", "\n".join(lines)], env=env, capture_output=True,
                          text=True, timeout=120, cwd="/")


def supported(mode: str) -> None:
    if mode == "bwrap" and not _bwrap_works():
        pytest.skip("bubblewrap does not work here")


@pytest.mark.parametrize("command", ["grade", "grade-all"])
@pytest.mark.parametrize("mode", MODES)
def test_no_stray_outlives_a_grading(workspace, mark, mode, command):
    """``kvkit grade`` (a cold child) and ``grade-all`` (its worker's child, forked by the worker's zygote where the
    mode allows)."""
    supported(mode)
    if command == "grade-all" and mode.startswith("uid"):  # its workers would run the chmod that PYTHON leaves out
        pytest.skip("uid mode's grader takes other users' access to the kit's folders away for good")
    sub = make_submission(PART1, workspace / "class" / "sub")
    init = sub / PART1.assignment.package / "__init__.py"  # the strays, then an import error: a quick grading
    init.write_text(init.read_text() + "\n" + stray_code(mark) + "\nraise ImportError('after the strays')\n")
    cli = workspace / "grade.py"
    cli.write_text("import sys\nfrom kvkit.cli import main\n\nif __name__ == '__main__':  # (grade-all's workers "
                   "import it)\n    sys.exit(main(sys.argv[1:]))\n")
    if command == "grade":
        results = workspace / "results.json"
        run = run_as_grader(workspace, mode, str(cli), "grade", str(sub), "--json", str(results))
    else:
        results = workspace / "grades-results" / "sub" / "results.json"
        run = run_as_grader(workspace, mode, str(cli), "grade-all", str(workspace / "class"), "--out",
                            str(workspace / "grades.csv"), "--jobs", "1", "--no-progress")
    left = survivors(mark)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(results.read_text())
    assert "STRAYS RUNNING" in report["output"], report["output"]  # the strays were started
    assert report["score"] == 0 and "after the strays" in report["tests"][0]["output"], report["tests"][0]
    assert "confined with a gap" not in report["output"], report["output"]
    assert left == [], f"processes of the submission outlived its grading in {mode} mode"
    in_namespace = "STRAYS RUNNING (pid 2)" in report["output"]  # under the jail's init
    assert in_namespace == (mode != "uid-without-CAP_SYS_ADMIN"), report["output"]


def _kernel_script(mark: str, settle: float, warm: bool) -> str:
    """Start a confined kernel as ``nbgrader autograde`` does (``warm``: forked by a kernel zygote), run the strays in
    a cell, shut it down; what the cell printed and the strays alive after the shutdown, before the sandbox is
    removed."""
    return inspect.getsource(marked) + inspect.getsource(survivors) + inspect.getsource(kernel_run) + f"""
import asyncio, json, os, sys, time
from kvkit.grading.remote.warm import Warm
from kvkit.grading.sandbox import Sandbox
from kvkit.paths import Layout

warm = Warm()
zygote = warm.zygote(Layout.named("kv_cache"), "kernel") if {warm!r} else None
code = "import sys\\nprint('TORCH ALREADY IMPORTED' if 'torch' in sys.modules else '')\\n" + {stray_code(mark)!r}
with Sandbox({{}}, shared=("ipc",)) as box:
    printed = asyncio.run(kernel_run(box, zygote, code))
    left = survivors({mark!r}, {settle!r})
warm.close()
print(json.dumps({{"printed": printed, "left": left, "mode": box.mode}}))
"""


# the jail's two ways into a pid namespace: as root (uid mode takes the same way) and in a user namespace (bwrap makes
# its own, tested with the grading above); a kernel started cold and one forked by the kernel zygote
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("mode", [MODES[0], "userns"])
def test_no_stray_outlives_the_notebooks_kernel(workspace, mark, mode, warm):
    pytest.importorskip("ipykernel")
    supported(mode)
    script = workspace / "kernel.py"
    script.write_text(_kernel_script(mark, settle=2.0, warm=warm))
    run = run_as_grader(workspace, mode, str(script))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["mode"] == mode and "STRAYS RUNNING" in out["printed"], out
    assert ("TORCH ALREADY IMPORTED" in out["printed"]) == warm, out  # forked by the zygote, or started cold
    assert out["left"] == [], f"processes started in the notebook's kernel outlived it in {mode} mode"
    assert survivors(mark) == []
