"""The assignment these checks grade, read from its manifest (``assignment.toml`` beside the public tests).

The manifest is the one place that names the student's package, its modules,
its public names and its TODOs; the checks, the plugin's score table and
``kvkit`` read it from here. Which manifest: ``KVKIT_ASSIGNMENT`` (a path)
when set, else the one beside this package (``tests/assignment.toml`` in the
kit and in the student's bundle, ``tests/assignment.toml`` next to
``kvchecks/`` in the nbgrader folders).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "assignment.toml"
ENV = "KVKIT_ASSIGNMENT"


@dataclass(frozen=True)
class Todo:
    number: int
    file: str  # relative to the folder that holds the package, e.g. "kvcache/cache.py"
    function: str  # qualified name, e.g. "KVCache.update"
    task: str  # one line: what the student implements
    contract: str = ""  # the contract in brief, for the student README's table (markdown)

    @property
    def marker(self) -> str:
        """The pytest marker that selects this TODO's tests (``pytest -m todo1``)."""
        return f"todo{self.number}"

    @property
    def stub_message(self) -> str:
        """The message of the ``NotImplementedError`` left in the skeleton."""
        return f"TODO {self.number}: {self.function} - {self.task}"


@dataclass(frozen=True)
class Assignment:
    name: str  # the nbgrader assignment and its notebook, e.g. "kv_cache"
    title: str
    package: str  # the package the student fills in, e.g. "kvcache"
    modules: tuple[str, ...]  # its modules besides __init__.py, in reading order
    exports: tuple[str, ...]  # the public names the checks use
    bundle: str  # the top folder of the student's zip
    probes: str  # the module (importable beside the manifest) whose ``PROBES`` run the student's code
    folders: dict[str, str]  # role -> folder relative to the repository root
    todos: dict[int, Todo]
    manifest: Path

    @property
    def files(self) -> tuple[str, ...]:
        """The package's files, ``__init__.py`` first."""
        return ("__init__.py", *self.modules)

    @property
    def probes_file(self) -> Path | None:
        """The probes module's file when it lies beside the manifest (``None`` for ``kvchecks``' own)."""
        path = self.manifest.parent / (self.probes.replace(".", "/") + ".py")
        return path if not self.probes.startswith("kvchecks.") and path.is_file() else None

    def probe_table(self) -> dict:
        """``PROBES`` of the probes module: probe name -> function(package, **args) -> observations."""
        folder = str(self.manifest.parent)
        if folder not in sys.path:
            sys.path.append(folder)
        return importlib.import_module(self.probes).PROBES


def load(path: Path | str) -> Assignment:
    path = Path(path).resolve()
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    package = raw["package"]
    todos = {int(t["number"]): Todo(int(t["number"]), f"{package}/{t['module']}", t["function"], t["task"],
                                    t.get("contract", ""))
             for t in raw["todos"]}
    if sorted(todos) != list(range(1, len(todos) + 1)):
        raise ValueError(f"{path}: the TODOs must be numbered 1..{len(todos)}, got {sorted(todos)}")
    return Assignment(raw["name"], raw["title"], package, tuple(raw["modules"]), tuple(raw["exports"]),
                      raw["bundle"], raw["probes"], dict(raw["folders"]), dict(sorted(todos.items())), path)


def manifest_path() -> Path:
    """The manifest of this run (see the module's docstring)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / MANIFEST, here.parent / "tests" / MANIFEST):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {MANIFEST} beside {here}: the checks need their assignment's manifest")


@functools.cache
def current() -> Assignment:
    """The assignment of this run, read on first use (so ``kvkit --assignment`` can choose it first)."""
    return load(manifest_path())


def __getattr__(name: str):
    """``ASSIGNMENT`` and ``TODOS``: the current assignment and its TODOs by number."""
    if name == "ASSIGNMENT":
        return current()
    if name == "TODOS":
        return current().todos
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
