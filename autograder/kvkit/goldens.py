"""``kvkit goldens``: rewrite the saved reference outputs (``goldens.json``) from ``reference/``.

The checks run on the reference, in this process, with a recording
``expected``: every probe call a check compares with is run on the reference
(and, where the check compares with known mistakes, on the reference with
that mistake's body from the assignment's ``examples/mistakes/``) and saved in the
``goldens.json`` beside the check's file. Recording is an instructors'
command only: the students' pytest plugin has no option for it. Run it after
changing a check's inputs or the reference; the kit's tests fail while a
golden file is out of date.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest

from kvchecks import mistakes as known
from kvchecks.backends import InProcessBackend
from kvchecks.goldens import Expected, GoldenFile, key
from .paths import TODOS

from .examples import write_package
from .paths import EXAMPLES, HIDDEN_TESTS, PUBLIC_TESTS, REFERENCE, ROOT

MISTAKE_BODIES = EXAMPLES / "mistakes"  # <examples>/mistakes/<name>.py


class Recorder:
    """A pytest plugin: checks run on the reference; each ``expected(...)`` call is observed and kept."""

    def __init__(self, reference: Path, scratch: Path) -> None:
        self.reference = InProcessBackend(reference, trusted=True)
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
            body = (MISTAKE_BODIES / f"{name}.py").read_text()
            folder = write_package(self.scratch / name, {TODOS[mistake.todo].function: body})
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


def record(test_dirs: list[Path], rootdir: Path = ROOT, reference: Path = REFERENCE) -> tuple[int, str]:
    """Run the checks in ``test_dirs`` on the reference, writing each folder's ``goldens.json``.

    Returns pytest's exit code and its output; nothing is written unless the
    reference passes every check.
    """
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="kvkit-goldens-") as scratch:
        recorder = Recorder(reference, Path(scratch))
        args = [*map(str, test_dirs), "--rootdir", str(rootdir), "-p", "kvchecks.plugin", "-p", "no:cacheprovider",
                "--import-mode=importlib",
                "-q", "-W", "ignore"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main(args, plugins=[recorder])
        if code == pytest.ExitCode.OK:
            for folder, entries in recorder.entries.items():
                GoldenFile(folder / "goldens.json").write(entries)
    return int(code), out.getvalue()


def run(args) -> int:
    code, output = record([PUBLIC_TESTS, HIDDEN_TESTS])
    if code != 0:
        print(output[-3000:])
        print("kvkit goldens: the reference failed its own checks; goldens not written", flush=True)
        return 1
    print(f"wrote {PUBLIC_TESTS / 'goldens.json'} and {HIDDEN_TESTS / 'goldens.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("goldens", help="instructors: rewrite goldens.json from the reference")
    p.set_defaults(func=run)
