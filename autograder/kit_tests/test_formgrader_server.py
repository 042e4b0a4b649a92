"""The formgrader's buttons through a real ``jupyter server``: one server for every course, each in its language.

The formgrader is one Jupyter server whose command line names no assignment; its buttons call nbgrader's API
through REST (``/formgrader/api/...``). In a course folder holding ``kv_serving`` and ``kv_cache_ja`` with the kit's
``nbgrader_config.py``, the server generates each release (the same as the committed one), autogrades the source
notebook (full marks) and the untouched release (0), with Japanese verdicts for ``kv_cache_ja``, and makes the
feedback of each.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, nbgrader_env, write_support
from kvkit.courses import course_named
from kvkit.registry import ROOT
from layouts_support import NEEDS_NBGRADER

pytestmark = [pytest.mark.slow, NEEDS_NBGRADER]

COURSES = ("kv_serving", "kv_cache_ja")
STUDENTS = {"full": "source", "untouched": "release"}  # each student's notebook: the source's or the release's


def course_with_students(root: Path) -> Path:
    """The source folders of both courses, the kit's ``nbgrader_config.py`` and, per course, two submissions."""
    root.mkdir(parents=True)
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    for name in COURSES:
        shutil.copytree(ROOT / "source" / name, root / "source" / name)
        # the support files, as `make notebook` writes them (they are not committed)
        write_support(course_named(name).layout, root / "source" / name)
        for student, step in STUDENTS.items():
            target = root / "submitted" / student / name / f"{name}.ipynb"
            target.parent.mkdir(parents=True)
            shutil.copyfile(ROOT / step / name / f"{name}.ipynb", target)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``jupyter server`` on the loopback interface, serving ``course``, called with its token."""

    def __init__(self, course: Path, log: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={course}", "--allow-root",
             "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True}"],
            cwd=course, env=nbgrader_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def call(self, method: str, path: str, timeout: float = 600):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=b"" if method == "POST" else None,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "jupyter server exited"
            try:
                self.call("GET", "/formgrader/api/status", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise AssertionError("jupyter server did not answer in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def cells(path: Path) -> list[tuple[str, str]]:
    nb = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def test_one_jupyter_server_generates_autogrades_and_gives_feedback_for_every_course(tmp_path):
    ensure_kernel()
    course = course_with_students(tmp_path / "course")
    server = Server(course, tmp_path / "server.log")
    try:
        server.wait_ready()
        answers = {}
        for name in COURSES:
            answers[name, "generate"] = server.call("POST", f"/formgrader/api/assignment/{name}/assign")
            for student in STUDENTS:
                answers[name, student] = server.call("POST", f"/formgrader/api/submission/{name}/{student}/autograde")
            answers[name, "feedback"] = server.call("POST", f"/formgrader/api/assignment/{name}/generate_feedback")
            submissions = server.call("GET", f"/formgrader/api/submissions/{name}")
            scores = {s["student"]: (s["score"], s["max_score"]) for s in submissions}
            assert scores["full"][0] == scores["full"][1] > 0, (name, scores)
            assert scores["untouched"][0] == 0, (name, scores)
    finally:
        server.stop()
    failed = {key: answer.get("log", "")[-2000:] for key, answer in answers.items() if not answer["success"]}
    assert not failed, failed
    for name in COURSES:  # the releases as committed: kv_cache_ja's stubs in Japanese
        assert cells(course / "release" / name / f"{name}.ipynb") == cells(ROOT / "release" / name / f"{name}.ipynb")
        for student in STUDENTS:
            assert (course / "feedback" / student / name / f"{name}.html").is_file(), (name, student)
    autograded = json.loads((course / "autograded" / "untouched" / "kv_cache_ja" / "kv_cache_ja.ipynb").read_text())
    failures = [o for c in autograded["cells"] for o in c.get("outputs", []) if o.get("ename") == "CheckFailed"]
    assert failures and all("まだ実装されていません" in o["evalue"] for o in failures[:3]), failures[:1]
    log = (tmp_path / "server.log").read_text()
    assert not re.search(r"Traceback \(most recent call last\)", log), log[-3000:]
