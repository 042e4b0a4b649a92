"""Run the graded checks (public and hidden) in this process on a package: fast, for the kit's many examples."""

from __future__ import annotations

import contextlib
import io
import re
import tomllib
from pathlib import Path

import pytest

from kvchecks.plugin import SCOREBOARD, Result
from kvkit.examples import example_body, write_package
from kvkit.grading.grade import UNUSED_PLUGINS
from kvkit.paths import Layout


class _Results:
    """A pytest plugin that keeps the run's check results; with ``todo``, only the checks that run that TODO's code
    (its own, and those whose ``uses`` marker names it) are run: the others, on a package that differs from the
    reference in that TODO alone, run the reference's code and pass."""

    def __init__(self, todo: int | None = None) -> None:
        self.results: list[Result] = []
        self.todo = todo

    @pytest.hookimpl(trylast=True)  # after the checks' plugin has read each check's todoN and uses markers
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.todo is None:
            return
        def runs(item: pytest.Item) -> bool:
            properties = dict(item.user_properties)
            return properties.get("todo") == self.todo or self.todo in properties.get("uses", ())

        config.hook.pytest_deselected(items=[item for item in items if not runs(item)])
        items[:] = [item for item in items if runs(item)]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.results = list(config.pluginmanager.get_plugin(SCOREBOARD).results)


def checks_in_process(layout: Layout, folder: Path, todo: int | None = None) -> dict[str, Result]:
    """Check name (``test_x`` or ``test_x[id]``) -> its result, for ``layout``'s package in ``folder`` (the plugin
    takes the assignment from the checks' paths): every check, or with ``todo`` those that run that TODO's code (for
    a package that differs from the reference in that TODO only)."""
    grab = _Results(todo)
    args = [str(layout.public_tests), str(layout.hidden_tests), f"--impl={folder}", *UNUSED_PLUGINS,
            "--import-mode=importlib", "-q", "-W", "ignore"]  # without the plugins the grader goes without
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[grab])
    assert grab.results, f"no check ran on {folder}"
    return {r.name.split("::")[-1]: r for r in grab.results}


def body_todo(body: str) -> int:
    """The TODO an example body is written for (its name, ``todoN_...``, says it)."""
    return int(re.match(r"todo(\d+)_", Path(body).name).group(1))


def example_package(layout: Layout, body: str, out: Path) -> Path:
    """``layout``'s reference with one TODO body replaced by ``<examples>/<body>.py`` or ``.patch`` (its name,
    ``todoN_...``, says the TODO)."""
    todo = body_todo(body)
    found = next(layout.examples.glob(f"{body}.*"))
    return write_package(layout, out, {layout.assignment.todos[todo].function: example_body(layout, todo, found)})


def pinned_hints(layout: Layout) -> dict[str, dict]:
    """The assignment's pinned hints (``<examples>/hints.toml``): mistake body -> check, says, never."""
    path = layout.examples / "hints.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}
