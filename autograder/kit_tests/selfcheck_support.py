"""Run the graded checks (public and hidden) in this process on a package: fast, for the kit's many examples."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from kvchecks.plugin import SCOREBOARD, Result
from kvkit.examples import example_body, write_package
from kvkit.grading.grade import UNUSED_PLUGINS
from kvkit.paths import Layout


class _Results:
    def __init__(self) -> None:
        self.results: list[Result] = []

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.results = list(config.pluginmanager.get_plugin(SCOREBOARD).results)


def checks_in_process(layout: Layout, folder: Path) -> dict[str, Result]:
    """Check name (``test_x`` or ``test_x[id]``) -> its result, for ``layout``'s package in ``folder`` (the plugin
    takes the assignment from the checks' paths)."""
    grab = _Results()
    args = [str(layout.public_tests), str(layout.hidden_tests), f"--impl={folder}", *UNUSED_PLUGINS,
            "--import-mode=importlib", "-q", "-W", "ignore"]  # without the plugins the grader goes without
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[grab])
    assert grab.results, f"no check ran on {folder}"
    return {r.name.split("::")[-1]: r for r in grab.results}


def example_package(layout: Layout, body: str, out: Path) -> Path:
    """``layout``'s reference with one TODO body replaced by ``<examples>/<body>.py`` or ``.patch`` (its name,
    ``todoN_...``, says the TODO)."""
    todo = int(re.match(r"todo(\d+)_", Path(body).name).group(1))
    found = next(layout.examples.glob(f"{body}.*"))
    return write_package(layout, out, {layout.assignment.todos[todo].function: example_body(layout, todo, found)})
