"""The files a student installs from and reads: ``requirements.txt`` (torch's CPU wheel) and the student README.

What these files must hold (the CPU index, the kit's torch pin, the README's Python, points and markers) is a
requirement (``kvkit.requirements``: ``test_requirements.py``; the points the README states are ``kvkit build
--check``'s); here, that pip then picks the right wheel, and part 1's README's install notes."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kvkit.requirements import TORCH_INDEX, kit_torch_pin
from layouts_support import PART1



def requirements(layout) -> Path:
    return layout.student / "requirements.txt"


def readme(layout) -> Path:
    return layout.skeleton / "README.md"


def fake_wheel(folder: Path, name: str, version: str, tag: str) -> None:
    """An empty but valid wheel ``name-version-tag.whl`` in ``folder/name/``, listed in its ``index.html``."""
    project = folder / name
    project.mkdir(parents=True, exist_ok=True)
    filename = f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: kit-test\nRoot-Is-Purelib: false\nTag: {tag}\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(project / filename, "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
    links = "".join(f'<a href="{p.name}">{p.name}</a>\n' for p in sorted(project.glob("*.whl")))
    (project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")


@pytest.mark.parametrize("platform, expected", [("manylinux_2_28_x86_64", "+cpu"), ("macosx_11_0_arm64", "")])
def test_pip_picks_the_cpu_wheel_on_linux_and_the_plain_one_on_macos(tmp_path, layout, platform, expected):
    """pip's own resolver on local stand-ins for PyPI and PyTorch's CPU index, each holding what the real one does."""
    version = kit_torch_pin().split("==")[1]
    pypi, cpu = tmp_path / "pypi", tmp_path / "cpu"
    for tag in ("cp311-cp311-manylinux_2_28_x86_64", "cp311-none-macosx_11_0_arm64"):
        fake_wheel(pypi, "torch", version, tag)  # PyPI: the CUDA build on Linux, the CPU build on macOS
    fake_wheel(cpu, "torch", f"{version}+cpu", "cp311-cp311-manylinux_2_28_x86_64")
    fake_wheel(cpu, "torch", version, "cp311-none-macosx_11_0_arm64")  # the CPU index's macOS wheel has no +cpu
    fake_wheel(pypi, "numpy", "2.0.0", "py3-none-any")
    fake_wheel(pypi, "pytest", "8.0.0", "py3-none-any")
    local = tmp_path / "requirements.txt"
    local.write_text(requirements(layout).read_text().replace(TORCH_INDEX, cpu.as_uri()))
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "--target", str(tmp_path / "target"), "--disable-pip-version-check",
         "--index-url", pypi.as_uri(), "--only-binary=:all:", "--platform", platform,
         "--python-version", "3.11", "--implementation", "cp", "-r", str(local)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    installs = json.loads(report.read_text())["install"]
    chosen = {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}
    assert chosen["torch"] == version + expected, f"on {platform} pip chose torch {chosen['torch']}"


def test_readme_explains_the_cpu_install_and_the_speed_script():
    text = readme(PART1).read_text()
    assert "pip install -r requirements.txt" in text and "CPU" in text
    assert "python speed.py" in text
