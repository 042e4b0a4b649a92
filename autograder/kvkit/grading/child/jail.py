"""Confinement of the submission's process, entered by that process itself before any student code runs.

Standard library only: the sandbox copies the child's runtime into the harness
as the package ``kvchild``, and the child imports ``kvchild.jail`` and runs
:func:`enter` first thing (as root, when the grader is root), then imports
``kvchild.serve``, torch, the probes and, last, the student's ``kvcache``.
What it does, by mode:

- ``namespace``: a network namespace of its own (no network at all) and a
  private mount namespace in which the grader's secrets
  (``reference/``, ``autograder/`` with the hidden tests and goldens,
  ``.git``, the original submissions, ``/root``, every non-system
  top-level folder...) are covered by empty
  root-owned tmpfs mounts, with the interpreter's own folders bound back in;
  ``/tmp``, ``/var/tmp`` and ``/dev/shm`` become small private scratch
  space (the sandbox folder is bound back in), and so does ``work/``; every
  other mount is made read-only and System V IPC is private, so nothing a
  child writes outlives it; then a pid namespace (below) with a ``/proc`` of
  its own; then ``uid``.
- ``uid``: resource limits, a pid namespace where the kernel allows one
  (below), ``no_new_privs`` and a switch to an unprivileged user and group of
  its own (the grader has removed other users' access to the secrets
  beforehand).
- ``userns`` (a grader without root, where unprivileged user namespaces are
  allowed): a user namespace in which it is root only over namespaces of its
  own, with network, mount, IPC and pid namespaces (below), so no process
  of the grader can be named, signalled or traced; a fresh ``/proc``; the
  same covers as ``namespace`` (and ``/run``, where the grader's user
  sockets live); every other mount made read-only, so nothing the grader's
  user owns can be changed; then all capabilities dropped, so no mount can
  be undone.
- ``bwrap`` (a grader without root, with bubblewrap): the grader starts the
  child inside ``bwrap`` (:func:`kvkit.grading.sandbox.bwrap_command`), as pid 1 of
  bwrap's pid namespace; here the limits, and the jail's init stays pid 1
  while the rest runs as pid 2 (:func:`become_pid_2`).
- ``none``: resource limits only.

The pid namespace (:func:`enter_pid_namespace`): the process the grader
started stays outside it and waits; pid 1 inside is a minimal init of the
jail's (it reaps orphans, passes signals on, and exits when the student's
process does); the student's code runs as pid 2. When pid 1 ends, for
whatever reason, the kernel kills every process in the namespace, however
often they forked, detached or changed sessions: nothing the student's code
started outlives the child, and the grader ends a child by killing its pid 1.

It returns what it did and which of the paths it was asked to check it
could still read (``exposed``), checked after the switch.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import select
import shutil
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 15, 24, 38
CAPABILITY_VERSION_3 = 0x20080522
# statvfs flags of a mount -> the mount flags a read-only remount must keep (a locked flag cannot be dropped)
KEPT_FLAGS = [(os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
              (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)]


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as f:
                count += any(line.startswith("Uid:") and int(line.split()[1]) == uid for line in f)
        except (OSError, ValueError):
            continue
    return count


def set_limits(config: dict, own_uid: bool) -> None:
    """Memory (address space), file size, core dumps, open files, CPU seconds and processes.

    With a user of its own the process limit is ``nproc``; sharing the
    grader's user (``userns``), it is ``nproc`` more than that user runs now;
    in ``bwrap``'s user namespace, ``nproc`` more than run in it (the kernel
    counts a user's processes per user namespace, and the limit holds at
    each level).
    """
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead of killing
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, config.get("fsize")),
              (resource.RLIMIT_AS, config.get("memory")), (resource.RLIMIT_NOFILE, config.get("nofile")),
              (resource.RLIMIT_CPU, config.get("cpu"))]
    if own_uid:
        limits.append((resource.RLIMIT_NPROC, config.get("nproc")))
    elif config.get("mode") in ("userns", "bwrap") and config.get("nproc"):  # in bwrap, /proc and the count are the
        limits.append((resource.RLIMIT_NPROC, _processes_of(os.getuid()) + config["nproc"]))  # namespace's own
    for which, value in limits:
        if value is None:
            continue
        _soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def _mount(libc, source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _call(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), f"mount {target}")


def _cover(libc, path: str, keep: list[str], mode: str, size: str, gid: int | None = None) -> None:
    """Mount an empty tmpfs on ``path``, then bind the folders of ``keep`` that lie under it back in."""
    inner = sorted(k for k in keep if k.startswith(path.rstrip("/") + "/") and os.path.isdir(k))
    fds = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY)) for k in inner]
    owner = f",uid=0,gid={gid}" if gid is not None else ""
    _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}{owner}")
    for k, fd in fds:
        os.makedirs(k, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC, None)
        os.close(fd)


def _mount_own_proc(libc, cover: bool = False) -> list[str]:
    """In a private mount namespace, from the init of a new pid namespace: a ``/proc`` that shows only that
    namespace's processes (with ``cover``, where it cannot: an empty folder instead of the grader's)."""
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE, None)
    if libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0:
        return []
    if cover:
        _cover(libc, "/proc", [], "0555", "64k")  # the old /proc would show the grader's processes: hide it
    return ["no /proc of its own"]


def enter_namespace(config: dict) -> tuple[bool, list[str]]:
    """``namespace`` mode (root): whether the network is gone, and what could not be done.

    Besides the covers, every mount but the scratch folders, ``work/`` and the
    folders shared with the grader is made read-only and System V IPC is
    private, so a child leaves nothing behind for the next one (a world-writable
    ``/run/lock``, a shared memory segment) even where it could write as its
    own user."""
    libc = ctypes.CDLL(None, use_errno=True)
    network = config.get("network", False) or libc.unshare(CLONE_NEWNET) != 0  # no network: only a downed loopback
    problems = [] if libc.unshare(CLONE_NEWIPC) == 0 else ["no IPC namespace of its own"]
    _call(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE, None)
    keep = [os.path.realpath(p) for p in config.get("keep", [])]
    for path in sorted({os.path.realpath(p) for p in config.get("hide", [])}, key=len, reverse=True):
        if os.path.isdir(path):
            _cover(libc, path, keep, "0755", "64k")
    for path in config.get("scratch", []):
        if os.path.isdir(path):
            _cover(libc, path, keep, "1777", config.get("scratch_size", "64m"))
    writable = [p for p in config.get("scratch", []) if os.path.isdir(p)] + ["/proc"]
    for path in config.get("writable", []):  # folders the grader shares with the child: mounts of their own
        _mount(libc, path, path, None, MS_BIND, None)
        writable.append(path)
    if config.get("workdir") and config.get("gid") is not None:  # the only place it may write: small, in memory
        _cover(libc, config["workdir"], [], "0770", config.get("scratch_size", "64m"), gid=int(config["gid"]))
        writable.append(config["workdir"])
    problems += [f"could not make {p} read-only" for p in _make_read_only(libc, writable)]
    return not network, problems


def drop_privileges(uid: int, gid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise RuntimeError("could not drop root privileges")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


# Signals the jail's two outer processes pass on to the one that runs the student's code (each exactly once: the
# namespace's processes are in a process group of their own, so a signal to the grader's group reaches only the
# process outside, which passes it on).
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
INIT_NAME = "kvkit:{pid}"  # the process outside names itself so (its comm): the grader reads the init's pid there


def _close_fds_but(*keep: int) -> None:
    """Close every file descriptor from 3 up but ``keep`` (the grader's pipes stay with the student's process)."""
    last = 3
    for fd in sorted(keep):
        os.closerange(last, fd)
        last = fd + 1
    os.closerange(last, 65536)


def enter_pid_namespace(libc, flags: int = 0, prepare=None) -> list[str]:
    """Go on as the second process of a new pid namespace whose first one is a minimal init; what ``prepare``
    (run by that init before it starts this process) reported.

    ``unshare(CLONE_NEWPID | flags)`` moves only the children into the new
    namespace, so there are three processes:

    - this process stays outside: it waits for the init, passes the
      signals of :data:`FORWARDED` on to it, kills it if the grader (its
      parent) goes away, and ends as the student's process ended (exit code
      or signal, which the init hands it through a pipe);
    - its child is pid 1 of the namespace: it dies with the process outside
      (``PR_SET_PDEATHSIG``), leaves the grader's process group, reaps every
      orphan, passes the signals on to pid 2, and exits as soon as pid 2 ends,
      upon which the kernel kills every process left in the namespace, however
      often they forked or detached (a pid namespace cannot outlive its init);
    - pid 2 returns from here and runs the student's code, with ordinary
      signal handling (it is not an init) and no way to name or signal any
      process outside the namespace.
    """
    _call(libc.unshare(CLONE_NEWPID | flags), "unshare(CLONE_NEWPID)")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED, signal.SIGCHLD})  # taken by sigwaitinfo, below
    status_r, status_w = os.pipe()  # the init -> the process outside: how pid 2 ended
    alive_r, alive_w = os.pipe()  # held by the process outside: its end (EOF) tells the init to go
    init = os.fork()
    if init:
        try:
            os.close(status_w)
            os.close(alive_r)
            _wait_outside(libc, init, status_r, alive_w)
        finally:
            os._exit(1)  # never back into the caller, which would go on as the student's process
    try:
        os.close(status_r)
        os.close(alive_w)
        _call(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if select.select([alive_r], [], [], 0)[0]:  # the process outside ended before the line above
            os._exit(1)
        os.setpgid(0, 0)
        try:
            problems = list(prepare() if prepare else ())
        except OSError as err:
            problems = [f"pid namespace: {err}"]
        worker = os.fork()
    except BaseException:
        os._exit(1)
    if worker == 0:
        os.close(alive_r)
        os.close(status_w)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return problems
    try:
        _close_fds_but(status_w)
        _serve_as_init(libc, worker, status_w)
    finally:
        os._exit(1)


def become_pid_2(libc) -> None:
    """Already pid 1 of a pid namespace (``bwrap --as-pid-1``): go on as pid 2, with this process staying behind as
    the namespace's init (:func:`_serve_as_init`)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED, signal.SIGCHLD})
    worker = os.fork()
    if worker == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return
    try:
        _close_fds_but()  # only the student's process speaks to the grader
        _serve_as_init(libc, worker, None)
    finally:
        os._exit(1)


