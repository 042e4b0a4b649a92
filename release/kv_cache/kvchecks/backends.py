"""Run probes against an implementation in this process (the self-check and golden recording)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

from . import codec
from .probes import PROBES

_loaded = itertools.count()


def find_package(folder: Path) -> Path:
    """The ``kvcache`` package directory inside ``folder``; ``FileNotFoundError`` with a clear message if none."""
    package = Path(folder) / "kvcache"
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"{folder} holds no kvcache package (expected {package}/__init__.py)")
    return package


def load_package(folder: Path) -> ModuleType:
    """Import the ``kvcache`` package in ``folder`` under a private name, so several can coexist."""
    package = find_package(folder)
    name = f"_kvcache_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class InProcessBackend:
    """Calls probes directly on an imported package; results pass through the codec, as in grading."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._package: ModuleType | None = None

    def __call__(self, probe: str, **args):
        if self._package is None:
            self._package = load_package(self.folder)
        result = PROBES[probe](self._package, **codec.loads(codec.dumps(args)))
        return codec.loads(codec.dumps(result))


class StudentCodeError(Exception):
    """The student's code raised (or its process failed) while a probe ran; the message says what and where."""
