"""A throw-away folder from which the submission runs, and the confinement settings of its process.

Layout: ``submission/kvcache/`` (a copy of the student's package),
``harness/kvchecks/`` (the public probe code) and ``harness/kvjail.py``
(:mod:`kvkit.jail`), ``work/`` (the child's working directory, the only
place it may write). The reference solution, the hidden tests and their
goldens are never copied in.

When the grader runs as root, the child runs as a user and group of its own
(fresh numeric ids: a group per sandbox, so two submissions graded at once
cannot read each other, and a user per child process, so every process it
starts can be found and killed): the copies are owned by root and readable
by that group only; ``work/`` is writable by that group. Isolation modes (see :mod:`kvkit.jail`):
``namespace`` (root and mount namespaces allowed: the secrets are covered
with empty mounts), ``uid`` (root only: other users lose access to the
grader's folders by ``chmod o-rwx``), ``none`` (not root: the child runs as
the grader's user; the report says so). ``KVKIT_ISOLATION`` forces one.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import UsageError
from .paths import HIDDEN_TESTS, REFERENCE, ROOT

HARNESS = ROOT / "tests" / "kvchecks"
JAIL = Path(__file__).resolve().parent / "jail.py"
MAX_PACKAGE_BYTES = 20 * 1024 * 1024
MAX_PACKAGE_FILES = 500
MODES = ("namespace", "uid", "none")


def _ignore_caches(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def check_package(package: Path) -> None:
    """``UsageError`` for a package with links, too many files or too many bytes (a submission is code)."""
    count = size = 0
    for path in package.rglob("*"):
        if "__pycache__" in path.parts:
            continue
        if path.is_symlink():
            raise UsageError(f"{path} is a symbolic link: submit plain files only")
        if path.is_file():
            count += 1
            size += path.stat().st_size
    if count > MAX_PACKAGE_FILES:
        raise UsageError(f"{package} holds {count} files, over the limit of {MAX_PACKAGE_FILES}: submit only code")
    if size > MAX_PACKAGE_BYTES:
        raise UsageError(f"{package} holds {size} bytes, over the {MAX_PACKAGE_BYTES} byte limit: submit only code")


def interpreter_dirs() -> list[str]:
    """The folders the child's Python needs: its prefixes and site-packages (never the kit's own folders)."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    dirs.update(site.getsitepackages())
    out = set()
    for d in dirs:
        real = os.path.realpath(d)
        if os.path.isdir(real) and not _under(real, str(ROOT / "autograder")) and not _under(real, str(ROOT / "tests")):
            out.add(real)
    return sorted(out)


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _world_reachable(path: str) -> bool:
    """Whether a user with no special rights can reach and read ``path`` (every parent searchable)."""
    parts = Path(path).resolve().parts
    for i in range(1, len(parts) + 1):
        mode = os.stat(os.path.join(*parts[:i])).st_mode
        if not mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


@functools.lru_cache(maxsize=None)
def _namespaces_work() -> bool:
    code = "import ctypes; l = ctypes.CDLL(None, use_errno=True); raise SystemExit(l.unshare(0x20000) != 0)"
    try:
        return subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def isolation_mode() -> str:
    """The strongest mode this process can use (or ``KVKIT_ISOLATION``, when set)."""
    forced = os.environ.get("KVKIT_ISOLATION", "auto")
    if forced in MODES:
        return forced
    if os.geteuid() != 0:
        return "none"
    if _namespaces_work():
        return "namespace"
    if all(_world_reachable(d) for d in interpreter_dirs()):
        return "uid"
    return "none"


def secret_paths(extra: list[Path] = ()) -> list[str]:
    """Folders the child must not read: the kit's repository (reference, hidden tests, goldens, git), homes, ``extra``."""
    paths = [str(ROOT), "/root", "/home", *(str(Path(p).resolve()) for p in extra)]
    return [p for p in dict.fromkeys(paths) if os.path.isdir(p)]


# Top-level folders a child may keep seeing in ``namespace`` mode; every other one (``/work``, ``/opt``,
# ``/srv``, ``/mnt``, ... where another copy of the kit or other courses may lie) is covered.
SYSTEM_DIRS = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "sys", "run", "var",
               "tmp"}


def foreign_top_dirs() -> list[str]:
    """``namespace`` mode: every top-level folder but the system's (the interpreter's folders are bound back)."""
    return sorted(str(p) for p in Path("/").iterdir()
                  if p.name not in SYSTEM_DIRS and p.is_dir() and not p.is_symlink())


def check_paths(extra: list[Path] = ()) -> list[str]:
    """What the child tries to read after confinement; any it can read is reported as exposed."""
    paths = [str(REFERENCE), str(REFERENCE / "kvcache" / "cache.py"), str(HIDDEN_TESTS),
             str(HIDDEN_TESTS / "goldens.json"), str(ROOT / ".git"), str(ROOT / "autograder"),
             *(str(Path(p).resolve()) for p in extra)]
    return [p for p in dict.fromkeys(paths) if os.path.exists(p)]


