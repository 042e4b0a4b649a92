"""The student bundle holds what a student needs and nothing that gives the answers away."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from kvkit.build import solution_regions
from kvkit.bundle import TOP, write_bundle
from kvkit.paths import HIDDEN_TESTS, REFERENCE


def solution_lines() -> set[str]:
    """Distinctive lines of the reference's solution regions."""
    lines = set()
    for path in (REFERENCE / "kvcache").glob("*.py"):
        text = path.read_text().splitlines()
        for _, begin, end in solution_regions(path.read_text(), str(path)):
            lines |= {line.strip() for line in text[begin:end - 1] if len(line.strip()) > 25}
    return lines


def test_bundle_holds_no_solution_and_no_hidden_check(tmp_path):
    archive = zipfile.ZipFile(write_bundle(tmp_path / "bundle.zip"))
    names = archive.namelist()
    assert f"{TOP}/assignments/kvcache/cache.py" in names and f"{TOP}/tests/goldens.json" in names
    assert not any("reference" in n or "hidden" in n or "autograder" in n for n in names), names
    secrets = solution_lines()
    hidden_names = {line.split("(")[0][4:] for line in (HIDDEN_TESTS / "test_hidden_checks.py").read_text().splitlines()
                    if line.startswith("def test_")}
    hidden_keys = set(json.loads((HIDDEN_TESTS / "goldens.json").read_text()))
    for name in names:
        text = archive.read(name).decode()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{name} holds solution lines: {leaked[:3]}"
        assert not any(h in text for h in hidden_names), f"{name} names a hidden check"
        if name.endswith("goldens.json"):
            assert not hidden_keys & set(json.loads(text)), "hidden goldens in the bundle"


def test_student_runs_pytest_in_the_unzipped_bundle(tmp_path):
    zipfile.ZipFile(write_bundle(tmp_path / "bundle.zip")).extractall(tmp_path)
    root = tmp_path / TOP
    skeleton = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=root, capture_output=True, text=True)
    assert skeleton.returncode == 1 and "Total" in skeleton.stdout and "0 / " in skeleton.stdout.splitlines()[-1]
    solved = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--impl={REFERENCE}"], cwd=root,
                            capture_output=True, text=True)
    assert solved.returncode == 0, solved.stdout[-2000:]
