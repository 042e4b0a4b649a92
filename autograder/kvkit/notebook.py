"""``kvkit notebook``: the nbgrader course, generated from the reference, the graded tests and a template.

Sources of truth, nothing kept by hand in the notebook:

- narrative and demo cells: ``autograder/notebook/kv_cache.md``, a template whose
  ``%%`` lines start cells (see :func:`parse_template`);
- the code cells of the package: the classes of ``reference/kvcache/*.py``; a
  class holding a TODO becomes an autograded-answer cell that keeps the
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines (nbgrader strips them),
  the other classes become read-only cells;
- the autograder-test cells: one per graded pytest item of ``tests/`` and
  ``autograder/hidden/``, found by pytest's own collection with the kit's
  plugin (so points and TODOs come from the ``points(n)`` / ``todoN``
  markers and ``parametrize`` cases are expanded exactly as pytest does).
  Public cells call the public test function shipped next to the notebook;
  hidden cells carry their test module's code and the reference outputs they
  use between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.

``source/kv_cache/`` also receives copies of the public check code
(``kvchecks/``) and public tests (``tests/``) that the notebook runs; the
release is made by the real ``nbgrader generate_assignment``.
:func:`notebook_to_package` turns a student's notebook back into a
``kvcache`` package for ``kvkit grade``.
"""

from __future__ import annotations

import ast
import contextlib
import filecmp
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import kvchecks
from kvchecks import codec
from kvchecks.assignment import MANIFEST

from .build import BEGIN, END, solution_regions
from .errors import UsageError
from .paths import ASSIGNMENT, DEFAULT, HIDDEN_TESTS, PUBLIC_TESTS, REFERENCE, ROOT, TODOS

SOURCE_DIR = DEFAULT.source
RELEASE_DIR = DEFAULT.release
NOTEBOOK_NAME = f"{ASSIGNMENT.name}.ipynb"
SOURCE_NOTEBOOK = SOURCE_DIR / NOTEBOOK_NAME
RELEASE_NOTEBOOK = RELEASE_DIR / NOTEBOOK_NAME
TEMPLATE = DEFAULT.notebook_template
NBGRADER_CONFIG = ROOT / "nbgrader_config.py"
KVCHECKS = Path(kvchecks.__file__).resolve().parent
MODULES = ASSIGNMENT.modules
PACKAGE = ASSIGNMENT.package
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


# ----------------------------------------------------------------------------------------------------------------------
# The reference package, cut into cells
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class ModuleParts:
    name: str  # "cache.py"
    header: str  # docstring and imports, before the first class
    classes: dict[str, str]  # class (or function) name -> its source text, in file order
    todo_classes: dict[str, list[int]]  # class name -> the TODO numbers inside it


def split_module(text: str, filename: str) -> ModuleParts:
    """Cut a module into its header and its top-level classes and functions (nothing else may sit at the top level
    after them); ``classes`` holds both, by name."""
    tree = ast.parse(text, filename)
    lines = text.splitlines(keepends=True)
    body = [node for node in tree.body]
    first = next((i for i, node in enumerate(body) if isinstance(node, (ast.ClassDef, ast.FunctionDef))), len(body))
    start_of = lambda node: min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # noqa: E731
    header_end = start_of(body[first]) - 1 if first < len(body) else len(lines)
    classes: dict[str, str] = {}
    rest = body[first:]
    for index, node in enumerate(rest):
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            raise ValueError(f"{filename}:{node.lineno}: only classes and functions may follow the imports (the "
                             "notebook maps each one to a cell)")
        # up to the next class, so trailing comment lines (### END SOLUTION) stay with their class
        stop = start_of(rest[index + 1]) - 1 if index + 1 < len(rest) else len(lines)
        classes[node.name] = "".join(lines[start_of(node) - 1:stop]).rstrip() + "\n"
    todo_by_function = {todo.function: todo.number for todo in TODOS.values()}
    todo_classes: dict[str, list[int]] = {}
    for function, _, _ in solution_regions(text, filename):
        todo_classes.setdefault(function.split(".")[0], []).append(todo_by_function[function])
    return ModuleParts(Path(filename).name, "".join(lines[:header_end]).rstrip() + "\n", classes, todo_classes)


