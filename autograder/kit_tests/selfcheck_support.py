"""Run the graded checks (public and hidden) in this process on a package: fast, for the kit's many examples."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from kvchecks.plugin import SCOREBOARD, Result
from kvkit.paths import TODOS
from kvkit.examples import example_body, write_package
from kvkit.paths import EXAMPLES, HIDDEN_TESTS, PUBLIC_TESTS


class _Results:
    def __init__(self) -> None:
        self.results: list[Result] = []

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.results = list(config.pluginmanager.get_plugin(SCOREBOARD).results)


def checks_in_process(folder: Path) -> dict[str, Result]:
    """Check name (``test_x`` or ``test_x[id]``) -> its result, for the assignment's package in ``folder``."""
    grab = _Results()
    args = [str(PUBLIC_TESTS), str(HIDDEN_TESTS), f"--impl={folder}", "-p", "no:cacheprovider",
            "--import-mode=importlib", "-q", "-W", "ignore"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[grab])
    assert grab.results, f"no check ran on {folder}"
    return {r.name.split("::")[-1]: r for r in grab.results}


def example_package(body: str, out: Path) -> Path:
    """The reference with one TODO body replaced by ``<examples>/<body>.py`` or ``.patch`` (its name, ``todoN_...``,
    says the TODO)."""
    todo = int(re.match(r"todo(\d+)_", Path(body).name).group(1))
    return write_package(out, {TODOS[todo].function: example_body(todo, next(EXAMPLES.glob(f"{body}.*")))})
