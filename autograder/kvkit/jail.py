"""Confinement of the submission's process, entered by that process itself before any student code runs.

Standard library only: the sandbox copies this file next to the harness as
``kvjail.py``, and the child runs :func:`enter` first thing (as root, when
the grader is root), then imports torch, the probes and, last, the student's
``kvcache``. What it does, by mode:

- ``namespace``: a network namespace of its own (no network at all) and a
  private mount namespace in which the grader's secrets
  (``reference/``, ``autograder/`` with the hidden tests and goldens,
  ``.git``, the original submissions, ``/root``, every non-system
  top-level folder...) are covered by empty
  root-owned tmpfs mounts, with the interpreter's own folders bound back in;
  ``/tmp``, ``/var/tmp`` and ``/dev/shm`` become small private scratch
  space (the sandbox folder is bound back in), and so does ``work/``; then
  ``uid``.
- ``uid``: resource limits, ``no_new_privs`` and a switch to an unprivileged
  user and group of its own (the grader has removed other users' access to
  the secrets beforehand).
- ``none``: resource limits only (the grader is not root).

It returns what it did and which of the paths it was asked to check it
could still read (``exposed``), checked after the switch.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def set_limits(config: dict, own_uid: bool) -> None:
    """Memory (address space), file size, core dumps, open files, CPU seconds and, with a user of its own, processes."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead of killing
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, config.get("fsize")),
              (resource.RLIMIT_AS, config.get("memory")), (resource.RLIMIT_NOFILE, config.get("nofile")),
              (resource.RLIMIT_CPU, config.get("cpu"))]
    if own_uid:
        limits.append((resource.RLIMIT_NPROC, config.get("nproc")))
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


def enter_namespace(config: dict) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    network = config.get("network", False) or libc.unshare(CLONE_NEWNET) != 0  # no network: only a downed loopback
    _call(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE, None)
    keep = [os.path.realpath(p) for p in config.get("keep", [])]
    for path in sorted({os.path.realpath(p) for p in config.get("hide", [])}, key=len, reverse=True):
        if os.path.isdir(path):
            _cover(libc, path, keep, "0755", "64k")
    for path in config.get("scratch", []):
        if os.path.isdir(path):
            _cover(libc, path, keep, "1777", config.get("scratch_size", "64m"))
    if config.get("workdir") and config.get("gid") is not None:  # the only place it may write: small, in memory
        _cover(libc, config["workdir"], [], "0770", config.get("scratch_size", "64m"), gid=int(config["gid"]))
    return not network


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


def enter(config: dict) -> dict:
    """Confine this process as ``config["mode"]`` says; what was done and what is still readable."""
    mode = config.get("mode", "none")
    own_uid = mode in ("namespace", "uid") and os.geteuid() == 0
    set_limits(config, own_uid)
    offline = False
    if mode == "namespace" and os.geteuid() == 0:
        offline = enter_namespace(config)
    if own_uid:
        drop_privileges(int(config["uid"]), int(config["gid"]))
    if config.get("workdir"):
        os.chdir(config["workdir"])
    return {"mode": mode if own_uid or mode == "none" else "none", "uid": os.getuid(), "offline": offline,
            "exposed": exposed(config.get("check", []))}
