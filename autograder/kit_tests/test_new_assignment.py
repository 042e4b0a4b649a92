"""A new assignment from ``kvkit new``, graded on the real paths, and the three maintainer exercises, in a copy.

The kit's files are copied into a scratch folder made a git repository, and the copy's own commands run there (its
``kvkit`` and ``kvchecks`` first on ``PYTHONPATH``). ``kvkit new toy3`` writes toy3's folders and nothing else;
``kvkit check-assignment toy3`` finds nothing missing; ``kvkit grade`` gives its reference full marks and its
skeleton zero, so do the bundle's self-check and real ``nbgrader autograde``. Then what ``docs/maintaining.md``
walks through, with the files a maintainer touches by hand and no other: (a) a check added to part 1 (the check file
and its catalogue entry), (b) a second TODO added to toy3 (manifest, reference, its public and hidden checks,
contract rows with their breaking examples, catalogue entries); ``check-assignment --quick`` says what is missing
half-way, and after the kit's commands it passes (``--quick``: the generators it would check have just run) and the
counts the READMEs state follow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kvkit.assignment_list import LIST
from kvkit.paths import layouts
from kvkit.registry import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("new-assignment")]  # one copy of the kit, one worker

NAME, PACKAGE = "toy3", "toy3"
FULL, PUBLIC = 12, 10  # the scaffold's TODO 1: 4 x 2 + 1 + 1 public points, 2 hidden
OWN = (f"tests/{NAME}/", f"reference/{PACKAGE}/", f"assignments/{NAME}/", f"autograder/material/{NAME}/",
       f"source/{NAME}/", f"source/{NAME}_ja/", f"release/{NAME}/", f"release/{NAME}_ja/")
GIT = ["git", "-c", "user.name=kit", "-c", "user.email=kit@localhost"]


def kit_files() -> list[str]:
    """The kit's files as a fresh clone has them (and new ones not yet committed), relative to the root."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [name for name in listed if name and (ROOT / name).is_file() and not name.startswith("autograder/kit_tests/")]


def kit_env(kit: Path) -> dict:
    """The copy's own ``kvkit`` and ``kvchecks`` before the installed ones."""
    return {**os.environ, "PYTHONPATH": f"{kit / 'autograder'}:{kit / 'tests'}",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def run(kit: Path, argv: list[str], cwd: Path | None = None, env: dict | None = None,
        expect_ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd or kit, env=env or kit_env(kit), capture_output=True, text=True, timeout=900)
    if expect_ok:
        assert done.returncode == 0, f"{' '.join(argv[:6])}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def kvkit(kit: Path, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    return run(kit, [sys.executable, "-m", "kvkit.cli", *args], expect_ok=expect_ok)


def changed(kit: Path) -> list[str]:
    """The copy's files that differ from its first commit, new ones included (``git status``)."""
    out = run(kit, ["git", "status", "--porcelain", "--untracked-files=all"]).stdout
    return sorted(line[3:] for line in out.splitlines())


def commit(kit: Path) -> None:
    run(kit, ["git", "add", "-A"])
    run(kit, [*GIT, "commit", "-q", "-m", "kit", "--allow-empty"])


def copy_of_the_kit(kit: Path) -> Path:
    """A copy of the kit in ``kit``, committed."""
    for name in kit_files():
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, kit / name)
    run(kit, ["git", "init", "-q"])
    commit(kit)
    return kit


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    """A copy of the kit, committed, then with toy3 made by ``kvkit new``."""
    kit = copy_of_the_kit(tmp_path_factory.mktemp("kit"))
    done = kvkit(kit, "new", NAME)
    assert f"{NAME} is ready" in done.stdout, done.stdout
    return kit