def reference_modules(reference: Path = REFERENCE) -> dict[str, ModuleParts]:
    return {name: split_module((reference / PACKAGE / name).read_text(), str(reference / PACKAGE / name))
            for name in MODULES}


def header_imports(modules: dict[str, ModuleParts]) -> list[str]:
    """The absolute import lines of every module header, once each, ``__future__`` first."""
    seen: list[str] = []
    for parts in modules.values():
        for node in ast.parse(parts.header).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                line = ast.unparse(node)
                if line not in seen:
                    seen.append(line)
    return sorted(seen, key=lambda line: not line.startswith("from __future__"))


def cell_grade_id(module: str, classes: list[str]) -> str:
    return f"{Path(module).stem}_{'_'.join(classes)}".lower()


# ----------------------------------------------------------------------------------------------------------------------
# The graded checks, as pytest collects them
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class CheckItem:
    nodeid: str  # relative to the repository root, e.g. "tests/test_todo1_cache.py::test_x[3]"
    path: Path
    function: str
    params: dict
    todo: int
    points: float
    hidden: bool


class _Collector:
    def __init__(self) -> None:
        self.items: list[CheckItem] = []

    def pytest_collection_finish(self, session) -> None:
        for item in session.items:
            props = dict(item.user_properties)
            callspec = getattr(item, "callspec", None)
            self.items.append(CheckItem(item.nodeid, Path(str(item.path)), item.originalname,
                                        dict(callspec.params) if callspec else {}, props["todo"], props["points"],
                                        props["hidden"]))


