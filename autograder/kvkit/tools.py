"""An assignment's own commands (its bench, its demos): the ``tools`` package in its material folder.

``autograder/material/<name>/tools/__init__.py`` names its command modules in ``COMMANDS``; each module has an
``add_parser(sub)`` like the kit's own commands. The package is imported from its folder under a name of its own
(``kvkit_tools_<name>``), so two assignments' tools never collide and a new assignment's tools touch no kit file.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .paths import Layout


def tools_package(layout: Layout) -> ModuleType | None:
    """The assignment's tools package, or ``None`` when it has none."""
    init = layout.tools / "__init__.py"
    if not init.is_file():
        return None
    name = f"kvkit_tools_{layout.assignment.name}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(layout.tools)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def tool(layout: Layout, module: str) -> ModuleType:
    """One module of the assignment's tools, e.g. ``tool(layout, "hf")``."""
    package = tools_package(layout)
    if package is None:
        raise ModuleNotFoundError(f"{layout.assignment.name} has no tools package ({layout.tools})")
    return importlib.import_module(f"{package.__name__}.{module}")


def command_modules(layout: Layout) -> list[ModuleType]:
    """The modules of the assignment's own commands, in the order its ``COMMANDS`` lists them."""
    package = tools_package(layout)
    return [] if package is None else [tool(layout, name) for name in package.COMMANDS]