def test_new_writes_only_the_assignments_own_folders(kit):
    changes = changed(kit)
    assert changes and [path for path in changes if not path.startswith(OWN)] == ["README.md"]
    before, after = (ROOT / "README.md").read_text(), (kit / "README.md").read_text()
    assert LIST.sub("", after) == LIST.sub("", before), "README.md changed outside its generated list"
    part = max(layout.assignment.part for layout in layouts()) + 1  # after the kit's last
    assert f"- **Part {part}, `{NAME}`** (<!-- kvkit build: todos of {NAME} -->1 TODO<!-- end -->" in after
    for folder in OWN:
        assert [path for path in changes if path.startswith(folder)], f"kvkit new wrote nothing in {folder}"
    manifest = (kit / "tests" / NAME / "assignment.toml").read_text()
    assert re.search(rf"^part = {part}\b", manifest, re.M)
    skeleton = (kit / "assignments" / NAME / PACKAGE / "ops.py").read_text()
    assert "raise NotImplementedError('TODO 1: Scaler.apply" in skeleton and "BEGIN SOLUTION" not in skeleton
    readme = (kit / "assignments" / NAME / "README.md").read_text()
    assert f"{FULL} points in all, {PUBLIC} of them in the public checks" in readme
    assert f"合計 {FULL} 点（うち公開チェックで {PUBLIC} 点）" in (kit / "assignments" / NAME / "README.ja.md").read_text()


def test_check_assignment_finds_nothing_missing(kit):
    done = kvkit(kit, "check-assignment", NAME)
    assert done.stdout.strip().splitlines()[-1].startswith(f"{NAME} meets every requirement ("), done.stdout


def test_new_refuses_a_taken_name_and_a_bad_one_in_one_line(kit):
    for argv, said in ((["new", NAME], "already"), (["new", "Bad-Name"], "not a usable name")):
        done = kvkit(kit, *argv, expect_ok=False)
        assert done.returncode == 2 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1, argv


