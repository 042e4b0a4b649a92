"""Every requirement an assignment must meet, in one list (:data:`REQUIREMENTS`).

``kvkit check-assignment NAME`` reports the unmet ones and the kit test ``test_requirements.py`` runs each against
every assignment, so what an assignment must provide is said here and nowhere else. A requirement is a function of
a :class:`Subject` (an assignment's layout, with facts about its checks gathered once) returning its problems, each
one line: what is wrong, then how to fix it. Its docstring is the requirement itself. The requirements cover what
the commands, the graders and the kit tests rely on an assignment to hold; the kit tests then exercise what it does
(full marks, zero, fresh inputs, nbgrader, the editions). A ``slow`` requirement runs one of the kit's generators
in a process of its own (``make check`` leaves it to ``make test``, whose kit tests of the generated files it
repeats); :func:`unmet` runs them side by side.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kvchecks.assignment import load

from .commands.bundle import bundle_files
from .course.folders import stale_paths
from .course.template import parse_template
from .paths import Layout, layouts
from .registry import ROOT, manifests
from .skeleton import TABLE_BEGIN, TABLE_END, solution_regions

TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # torch's CPU wheels (Gradescope's setup.sh, the students' files)

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana and kanji
LANGUAGE_OF = {"ja": JAPANESE}  # how to tell an edition's language in its texts
PYTHON_LINE = {"en": "Python {version} or newer", "ja": "Python {version} 以降"}  # each README says it
CONTRACT_ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| `([\w/]+)` \|$")
MIN_ROWS_PER_TODO = 3
MIN_PUBLISHED_CALLS = 31  # the fresh-input kit tests replay the published goldens: they need this many calls
NAMES_OF_THE_REFERENCE = ("`reference`", "--impl reference", "--impl=reference", "reference/")


class Subject:
    """An assignment under check: its layout, and the facts only running its code gives, each gathered once."""

    def __init__(self, layout: Layout, written_courses: Path | None = None) -> None:
        self.layout = layout
        self.assignment = layout.assignment
        self.name = layout.assignment.name
        # the assignment's courses as `kvkit notebook` writes them now (kvkit.course.folders.write_course), when the
        # caller has them already (the kit tests write them once per session); else the requirement writes them
        self.written_courses = written_courses
        self._census: dict | None = None
        self._census_lock = threading.Lock()  # requirements run side by side (unmet)

    @property
    def census(self) -> dict:
        """What its checks are (:mod:`kvkit.census`, in a process of its own, once)."""
        with self._census_lock:
            if self._census is None:
                done = subprocess.run([sys.executable, "-m", "kvkit.census", str(self.assignment.manifest)],
                                      cwd=ROOT, capture_output=True, text=True, timeout=600)
                lines = done.stdout.strip().splitlines()
                self._census = (json.loads(lines[-1]) if done.returncode == 0 and lines else
                                {"error": (done.stderr.strip().splitlines() or ["the census printed nothing"])[-1]})
            return self._census

    def checks(self) -> list[dict]:
        """The graded checks (empty when they cannot be collected: :func:`the_checks_are_collected` says why)."""
        return self.census.get("checks", [])

    def kvkit(self, *args: str) -> list[str]:
        """Run ``kvkit --assignment NAME ARGS``; its problems: nothing when it succeeds, else the lines a ``--check``
        printed (one per problem) or, when it printed none, its error's last line."""
        done = subprocess.run([sys.executable, "-m", "kvkit.cli", "--assignment", self.name, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        if done.returncode == 0:
            return []
        listed = [line for line in done.stdout.splitlines() if line.strip()]
        return listed or (done.stderr.strip().splitlines() or [f"`kvkit {' '.join(args)}` failed"])[-1:]

    def rel(self, path: Path) -> str:
        return path.relative_to(ROOT).as_posix()

    def readmes(self) -> dict[str, Path]:
        """The student READMEs by language: ``README.md`` and each edition's."""
        skeleton = self.layout.skeleton
        return {"en": skeleton / "README.md",
                **{lang: skeleton / edition.readme for lang, edition in self.assignment.editions.items()}}


@dataclass(frozen=True)
class Requirement:
    name: str
    check: Callable[[Subject], list[str]]
    slow: bool

    @property
    def says(self) -> str:
        """The requirement in one line: its docstring's first paragraph, as markdown."""
        return " ".join(self.check.__doc__.split("\n\n")[0].split()).replace("``", "`")


REQUIREMENTS: list[Requirement] = []


def requirement(slow: bool = False):
    def add(check: Callable[[Subject], list[str]]) -> Callable[[Subject], list[str]]:
        REQUIREMENTS.append(Requirement(check.__name__, check, slow))
        return check
    return add


def subjects() -> dict[str, Subject]:
    """Every assignment of the kit, by name, in the order of their ``part``."""
    return {name: Subject(Layout(load(manifest))) for name, manifest in manifests().items()}


def unmet(subject: Subject, quick: bool = False) -> list[tuple[Requirement, list[str]]]:
    """Each requirement ``subject`` does not meet (``quick``: of those that are not slow), with its problems, in the
    list's order; the requirements run side by side (most of their time is the kit's commands, each in a process of
    its own)."""
    chosen = [requirement for requirement in REQUIREMENTS if not (quick and requirement.slow)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        found = list(pool.map(lambda requirement: requirement.check(subject), chosen))
    return [(requirement, problems) for requirement, problems in zip(chosen, found) if problems]


# -- the manifest and the reference ------------------------------------------------------------------------------------
@requirement()
def the_manifest_names_what_exists(s: Subject) -> list[str]:
    """The manifest lies in ``tests/NAME/``, has a part of its own and names the reference's package, modules and
    checks package as they are."""
    a, problems = s.assignment, []
    manifest = s.rel(a.manifest)
    if a.manifest.parent.name != a.name:
        problems.append(f"{manifest} says name = {a.name!r}: name the assignment after its folder, "
                        f"{a.manifest.parent.name!r}")
    others = {name for name, path in manifests().items()
              if name != a.name and tomllib.loads(path.read_text()).get("part", 1) == a.part}
    if others:
        problems.append(f"{manifest}: part = {a.part} is also {', '.join(sorted(others))}'s: give it a part of its "
                        "own (parts order the assignments)")
    package = s.layout.reference / a.package
    if not (package / "__init__.py").is_file():
        problems.append(f"{s.rel(package)}/__init__.py is missing: write the solution package the manifest names "
                        f"(package = {a.package!r})")
    for module in a.modules:
        if not (package / module).is_file():
            problems.append(f"{s.rel(package / module)} is missing: write it, or take {module!r} out of the "
                            "manifest's modules")
    for todo in a.todos.values():
        module = todo.file.split("/", 1)[1]
        if module not in a.modules:
            problems.append(f"{manifest}: TODO {todo.number} lies in {module!r}, which is not one of its modules: "
                            "list it in modules")
    if not a.checks_path.exists():
        problems.append(f"{s.rel(a.checks_path)} is missing: write the checks package the manifest names "
                        f"(checks = {a.checks!r}) with its PROBES")
    return problems


@requirement()
def every_todo_is_one_solution_region(s: Subject) -> list[str]:
    """Each TODO function's whole body, and nothing else, lies between ``### BEGIN SOLUTION`` and ``### END
    SOLUTION`` in the reference."""
    a, problems = s.assignment, []
    wanted = {todo.function: todo for todo in a.todos.values()}
    found: dict[str, int] = {}
    for module in a.modules:
        path = s.layout.reference / a.package / module
        if not path.is_file():
            continue  # the_manifest_names_what_exists says so
        try:
            regions = solution_regions(path.read_text(), s.rel(path))
        except (SyntaxError, ValueError) as err:
            problems.append(f"{err}: make each TODO function's whole body (after its docstring) one region")
            continue
        for function, begin, _end in regions:
            todo = wanted.get(function)
            if todo is None or todo.file.split("/", 1)[1] != module:
                problems.append(f"{s.rel(path)}:{begin}: a solution region in {function}, which is no TODO: take "
                                "its markers out, or add a [[todos]] entry for it to the manifest")
            else:
                found[function] = found.get(function, 0) + 1
    for function, todo in wanted.items():
        if found.get(function, 0) != 1:
            problems.append(f"TODO {todo.number} ({function}) has {found.get(function, 0)} solution regions in "
                            f"reference/{todo.file}: put its whole body in exactly one")
    return problems


@requirement()
def the_reference_provides_code_beside_the_todos(s: Subject) -> list[str]:
    """The reference has a top-level class or function holding no TODO: the notebook shows it in a read-only
    (locked) cell."""
    owners = {todo.function.split(".")[0] for todo in s.assignment.todos.values()}
    for module in s.assignment.modules:
        path = s.layout.reference / s.assignment.package / module
        if path.is_file():
            tree = ast.parse(path.read_text())
            if any(isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name not in owners
                   for node in tree.body):
                return []
    return [f"{s.rel(s.layout.reference / s.assignment.package)}/ holds no class or function without a TODO: add one "
            "the student uses as given (a helper, an error class), so the notebook has a read-only cell"]


# -- the checks --------------------------------------------------------------------------------------------------------
@requirement()
def the_checks_are_collected(s: Subject) -> list[str]:
    """pytest collects the public and hidden checks, each with one ``todoN`` marker and a ``points(n)`` marker."""
    if "error" in s.census:
        said = f" ({s.census['error']})" if s.census["error"] else ""
        return [f"the checks of {s.name} do not collect{said}: run `pytest {s.rel(s.layout.public_tests)} "
                f"{s.rel(s.layout.hidden_tests)} --collect-only` and fix what it says"]
    return []


@requirement()
def every_todo_has_public_and_hidden_checks(s: Subject) -> list[str]:
    """Each TODO has public checks in ``tests/NAME/test_todoN_*.py`` and hidden checks in its ``hidden/`` folder."""
    checks, problems = s.checks(), []
    if not checks:
        return []  # the_checks_are_collected says why
    public_folder, hidden_folder = s.rel(s.layout.public_tests), s.rel(s.layout.hidden_tests)
    for n in s.assignment.todos:
        mine = [c for c in checks if c["todo"] == n]
        if not [c for c in mine if not c["hidden"] and Path(c["file"]).name.startswith(f"test_todo{n}_")]:
            problems.append(f"TODO {n} has no public check: write {public_folder}/test_todo{n}_WHAT.py with "
                            f"pytestmark = pytest.mark.todo{n} and a test marked @pytest.mark.points(n)")
        if not [c for c in mine if c["hidden"]]:
            problems.append(f"TODO {n} has no hidden check: add a test marked @pytest.mark.todo{n} and "
                            f"@pytest.mark.points(n) to {hidden_folder}/")
    return problems


@requirement()
def every_check_has_a_name_of_its_own(s: Subject) -> list[str]:
    """No two checks share a name (grades, results and notebook cells are keyed by it)."""
    files: dict[str, list[str]] = {}
    for check in s.checks():
        files.setdefault(check["name"], []).append(check["file"])
    return [f"{name} is the name of {len(where)} checks ({', '.join(sorted(set(where)))}): rename all but one"
            for name, where in files.items() if len(where) > 1]


def check_files(layout: Layout) -> list[Path]:
    """An assignment's public and hidden check files."""
    return [*layout.public_tests.glob("test_*.py"), *layout.hidden_tests.glob("test_*.py")]


@requirement()
def its_check_files_have_names_no_other_assignment_uses(s: Subject) -> list[str]:
    """No check file of it has the file name of another assignment's (the graders collect every assignment's checks
    in one process, where pytest takes two test files of one name for one module)."""
    others = {path.name: path for layout in layouts() if layout.assignment.name != s.name
              for path in check_files(layout)}
    return [f"{s.rel(path)} has the name of {others[path.name].relative_to(ROOT)}: rename it (e.g. "
            f"{own_name(path, s.name)}; a released course keeps its old grade ids only if its hidden files keep "
            "their paths)" for path in sorted(check_files(s.layout)) if path.name in others]


def own_name(path: Path, name: str) -> str:
    """``path``'s file name with the assignment's ``name`` after its ``test_`` or ``test_hidden_`` (what the
    graders and Gradescope's report tell hidden checks by)."""
    prefix = "test_hidden_" if path.name.startswith("test_hidden_") else "test_"
    return f"{prefix}{name}_{path.name.removeprefix(prefix)}"


@requirement()
def every_hidden_comparison_says_why(s: Subject) -> list[str]:
    """Each ``expect`` comparison of a hidden check carries a ``hint=`` (students never see the hidden code)."""
    bare = []
    for path in sorted(s.layout.hidden_tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "expect"
                    and node.func.attr in ("close", "equal", "that", "raised")
                    and "hint" not in {k.arg for k in node.keywords}):
                bare.append(f"{s.rel(path)}:{node.lineno}: expect.{node.func.attr}(...) has no hint=: give it one "
                            "that names the clause it checks")
    return bare


@requirement()
def the_fresh_inputs_redraw_every_published_call(s: Subject) -> list[str]:
    """The goldens publish more than 30 probe calls, and the fresh inputs redraw every one (so a replay of them
    earns nothing)."""
    if "error" in s.census:
        return []  # the_checks_are_collected says why
    problems = [f"{call}: nothing in it is redrawn at grading time: derive its random inputs from a seed argument, "
                "or add a rule to the checks package's redraw" for call in s.census["unredrawn"]]
    if s.census["published"] < MIN_PUBLISHED_CALLS:
        problems.append(f"the goldens publish {s.census['published']} probe calls, the kit tests of fresh inputs "
                        f"need {MIN_PUBLISHED_CALLS}: parametrize the checks over more seeds or cases, then "
                        "`kvkit goldens`")
    return problems


# -- the generated files -----------------------------------------------------------------------------------------------
@requirement(slow=True)
def the_skeleton_and_readme_tables_are_built(s: Subject) -> list[str]:
    """The skeleton and the generated parts of the READMEs (TODO tables, counts) are what ``kvkit build`` writes."""
    return s.kvkit("build", "--check")


@requirement(slow=True)
def the_goldens_are_recorded(s: Subject) -> list[str]:
    """The reference passes every check, and the goldens hold what it observes now."""
    return s.kvkit("goldens", "--check")


@requirement()
def the_greedy_goldens_are_far_from_ties(s: Subject) -> list[str]:
    """No greedy choice of the reference in the goldens hinges on rounding (every ``margin`` above 1e-3)."""
    problems = []
    for folder in (s.layout.public_tests, s.layout.hidden_tests):
        path = folder / "goldens.json"
        if not path.is_file():
            continue  # the_goldens_are_recorded says so
        for key, entry in json.loads(path.read_text()).items():
            margin = entry.get("margin") if isinstance(entry, dict) else None
            if margin is not None and "mistake" not in json.loads(key) and margin <= 1e-3:
                problems.append(f"{s.rel(path)}: {key}: the top two logits differ by {margin:.2g}: change the "
                                "check's seed or prompt so that the greedy choice is clear")
    return problems


@requirement(slow=True)
def the_catalogues_translate_every_message(s: Subject) -> list[str]:
    """Every message of the checks and hidden checks has a translation in each language, and the ``.mo`` files are
    compiled (``kvkit catalogs``)."""
    domains = ["--domain", s.name] + (["--domain", f"{s.name}_hidden"] if s.layout.hidden_tests.is_dir() else [])
    return s.kvkit("catalogs", "--check", *domains)


@requirement(slow=True)
def the_course_is_generated(s: Subject) -> list[str]:
    """``source/`` and ``release/`` hold what ``kvkit notebook`` writes (every edition's course)."""
    if s.written_courses is None:
        return s.kvkit("notebook", "--check")
    return [f"{path} is not what `kvkit notebook` writes now: run `kvkit --assignment {s.name} notebook`"
            for path in stale_paths(s.layout, fresh=s.written_courses)]


# -- the contract and the examples -------------------------------------------------------------------------------------
def example_file(s: Subject, body: str) -> Path | None:
    """The file of example body ``body`` under the examples folder (``.py`` or ``.patch``), if there is one."""
    found = sorted(s.layout.examples.glob(f"{body}.py")) + sorted(s.layout.examples.glob(f"{body}.patch"))
    return found[0] if found else None


def check_named(s: Subject, name: str) -> list[dict]:
    """The graded checks ``name`` stands for: ``test_x``, ``test_x[id]`` or ``test_x[*]`` (every case)."""
    if name.endswith("[*]"):
        return [c for c in s.checks() if c["name"].startswith(name[:-3] + "[")]
    return [c for c in s.checks() if c["name"] == name]


@requirement()
def the_contract_table_covers_every_todo(s: Subject) -> list[str]:
    """``contract.md`` has rows for every TODO (at least 3 per TODO in all), each naming graded checks of its TODO
    and an example under ``examples/`` that breaks the clause."""
    path, todos = s.layout.contract, s.assignment.todos
    if not path.is_file():
        return [f"{s.rel(path)} is missing: write the contract table (| TODO | clause | checks that fail without it "
                "| `example that breaks it` |)"]
    rows = [m.groups() for m in map(CONTRACT_ROW.match, path.read_text().splitlines()) if m]
    problems = [f"{s.rel(path)}: TODO {n} has no row: add one per clause of its contract"
                for n in todos if not [r for r in rows if int(r[0]) == n]]
    if len(rows) < MIN_ROWS_PER_TODO * len(todos):
        problems.append(f"{s.rel(path)} has {len(rows)} rows for {len(todos)} TODOs: write at least "
                        f"{MIN_ROWS_PER_TODO * len(todos)} (one per clause, each with a check that fails without it)")
    for todo, clause, checks, body in rows:
        where = f"{s.rel(path)}, the row {clause[:40]!r}"
        if int(todo) not in todos:
            problems.append(f"{where}: there is no TODO {todo}: correct its number")
            continue
        names = re.findall(r"`(test_\w+(?:\[[^\]]*\])?)`", checks)
        if not names:
            problems.append(f"{where} names no check: name the checks that fail without the clause")
        for name in names:
            found = check_named(s, name)
            if s.checks() and not found:
                problems.append(f"{where}: {name} is not a graded check: name one that pytest collects")
            elif any(c["todo"] != int(todo) for c in found):
                problems.append(f"{where}: {name} grades another TODO: name a check of TODO {todo}")
        if example_file(s, body) is None:
            problems.append(f"{where}: no example {body}.py or {body}.patch under {s.rel(s.layout.examples)}/: "
                            "write the body (or patch of the reference's body) that breaks the clause")
        elif not re.match(rf"todo{todo}_", Path(body).name):
            problems.append(f"{where}: the example {body} must be named todo{todo}_... (the TODO it replaces)")
    return problems


@requirement()
def the_examples_exist(s: Subject) -> list[str]:
    """``examples/examples.toml`` has a ``partial`` submission and an ``alternative`` (a correct one written
    differently), and every body it names exists."""
    path = s.layout.examples / "examples.toml"
    if not path.is_file():
        return [f"{s.rel(path)} is missing: list the example submissions ([partial], [alternative], ...)"]
    examples = tomllib.loads(path.read_text())
    problems = []
    if "partial" not in examples:
        problems.append(f"{s.rel(path)} has no [partial]: add a submission that earns some points but not all")
    if not [name for name in examples if name.startswith("alternative")]:
        problems.append(f"{s.rel(path)} has no [alternative]: add a correct solution written differently from the "
                        "reference")
    for name, bodies in examples.items():
        for todo, body in bodies.items():
            if not todo.isdigit() or int(todo) not in s.assignment.todos:
                problems.append(f"{s.rel(path)}: [{name}] names TODO {todo}, which the manifest does not have")
            elif body != "stub":
                file = s.layout.examples / (f"{body}.py" if "/" in body else f"bodies/{body}.py")
                if not file.is_file():
                    problems.append(f"{s.rel(path)}: [{name}] names {s.rel(file)}, which is missing: write that body")
    return problems


@requirement()
def every_known_mistake_has_its_hint_pinned(s: Subject) -> list[str]:
    """Each known mistake (the checks package's ``MISTAKES``) has its body in ``examples/mistakes/`` and a case in
    ``examples/hints.toml``; each case names an existing body and a graded check."""
    path = s.layout.examples / "hints.toml"
    cases = tomllib.loads(path.read_text()) if path.is_file() else {}
    problems = []
    for body, case in cases.items():
        if example_file(s, body) is None:
            problems.append(f"{s.rel(path)}: [{body!r}] names no example body: write {body}.py (or .patch) under "
                            f"{s.rel(s.layout.examples)}/")
        if s.checks() and not check_named(s, case.get("check", "")):
            problems.append(f"{s.rel(path)}: [{body!r}] check = {case.get('check')!r} is not a graded check: name "
                            "the check whose failure gives the hint")
        missing = [key for key in ("check", "says", "never") if key not in case]
        if missing:
            problems.append(f"{s.rel(path)}: [{body!r}] has no {', '.join(missing)}: give each case check, says "
                            "and never")
    pinned = {Path(body).name for body in cases}
    for name in s.census.get("mistakes", []):
        if not (s.layout.examples / "mistakes" / f"{name}.py").is_file():
            problems.append(f"the known mistake {name} has no body: write "
                            f"{s.rel(s.layout.examples)}/mistakes/{name}.py")
        if name not in pinned:
            problems.append(f"the known mistake {name} has no case in {s.rel(path)}: add [\"mistakes/{name}\"] with "
                            "the check that gives its hint")
    return problems


# -- the notebook templates and the editions ---------------------------------------------------------------------------
def generated_cells(path: Path) -> list[tuple[str, ...]]:
    """The ``%% setup``, ``%% classes`` and ``%% checks`` cells of a template, in order, with their arguments."""
    return [(cell.kind, *cell.args) for cell in parse_template(path.read_text(), path.name)
            if cell.kind in ("setup", "classes", "checks")]


@requirement()
def the_notebook_templates_place_every_todos_checks(s: Subject) -> list[str]:
    """Each language's notebook template has one ``%% setup`` cell and a ``%% checks N`` cell for every TODO whose
    class it places; each edition's has the same ``%%`` cells as the English one, in the same order."""
    templates = {"en": s.layout.notebook_template()}
    templates.update({lang: s.layout.notebook_template(lang) for lang in s.assignment.editions})
    problems, cells = [], {}
    for lang, path in templates.items():
        if not path.is_file():
            problems.append(f"{s.rel(path)} is missing: write the notebook's narrative with %% cell markers "
                            "(at least %% markdown, with {{todos}}, and %% setup)")
            continue
        try:
            cells[lang] = generated_cells(path)
        except ValueError as err:
            problems.append(f"{err}: see kvkit.course.template.parse_template for the cell kinds")
    english = cells.get("en")
    if english is not None:
        path = s.rel(templates["en"])
        if english.count(("setup",)) != 1:
            problems.append(f"{path} has {english.count(('setup',))} %% setup cells: put one before the first class")
        placed = {(kind_args[1], name) for kind_args in english if kind_args[0] == "classes"
                  for name in kind_args[2:]}
        checks = [int(args[1]) for args in english if args[0] == "checks"]
        for todo in s.assignment.todos.values():
            owner = (todo.file.split("/", 1)[1], todo.function.split(".")[0])
            if owner in placed and todo.number not in checks:
                problems.append(f"{path} places {owner[1]} (%% classes {owner[0]} ...), which holds TODO "
                                f"{todo.number}, but has no %% checks {todo.number}: add it after that cell, in every "
                                "language's template")
        problems += [f"{path}: %% checks {n} appears {checks.count(n)} times or names no TODO: keep one per TODO"
                     for n in sorted(set(checks)) if checks.count(n) > 1 or n not in s.assignment.todos]
        problems += [f"{s.rel(templates[lang])}: its %% setup/classes/checks cells differ from {path}'s: give it the "
                     "same ones in the same order (only the prose is translated)"
                     for lang, mine in cells.items() if lang != "en" and mine != english]
    return problems


@requirement()
def there_is_a_japanese_edition(s: Subject) -> list[str]:
    """The manifest has ``[editions.ja]``, and every TODO has its Japanese task and contract (``[todos.ja]``)."""
    if "ja" not in s.assignment.editions:
        return [f"{s.rel(s.assignment.manifest)} has no [editions.ja]: add it (name, readme, title) with a README and "
                "a notebook template in Japanese"]
    return [f"{s.rel(s.assignment.manifest)}: TODO {todo.number} has no Japanese task or contract: add its [todos.ja] "
            "task and contract" for todo in s.assignment.todos.values()
            if not (JAPANESE.search(todo.task_in("ja")) and JAPANESE.search(todo.contract_in("ja")))]


def prose(text: str) -> str:
    """A template's markdown without code, formulas and placeholders."""
    return re.sub(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\{\{[^}]*\}\}", " ", text, flags=re.S)


@requirement()
def each_editions_prose_is_in_its_language(s: Subject) -> list[str]:
    """Most letters of each edition's notebook narrative are in the edition's language."""
    problems = []
    for lang in s.assignment.editions:
        path = s.layout.notebook_template(lang)
        if lang not in LANGUAGE_OF or not path.is_file():
            continue
        text = prose("\n".join(cell.text for cell in parse_template(path.read_text(), path.name)
                               if cell.kind == "markdown"))
        letters = [ch for ch in text if ch.isalpha()]
        share = sum(bool(LANGUAGE_OF[lang].match(ch)) for ch in letters) / max(1, len(letters))
        if share <= 0.5:
            problems.append(f"{s.rel(path)}: {share:.0%} of its prose's letters are in {lang}: translate its "
                            "%% markdown cells")
    return problems


# -- what the student gets ---------------------------------------------------------------------------------------------
# a count of the TODOs (or of their answer cells) written by hand: "in four TODOs", "the 6 TODO functions", "4つの TODO",
# "6つの解答セル"; "the first three TODOs" names some of them, not how many there are
TODO_COUNT = re.compile(r"(?<!first )(?<!last )(?<!最初の)\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
                        r" TODO(?:s\b| functions)|(?<!最初の)(?<!後の)(?:\d+|[二三四五六七八九十])つの ?(?:TODO|解答セル)", re.I)
GENERATED = re.compile(r"<!-- kvkit build: .*?<!-- end", re.S)  # what `kvkit build` writes between its markers


@requirement()
def the_prose_counts_no_todos(s: Subject) -> list[str]:
    """The prose written by hand (the notebook templates, the student READMEs outside their generated parts,
    ``contract.md``) never says how many TODOs there are, so that adding one leaves nothing stale."""
    files = [s.layout.notebook_template(lang) for lang in ("en", *s.assignment.editions)]
    files += [*s.readmes().values(), s.layout.contract]
    problems = []
    for path in files:
        if not path.is_file():
            continue  # the requirements of those files say so
        text = GENERATED.sub("", path.read_text())
        for match in TODO_COUNT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{s.rel(path)}, near line {line}: {match.group(0)!r} counts the TODOs by hand: say "
                            "\"the TODOs\" instead (a count in the READMEs comes from `kvkit build`'s markers)")
    return problems


def python_version() -> str:
    """The oldest Python the kit supports (``requires-python`` of ``pyproject.toml``)."""
    return re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def solution_lines(layout: Layout, min_length: int = 26) -> set[str]:
    """Stripped lines inside ``layout``'s reference's solution regions, long enough to be distinctive; a line the
    provided code holds too (a call of a provided helper, say) gives nothing away."""
    found, provided = set(), set()
    for path in (layout.reference / layout.assignment.package).glob("*.py"):
        lines = path.read_text().splitlines()
        inside = set()
        for _, begin, end in solution_regions(path.read_text(), str(path)):
            inside |= set(range(begin, end - 1))
            found |= {line.strip() for line in lines[begin:end - 1] if len(line.strip()) >= min_length}
        provided |= {line.strip() for number, line in enumerate(lines) if number not in inside}
    return found - provided


@requirement()
def the_students_files_hold_no_solution_line(s: Subject) -> list[str]:
    """No file of the student's zip (the skeleton, the READMEs, the checks, the student files) holds a line of the
    reference's solutions, nor the solution markers."""
    secrets, problems = solution_lines(s.layout), []
    for name, path in bundle_files(s.layout).items():
        text = path.read_bytes().decode(errors="replace")  # a compiled catalogue (.mo) is binary: its text too
        leaked = sorted(line for line in secrets if line in text)
        if leaked or "BEGIN SOLUTION" in text:
            problems.append(f"{name} (in the student's zip) holds {leaked[0] if leaked else 'BEGIN SOLUTION'!r} of the "
                            "solution: reword it where it is given away (a docstring must not quote the solution)")
    return problems


@requirement()
def the_student_readmes_hold_what_students_need(s: Subject) -> list[str]:
    """Each language's student README has the TODO table's and the points' markers (``kvkit build`` fills them),
    names the Python it needs and ``KVKIT_LANG=ja``, and never the reference folder."""
    problems = []
    for lang, readme in s.readmes().items():
        where = s.rel(readme)
        if not readme.is_file():
            problems.append(f"{where} is missing: write the student README ({lang})")
            continue
        text = readme.read_text()
        if TABLE_BEGIN not in text or TABLE_END not in text:
            problems.append(f"{where} has no TODO table: put the lines {TABLE_BEGIN} and {TABLE_END} where it goes, "
                            "then `kvkit build`")
        if f"<!-- kvkit build: points in all of {s.name} -->" not in text:
            problems.append(f"{where} does not state the points: write <!-- kvkit build: points in all of {s.name} "
                            "--><!-- end --> where grading is explained, then `kvkit build`")
        line = PYTHON_LINE.get(lang, PYTHON_LINE["en"]).format(version=python_version())
        for needed in (line, "KVKIT_LANG=ja"):
            if needed not in text:
                problems.append(f"{where} does not say {needed!r}: add it (how to install, how to get Japanese "
                                "messages)")
        problems += [f"{where} names {name}, which students do not have: leave it out"
                     for name in NAMES_OF_THE_REFERENCE if name in text]
    return problems


def kit_torch_pin() -> str:
    """The torch requirement of the kit's own ``pyproject.toml``, e.g. ``torch==2.13.0``."""
    return re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


@requirement()
def the_student_files_install_and_run_the_checks(s: Subject) -> list[str]:
    """``student/`` holds ``pytest.ini`` (``testpaths = tests``) and ``requirements.txt`` with PyTorch's CPU index
    as an extra index and the kit's torch pin."""
    student, problems = s.layout.student, []
    ini = student / "pytest.ini"
    if not ini.is_file() or not re.search(r"^testpaths\s*=\s*tests\s*$", ini.read_text(), re.M):
        problems.append(f"{s.rel(ini)} must exist and say testpaths = tests (the student's `pytest` runs the "
                        "checks in the zip's tests/)")
    elif [name for name in NAMES_OF_THE_REFERENCE if name in ini.read_text()]:
        problems.append(f"{s.rel(ini)} names the reference folder, which students do not have: leave it out")
    path = student / "requirements.txt"
    if not path.is_file():
        return problems + [f"{s.rel(path)} is missing: write it (--extra-index-url {TORCH_INDEX}, {kit_torch_pin()}, "
                           "numpy, pytest>=8)"]
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if f"--extra-index-url {TORCH_INDEX}" not in lines:
        problems.append(f"{s.rel(path)} has no line --extra-index-url {TORCH_INDEX}: add it (else Linux gets torch's "
                        "CUDA build)")
    if [line for line in lines if line.startswith(("--index-url", "-i "))]:
        problems.append(f"{s.rel(path)}: --index-url replaces PyPI, where numpy and pytest come from: use "
                        "--extra-index-url")
    if [line for line in lines if line.startswith("torch")] != [kit_torch_pin()]:
        problems.append(f"{s.rel(path)} must pin exactly {kit_torch_pin()} (the kit's torch; no +cpu: macOS has no "
                        "such wheel)")
    return problems
