"""The assignment these checks grade, read from its manifest (``assignment.toml`` beside its public tests).

The manifest is the one place that names the student's package, its modules,
its public names and its TODOs; the checks, the plugin's score table and
``kvkit`` read it from here. Which manifest :func:`current` reads, in this order:

- one chosen with :func:`use` (the pytest plugin chooses the manifest its test
  paths lie under, so ``pytest tests/kv_serving`` checks part 2; the grader's
  child, the one its start-up configuration names) or, for a block, with
  :func:`using` (``kvkit`` around what it runs of the checks outside a pytest run);
- the one beside this package: ``tests/assignment.toml`` in the student's
  bundle, ``tests/assignment.toml`` next to ``kvchecks/`` in an nbgrader folder.

The choice belongs to the context it is made in (a :class:`~contextvars.ContextVar`): a thread that grades one
assignment does not change another thread's. Nothing is read at import: :func:`current` reads the manifest on first
use.

Each assignment has a *checks package* of its own beside the manifest (named
by its ``checks`` key, e.g. ``kvcache_checks``): ``PROBES`` (probe name ->
function running the student's code) and, optionally, ``MISTAKES`` (known
mistakes, see :mod:`kvchecks.mistakes`), ``redraw`` (fresh-input rules for its
probes, see :mod:`kvchecks.fresh`) and ``error_hint`` (hints for exceptions
whose cause is known from their kind and message alone).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import tomllib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

MANIFEST = "assignment.toml"


@dataclass(frozen=True)
class Todo:
    number: int
    file: str  # relative to the folder that holds the package, e.g. "kvcache/cache.py"
    function: str  # qualified name, e.g. "KVCache.update"
    task: str  # one line: what the student implements
    contract: str = ""  # the contract in brief, for the student README's table (markdown)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # lang -> {"task": ..., "contract": ...}

    @property
    def marker(self) -> str:
        """The pytest marker that selects this TODO's tests (``pytest -m todo1``)."""
        return f"todo{self.number}"

    def task_in(self, lang: str) -> str:
        return self.translations.get(lang, {}).get("task", self.task)

    def contract_in(self, lang: str) -> str:
        return self.translations.get(lang, {}).get("contract", self.contract)

    def stub_message_in(self, lang: str) -> str:
        """The message of the ``NotImplementedError`` left in the skeleton (``en``) or an edition's release."""
        return f"TODO {self.number}: {self.function} - {self.task_in(lang)}"

    @property
    def stub_message(self) -> str:
        return self.stub_message_in("en")


@dataclass(frozen=True)
class Edition:
    """The assignment in another language: the same package, checks and points; the student's texts translated."""

    lang: str  # e.g. "ja"
    name: str  # its nbgrader assignment, notebook and folders source/<name>/, release/<name>/, e.g. "kv_cache_ja"
    readme: str  # the student README's file name in the skeleton folder, e.g. "README.ja.md"
    title: str  # the assignment's title in this language


