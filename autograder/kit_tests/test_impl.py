"""``--impl`` of ``kvkit bench``, ``chat-demo`` and ``generate`` runs the code it names, found as ``kvkit grade``
finds a submission.

Each test works in a student's copy of the exercise (the unzipped bundle) and
runs from that folder, as a student would. It proves which code ran: a copy
whose model is subtly different gives different tokens than the kit's
reference, and the skeleton gives the one-line TODO error.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from kvkit.cli import main
from kvkit.commands.bundle import write_bundle
from kvkit.course.submission import fill_notebook
from kvkit.courses import english
from layouts_support import PART1

REFERENCE, ASSIGNMENTS = PART1.reference, PART1.skeleton
RELEASE_NOTEBOOK = english(PART1).release_notebook

NEGATED = """

# For the kit's tests: the reference with its logits negated, so greedy decoding picks other tokens.
_reference_forward = Transformer.forward
Transformer.forward = lambda self, *args, **kwargs: -_reference_forward(self, *args, **kwargs)
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_bundle(PART1, tmp_path_factory.mktemp("bundle") / "bundle.zip")


@pytest.fixture
def exercise(bundle, tmp_path) -> Path:
    """The unzipped student bundle: ``assignments/kvcache`` holds the skeleton."""
    zipfile.ZipFile(bundle).extractall(tmp_path)
    return tmp_path / PART1.assignment.bundle


def put_code(package: Path, negated: bool = False) -> Path:
    """Replace ``package`` with a copy of the reference (``negated``: a subtly different one)."""
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(REFERENCE / "kvcache", package, ignore=shutil.ignore_patterns("__pycache__"))
    if negated:
        with open(package / "__init__.py", "a") as init:
            init.write(NEGATED)
    return package


