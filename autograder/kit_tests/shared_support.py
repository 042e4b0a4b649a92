"""What the kit tests build once per session and share, even between pytest-xdist's workers.

Under xdist a session-scoped fixture runs once per worker. :func:`shared` runs its ``build`` once per pytest session:
the first worker that asks builds under a file lock in a folder beside the workers' own temporary folders
(``tmp_path_factory.getbasetemp().parent``, which is the session's); a worker that asks later, or while it is being
built, waits for the lock and reads the result. Without xdist the folder is the session's own temporary folder. A
build that raised leaves nothing behind, so the next test that asks builds again (and fails the same way).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def shared_root(tmp_path_factory) -> Path:
    """The folder of this session's shared builds (the same for every xdist worker of the session)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "kit-shared"
    root.mkdir(exist_ok=True)
    return root


def shared(tmp_path_factory, key: str, build: Callable[[Path], Any]) -> Any:
    """``build(folder)`` once per session for ``key`` (a file name): its result (picklable), which may refer to
    files in ``folder`` (``KEY/``, kept for the whole session)."""
    root = shared_root(tmp_path_factory)
    folder, done = root / key, root / f"{key}.pickle"
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a build that failed part-way
                folder.mkdir()
                value = build(folder)
                partial = done.with_suffix(".partial")
                partial.write_bytes(pickle.dumps(value))
                partial.replace(done)
            return pickle.loads(done.read_bytes())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