def collect_checks(hidden: bool = True) -> list[CheckItem]:
    """Every graded test item of ``tests/`` (and ``autograder/hidden/``), with its TODO, points and parameters."""
    import pytest

    collector = _Collector()
    paths = [str(PUBLIC_TESTS)] + ([str(HIDDEN_TESTS)] if hidden and HIDDEN_TESTS.is_dir() else [])
    args = [*paths, "--collect-only", "-q", "--rootdir", str(ROOT), "-p", "kvchecks.plugin", "-p", "no:cacheprovider"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(args, plugins=[collector])
    if code != pytest.ExitCode.OK or not collector.items:
        raise RuntimeError(f"collecting the graded tests failed (pytest exit {code}):\n{out.getvalue()[-3000:]}")
    for item in collector.items:
        for name, value in item.params.items():
            if ast.literal_eval(repr(value)) != value:
                raise ValueError(f"{item.nodeid}: parameter {name}={value!r} cannot be written into a notebook cell")
    return collector.items


def _load_test_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_kvkit_nb_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hidden_source(path: Path, function: str) -> str:
    """The hidden test module's code with every other test function left out."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    kept = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and node.name != function:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.append("".join(lines[start - 1:node.end_lineno]).rstrip() + "\n")
    return "\n\n".join(kept)


def golden_entries(item: CheckItem) -> dict:
    """The saved reference outputs one hidden check looks up (found by running it on the reference)."""
    from kvchecks import context
    from kvchecks.backends import InProcessBackend
    from kvchecks.goldens import Expected, key

    saved = json.loads((item.path.parent / "goldens.json").read_text())
    used: dict[str, object] = {}

    def observe(name: str, args: dict, mistake: str | None):
        call = key(name, args, mistake)
        if call not in saved:
            raise RuntimeError(f"{item.nodeid}: {item.path.parent / 'goldens.json'} has no reference output for "
                               f"{name}({args}): run `kvkit goldens`, then `kvkit notebook`")
        used[call] = saved[call]
        return codec.from_jsonable(saved[call])

    test = getattr(_load_test_module(item.path), item.function)
    wanted = __import__("inspect").signature(test).parameters
    kwargs = dict(item.params)
    if "probe" in wanted:
        kwargs["probe"] = InProcessBackend(REFERENCE, trusted=True)
    if "expected" in wanted:
        kwargs["expected"] = Expected(observe)
    context.begin(item.todo)
    test(**kwargs)  # the reference passes every check; an error here is a broken check
    return dict(sorted(used.items()))


def _literal(text: str) -> str:
    """A Python literal for ``text``: a raw triple-quoted string when that is exact, else ``repr``."""
    if "'''" not in text and not text.endswith("\\") and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^a-zA-Z0-9_]+", "_", text).strip("_").lower()
    if len(slug) > limit:
        slug = slug[: limit - 9] + "_" + hashlib.sha1(slug.encode()).hexdigest()[:8]
    return slug


def check_name(item: CheckItem) -> str:
    """The check's name as grading reports it (``Result.name``): ``test_file.py::test_x[params]``."""
    return item.nodeid.split("/")[-1]


def check_key(name: str, hidden: bool) -> str:
    """The ``kvkit.check`` metadata of a test cell, from the check's name: the name itself for a public check; for a
    hidden one a hash of it, so the release does not show hidden checks' names. Stable while checks are added."""
    return f"hidden-{hashlib.sha256(name.encode()).hexdigest()[:16]}" if hidden else name


def check_cells(items: list[CheckItem], todo: int) -> list[dict]:
    """The autograder-test cells of one TODO: public checks, then hidden ones."""
    cells = []
    mine = [item for item in items if item.todo == todo]
    for item in sorted(mine, key=lambda i: i.hidden):
        args = "".join(f", {name}={value!r}" for name, value in item.params.items())
        key = check_key(check_name(item), item.hidden)
        if item.hidden:
            grade_id = f"hidden_todo{todo}_{key.split('-')[1][:10]}"
            rel = item.nodeid
            source = (
                f"# Hidden check of TODO {todo} ({item.points:g} point{'s' if item.points != 1 else ''}): its code is not in your copy of the notebook;\n"
                f"# it runs when your work is graded.\n"
                f"{HIDDEN_BEGIN}\n"
                f"checks.run_hidden(\n"
                f"    {rel!r}{args},\n"
                f"    source={_literal(hidden_source(item.path, item.function))},\n"
                f"    goldens={_literal(json.dumps(golden_entries(item), sort_keys=True, separators=(',', ':')))},\n"
                f")\n"
                f"{HIDDEN_END}"
            )
        else:
            grade_id = "check_" + _slug(f"todo{todo}_{item.nodeid.split('::', 1)[1]}")
            nodeid = f"tests/{check_name(item)}"  # the public test files lie in tests/ beside the notebook
            source = (f"# TODO {todo} check ({item.points:g} point{'s' if item.points != 1 else ''}); its code: {nodeid.split('::')[0]}\n"
                      f"checks.run({nodeid!r}{args})")
        cells.append(_code_cell(source, grade_id, nbgrader={"grade": True, "solution": False, "locked": True,
                                                            "points": item.points},
                                kvkit={"check": key, "todo": todo}))
    return cells


# ----------------------------------------------------------------------------------------------------------------------
# Cells and the template
# ----------------------------------------------------------------------------------------------------------------------
def _lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def _code_cell(source: str, cell_id: str, nbgrader: dict | None = None, kvkit: dict | None = None) -> dict:
    metadata: dict = {}
    if nbgrader is not None:
        metadata["nbgrader"] = {"grade_id": cell_id, "schema_version": 3, **nbgrader}
        metadata["editable"] = not nbgrader.get("locked", False)
        metadata["deletable"] = not nbgrader.get("locked", False)
    if kvkit is not None:
        metadata["kvkit"] = kvkit
    return {"cell_type": "code", "execution_count": None, "id": cell_id[:64], "metadata": metadata, "outputs": [],
            "source": _lines(source.rstrip("\n"))}


def _markdown_cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(source.strip("\n"))}


@dataclass
class TemplateCell:
    kind: str  # markdown | code | setup | classes | checks
    args: list[str] = field(default_factory=list)
    text: str = ""