def package_of(kit: Path, which: str, dest: Path) -> Path:
    """``dest/PACKAGE/``: toy3's reference or skeleton package."""
    folder = {"reference": kit / "reference", "skeleton": kit / "assignments" / NAME}[which]
    shutil.copytree(folder / PACKAGE, dest / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def graded(kit: Path, folder: Path, out: Path) -> dict:
    kvkit(kit, "--assignment", NAME, "grade", str(folder), "--json", str(out))
    return json.loads(out.read_text())


def test_kvkit_grade_gives_the_reference_full_marks_and_the_skeleton_zero(kit, tmp_path):
    assert graded(kit, package_of(kit, "reference", tmp_path / "ref"), tmp_path / "ref.json")["score"] == FULL
    zero = graded(kit, package_of(kit, "skeleton", tmp_path / "skel"), tmp_path / "skel.json")
    assert zero["score"] == 0 and zero["max_score"] == FULL
    assert all("is not implemented yet (NotImplementedError" in t["output"] for t in zero["tests"])


def test_the_students_bundle_self_checks(kit, tmp_path):
    kvkit(kit, "--assignment", NAME, "bundle", str(tmp_path / "toy3.zip"))
    with zipfile.ZipFile(tmp_path / "toy3.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "student")
    assert "toy3-exercise/README.ja.md" in names and not [n for n in names if "hidden" in n or "reference" in n]
    folder = tmp_path / "student" / "toy3-exercise"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = run(kit, [sys.executable, "-m", "pytest"], cwd=folder, env=env, expect_ok=False)
    assert first.returncode == 1 and re.search(rf"Total\s+0 / {PUBLIC}\b", first.stdout), first.stdout[-2000:]
    shutil.rmtree(folder / "assignments" / PACKAGE)
    package_of(kit, "reference", folder / "assignments")
    done = run(kit, [sys.executable, "-m", "pytest"], cwd=folder, env=env)
    assert re.search(rf"Total\s+{PUBLIC} / {PUBLIC}\b", done.stdout), done.stdout[-2000:]


def answered(release: dict, source: dict) -> dict:
    """The release notebook with each answer cell as the source notebook has it (the reference's code)."""
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    filled = json.loads(json.dumps(release))
    for cell in filled["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return filled


def test_real_nbgrader_autograde_gives_the_kits_scores(kit, tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    shutil.copytree(kit / "source" / NAME, course / "source" / NAME)
    shutil.copyfile(kit / "nbgrader_config.py", course / "nbgrader_config.py")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run(kit, [*nbgrader, "generate_assignment", NAME, "--force"], cwd=course)
    release = json.loads((course / "release" / NAME / f"{NAME}.ipynb").read_text())
    source = json.loads((kit / "source" / NAME / f"{NAME}.ipynb").read_text())
    for student, notebook in (("full", answered(release, source)), ("untouched", release)):
        target = course / "submitted" / student / NAME / f"{NAME}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(notebook))
    run(kit, [*nbgrader, "autograde", NAME, "--force"], cwd=course)
    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', (course / "nbgrader_config.py").read_text()).group(1)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        scores = {s: (gb.find_submission(NAME, s).score, gb.find_submission(NAME, s).max_score)
                  for s in ("full", "untouched")}
    assert scores == {"full": (FULL, FULL), "untouched": (0, FULL)}


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def points_in_all(kit: Path, name: str) -> tuple[int, int]:
    found = re.search(r"(\d+) points in all, (\d+) of them", (kit / "assignments" / name / "README.md").read_text())
    return int(found.group(1)), int(found.group(2))


# (a) a check added to part 1: the check file and the catalogue, by hand
NEW_CHECK = '''

@pytest.mark.points(2)
def test_update_writes_a_decode_step_after_five_positions(probe, expected):
    ops = [{"op": "set_length", "value": 5}, {"op": "update", "layer": 0, "n": 1}]
    got, want, fill = run(probe, expected, ops)
    expect.no_error(got[0], _("update(0, keys, values) with current_length=5"))
    check_buffers(got[0], want[0], [0], fill)
'''
NEW_CHECK_JA = '''
msgid "update(0, keys, values) with current_length=5"
msgstr "current_length=5 での update(0, keys, values)"
'''


@pytest.mark.xdist_group("new-assignment-part-1")  # a copy of its own: free to run beside the toy3 tests
def test_a_new_check_in_part_1_needs_its_file_and_its_catalogue_entry(tmp_path):
    kit = copy_of_the_kit(tmp_path / "kit")  # part 1 only: toy3 plays no part
    total, public = points_in_all(kit, "kv_cache")
    hand = ["tests/kv_cache/test_todo1_cache.py", "tests/kv_cache/locale/ja/LC_MESSAGES/kv_cache.po"]
    append(kit / hand[0], NEW_CHECK)
    append(kit / hand[1], NEW_CHECK_JA)
    for command in (["catalogs", "--domain", "kv_cache"], ["build"], ["goldens"], ["notebook"]):
        kvkit(kit, "--assignment", "kv_cache", *command)
    done = kvkit(kit, "check-assignment", "kv_cache", "--quick", expect_ok=False)  # the generators just ran
    assert done.returncode == 0, done.stdout
    assert points_in_all(kit, "kv_cache") == (total + 2, public + 2)
    assert f"kv_cache -->{total + 2} points<!-- end -->" in (kit / "README.md").read_text()
    generated = ("tests/kv_cache/goldens.json", "tests/kv_cache/locale/ja/LC_MESSAGES/kv_cache.mo",
                 "assignments/kv_cache/README", "README.md", "docs/", "source/kv_cache", "release/kv_cache")
    assert [path for path in changed(kit) if path not in hand and not path.startswith(generated)] == []


# (b) a second TODO added to toy3: the manifest, the reference, its checks, contract rows, catalogues, by hand
TODO2_MANIFEST = '''
[[todos]]
number = 2
module = "ops.py"
function = "Shifter.apply"
task = "return x plus the offset as a new tensor; refuse an integer x"
contract = "return `x + offset`, a new tensor of `x`'s shape and dtype; leave `x` unchanged; `ValueError` when `x` is not a floating-point tensor"

[todos.ja]
task = "x にオフセットを足した新しいテンソルを返す。整数の x は拒否する"
contract = "`x + offset` を `x` と同じ形と dtype の新しいテンソルとして返す。`x` は変えない。`x` が浮動小数点のテンソルでなければ `ValueError`"
'''
TODO2_REFERENCE = '''

class Shifter:
    """Adds an offset fixed when it is made."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x + offset`` as a new tensor of ``x``'s shape and dtype; ``x`` itself is left unchanged.

        Raises ``ValueError`` when ``x`` is not a floating-point tensor.
        """
        ### BEGIN SOLUTION
        if not x.is_floating_point():
            raise ValueError(f"Shifter.apply needs a floating-point tensor, got {x.dtype}")
        return x + self.offset
        ### END SOLUTION
'''
TODO2_CHECKS = '''"""TODO 2: Shifter.apply returns x + offset as a new tensor, leaves x unchanged and refuses an integer x."""

import pytest

from kvchecks import expect
from kvchecks.i18n import _

pytestmark = pytest.mark.todo2


def shifted(offset: float, seed: int, **more) -> dict:
    return dict(function="Shifter.apply", init={"offset": offset}, seed=seed, shape=[2, 3], **more)


@pytest.mark.points(2)
@pytest.mark.parametrize("offset", [1.5, -2.0])
def test_shift_adds_the_offset(probe, expected, offset):
    for seed in range(4):
        what = _("Shifter({offset}).apply(x) for the x of seed {seed}").format(offset=offset, seed=seed)
        got = expect.no_error(probe("call", **shifted(offset, seed)), what)
        expect.close(got, expected("call", **shifted(offset, seed))["value"], what)


@pytest.mark.points(1)
def test_shift_leaves_x_unchanged(probe):
    observed = probe("call", **shifted(1.0, seed=1))
    expect.no_error(observed, _("Shifter(1.0).apply(x)"))
    expect.that(observed["x_unchanged"], _("Shifter(1.0).apply(x) changed its input x."))


@pytest.mark.points(1)
def test_shift_refuses_an_integer_tensor(probe):
    expect.raised(probe("call", **shifted(1.0, seed=2, dtype="int64")), "value_error",
                  _("Shifter(1.0).apply(x) for an integer x"))
'''
TODO2_CHECKS_JA = '''
msgid "Shifter({offset}).apply(x) for the x of seed {seed}"
msgstr "seed {seed} の x に対する Shifter({offset}).apply(x)"

msgid "Shifter(1.0).apply(x)"
msgstr "Shifter(1.0).apply(x)"

msgid "Shifter(1.0).apply(x) changed its input x."
msgstr "Shifter(1.0).apply(x) が入力の x を変えました。"

msgid "Shifter(1.0).apply(x) for an integer x"
msgstr "整数の x に対する Shifter(1.0).apply(x)"
'''
TODO2_HIDDEN = '''"""toy3's hidden checks of TODO 2."""

import pytest

from kvchecks import expect
from kvchecks.i18n import _


@pytest.mark.todo2
@pytest.mark.points(1)
def test_hidden_shift_keeps_the_shape(probe, expected):
    args = dict(function="Shifter.apply", init={"offset": 0.5}, seed=7, shape=[4, 2, 1], dtype="float64")
    got = expect.no_error(probe("call", **args), _("Shifter(0.5).apply(x) for x of shape (4, 2, 1)"))
    expect.close(got, expected("call", **args)["value"], _("Shifter(0.5).apply(x) for x of shape (4, 2, 1)"),
                 hint=_("Return x + offset for x of any shape."))
'''
TODO2_HIDDEN_JA = '''
msgid "Shifter(0.5).apply(x) for x of shape (4, 2, 1)"
msgstr "形 (4, 2, 1) の x に対する Shifter(0.5).apply(x)"

msgid "Return x + offset for x of any shape."
msgstr "どんな形の x にも x + offset を返してください。"
'''
TODO2_CONTRACT = '''
## TODO 2, `Shifter.apply(x)`

| TODO | clause | checks that fail without it | example that breaks it |
| --- | --- | --- | --- |
| 2 | returns `x + offset` | `test_shift_adds_the_offset[*]`, `test_hidden_shift_keeps_the_shape` | `clauses/todo2_subtracts` |
| 2 | leaves `x` unchanged (a new tensor) | `test_shift_leaves_x_unchanged` | `clauses/todo2_in_place` |
| 2 | `ValueError` when `x` is not a floating-point tensor | `test_shift_refuses_an_integer_tensor` | `clauses/todo2_in_place` |
'''
TODO2_PATCHES = {
    "todo2_subtracts": "# subtracts the offset\n- return x + self.offset\n+ return x - self.offset\n",
    "todo2_in_place": "# adds in place, and so never refuses an integer x (it fails otherwise)\n"
                      "- if not x.is_floating_point():\n"
                      "-     raise ValueError(f\"Shifter.apply needs a floating-point tensor, got {x.dtype}\")\n"
                      "- return x + self.offset\n+ return x.add_(self.offset)\n",
}


def test_a_new_todo_needs_the_manifest_the_reference_its_checks_contract_and_catalogues(kit):
    commit(kit)
    tests, material, reference = kit / "tests" / NAME, kit / "autograder" / "material" / NAME, kit / "reference" / PACKAGE
    manifest = tests / "assignment.toml"
    manifest.write_text(manifest.read_text().replace('exports = ["Scaler", "scale_all"]',
                                                     'exports = ["Scaler", "scale_all", "Shifter"]') + TODO2_MANIFEST)
    append(reference / "ops.py", TODO2_REFERENCE)
    init = reference / "__init__.py"
    init.write_text(init.read_text().replace("import Scaler, scale_all", "import Scaler, Shifter, scale_all")
                    .replace('"Scaler", "scale_all"]', '"Scaler", "Shifter", "scale_all"]'))
    (tests / "test_todo2_shift.py").write_text(TODO2_CHECKS)
    append(tests / "locale" / "ja" / "LC_MESSAGES" / f"{NAME}.po", TODO2_CHECKS_JA)
    missing = kvkit(kit, "check-assignment", NAME, "--quick", expect_ok=False)  # what it says is still missing
    assert missing.returncode == 1 and "TODO 2 has no hidden check" in missing.stdout, missing.stdout
    assert "contract.md: TODO 2 has no row" in missing.stdout

    (material / "hidden" / "test_hidden_todo2.py").write_text(TODO2_HIDDEN)
    append(material / "hidden" / "locale" / "ja" / "LC_MESSAGES" / f"{NAME}_hidden.po", TODO2_HIDDEN_JA)
    append(material / "contract.md", TODO2_CONTRACT)
    for name, patch in TODO2_PATCHES.items():
        (material / "examples" / "clauses" / f"{name}.patch").write_text(patch)
    hand = {manifest, reference / "ops.py", init, tests / "test_todo2_shift.py",
            tests / "locale" / "ja" / "LC_MESSAGES" / f"{NAME}.po", material / "hidden" / "test_hidden_todo2.py",
            material / "hidden" / "locale" / "ja" / "LC_MESSAGES" / f"{NAME}_hidden.po", material / "contract.md",
            *[material / "examples" / "clauses" / f"{name}.patch" for name in TODO2_PATCHES]}
    for command in (["catalogs", "--domain", NAME, "--domain", f"{NAME}_hidden"], ["--assignment", NAME, "build"],
                    ["--assignment", NAME, "goldens"], ["--assignment", NAME, "notebook"]):
        kvkit(kit, *command)
    done = kvkit(kit, "check-assignment", NAME, "--quick", expect_ok=False)  # the generators just ran
    assert done.returncode == 0, done.stdout
    assert points_in_all(kit, NAME) == (FULL + 7, PUBLIC + 6)
    assert "| 2 | `ops.py`, `Shifter.apply(x)` |" in (kit / "assignments" / NAME / "README.md").read_text()
    assert "raise NotImplementedError('TODO 2: Shifter.apply" in (kit / "assignments" / NAME / PACKAGE / "ops.py").read_text()
    by_hand = {path.relative_to(kit).as_posix() for path in hand}
    assert [path for path in changed(kit) if path not in by_hand and not path.startswith(OWN)
            and path != "README.md"] == []  # its counts in the README's list of the assignments, generated
    assert len(by_hand) == 10
