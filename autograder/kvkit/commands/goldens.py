"""``kvkit goldens``: rewrite the saved reference outputs (``goldens.json``) from ``reference/``.

The checks run on the reference, in this process, with a recording
``expected``: every probe call a check compares with is run on the reference
(and, where the check compares with known mistakes, on the reference with
that mistake's body from the assignment's ``examples/mistakes/``) and saved in the
``goldens.json`` beside the check's file. Recording is an instructors'
command only: the students' pytest plugin has no option for it. Run it after
changing a check's inputs or the reference; the kit's tests fail while a
golden file is out of date. ``kvkit goldens --check`` records afresh in a
scratch folder and says which golden file a recording would change.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from kvchecks import codec
from kvchecks import mistakes as known
from kvchecks.assignment import using
from kvchecks.backends import InProcessBackend
from kvchecks.goldens import Expected, GoldenFile, key, published

from ..examples import write_package
from ..paths import Layout
from ..registry import ROOT


class Recorder:
    """A pytest plugin: checks of ``layout``'s assignment run on its reference; each ``expected(...)`` call is
    observed and kept (a known mistake's body is ``<examples>/mistakes/<name>.py``)."""

    def __init__(self, layout: Layout, scratch: Path) -> None:
        self.layout = layout
        self.reference = InProcessBackend(layout.reference, trusted=True)
        self.scratch = scratch
        self.mistake_backends: dict[str, InProcessBackend] = {}
        self.entries: dict[Path, dict[str, object]] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.kvkit_backend = self.reference
        config.kvkit_expected = self.expected_for

    def _mistake(self, name: str) -> InProcessBackend:
        if name not in self.mistake_backends:
            mistake = known.registry()[name]
            body = (self.layout.examples / "mistakes" / f"{name}.py").read_text()
            folder = write_package(self.layout, self.scratch / name,
                                   {self.layout.assignment.todos[mistake.todo].function: body})
            self.mistake_backends[name] = InProcessBackend(folder, trusted=True)
        return self.mistake_backends[name]

    def expected_for(self, folder: Path) -> Expected:
        entries = self.entries.setdefault(Path(folder), {})

        def observe(probe: str, args: dict, mistake: str | None):
            if mistake is None:
                observed = self.reference(probe, **args)
            else:
                try:
                    observed = self._mistake(mistake)(probe, **args)
                except Exception:  # this mistake crashes on that call: nothing to compare with
                    observed = None
            entries[key(probe, args, mistake)] = observed
            return observed

        return Expected(observe)


def record(layout: Layout, test_dirs: list[Path], rootdir: Path = ROOT) -> tuple[int, str]:
    """Run the checks of ``layout``'s assignment in ``test_dirs`` on its reference, writing each folder's
    ``goldens.json``.

    Returns pytest's exit code and its output; nothing is written unless the
    reference passes every check.
    """
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="kvkit-goldens-") as scratch, using(layout.assignment.manifest):
        recorder = Recorder(layout, Path(scratch))
        args = [*map(str, test_dirs), "--rootdir", str(rootdir), "-p", "kvchecks.plugin", "-p", "no:cacheprovider",
                "--import-mode=importlib",
                "-q", "-W", "ignore"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main(args, plugins=[recorder])
        if code == pytest.ExitCode.OK:
            for folder, entries in recorder.entries.items():
                path = folder / "goldens.json"
                GoldenFile(path).write(unchanged_kept(path, entries))
    return int(code), out.getvalue()


def unchanged_kept(path: Path, entries: dict[str, object]) -> dict[str, object]:
    """``entries`` (key -> fresh observation) with each observation that is :func:`same` as the one ``path`` holds
    replaced by the saved one: a recording on another CPU (float32 differing in the last places) leaves the file as it
    was, and a recording after a change rewrites only the calls that changed."""
    saved = json.loads(path.read_text()) if path.is_file() else {}
    kept = {}
    for call, observed in entries.items():
        old = codec.from_jsonable(saved[call]) if call in saved else None
        kept[call] = old if call in saved and same(published(observed), old) else observed
    return kept


# float32 results differ between CPUs (vector widths, summation order) by a few units in the last place: 6e-6 on
# logits of size ~10 has been seen; the checks compare logits at 1e-4, so anything staler than this is a real change.
ATOL = RTOL = 2e-5


def same(a, b) -> bool:
    """Whether two observations are the same within :data:`ATOL` and :data:`RTOL`."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape
                and torch.allclose(a.double(), b.double(), atol=ATOL, rtol=RTOL))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-5 * max(1.0, abs(a))
    return a == b


def stale(layout: Layout) -> list[str]:
    """What a fresh recording would change in ``layout``'s goldens, one line each with what to run (nothing when
    they are up to date); the checks run on copies of the test folders, so nothing is written."""
    name = layout.assignment.name
    with tempfile.TemporaryDirectory(prefix="kvkit-goldens-check-") as tmp:
        scratch = Path(tmp)
        shutil.copy(ROOT / "conftest.py", scratch / "conftest.py")
        copies = {scratch / "tests": layout.public_tests}
        if layout.hidden_tests.is_dir():
            copies[scratch / "hidden"] = layout.hidden_tests
        for copy, folder in copies.items():
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("goldens.json", "__pycache__"))
        code, _output = record(layout, list(copies), rootdir=scratch)
        if code != 0:
            return [f"the reference of {name} fails its own checks, so no goldens can be recorded: run `pytest "
                    f"{layout.public_tests.relative_to(ROOT)} {layout.hidden_tests.relative_to(ROOT)} "
                    "--impl=reference` and make it pass"]
        problems = []
        for copy, folder in copies.items():
            saved, fresh = folder / "goldens.json", copy / "goldens.json"  # none where no check compares with them
            where = saved.relative_to(ROOT)
            new = json.loads(fresh.read_text()) if fresh.is_file() else {}
            if not saved.is_file():
                problems += [f"{where} is missing: run `kvkit --assignment {name} goldens`"] if new else []
                continue
            old = json.loads(saved.read_text())
            if new.keys() != old.keys():
                problems.append(f"{where} holds other probe calls than the checks make: run `kvkit --assignment "
                                f"{name} goldens`")
                continue
            changed = [k for k in new if not same(codec.from_jsonable(new[k]), codec.from_jsonable(old[k]))]
            if changed:
                problems.append(f"{where} is stale for {len(changed)} calls: run `kvkit --assignment {name} goldens`")
    return problems


def run(args) -> int:
    layout = args.layout
    if args.check:
        problems = stale(layout)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"the goldens of {layout.assignment.name} are up to date")
        return 1 if problems else 0
    code, output = record(layout, [layout.public_tests, layout.hidden_tests])
    if code != 0:
        print(output[-3000:])
        print("kvkit goldens: the reference failed its own checks; goldens not written", flush=True)
        return 1
    print(f"wrote {layout.public_tests / 'goldens.json'} and {layout.hidden_tests / 'goldens.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("goldens", help="instructors: rewrite goldens.json from the reference")
    p.add_argument("--check", action="store_true", help="write nothing; say which goldens a recording would change")
    p.set_defaults(func=run)