def one_error_line(capsys, *argv: str) -> str:
    """Run ``kvkit ARGV``: it must exit 2 with exactly one line on stderr, no traceback; that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def chat_replies(capsys, impl: str) -> list[str]:
    """The replies ``kvkit chat-demo --impl IMPL`` prints; it must also pass its own check."""
    assert main(["chat-demo", "--impl", impl]) == 0
    out = capsys.readouterr().out
    assert "all turns OK" in out, out
    return re.findall(r"reply (\[[\d, ]+\])", out)


def test_chat_demo_runs_the_code_in_the_current_folder(exercise, monkeypatch, capsys):
    reference = chat_replies(capsys, "reference")
    put_code(exercise / "assignments" / "kvcache", negated=True)
    monkeypatch.chdir(exercise)
    for impl in (".", "assignments", "assignments/kvcache", str(exercise)):
        replies = chat_replies(capsys, impl)
        assert len(replies) == 3 and replies != reference, f"--impl {impl} ran the kit's reference, not the folder's"


def test_chat_demo_runs_a_zip_and_the_loose_files(monkeypatch, capsys, tmp_path):
    reference = chat_replies(capsys, "reference")
    package = put_code(tmp_path / "work" / "kvcache", negated=True)
    with zipfile.ZipFile(tmp_path / "submission.zip", "w") as zf:
        for path in package.glob("*.py"):
            zf.write(path, f"student-7/kvcache/{path.name}")
    shutil.copytree(package, tmp_path / "upload")  # the package's files, as Gradescope's upload leaves them
    monkeypatch.chdir(tmp_path)
    negated = chat_replies(capsys, "work")
    assert negated != reference
    assert chat_replies(capsys, "submission.zip") == negated
    assert chat_replies(capsys, "upload") == negated


def test_chat_demo_runs_a_notebook(exercise, monkeypatch, capsys):
    reference = chat_replies(capsys, "reference")
    monkeypatch.chdir(exercise)
    fill_notebook(PART1, RELEASE_NOTEBOOK, exercise / "kv_cache.ipynb", {})
    assert chat_replies(capsys, "kv_cache.ipynb") == reference
    fill_notebook(PART1, RELEASE_NOTEBOOK, exercise / "kv_cache.ipynb", {"Transformer.forward": "stub"})
    line = one_error_line(capsys, "chat-demo", "--impl", "kv_cache.ipynb")
    assert "is not finished" in line and "TODO 3" in line, line
    shutil.copy(RELEASE_NOTEBOOK, exercise / "kv_cache.ipynb")  # nbgrader's stubs: a bare NotImplementedError()
    line = one_error_line(capsys, "chat-demo", "--impl", "kv_cache.ipynb")
    assert "is not finished (TODO 3: Transformer.forward - " in line, line


def test_the_skeleton_in_the_current_folder_is_one_todo_line(exercise, monkeypatch, capsys):
    monkeypatch.chdir(exercise)
    for command in (["chat-demo"], ["bench", "--quick", "--lengths", "8"]):
        for impl in (".", "assignments"):
            line = one_error_line(capsys, *command, "--impl", impl)
            assert f"--impl {impl} is not finished (TODO " in line, line


def test_bench_times_the_folders_assignments_and_gives_no_verdict(exercise, monkeypatch, capsys, tmp_path):
    """``assignments`` is the folder's own (finished) copy, not the kit's skeleton, and is not judged."""
    put_code(exercise / "assignments" / "kvcache")
    monkeypatch.chdir(exercise)
    out_json = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--lengths", "8", "--impl", "assignments", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert f"kvcache: {exercise / 'assignments'}\n" in out
    assert "not graded" in out and "target" not in out.lower() and " met" not in out, out
    assert "uncached" in out and "re-runs the whole sequence" in out and "GPT2LMHeadModel.generate" in out
    report = json.loads(out_json.read_text())
    assert report["impl"] == str(exercise / "assignments") and report["kit_reference"] is False
    assert report["targets"] is None


def test_reference_and_assignments_mean_the_kits_folders_only_when_no_such_path_exists(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no reference/ here: the kit's own
    assert chat_replies(capsys, "reference")
    line = one_error_line(capsys, "chat-demo", "--impl", "assignments")
    assert "is not finished" in line  # the kit's skeleton
    shutil.copytree(ASSIGNMENTS / "kvcache", tmp_path / "reference" / "kvcache")  # a folder named reference wins
    assert "--impl reference is not finished (TODO" in one_error_line(capsys, "chat-demo", "--impl", "reference")


@pytest.mark.parametrize("trouble, expected", [
    ("def broken(:\n", "importing kvcache failed: SyntaxError"),
    ("raise RuntimeError('no GPU')\n", "importing kvcache failed: RuntimeError: no GPU (kvcache/cache.py, line"),
])
def test_a_package_that_does_not_import_is_one_line(exercise, monkeypatch, capsys, trouble, expected):
    package = put_code(exercise / "assignments" / "kvcache")
    with open(package / "cache.py", "a") as cache:
        cache.write(trouble)
    monkeypatch.chdir(exercise)
    line = one_error_line(capsys, "chat-demo", "--impl", ".")
    assert expected in line and "cache.py" in line, line


def test_an_error_inside_the_students_code_is_one_line_with_its_place(exercise, monkeypatch, capsys):
    package = put_code(exercise / "assignments" / "kvcache")
    model = package / "model.py"
    start = "        ### BEGIN SOLUTION\n        past = "  # Transformer.forward's first line
    model.write_text(model.read_text().replace(start, start.replace("past = ", "assert False, 'my bug'\n        past = ")))
    monkeypatch.chdir(exercise)
    line = one_error_line(capsys, "chat-demo", "--impl", ".")
    assert "--impl . raised AssertionError: my bug (kvcache/model.py, line" in line, line


def test_a_path_that_holds_no_kvcache_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    assert "--impl notes: " in one_error_line(capsys, "chat-demo", "--impl", "notes")
    assert "does not exist" in one_error_line(capsys, "bench", "--quick", "--impl", "nowhere")


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory) -> Path:
    """A random 2-layer GPT-2 saved as a local checkpoint."""
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=101, n_positions=64, bos_token_id=None,
                        eos_token_id=None, pad_token_id=0)
    folder = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(config).eval().save_pretrained(folder)
    return folder


def generated_ids(capsys, gpt2_folder: Path, impl: str) -> str:
    argv = ["generate", "--hf", str(gpt2_folder), "--prompt-ids", "1,2,3", "--max-new-tokens", "8", "--impl", impl]
    assert main(argv) == 0
    return re.search(r"ids: ([\d,]+)", capsys.readouterr().out).group(1)


def test_generate_runs_the_code_in_the_current_folder(exercise, monkeypatch, capsys, gpt2_folder):
    reference = generated_ids(capsys, gpt2_folder, "reference")
    monkeypatch.chdir(exercise)
    line = one_error_line(capsys, "generate", "--hf", str(gpt2_folder), "--prompt-ids", "1,2,3", "--impl", ".")
    assert "is not finished (TODO" in line, line
    put_code(exercise / "assignments" / "kvcache", negated=True)
    assert generated_ids(capsys, gpt2_folder, ".") != reference
    fill_notebook(PART1, RELEASE_NOTEBOOK, exercise / "kv_cache.ipynb", {"TransformerGenerator.generate": "stub"})
    line = one_error_line(capsys, "generate", "--hf", str(gpt2_folder), "--prompt-ids", "1,2,3",
                          "--impl", "kv_cache.ipynb")
    assert "TODO 4" in line, line