def protect_for_uid_mode(paths: list[str]) -> None:
    """``uid`` mode: remove other users' access to the folders under each path (the interpreter's excepted)."""
    keep = interpreter_dirs()
    for top in paths:
        candidates = [Path(top)] if not any(_under(k, top) for k in keep) else list(Path(top).iterdir())
        for path in candidates:
            if path.is_symlink() or not path.is_dir() or any(_under(k, str(path)) for k in keep):
                continue
            mode = path.stat().st_mode
            if mode & 0o007:
                os.chmod(path, stat.S_IMODE(mode) & ~0o007)


class Sandbox:
    """Context manager: copies a submission and the harness into a temporary folder, removes it on exit.

    ``source`` is a folder holding ``kvcache/`` (see :mod:`kvkit.inputs`);
    ``hide`` adds folders the child must not read (e.g. all the submissions
    of a batch).
    """

    def __init__(self, source: Path, hide: list[Path] = (), mode: str | None = None) -> None:
        self.source = Path(source)
        self.package = self.source / "kvcache"
        if not (self.package / "__init__.py").is_file():
            raise UsageError(f"{self.source} holds no kvcache package (expected {self.package}/__init__.py)")
        self.hide = [Path(p) for p in hide]
        self.mode = mode or isolation_mode()
        self.gid = None
        self.uids: list[int] = []
        if self.mode != "none":
            self.gid = random.SystemRandom().randint(200_000, 899_999)

    def __enter__(self) -> "Sandbox":
        check_package(self.package)
        self.root = Path(tempfile.mkdtemp(prefix="kvkit-grade-"))
        try:
            self.submission = self.root / "submission"
            self.harness = self.root / "harness"
            self.workdir = self.root / "work"
            shutil.copytree(self.package, self.submission / "kvcache", ignore=_ignore_caches, symlinks=True)
            shutil.copytree(HARNESS, self.harness / "kvchecks", ignore=_ignore_caches)
            shutil.copy(JAIL, self.harness / "kvjail.py")
            self.workdir.mkdir()
            if self.mode != "none":
                self._set_owners()
            if self.mode == "uid":
                protect_for_uid_mode(secret_paths(self.hide))
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def _set_owners(self) -> None:
        os.chown(self.root, 0, self.gid)
        os.chmod(self.root, 0o750)
        for top in (self.submission, self.harness):
            for dirpath, dirnames, filenames in os.walk(top):
                os.chown(dirpath, 0, self.gid)
                os.chmod(dirpath, 0o750)
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    os.chown(path, 0, self.gid, follow_symlinks=False)
                    if not os.path.islink(path):
                        os.chmod(path, 0o640)
        os.chown(self.workdir, 0, self.gid)
        os.chmod(self.workdir, 0o770)

    def new_uid(self) -> int | None:
        """A fresh user id for one child process (None without isolation): strays are killed by user id."""
        if self.mode == "none":
            return None
        uid = random.SystemRandom().randint(200_000, 899_999)
        self.uids.append(uid)
        return uid

    def jail_config(self, memory_bytes: int | None, uid: int | None) -> dict:
        """What ``kvjail.enter`` gets: mode, ids, limits, what to cover and what to check."""
        return {
            "mode": self.mode, "uid": uid, "gid": self.gid, "workdir": str(self.workdir),
            "memory": memory_bytes, "fsize": 64 * 1024 * 1024, "nofile": 1024, "nproc": 256,
            "cpu": 900,  # a child orphaned by a killed grader cannot spin for ever
            "hide": secret_paths(self.hide) + (foreign_top_dirs() if self.mode == "namespace" else []),
            "keep": interpreter_dirs() + [str(self.root)],
            "scratch": ["/tmp", "/var/tmp", "/dev/shm"], "scratch_size": "64m",
            "check": check_paths(self.hide),
        }

    def child_env(self) -> dict:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.workdir), "TMPDIR": str(self.workdir),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        return env

    def __exit__(self, *exc) -> None:
        for uid in self.uids:  # a student's code may fork and detach from its process group
            kill_uid(uid)
        shutil.rmtree(self.root, ignore_errors=True)


def kill_uid(uid: int, rounds: int = 5) -> None:
    """SIGKILL every process whose real user id is ``uid`` (a few rounds, for processes forked meanwhile)."""
    for _ in range(rounds):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    line = next((l for l in f if l.startswith("Uid:")), "")
                if line and int(line.split()[1]) == uid:
                    found = True
                    os.kill(int(entry), 9)
            except (OSError, ValueError):
                continue
        if not found:
            return
