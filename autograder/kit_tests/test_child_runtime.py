"""The child's runtime (``kvkit/grading/child``): copied into every sandbox as ``kvchild/``, and what it imports before
confinement."""

from __future__ import annotations

import ast
import sys

from kvkit.grading.sandbox import CHILD, CHILD_PACKAGE, Sandbox


def _imports(nodes) -> tuple[set[str], list[str]]:
    """The top-level modules and the package's own modules (relative imports) that ``nodes`` import."""
    imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and not node.level}
    relative = [node.module or alias.name for node in nodes if isinstance(node, ast.ImportFrom) and node.level
                for alias in node.names]
    return imported, relative


def test_what_the_child_imports_before_confinement_is_the_standard_library():
    """``kvchild.boot`` runs the package's ``__init__.py``, ``boot.py`` and ``jail.py`` before any confinement: the
    standard library only, at import and in the jail; each role of ``boot.py`` imports the rest after the jail."""
    for name in ("__init__.py", "boot.py", "jail.py"):
        tree = ast.parse((CHILD / name).read_text())
        imported, relative = _imports(tree.body if name == "boot.py" else list(ast.walk(tree)))
        assert not relative, f"{name} imports {relative} of its package"
        assert imported <= set(sys.stdlib_module_names) | {"__future__"}, f"{name} imports {sorted(imported)}"
    tree = ast.parse((CHILD / "boot.py").read_text())
    for role in ("probe", "kernel"):
        body = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == role).body
        entered = next(i for i, node in enumerate(body) if "jail.enter(" in ast.unparse(node))
        imported, relative = _imports([n for node in body[:entered] for n in ast.walk(node)])
        assert set(relative) <= {"jail", "protocol"} and imported <= set(sys.stdlib_module_names), role


def test_the_sandbox_holds_the_child_runtime_as_a_package_of_its_own():
    with Sandbox({}, mode="none") as box:
        copied = sorted(p.name for p in (box.harness / CHILD_PACKAGE).iterdir())
    assert copied == sorted(p.name for p in CHILD.glob("*.py"))
    assert {"__init__.py", "boot.py", "jail.py", "protocol.py", "serve.py", "zygote.py"} <= set(copied)
