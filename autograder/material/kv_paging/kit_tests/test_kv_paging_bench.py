"""``kvkit --assignment kv_paging bench --quick`` on the reference: the report's four parts and what must hold in
them whatever the timings; an unfinished TODO as one line. Each run is its own process (the assignment is chosen
per process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kvkit.registry import ROOT

BENCH = [sys.executable, "-m", "kvkit.cli", "--assignment", "kv_paging", "bench", "--quick"]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(BENCH + list(args), cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``(process, report, plot path)`` of one quick run on the reference."""
    folder = tmp_path_factory.mktemp("bench_paging")
    out, png = folder / "bench.json", folder / "bench.png"
    run = bench("--json", str(out), "--plot", str(png))
    assert run.returncode == 0, run.stdout + run.stderr
    return run, json.loads(out.read_text()), png


def test_the_report_holds_four_parts_and_every_check_holds(quick):
    _, report, png = quick
    assert report["impl"] == str(ROOT / "reference") and report["kit_reference"] is True and report["quick"] is True
    for part in report["devices"]:
        assert {"waste", "prefix", "batch", "int8"} <= part.keys()
    assert report["checks"] and all(report["checks"].values()), report["checks"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_figures_add_up(quick):
    _, report, _ = quick
    settings = report["settings"]
    for part in report["devices"]:
        waste, config = part["waste"], settings["waste"]
        contiguous, paged = waste["rows"]
        assert contiguous["reserved"] == config["requests"] * config["max_seq_len"]
        assert paged["reserved"] == config["block_size"] * sum(-(-n // config["block_size"]) for n in waste["lengths"])
        assert paged["unused"] < config["requests"] * config["block_size"] < contiguous["unused"]
        prefix, config = part["prefix"], settings["prefix"]
        without, shared = prefix["rows"]
        assert without["computed"] - shared["computed"] == prefix["saved"] == (config["requests"] - 1) * config["system"]
        assert shared["blocks"] < without["blocks"]
        batch = part["batch"]
        assert batch["same_outputs"] and {row["batching"] for row in batch["rows"]} == {"static", "continuous"}
        int8 = part["int8"]
        assert int8["bytes_share"] == int8["formula_share"] and 0 <= int8["tokens_equal"] <= int8["steps"]


def test_the_skeleton_is_one_line_naming_todo_1():
    run = bench("--impl", "assignments/kv_paging")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("kvkit bench: --impl assignments/kv_paging is not finished (TODO 1: "
                                 "BlockAllocator.allocate - "), run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_a_later_unfinished_todo_stops_the_bench_before_it_starts(tmp_path):
    """Everything done but TODO 6: the bench tries every TODO's path before it times anything."""
    package = tmp_path / "kvpaging"
    shutil.copytree(ROOT / "reference" / "kvpaging", package)
    shutil.copy(ROOT / "assignments" / "kv_paging" / "kvpaging" / "quant.py", package / "quant.py")
    run = bench("--impl", str(tmp_path))
    assert run.returncode == 2 and run.stdout == ""
    assert f"--impl {tmp_path} is not finished (TODO 6: Int8KVCache.update - " in run.stderr, run.stderr


def test_other_code_is_measured_and_said_to_be_not_graded(tmp_path):
    shutil.copytree(ROOT / "reference" / "kvpaging", tmp_path / "kvpaging")
    run = bench("--impl", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"kvpaging: {tmp_path}\n" in run.stdout and "These figures are not graded" in run.stdout