def parse_template(text: str) -> list[TemplateCell]:
    """Cells of the template: each ``%% KIND [ARGS]`` line starts one; the lines below it are its text.

    ``%% markdown`` and ``%% code`` (an editable demo cell) carry text;
    ``%% setup`` (imports and the checks helper, read-only), ``%% classes
    MODULE CLASS...`` (those reference classes in one cell) and ``%% checks N``
    (the test cells of TODO N) are generated and carry none. Classes the
    template does not place come at the end, one cell each, each followed by
    the checks of its TODOs (so a new TODO needs no template edit).
    """
    cells: list[TemplateCell] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("%%"):
            kind, *args = line[2:].split()
            if kind not in ("markdown", "code", "setup", "classes", "checks"):
                raise ValueError(f"{TEMPLATE.name}:{number}: unknown cell kind {kind!r}")
            cells.append(TemplateCell(kind, args))
        elif cells:
            cells[-1].text += line + "\n"
        elif line.strip():
            raise ValueError(f"{TEMPLATE.name}:{number}: text before the first %% line")
    for cell in cells:
        if cell.kind in ("setup", "classes", "checks") and cell.text.strip():
            raise ValueError(f"{TEMPLATE.name}: a %% {cell.kind} cell is generated and takes no text")
    return cells


def _fill_points(text: str, items: list[CheckItem]) -> str:
    """Replace ``{{points:N}}`` (TODO N's points, visible + hidden), ``{{points:total}}`` and ``{{todos}}`` (a
    table of the TODOs from the manifest, with their points) in template text."""
    def points(match: re.Match) -> str:
        which = match.group(1)
        chosen = [i for i in items if which == "total" or i.todo == int(which)]
        hidden = sum(i.points for i in chosen if i.hidden)
        return f"{sum(i.points for i in chosen):g} ({hidden:g} of them hidden)"
    rows = ["| TODO | what you write | points |", "| --- | --- | --- |"]
    rows += [f"| {t.number} | `{t.function}`: {t.task} | {{{{points:{t.number}}}}} |" for t in TODOS.values()]
    rows.append("| | total | {{points:total}} |")
    return re.sub(r"\{\{points:(\d+|total)\}\}", points, text.replace("{{todos}}", "\n".join(rows)))


SETUP = '''\
{imports}
import os
import sys

# The graded checks (kvchecks/ and tests/) ship next to this notebook; they run the same check
# functions as `pytest` and `kvkit grade`, on the classes this notebook defines.
sys.path.insert(0, os.getcwd())
from kvchecks.notebook import NotebookChecks

checks = NotebookChecks(globals())
_ = torch.manual_seed(0)'''


def _classes_cell(module: str, names: list[str], parts: ModuleParts) -> dict:
    """One code cell holding reference classes: an answer cell if they hold a TODO, else read-only."""
    todos = sorted(t for n in names for t in parts.todo_classes.get(n, []))
    source = "\n\n\n".join(parts.classes[n].rstrip("\n") for n in names)
    return _code_cell(source, cell_grade_id(module, names),
                      nbgrader={"grade": False, "solution": bool(todos), "locked": not todos},
                      kvkit={"module": module, "classes": names, "todos": todos})


def build_notebook(items: list[CheckItem] | None = None, template: Path = TEMPLATE,
                   reference: Path = REFERENCE) -> dict:
    """The source notebook (with solutions and hidden tests) as nbformat JSON data."""
    items = collect_checks() if items is None else items
    modules = reference_modules(reference)
    placed: dict[str, list[str]] = {name: [] for name in MODULES}
    checks_done: list[int] = []
    cells = []
    for index, cell in enumerate(parse_template(template.read_text())):
        if cell.kind == "markdown":
            cells.append(_markdown_cell(_fill_points(cell.text, items), f"md_{index:02d}"))
        elif cell.kind == "code":
            cells.append(_code_cell(cell.text, f"demo_{index:02d}"))
        elif cell.kind == "setup":
            source = SETUP.format(imports="\n".join(header_imports(modules)))
            cells.append(_code_cell(source, "setup", nbgrader={"grade": False, "solution": False, "locked": True}))
        elif cell.kind == "classes":
            module, *names = cell.args
            parts = modules[module]
            missing = [n for n in names if n not in parts.classes]
            if missing:
                raise ValueError(f"template: {module} has no class {', '.join(missing)}")
            cells.append(_classes_cell(module, names, parts))
            placed[module] += names
        else:
            todo = int(cell.args[0])
            cells += check_cells(items, todo)
            checks_done.append(todo)
    for module, parts in modules.items():  # what the template leaves out comes last: each class, then its checks
        if len(set(placed[module])) != len(placed[module]) or set(placed[module]) - set(parts.classes):
            raise ValueError(f"template: {module}'s classes {list(parts.classes)} may each appear once in a "
                             f"%% classes cell, found {placed[module]}")
        for name in [n for n in parts.classes if n not in placed[module]]:
            cells.append(_classes_cell(module, [name], parts))
            placed[module].append(name)
            for todo in [t for t in parts.todo_classes.get(name, []) if t not in checks_done]:
                cells += check_cells(items, todo)
                checks_done.append(todo)
    if sorted(checks_done) != sorted(TODOS):
        raise ValueError(f"template: needs one %% checks cell per TODO {sorted(TODOS)}, found {checks_done}")
    package = {"__init__.py": (reference / PACKAGE / "__init__.py").read_text()}
    for module in MODULES:
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells
               if c["metadata"].get("kvkit", {}).get("module") == module]
        package[module] = {"header": modules[module].header, "cells": ids}
    metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        "kvkit": {"generated_by": "kvkit notebook (autograder/kvkit/notebook.py); edit the template, not this file",
                  "package": package},
    }
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def dumps_notebook(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def notebook_points(nb: dict) -> float:
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))