def _serve_as_init(libc, worker: int, status_w: int | None) -> None:
    """Pid 1: reap every child, pass signals on to ``worker``, and exit as soon as ``worker`` has ended.

    Not dumpable: no process of the namespace can read its memory or its
    ``/proc`` entries (its environment), even under the same user."""
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    while True:
        info = signal.sigwaitinfo({*FORWARDED, signal.SIGCHLD})
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(worker, info.si_signo)
            except OSError:
                pass
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(1)
            if pid == 0:
                break
            if pid == worker:
                if status_w is not None:
                    os.write(status_w, str(status).encode())
                code = os.waitstatus_to_exitcode(status)
                os._exit(code if code >= 0 else 128 - code)


def _wait_outside(libc, init: int, status_r: int, alive_w: int) -> None:
    """The process outside the namespace: wait for the init, pass signals on to it, end as the student's process
    ended. It kills the init if its own parent (the grader, or nbgrader's kernel manager) goes away."""
    _close_fds_but(status_r, alive_w)  # only the namespace's processes speak to the grader
    libc.prctl(PR_SET_NAME, INIT_NAME.format(pid=init).encode(), 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    parent = os.getppid()
    while True:
        info = signal.sigtimedwait({*FORWARDED, signal.SIGCHLD}, 1.0)
        if info is None:  # once a second: is the grader still there?
            if os.getppid() != parent:
                os.kill(init, signal.SIGKILL)
            continue
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(init, info.si_signo)
            except OSError:
                pass
            continue
        pid, status = os.waitpid(init, os.WNOHANG)
        if pid == init:
            break
    try:
        status = int(os.read(status_r, 64) or status)  # pid 2's own status (unless the init was killed first)
    except (OSError, ValueError):
        pass
    if os.WIFSIGNALED(status):  # end by the same signal (SIGKILL, SIGSEGV...), so the grader reports it
        number = os.WTERMSIG(status)
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL has no handler to reset
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {number})
        os.kill(os.getpid(), number)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _mount_points() -> list[tuple[int, str]]:
    """``(mount id, mount point)`` of every mount this process sees, from ``/proc/self/mountinfo`` (octal escapes
    decoded)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            points.append((int(fields[0]), fields[4].encode().decode("unicode_escape")))
    return points


def _reached_mount(path: str) -> int | None:
    """The id of the mount that ``path`` leads to now (``None`` where this cannot be told)."""
    try:
        fd = os.open(path, os.O_PATH)
    except OSError:
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            found = re.search(r"^mnt_id:\s*(\d+)", f.read(), re.MULTILINE)
        return int(found.group(1)) if found else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _make_read_only(libc, writable: list[str]) -> list[str]:
    """Remount every mount read-only but those of ``writable``; the mount points that refused.

    A mount hidden under a later one (a folder covered by a tmpfs) is out of reach and left alone.
    """
    refused = []
    keep = {os.path.realpath(p) for p in writable}
    for mount_id, point in sorted(set(_mount_points()), key=lambda entry: len(entry[1])):
        if point in keep or not os.path.isdir(point) and not os.path.isfile(point):
            continue
        if _reached_mount(point) not in (mount_id, None):
            continue
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue
        if flags & os.ST_RDONLY:
            continue
        kept = sum(mount_flag for stat_flag, mount_flag in KEPT_FLAGS if flags & stat_flag)
        if libc.mount(None, point.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | kept, None) != 0:
            refused.append(point)
    return refused


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities(libc) -> None:
    """No capability left, now or after an ``execve`` (empty bounding set), and ``no_new_privs``."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    data = (_CapData * 2)()
    _call(libc.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), data), "capset")
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def enter_user_namespace(config: dict) -> dict:
    """``userns`` mode, for a grader without root; what it could not do comes back in the dict."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    _call(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC),
          "unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    problems = enter_pid_namespace(libc, prepare=lambda: _mount_own_proc(libc, cover=True))
    keep = [os.path.realpath(p) for p in config.get("keep", [])]
    for path in sorted({os.path.realpath(p) for p in config.get("hide", [])}, key=len, reverse=True):
        if os.path.isdir(path):
            _cover(libc, path, keep, "0755", "64k")
    scratch = [p for p in config.get("scratch", []) if os.path.isdir(p)]
    for path in scratch:
        _cover(libc, path, keep, "1777", config.get("scratch_size", "64m"))
    writable = [*scratch, "/proc"]
    for path in config.get("writable", []):  # folders the grader shares with the child: mounts of their own
        _mount(libc, path, path, None, MS_BIND, None)
        writable.append(path)
    if config.get("workdir"):
        _cover(libc, config["workdir"], [], "0700", config.get("scratch_size", "64m"))
        writable.append(config["workdir"])
    problems += [f"could not make {p} read-only" for p in _make_read_only(libc, writable)]
    _drop_capabilities(libc)
    return {"problems": problems}


def exposed(paths: list[str]) -> list[str]:
    """The paths this process can still read: a file it can open, a folder it can list with anything in it."""
    found = []
    for path in paths:
        try:
            if os.path.isdir(path):
                if os.listdir(path):
                    found.append(path)
            else:
                with open(path, "rb") as f:
                    f.read(1)
                found.append(path)
        except OSError:
            pass
    return found


def enter_root_pid_namespace(mode: str) -> tuple[bool, list[str]]:
    """Root modes: the rest runs as pid 2 of a pid namespace of its own (see :func:`enter_pid_namespace`), with a
    ``/proc`` of its own where a mount namespace allows; whether that worked, and what went wrong.

    ``namespace`` mode is in a private mount namespace already. ``uid`` mode
    (root without mount namespaces, usually without ``CAP_SYS_ADMIN``, so
    without pid namespaces either) tries a mount namespace just for ``/proc``,
    then a pid namespace alone (``/proc`` then still lists the machine's
    processes under their outer numbers, as before; what matters, that the
    namespace's processes die with its init, holds), then nothing: the grader
    kills the child's user id then (:func:`kvkit.grading.sandbox.kill_uid`).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    tries = [(0, lambda: _mount_own_proc(libc))] if mode == "namespace" else \
        [(CLONE_NEWNS, lambda: _mount_own_proc(libc)), (0, None)]
    failed = []
    for flags, prepare in tries:
        try:
            return True, enter_pid_namespace(libc, flags, prepare)
        except OSError as err:
            failed.append(str(err))
    return False, [f"no pid namespace ({failed[-1]}): strays are killed by user id"] if mode == "namespace" else []


def enter(config: dict) -> dict:
    """Confine this process as ``config["mode"]`` says; what was done and what is still readable."""
    mode = config.get("mode", "none")
    own_uid = mode in ("namespace", "uid") and os.geteuid() == 0
    set_limits(config, own_uid)
    offline, problems, pidns = False, [], False
    if mode == "namespace" and os.geteuid() == 0:
        offline, problems = enter_namespace(config)
    if own_uid:
        pidns, more = enter_root_pid_namespace(mode)
        problems += more
    elif mode == "userns":
        problems = enter_user_namespace(config)["problems"]
        offline = pidns = True
    elif mode == "bwrap":
        offline = pidns = True  # bwrap gave it network, mount, pid and user namespaces of their own
        if os.getpid() == 1:  # bwrap --as-pid-1: the jail's init stays pid 1, the student's code runs as pid 2
            become_pid_2(ctypes.CDLL(None, use_errno=True))
    if own_uid:
        drop_privileges(int(config["uid"]), int(config["gid"]))
    if config.get("workdir"):
        os.chdir(config["workdir"])
        for entry in os.scandir(config["seed"]) if config.get("seed") else ():  # what it starts with, in its
            copy = shutil.copytree if entry.is_dir() else shutil.copyfile  # fresh and empty working folder
            copy(entry.path, os.path.join(config["workdir"], entry.name))
    confined = own_uid or mode in ("userns", "bwrap")
    return {"mode": mode if confined or mode == "none" else "none", "uid": os.getuid(), "offline": offline,
            "pid_namespace": pidns, "problems": problems, "exposed": exposed(config.get("check", []))}
