"""One process serves every course, as the formgrader does: nbgrader's API in a process that names no assignment.

The formgrader (one Jupyter server for every assignment) calls nbgrader's API; its command line names no
assignment, so the kit's hooks cannot learn it from ``sys.argv``. In such a process: ``kv_serving`` generates its
release and autogrades (the source notebook full marks, the release 0), and ``kv_cache_ja`` generates its Japanese
release, the same as the committed one, and autogrades with Japanese verdicts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, nbgrader_env, write_support
from kvkit.registry import ENV, LANG_ENV, ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("nbgrader")

DRIVER = textwrap.dedent('''
    import json, sys
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    course, out = sys.argv[1], sys.argv[2]
    config = PyFileConfigLoader("nbgrader_config.py", path=course).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    done = {}
    for name in ("kv_serving", "kv_cache_ja"):
        generated = api.generate_assignment(name, force=True)
        done[name] = {"generate": generated["success"], "log": generated.get("log", "")[-3000:]}
        for student in ("full", "untouched"):
            graded = api.autograde(name, student, force=True)
            done[name][student] = graded["success"]
            done[name]["log"] += graded.get("log", "")[-3000:]
    json.dump(done, open(out, "w"))
''')


def course_with_students(root: Path) -> Path:
    """Source folders of both courses, the kit's nbgrader_config.py, and two students' submissions of each: the
    source notebook (the reference's answers) and the committed release."""
    root.mkdir(parents=True)
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    for name in ("kv_serving", "kv_cache_ja"):
        shutil.copytree(ROOT / "source" / name, root / "source" / name)
        write_support(root / "source" / name)  # as `make notebook` writes them (they are not committed)
        for student, notebook in (("full", ROOT / "source" / name / f"{name}.ipynb"),
                                  ("untouched", ROOT / "release" / name / f"{name}.ipynb")):
            target = root / "submitted" / student / name / f"{name}.ipynb"
            target.parent.mkdir(parents=True)
            shutil.copyfile(notebook, target)
    return root


def cells(path: Path) -> list[tuple[str, str]]:
    nb = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def test_one_process_without_an_assignment_generates_and_autogrades_every_course(tmp_path):
    ensure_kernel()
    course = course_with_students(tmp_path / "course")
    env = {k: v for k, v in nbgrader_env().items() if k not in (ENV, LANG_ENV)}
    run = subprocess.run([sys.executable, "-c", DRIVER, str(course), str(tmp_path / "done.json")], cwd=course,
                         env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    done = json.loads((tmp_path / "done.json").read_text())
    for name in ("kv_serving", "kv_cache_ja"):
        assert done[name]["generate"] and done[name]["full"] and done[name]["untouched"], done[name]["log"]
    assert cells(course / "release" / "kv_cache_ja" / "kv_cache_ja.ipynb") == \
        cells(ROOT / "release" / "kv_cache_ja" / "kv_cache_ja.ipynb")  # Japanese stubs, as committed
    assert cells(course / "release" / "kv_serving" / "kv_serving.ipynb") == \
        cells(ROOT / "release" / "kv_serving" / "kv_serving.ipynb")

    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        for name in ("kv_serving", "kv_cache_ja"):
            full = gb.find_submission(name, "full")
            assert full.score == full.max_score > 0, name
            assert gb.find_submission(name, "untouched").score == 0, name
    autograded = json.loads((course / "autograded" / "untouched" / "kv_cache_ja" / "kv_cache_ja.ipynb").read_text())
    failures = [o for c in autograded["cells"] for o in c.get("outputs", []) if o.get("ename") == "CheckFailed"]
    assert failures and all("まだ実装されていません" in o["evalue"] for o in failures[:3]), failures[:1]