# ----------------------------------------------------------------------------------------------------------------------
# The course folders
# ----------------------------------------------------------------------------------------------------------------------
SUPPORT_DIRS = ("kvchecks", "tests")  # written next to the notebooks by `kvkit notebook`, not committed


def support_files() -> dict[str, Path]:
    """Files shipped next to the notebook (relative name -> repository file): public check code and tests only."""
    files = {f"kvchecks/{p.name}": p for p in sorted(KVCHECKS.glob("*.py"))}
    files.update({f"tests/{p.name}": p for p in sorted(PUBLIC_TESTS.glob("test_*.py"))})
    files["tests/goldens.json"] = PUBLIC_TESTS / "goldens.json"
    files[f"tests/{MANIFEST}"] = ASSIGNMENT.manifest
    files.update({f"tests/{name}": p for name, p in ASSIGNMENT.checks_files().items()})
    return files


def write_support(dest: Path) -> None:
    """Write the support files into the course folder ``dest`` (replacing the old ones)."""
    for folder in SUPPORT_DIRS:
        shutil.rmtree(dest / folder, ignore_errors=True)
    for rel, src in support_files().items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)


def write_source(dest: Path = SOURCE_DIR, items: list[CheckItem] | None = None) -> Path:
    """Write ``dest/<name>.ipynb`` and its support files, removing anything else in ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / NOTEBOOK_NAME).write_text(dumps_notebook(build_notebook(items)))
    write_support(dest)
    return dest / NOTEBOOK_NAME


def nbgrader_command() -> list[str]:
    return [sys.executable, "-m", "nbgrader"]


def nbgrader_env(**extra: str) -> dict[str, str]:
    """The environment for running nbgrader: this Python's bin folder first on PATH (nbgrader runs ``alembic``)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def ensure_kernel() -> str:
    """Make sure Jupyter finds a ``python3`` kernel that is this Python; install it into ``sys.prefix`` if not.

    Returns the kernel's interpreter command. (``make setup`` runs the same install.)
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        argv0 = spec.argv[0]
    except NoSuchKernel:
        argv0 = None
    if argv0 not in ("python", "python3", sys.executable):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True)
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    return argv0


def generate_release(source: Path = SOURCE_DIR, dest: Path = RELEASE_DIR) -> Path:
    """Run the real ``nbgrader generate_assignment`` on ``source`` in a scratch course; copy the result to ``dest``."""
    if importlib.util.find_spec("nbgrader") is None:
        raise UsageError("nbgrader is not installed: `make setup` (or pip install -e '.[nbgrader]'), or use --no-release")
    with tempfile.TemporaryDirectory(prefix="kvkit-nbgrader-") as tmp:
        course = Path(tmp)
        shutil.copytree(source, course / "source" / ASSIGNMENT.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        shutil.copyfile(NBGRADER_CONFIG, course / "nbgrader_config.py")
        done = subprocess.run([*nbgrader_command(), "generate_assignment", ASSIGNMENT.name, "--force"],
                              cwd=course, capture_output=True, text=True, env=nbgrader_env())
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(course / "release" / ASSIGNMENT.name, dest)
    return dest / NOTEBOOK_NAME


def _tree_differences(a: Path, b: Path) -> list[str]:
    names = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    names |= {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return sorted(n for n in names
                  if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))


def _committed(names: list[str]) -> list[str]:
    """The names of a course folder's files that the repository holds (the support files it does not)."""
    return [n for n in names if n.split("/", 1)[0] not in SUPPORT_DIRS]


