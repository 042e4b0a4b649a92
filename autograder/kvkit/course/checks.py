"""The graded checks as pytest collects them, and the autograder-test cells made from them.

A public check's cell calls the public test function shipped next to the
notebook; a hidden check's cell carries its test module's code and the
reference outputs it uses, between ``### BEGIN HIDDEN TESTS`` / ``### END
HIDDEN TESTS`` (nbgrader removes them from the release).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from kvchecks import codec
from kvchecks.i18n import ngettext

from ..paths import Layout
from ..registry import ROOT
from .cells import code_cell

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


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


def collect_checks(layout: Layout, hidden: bool = True) -> list[CheckItem]:
    """Every graded test item of ``layout``'s ``tests/NAME/`` (and ``autograder/material/NAME/hidden/``), with its
    TODO, points and parameters."""
    import pytest

    collector = _Collector()
    hidden_tests = layout.hidden_tests
    paths = [str(layout.public_tests)] + ([str(hidden_tests)] if hidden and hidden_tests.is_dir() else [])
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


def golden_entries(layout: Layout, item: CheckItem) -> dict:
    """The saved reference outputs one hidden check of ``layout``'s assignment looks up (found by running it on the
    reference, with the assignment the current one)."""
    from kvchecks import context
    from kvchecks.assignment import using
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

    with using(layout.assignment.manifest):
        test = getattr(_load_test_module(item.path), item.function)
        wanted = __import__("inspect").signature(test).parameters
        kwargs = dict(item.params)
        if "probe" in wanted:
            kwargs["probe"] = InProcessBackend(layout.reference, trusted=True)
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


def check_cells(layout: Layout, items: list[CheckItem], todo: int) -> list[dict]:
    """The autograder-test cells of one TODO of ``layout``'s assignment: public checks, then hidden ones."""
    cells = []
    mine = [item for item in items if item.todo == todo]
    for item in sorted(mine, key=lambda i: i.hidden):
        args = "".join(f", {name}={value!r}" for name, value in item.params.items())
        key = check_key(check_name(item), item.hidden)
        if item.hidden:
            grade_id = f"hidden_todo{todo}_{key.split('-')[1][:10]}"
            rel = item.nodeid
            goldens = json.dumps(golden_entries(layout, item), sort_keys=True, separators=(",", ":"))
            comment = ngettext("# Hidden check of TODO {todo} ({points:g} point): its code is not in your copy of the "
                               "notebook;\n# it runs when your work is graded.",
                               "# Hidden check of TODO {todo} ({points:g} points): its code is not in your copy of the "
                               "notebook;\n# it runs when your work is graded.", int(item.points))
            source = (
                f"{comment.format(todo=todo, points=item.points)}\n"
                f"{HIDDEN_BEGIN}\n"
                f"checks.run_hidden(\n"
                f"    {rel!r}{args},\n"
                f"    source={_literal(hidden_source(item.path, item.function))},\n"
                f"    goldens={_literal(goldens)},\n"
                f")\n"
                f"{HIDDEN_END}"
            )
        else:
            grade_id = "check_" + _slug(f"todo{todo}_{item.nodeid.split('::', 1)[1]}")
            nodeid = f"tests/{check_name(item)}"  # the public test files lie in tests/ beside the notebook
            comment = ngettext("# TODO {todo} check ({points:g} point); its code: {file}",
                               "# TODO {todo} check ({points:g} points); its code: {file}", int(item.points))
            source = (f"{comment.format(todo=todo, points=item.points, file=nodeid.split('::')[0])}\n"
                      f"checks.run({nodeid!r}{args})")
        cells.append(code_cell(source, grade_id, nbgrader={"grade": True, "solution": False, "locked": True,
                                                            "points": item.points},
                                kvkit={"check": key, "todo": todo}))
    return cells
