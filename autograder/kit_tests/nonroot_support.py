"""For kit tests that run the grader as another user: the shell lines that make the kit and the interpreter
reachable by that user inside a mount namespace of the test's own (nothing outside it changes), and the turns such
tests take (they look for that user's processes, which another test's grading would be)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kvkit.grading.sandbox import interpreter_dirs
from kvkit.registry import ROOT

USER = 65534  # nobody


@contextlib.contextmanager
def the_user_to_ourselves() -> Iterator[None]:
    """No other test runs anything as :data:`USER` inside the block (pytest-xdist's workers take turns on a file
    lock), so the processes of that user found there are this test's."""
    with open(Path(tempfile.gettempdir()) / f"kvkit-kit-tests-user-{USER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def closed_ancestors(path: str) -> list[tuple[str, str]]:
    """``(folder, child)`` for each folder on ``path``'s way that other users cannot enter, with the child of it
    that leads to ``path``."""
    parts = Path(path).resolve().parts
    found = []
    for i in range(1, len(parts) - 1):
        folder = os.path.join(*parts[:i + 1])
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            found.append((folder, parts[i + 1]))
    return found


def reachable_kit_lines(tag: str) -> list[str]:
    """Shell lines (for a fresh mount namespace) that cover each closed folder above the interpreter and the kit
    with an open tmpfs and bind only the way through back in; ``tag`` names the stash folders."""
    lines = ["set -e", "mount --make-rprivate /"]
    needed = sorted({pair for path in [*interpreter_dirs(), str(ROOT)] for pair in closed_ancestors(path)})
    for index, (folder, child) in enumerate(needed):
        stash = f"/tmp/.kvkit-{tag}-{os.getpid()}-{index}"
        lines += [f"mkdir -p {stash}", f"mount --bind {shlex.quote(folder)} {stash}",
                  f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(folder)}",
                  f"mkdir -p {shlex.quote(os.path.join(folder, child))}",
                  f"mount --bind {stash}/{shlex.quote(child)} {shlex.quote(os.path.join(folder, child))}"]
    return lines
