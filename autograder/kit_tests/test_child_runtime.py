"""The child's runtime (``kvkit/child``): copied into every sandbox as ``kvchild/``, and what it imports before
confinement."""

from __future__ import annotations

import ast
import sys

from kvkit.sandbox import CHILD, CHILD_PACKAGE, Sandbox


def test_what_the_child_imports_before_confinement_is_the_standard_library():
    """``import kvchild.jail`` runs the package's ``__init__.py`` and ``jail.py`` before any confinement."""
    for name in ("__init__.py", "jail.py"):
        nodes = list(ast.walk(ast.parse((CHILD / name).read_text())))
        imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and not node.level}
        relative = [node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.level]
        assert not relative, f"{name} imports {relative} of its package"
        assert imported <= set(sys.stdlib_module_names) | {"__future__"}, f"{name} imports {sorted(imported)}"


def test_the_sandbox_holds_the_child_runtime_as_a_package_of_its_own():
    with Sandbox({}, mode="none") as box:
        copied = sorted(p.name for p in (box.harness / CHILD_PACKAGE).iterdir())
    assert copied == sorted(p.name for p in CHILD.glob("*.py"))
    assert {"__init__.py", "jail.py", "protocol.py", "serve.py"} <= set(copied)
