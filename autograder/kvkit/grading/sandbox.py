"""A throw-away folder from which the student's code runs, and the confinement settings of its process.

Layout: read-only copies (for grading: ``submission/kvcache/``, a copy of the
student's package, ``harness/kvchecks/``, the public probe code, and beside it
the assignment's manifest and checks package), always
``harness/kvchild/`` (:mod:`kvkit.grading.child`: the child's confinement, serve loop
and protocol), ``work/`` (the child's working
directory: a small private tmpfs, the only place it may write) and, where
asked, shared folders both sides reach (a kernel's sockets). The reference
solution, the hidden tests and their goldens are never copied in.

Isolation modes (``KVKIT_ISOLATION`` forces one; otherwise the strongest that
works here):

- ``namespace`` (root, mount namespaces allowed): the child runs as a user and
  group of its own (fresh numeric ids: a group per sandbox, so two gradings at
  once cannot read each other, and a user per child, so none can signal
  another); the copies are owned by root and readable by that group only; the
  secrets are covered with empty mounts; no network; a pid namespace of its
  own, whose end ends every process the child started.
- ``uid`` (root without mount namespaces): the same user switch; other users
  lose access to the grader's folders (``chmod o-rwx``); a pid namespace where
  the kernel allows one, else its processes are killed by user id.
- ``userns`` (not root, unprivileged user namespaces allowed): the child makes
  user, mount, network, IPC and pid namespaces of its own, covers the secrets,
  makes every other mount read-only and drops every capability (see
  :mod:`kvkit.grading.child.jail`).
- ``bwrap`` (not root, bubblewrap installed and working): the child starts
  inside ``bwrap``, which shows it only the system's folders, the interpreter
  and the sandbox, read-only, a writable ``work/`` and nothing else.
- ``none``: nothing but resource limits; every report carries a WARNING.
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
import time
from pathlib import Path

import kvchecks
from kvchecks.assignment import MANIFEST
from kvchecks.i18n import N_

from ..errors import UsageError
from ..paths import Layout, layouts
from ..registry import ROOT
from ..stopping import shielded

HARNESS = Path(kvchecks.__file__).resolve().parent
CHILD = Path(__file__).resolve().parent / "child"  # the child's runtime, copied into the harness as CHILD_PACKAGE
CHILD_PACKAGE = "kvchild"
CHILD_MANIFEST = f"harness/{MANIFEST}"  # a grading sandbox's copy of the assignment's manifest
MAX_PACKAGE_BYTES = 20 * 1024 * 1024
MAX_PACKAGE_FILES = 500
SCRATCH_BYTES = 64 * 1024 * 1024  # each of the child's writable folders: a tmpfs of this size
MODES = ("namespace", "uid", "userns", "bwrap", "none")
ROOT_MODES = ("namespace", "uid")  # the child gets a user id of its own
CONFINED = ("namespace", "uid", "userns", "bwrap")
NO_ISOLATION = N_("WARNING: no isolation: the student's code ran as the grader's own user and could read and change "
                  "what that user can (the grader is not root, and neither unprivileged user namespaces nor "
                  "bubblewrap work here, or KVKIT_ISOLATION=none); install bubblewrap (sudo apt-get install "
                  "bubblewrap) or grade as root.")  # translated where it is shown: _(NO_ISOLATION)


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


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=None)
def _unshare_works(flags: int) -> bool:
    code = f"import ctypes; l = ctypes.CDLL(None, use_errno=True); raise SystemExit(l.unshare({flags}) != 0)"
    return _works([sys.executable, "-I", "-S", "-c", code])


@functools.lru_cache(maxsize=None)
def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    return bool(bwrap) and _works([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"])


def isolation_mode() -> str:
    """The strongest mode this process can use (or ``KVKIT_ISOLATION``, when set)."""
    forced = os.environ.get("KVKIT_ISOLATION", "auto")
    if forced in MODES:
        return forced
    if os.geteuid() == 0:
        if _unshare_works(0x20000):  # CLONE_NEWNS
            return "namespace"
        return "uid" if all(_world_reachable(d) for d in interpreter_dirs()) else "none"
    if _unshare_works(0x10000000 | 0x20000 | 0x40000000 | 0x20000000):  # user, mount, network and pid namespaces
        return "userns"
    return "bwrap" if _bwrap_works() else "none"


def protect_grader(mode: str) -> None:
    """Without a user of its own, the child shares the grader's user: make the grader untraceable by it.

    A process that is not dumpable cannot be traced, nor its memory read
    through ``/proc``, by a process of the same user without capabilities.
    """
    if mode in ("userns", "bwrap"):
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


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
    """What the child tries to read after confinement (every assignment's solution and hidden checks, the kit's
    git and grader, ``extra``); any it can read is reported as exposed."""
    paths = []
    for layout in layouts():
        paths += [str(layout.reference), str(layout.reference / layout.assignment.todos[1].file),
                  str(layout.hidden_tests), str(layout.hidden_tests / "goldens.json")]
    paths += [str(ROOT / ".git"), str(ROOT / "autograder"), *(str(Path(p).resolve()) for p in extra)]
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
    """Context manager: read-only copies of ``trees`` and ``files`` in a temporary folder, removed on exit.

    ``trees`` maps a path inside the sandbox to the folder copied there, and
    ``files`` to the file copied there; ``hide`` adds folders the child must
    not read (e.g. all the submissions of a batch); ``shared`` names folders
    (inside the sandbox) that the child may write and the grader reads.
    ``runtime``: copy the child's runtime into ``harness/`` (a box whose child
    is forked by a zygote runs the zygote's); ``public``: readable by every
    user (a zygote's harness, which every child it forks reads: public probe
    code only), never writable but by the grader.
    """

    def __init__(self, trees: dict[str, Path], hide: list[Path] = (), mode: str | None = None,
                 shared: tuple[str, ...] = (), files: dict[str, Path] | None = None, runtime: bool = True,
                 public: bool = False) -> None:
        self.runtime, self.public = runtime, public
        self.trees = {name: Path(folder) for name, folder in trees.items()}
        self.files = {name: Path(file) for name, file in (files or {}).items()}
        self.hide = [Path(p) for p in hide]
        self.mode = mode or isolation_mode()
        self.shared_names = shared
        self.gid = random.SystemRandom().randint(200_000, 899_999) if self.mode in ROOT_MODES else None
        self.uids: list[int] = []

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def harness(self) -> Path:
        return self.root / "harness"

    @property
    def shared(self) -> list[Path]:
        return [self.root / name for name in self.shared_names]

    def __enter__(self) -> "Sandbox":
        self.root = None
        try:
            self.root = Path(tempfile.mkdtemp(prefix="kvkit-grade-"))
            for name, folder in self.trees.items():
                shutil.copytree(folder, self.root / name, ignore=_ignore_caches, symlinks=True)
            for name, file in self.files.items():
                (self.root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, self.root / name)
            if self.runtime:
                self.harness.mkdir(exist_ok=True)
                shutil.copytree(CHILD, self.harness / CHILD_PACKAGE, ignore=_ignore_caches)
            for folder in (self.workdir, *self.shared):
                folder.mkdir(parents=True)
            if self.public:
                _open_to_all(self.root)
            elif self.mode in ROOT_MODES:
                self._set_owners()
            if self.mode == "uid":
                protect_for_uid_mode(secret_paths(self.hide))
        except BaseException:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        protect_grader(self.mode)
        return self

    def _set_owners(self) -> None:
        """Root modes: everything root-owned and readable by the sandbox's group; ``work/`` and shared folders
        writable by it."""
        os.chown(self.root, 0, self.gid)
        os.chmod(self.root, 0o750)
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chown(dirpath, 0, self.gid)
            os.chmod(dirpath, 0o750)
            for name in filenames:
                path = os.path.join(dirpath, name)
                os.chown(path, 0, self.gid, follow_symlinks=False)
                if not os.path.islink(path):
                    os.chmod(path, 0o640)
        for folder in (self.workdir, *self.shared):
            os.chmod(folder, 0o770)

    def new_uid(self) -> int | None:
        """A fresh user id for one child process (root modes only): it cannot signal other children, and whatever
        still runs as it when the child ends is killed by user id (a fallback: the child's pid namespace ends all)."""
        if self.mode not in ROOT_MODES:
            return None
        uid = random.SystemRandom().randint(200_000, 899_999)
        self.uids.append(uid)
        return uid

    def jail_config(self, memory_bytes: int | None, uid: int | None) -> dict:
        """What ``kvchild.jail.enter`` gets: mode, ids, limits, what to cover and what to check."""
        hide = secret_paths(self.hide)
        if self.mode in ("namespace", "userns"):
            hide += foreign_top_dirs()
        if self.mode == "userns":
            hide.append("/run")  # the grader's user sockets (systemd, D-Bus) live under /run/user
        return {
            "mode": self.mode, "uid": uid, "gid": self.gid, "workdir": str(self.workdir),
            "memory": memory_bytes, "fsize": 64 * 1024 * 1024, "nofile": 1024, "nproc": 256,
            "cpu": 900,  # a child orphaned by a killed grader cannot spin for ever
            "hide": hide, "keep": interpreter_dirs() + [str(self.root)],
            "scratch": ["/tmp", "/var/tmp", "/dev/shm"], "scratch_size": f"{SCRATCH_BYTES // (1 << 20)}m",
            "writable": [str(p) for p in self.shared], "check": check_paths(self.hide),
        }

    def command(self, argv: list[str]) -> list[str]:
        """The command line that starts ``argv`` (the child) in this sandbox: inside ``bwrap`` in that mode."""
        return bwrap_command(self) + ["--", *argv] if self.mode == "bwrap" else list(argv)

    def child_env(self) -> dict:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.workdir), "TMPDIR": str(self.workdir),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        return env

    def __exit__(self, *exc) -> None:
        with shielded():  # a stop signal (kvkit.stopping) waits until the sandbox is gone
            for uid in self.uids:  # a fallback: each child's processes ended with its pid namespace
                kill_uid(uid)
            shutil.rmtree(self.root, ignore_errors=True)