def write_course(dest: Path, release: bool = True) -> Path:
    """Write ``dest/source`` and (with ``release``) ``dest/release`` as ``kvkit notebook`` writes the course's."""
    write_source(dest / "source")
    if release:
        generate_release(dest / "source", dest / "release")
    return dest


def stale_paths(release: bool = True, fresh: Path | None = None) -> list[str]:
    """Committed course files (the notebooks) that a fresh ``kvkit notebook`` would change; ``fresh`` holds a course
    already written by :func:`write_course`."""
    with tempfile.TemporaryDirectory(prefix="kvkit-nbcheck-") as tmp:
        if fresh is None:
            write_course(Path(tmp), release)
        folder = fresh or Path(tmp)
        stale = [f"source/{ASSIGNMENT.name}/{n}"
                 for n in _committed(_tree_differences(folder / "source", SOURCE_DIR))]
        if release:
            stale += [f"release/{ASSIGNMENT.name}/{n}"
                      for n in _committed(_tree_differences(folder / "release", RELEASE_DIR))]
    return stale


# ----------------------------------------------------------------------------------------------------------------------
# Notebooks back to packages
# ----------------------------------------------------------------------------------------------------------------------
def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _cells_by_grade_id(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb.get("cells", [])
            if isinstance(c.get("metadata", {}).get("nbgrader", {}).get("grade_id"), str)}


def read_notebook(path: Path) -> dict:
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is not a readable notebook: {err}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UsageError(f"{path} is not a Jupyter notebook (no list of cells)")
    return nb


def notebook_to_package(notebook: Path, out: Path, release: Path | None = RELEASE_NOTEBOOK) -> Path:
    """Write ``out/kvcache/`` from a student's notebook file; returns ``out``.

    The package layout and the read-only cells come from the release
    notebook when there is one (see :func:`package_from_notebook`).
    """
    nb = read_notebook(Path(notebook))
    trusted = read_notebook(release) if release is not None and Path(release).is_file() else None
    try:
        return package_from_notebook(nb, trusted, out)
    except ValueError as err:
        raise UsageError(f"{notebook}: {err}")


def package_from_notebook(nb: dict, trusted: dict | None, out: Path) -> Path:
    """Write ``out/kvcache/`` from a student's notebook ``nb`` (nbformat data); returns ``out``.

    Each module is its header plus the notebook cells listed for it in the
    ``kvkit`` metadata, matched by nbgrader ``grade_id``. The layout and, as
    ``nbgrader autograde`` does, the read-only cells come from ``trusted`` (the
    release or source notebook; a student's edits to them do not count); only
    without one are they read from ``nb`` itself. The student's answer cells
    are taken as they are; an answer cell that is missing is taken from
    ``trusted`` (its TODOs stay unfinished).
    """
    layout = (trusted or nb).get("metadata", {}).get("kvkit", {}).get("package")
    if not layout:
        raise ValueError(f"no kvkit package layout in the notebook's metadata: is it the {ASSIGNMENT.name} notebook?")
    mine, theirs = _cells_by_grade_id(nb), _cells_by_grade_id(trusted) if trusted else {}
    target = Path(out) / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(layout["__init__.py"])
    places: dict[str, list] = {}
    for module in MODULES:
        parts = [layout[module]["header"].rstrip("\n")]
        line = len(parts[0].splitlines()) + 3  # the first line of the next part (parts are 2 blank lines apart)
        for grade_id in layout[module]["cells"]:
            given, original = mine.get(grade_id), theirs.get(grade_id)
            locked = (original or given or {}).get("metadata", {}).get("nbgrader", {}).get("locked", False)
            cell = original if (locked and original is not None) or given is None else given
            if cell is None:
                raise ValueError(f"no cell {grade_id!r} and no release notebook to take it from")
            parts.append(_source(cell).rstrip("\n"))
            classes = (original or cell).get("metadata", {}).get("kvkit", {}).get("classes") or [grade_id]
            places.setdefault(module, []).append([line, line + len(parts[-1].splitlines()) - 1,
                                                  f"{'your answer' if not locked else 'the'} cell of "
                                                  f"{', '.join(classes)}"])
            line += len(parts[-1].splitlines()) + 2
        (target / module).write_text("\n\n\n".join(parts) + "\n")
    (Path(out) / CELL_PLACES).write_text(json.dumps(places))
    return Path(out)