@dataclass(frozen=True)
class Assignment:
    name: str  # the nbgrader assignment and its notebook, e.g. "kv_cache"
    title: str
    package: str  # the package the student fills in, e.g. "kvcache"
    modules: tuple[str, ...]  # its modules besides __init__.py, in reading order
    exports: tuple[str, ...]  # the public names the checks use
    bundle: str  # the top folder of the student's zip
    checks: str  # the checks package (or module) beside the manifest: PROBES, and MISTAKES, redraw, error_hint
    todos: dict[int, Todo]
    manifest: Path
    editions: dict[str, Edition] = field(default_factory=dict)  # lang -> the edition in that language
    part: int = 1  # the order of the kit's assignments
    summary: str = ""  # what students build, one paragraph (the kit's README lists the assignments with it)

    @property
    def folders(self) -> dict[str, str]:
        """Role -> folder relative to the repository root. One pattern for every assignment, so a new one touches
        only its own folders: the solution package's folder, the skeleton, the public checks (this manifest's
        folder) and the instructor's material (hidden checks, notebook narratives, examples, student files)."""
        material = f"autograder/material/{self.name}"
        return {"reference": "reference", "skeleton": f"assignments/{self.name}", "public_tests": f"tests/{self.name}",
                "material": material, "hidden_tests": f"{material}/hidden"}

    def title_in(self, lang: str) -> str:
        return self.editions[lang].title if lang in self.editions else self.title

    @property
    def files(self) -> tuple[str, ...]:
        """The package's files, ``__init__.py`` first."""
        return ("__init__.py", *self.modules)

    @property
    def checks_path(self) -> Path:
        """The checks package's folder (or module file) beside the manifest: it travels wherever the tests go."""
        folder = self.manifest.parent / self.checks
        return folder if folder.is_dir() else folder.with_suffix(".py")

    def checks_files(self) -> dict[str, Path]:
        """The checks package's files by their name relative to the manifest's folder (no caches)."""
        path = self.checks_path
        if path.is_file():
            return {path.name: path}
        return {p.relative_to(path.parent).as_posix(): p for p in sorted(path.rglob("*.py"))
                if "__pycache__" not in p.parts}

    def checks_on_path(self) -> None:
        """Make the checks package importable: its folder (beside the manifest) on ``sys.path``."""
        folder = str(self.manifest.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)

    def checks_module(self) -> ModuleType:
        """The checks package, imported from beside the manifest."""
        self.checks_on_path()
        return importlib.import_module(self.checks)

    def probe_table(self) -> dict:
        """``PROBES``: probe name -> function(package, **args) -> observations."""
        return self.checks_module().PROBES


def load(path: Path | str) -> Assignment:
    path = Path(path).resolve()
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    package = raw["package"]
    editions = {lang: Edition(lang, e["name"], e["readme"], e.get("title", raw["title"]))
                for lang, e in raw.get("editions", {}).items()}
    todos = {int(t["number"]): Todo(int(t["number"]), f"{package}/{t['module']}", t["function"], t["task"],
                                    t.get("contract", ""), {lang: dict(t[lang]) for lang in editions if lang in t})
             for t in raw["todos"]}
    if sorted(todos) != list(range(1, len(todos) + 1)):
        raise ValueError(f"{path}: the TODOs must be numbered 1..{len(todos)}, got {sorted(todos)}")
    return Assignment(raw["name"], raw["title"], package, tuple(raw["modules"]), tuple(raw["exports"]),
                      raw["bundle"], raw["checks"], dict(sorted(todos.items())), path, editions,
                      int(raw.get("part", 1)), " ".join(raw.get("summary", "").split()))


_chosen: ContextVar[Path | None] = ContextVar("kvchecks_manifest", default=None)


def use(path: Path | str) -> None:
    """Make the manifest at ``path`` the assignment of this context (of a pytest run, of the grader's child)."""
    _chosen.set(Path(path).resolve())
    _loaded.cache_clear()  # read afresh: a kit test may have written it anew


@contextlib.contextmanager
def using(path: Path | str) -> Iterator[None]:
    """The manifest at ``path`` is the assignment inside the block, the one chosen before after it."""
    token = _chosen.set(Path(path).resolve())
    try:
        yield
    finally:
        _chosen.reset(token)


def beside_checks() -> Path | None:
    """The manifest that travels with this package (bundle, nbgrader folder), if any."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / MANIFEST, here.parent / "tests" / MANIFEST):
        if candidate.is_file():
            return candidate
    return None


def manifest_path() -> Path:
    """The manifest of this context (see the module's docstring)."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    found = beside_checks()
    if found is None:
        raise FileNotFoundError(f"no {MANIFEST} beside {Path(__file__).resolve().parent}: name the assignment's "
                                f"test folder (e.g. pytest tests/kv_cache)")
    return found


def manifests_under(path: Path, stop: Path) -> list[Path]:
    """The manifests that govern test path ``path``: the nearest one at or above it (up to ``stop``), else every
    one below it."""
    path = Path(path).resolve()
    stop = Path(stop).resolve()
    for folder in (path, *path.parents):
        if (folder / MANIFEST).is_file():
            return [folder / MANIFEST]
        if folder == stop:
            break
    return sorted(path.glob(f"*/{MANIFEST}")) if path.is_dir() else []


def current() -> Assignment:
    """The assignment of this context, read on first use."""
    return _loaded(manifest_path())


@functools.cache
def _loaded(path: Path) -> Assignment:
    return load(path)
