"""What ``kvkit grade`` accepts as a submission, and the one-line errors for everything else."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kvkit.cli import main
from kvkit.errors import UsageError
from kvkit.grading.grade import grade
from kvkit.grading.intake import MAX_ZIP_BYTES, MAX_ZIP_MEMBERS, received
from kvkit.registry import ROOT
from layouts_support import PART1

REFERENCE, ASSIGNMENTS = PART1.reference, PART1.skeleton


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, prefix + str(path.relative_to(folder.parent)))
    return archive


def usage_error(capsys, *argv) -> str:
    """Run ``kvkit grade ARGV``: it must exit 2 with exactly one line on stderr; that line."""
    assert main(["grade", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_a_missing_path_is_one_line(tmp_path, capsys):
    assert "does not exist" in usage_error(capsys, str(tmp_path / "nope"))


def test_an_empty_folder_is_one_line(tmp_path, capsys):
    assert "is empty" in usage_error(capsys, str(tmp_path))


def test_a_folder_without_kvcache_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert "holds no kvcache package" in usage_error(capsys, str(tmp_path))


def test_two_kvcache_packages_are_ambiguous(tmp_path, capsys):
    for name in ("first", "second"):
        shutil.copytree(ASSIGNMENTS / "kvcache", tmp_path / name / "kvcache")
    line = usage_error(capsys, str(tmp_path))
    assert "2 kvcache packages" in line and "ambiguous" in line and "first" in line and "second" in line


def test_an_unknown_file_type_is_one_line(tmp_path, capsys):
    (tmp_path / "solution.txt").write_text("x")
    assert "neither a folder, a .zip nor a notebook" in usage_error(capsys, str(tmp_path / "solution.txt"))


def test_no_traceback_from_the_command_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "kvkit.cli", "grade", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_layouts_that_resolve_to_one_package(tmp_path):
    nested = tmp_path / "nested" / "my-work" / "assignments"
    shutil.copytree(ASSIGNMENTS / "kvcache", nested / "kvcache")
    for given in (tmp_path / "nested", nested / "kvcache"):  # a copy of the exercise; the package folder itself
        with received(PART1, given) as taken:
            assert sorted(p.name for p in taken.package.iterdir()) == sorted(
                p.name for p in (ASSIGNMENTS / "kvcache").iterdir() if p.name != "__pycache__")
    loose = tmp_path / "loose"  # Gradescope's upload of the package's files
    shutil.copytree(ASSIGNMENTS / "kvcache", loose, ignore=shutil.ignore_patterns("__pycache__"))
    with received(PART1, loose) as taken:
        assert sorted(p.name for p in taken.package.iterdir()) == sorted(p.name for p in loose.iterdir())
    holder = tmp_path / "holder"  # a folder with nothing but the student's zip
    holder.mkdir()
    zip_folder(nested / "kvcache", holder / "submission.zip")
    with received(PART1, holder) as taken:
        assert (taken.package / "cache.py").read_text() == (ASSIGNMENTS / "kvcache" / "cache.py").read_text()


@pytest.mark.slow
def test_a_zip_submission_is_graded(tmp_path):
    archive = zip_folder(REFERENCE / "kvcache", tmp_path / "student.zip", prefix="student-42/")
    report = grade(PART1, archive)
    assert report.score == report.max_score > 0


def _zip_with(tmp_path: Path, name: str, data: bytes = b"x = 1\n", link: bool = False) -> Path:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("kvcache/__init__.py", "")
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, data)
    return archive


@pytest.mark.parametrize("name", ["../escaped.py", "kvcache/../../escaped.py", "/tmp/escaped_abs.py",
                                  "..\\escaped.py", "C:/escaped.py"])
def test_a_zip_reaching_outside_its_folder_is_refused(tmp_path, capsys, name):
    archive = _zip_with(tmp_path, name)
    line = usage_error(capsys, str(archive))
    assert "outside its own folder" in line and "refused" in line
    assert not (tmp_path / "escaped.py").exists() and not Path("/tmp/escaped_abs.py").exists()


def test_a_zip_with_a_symbolic_link_is_refused(tmp_path, capsys):
    archive = _zip_with(tmp_path, "kvcache/cache.py", str(REFERENCE / "kvcache" / "cache.py").encode(), link=True)
    assert "symbolic link" in usage_error(capsys, str(archive))


def test_an_oversized_zip_is_refused(tmp_path, capsys):
    archive = _zip_with(tmp_path, "kvcache/weights.bin", bytes(MAX_ZIP_BYTES + 1))  # compresses to almost nothing
    archive.rename(tmp_path / "bomb.zip")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "a", zipfile.ZIP_DEFLATED):
        pass
    line = usage_error(capsys, str(tmp_path / "bomb.zip"))
    assert "unpacks to" in line or "over the limit" in line


def test_a_zip_with_too_many_entries_is_refused(tmp_path, capsys):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(MAX_ZIP_MEMBERS + 1):
            zf.writestr(f"kvcache/f{i}.py", "")
    assert "entries, over the limit" in usage_error(capsys, str(archive))


def test_a_broken_zip_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    assert "not a readable zip archive" in usage_error(capsys, str(tmp_path / "broken.zip"))


def test_a_symbolic_link_inside_a_submitted_package_is_refused(tmp_path, capsys):
    shutil.copytree(ASSIGNMENTS / "kvcache", tmp_path / "kvcache", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "kvcache" / "solution.py").symlink_to(REFERENCE / "kvcache" / "cache.py")
    assert "symbolic link" in usage_error(capsys, str(tmp_path))


@pytest.mark.slow
def test_a_notebook_submission_is_graded(tmp_path):
    from kvkit.courses import english

    notebook = tmp_path / "kv_cache.ipynb"
    shutil.copy(english(PART1).source_notebook, notebook)  # the instructor's notebook: the reference's code in cells
    report = grade(PART1, notebook)
    assert report.score == report.max_score > 0


def test_a_broken_notebook_is_one_line(tmp_path, capsys):
    (tmp_path / "kv_cache.ipynb").write_text("{ this is not json")
    line = usage_error(capsys, str(tmp_path / "kv_cache.ipynb"))
    assert "kv_cache.ipynb" in line


def test_without_notebook_support_a_notebook_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kvkit.grading.notebooks", None)  # as if it did not exist
    (tmp_path / "kv_cache.ipynb").write_text("{}")
    with pytest.raises(UsageError, match="cannot read notebooks"), received(PART1, tmp_path / "kv_cache.ipynb"):
        pass