CELL_PLACES = "notebook-cells.json"  # beside kvcache/ when it was made from a notebook: where each cell's lines are


def notebook_places(message: str, folder: Path) -> str:
    """``message`` with each ``kvcache/FILE, line N`` of a package made from a notebook told as the notebook's cell
    and the line in it (the student never saw the package's files)."""
    path = Path(folder) / CELL_PLACES
    if not path.is_file():
        return message
    places = json.loads(path.read_text())

    def place(match: re.Match) -> str:
        number = int(match.group(2))
        for first, last, label in places.get(match.group(1), []):
            if first <= number <= last:
                return f"{label} (line {number - first + 1} of the cell)"
        return match.group(0)

    return re.sub(rf"{re.escape(PACKAGE)}/(\w+\.py), line (\d+)", place, message)


def answer_sources(bodies: dict[str, str], reference: Path = REFERENCE) -> dict[str, str]:
    """grade_id -> answer-cell text: the reference classes with the given TODO bodies (or ``"stub"``) swapped in."""
    from .examples import with_bodies

    sources = {}
    for module in MODULES:
        path = reference / PACKAGE / module
        parts = split_module(with_bodies(path.read_text(), str(path), bodies), str(path))
        for name, todos in reference_modules(reference)[module].todo_classes.items():
            sources[cell_grade_id(module, [name])] = parts.classes[name].rstrip("\n")
    return sources


def fill_notebook(notebook: Path, out: Path, bodies: dict[str, str]) -> Path:
    """A copy of ``notebook`` (e.g. the release) whose answer cells hold the reference with ``bodies`` swapped in.

    ``bodies`` maps a TODO function (``"KVCache.update"``) to its body text or
    ``"stub"``; TODOs not named get the reference's body.
    """
    nb = read_notebook(Path(notebook))
    sources = answer_sources(bodies)
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources and cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = _lines(sources[grade_id])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(dumps_notebook(nb))
    return Path(out)


# ----------------------------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------------------------
def run(args) -> int:
    if args.check:
        stale = stale_paths(release=not args.no_release)
        if stale:
            raise UsageError(f"the nbgrader course is out of date ({', '.join(stale[:8])}"
                             f"{', ...' if len(stale) > 8 else ''}): run `kvkit notebook`")
        print("source/ and release/ are up to date")
        return 0
    if args.ensure_kernel:
        print(f"Jupyter kernel python3 runs {ensure_kernel()}")
        return 0
    if args.to_package:
        notebook, out = args.to_package
        notebook_to_package(Path(notebook), Path(out))
        print(f"wrote {Path(out) / PACKAGE} from {notebook}")
        return 0
    nb = write_source()
    print(f"wrote {nb} ({notebook_points(json.loads(nb.read_text())):g} points) and its support files")
    if not args.no_release:
        print(f"wrote {generate_release()} with nbgrader generate_assignment")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("notebook", help="generate the nbgrader course (source/ and release/) from reference/ and tests")
    p.add_argument("--check", action="store_true", help="only check that source/ and release/ are up to date")
    p.add_argument("--no-release", action="store_true", help="skip nbgrader generate_assignment (source/ only)")
    p.add_argument("--to-package", nargs=2, metavar=("NOTEBOOK", "OUT"),
                   help=f"write OUT/{PACKAGE}/ from a student's notebook (what kvkit grade runs on)")
    p.add_argument("--ensure-kernel", action="store_true",
                   help="register this Python as the python3 Jupyter kernel if Jupyter does not find one")
    p.set_defaults(func=run)