def _open_to_all(root: Path) -> None:
    """Folders ``0755`` and files ``0644`` under ``root``: readable by every user, writable by the owner only."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def _harness_files(layout: Layout) -> tuple[dict[str, Path], dict[str, Path]]:
    """The harness of ``layout``'s assignment: ``kvchecks``, its manifest (at :data:`CHILD_MANIFEST`) and checks
    package (its probes are imported beside the manifest), as a :class:`Sandbox`'s trees and files."""
    work = layout.assignment
    files = {CHILD_MANIFEST: work.manifest}
    files.update({f"harness/{name}": path for name, path in work.checks_files().items()})
    return {"harness/kvchecks": HARNESS}, files


def submission_sandbox(layout: Layout, folder: Path, hide: list[Path] = (), mode: str | None = None,
                       harness: bool = True) -> Sandbox:
    """The grading sandbox for ``folder``, which holds the student's package of ``layout``'s assignment: the
    package, and the harness (without ``harness``: the package only, for a child forked by a zygote, which
    brings its harness)."""
    work = layout.assignment
    package = Path(folder) / work.package
    if not (package / "__init__.py").is_file():
        raise UsageError(f"{folder} holds no {work.package} package (expected {package}/__init__.py)")
    check_package(package)
    trees, files = _harness_files(layout) if harness else ({}, {})
    return Sandbox({f"submission/{work.package}": package, **trees}, hide=hide, mode=mode, files=files,
                   runtime=harness)


def harness_sandbox(layout: Layout, mode: str) -> Sandbox:
    """A zygote's sandbox: the harness of ``layout``'s assignment and the child's runtime, readable by all."""
    trees, files = _harness_files(layout)
    return Sandbox(trees, mode=mode, files=files, public=True)


def bwrap_command(box: Sandbox) -> list[str]:
    """``bwrap`` and its options: the system's folders, the interpreter and the sandbox read-only, ``work/`` and the
    shared folders writable, fresh ``/proc``, ``/dev`` and temporary folders, no network, nothing else.

    The child is pid 1 of bwrap's pid namespace (``--as-pid-1``; bwrap's own init could not be made non-dumpable,
    and the student's code could read its environment): the jail stays there as the init, the student's code runs
    as pid 2 (:func:`kvchild.jail.become_pid_2`); the namespace, with every process in it, ends when the child does
    or when bwrap dies (``--die-with-parent`` kills pid 1 with the grader's bwrap process)."""
    args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--as-pid-1", "--cap-drop", "ALL"]
    for top in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    scratch = ["--size", str(SCRATCH_BYTES), "--tmpfs"]
    args += ["--proc", "/proc", "--dev", "/dev", *scratch, "/dev/shm", *scratch, "/tmp", *scratch, "/var/tmp"]
    for folder in [*interpreter_dirs(), str(box.root)]:
        args += ["--ro-bind", folder, folder]
    args += [*scratch, str(box.workdir)]
    for folder in box.shared:
        args += ["--bind", str(folder), str(folder)]
    return args + ["--chdir", str(box.workdir)]


def processes_of(uid: int) -> list[int]:
    """The live processes whose real user id is ``uid`` (zombies left out: they are dead already)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if line.startswith(("State:", "Uid:")))
            if int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith(("Z", "X")):
                found.append(int(entry))
        except (OSError, ValueError, KeyError):
            continue
    return found


def kill_uid(uid: int, rounds: int = 5, settle: float = 2.0) -> None:
    """SIGKILL every process whose real user id is ``uid`` (root only), all at once, and wait until they are gone.

    A fallback (each child ends with the pid namespace it runs in). Not a
    sweep of ``/proc``, which a process that keeps forking to new process ids
    outruns: ``kill(-1, SIGKILL)`` sent by a process of that user, for which
    the kernel signals every process the sender may signal, holding the lock
    that a fork needs to add a process, so none is missed.
    """
    if not processes_of(uid):
        return
    killer = shutil.which("kill", path="/usr/bin:/bin")
    argv = [killer, "-9", "--", "-1"] if killer else [sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"]
    deadline = time.monotonic() + settle
    for _ in range(rounds):
        try:
            subprocess.run(argv, user=uid, group=uid, extra_groups=[], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, cwd="/")
        except (OSError, subprocess.SubprocessError):
            _sweep(uid)
        while (left := processes_of(uid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not left:
            return


def _sweep(uid: int) -> None:
    """Where the user's own ``kill(-1)`` cannot run: SIGKILL each process of ``uid`` found in ``/proc``."""
    for pid in processes_of(uid):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
