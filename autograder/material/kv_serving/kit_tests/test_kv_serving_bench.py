"""``kvkit --assignment kv_serving bench --quick`` on the reference: the report's four parts and what must hold in
them whatever the timings; an unfinished TODO as one line. Each run is its own process (the assignment is chosen
per process); the four take about 6 s together."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kvkit.registry import ROOT

pytestmark = pytest.mark.slow  # each run is a bench of the package, in a process of its own

BENCH = [sys.executable, "-m", "kvkit.cli", "--assignment", "kv_serving", "bench", "--quick"]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(BENCH + list(args), cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``(process, report, plot path)`` of one quick run on the reference."""
    folder = tmp_path_factory.mktemp("bench_serving")
    out, png = folder / "bench.json", folder / "bench.png"
    run = bench("--json", str(out), "--plot", str(png))
    assert run.returncode == 0, run.stdout + run.stderr
    return run, json.loads(out.read_text()), png


def test_the_report_holds_four_parts_on_the_kits_reference(quick):
    _, report, png = quick
    assert report["impl"] == str(ROOT / "reference") and report["kit_reference"] is True and report["quick"] is True
    assert [part["device"] for part in report["devices"]][0] == "cpu"
    for part in report["devices"]:
        assert {"gqa", "chat", "batch", "speculative"} <= part.keys()
    assert report["checks"] and all(report["checks"].values()), report["checks"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gqa_bytes_are_the_formula_and_shrink_with_the_kv_heads(quick):
    _, report, _ = quick
    config = report["settings"]["gqa"]
    head_dim = config["hidden_dim"] // config["num_heads"]
    for part in report["devices"]:
        rows = part["gqa"]["rows"]
        assert [row["kv_heads"] for row in rows] == config["kv_heads"]
        for row in rows:
            formula = 2 * config["depth"] * 1 * row["kv_heads"] * config["max_len"] * head_dim * 4
            assert row["nbytes"] == row["formula"] == formula and row["equal"]
            assert row["mha_over_this"] == config["num_heads"] / row["kv_heads"]
            assert row["decode_ms"] > 0 and row["tok_s"] > 0


def test_the_window_holds_constant_bytes_over_a_chat_longer_than_its_budget(quick):
    _, report, _ = quick
    config = report["settings"]["chat"]
    head_dim = config["hidden_dim"] // config["num_heads"]
    per_position = 2 * config["depth"] * config["num_kv_heads"] * head_dim * 4
    turn_tokens = config["user_tokens"] + config["reply_tokens"]
    for part in report["devices"]:
        chat, rows = part["chat"], part["chat"]["rows"]
        assert len(rows) == config["turns"] and chat["positions"] == config["turns"] * turn_tokens
        assert chat["positions"] > 2 * chat["budget"] == 2 * (config["sinks"] + config["window"])
        assert {row["window_bytes"] for row in rows} == {per_position * chat["budget"]}
        assert [row["growing_bytes"] for row in rows] == [per_position * turn_tokens * turn for turn in
                                                          range(1, len(rows) + 1)]
        assert {row["full_cache_bytes"] for row in rows} == {per_position * chat["positions"]}
        assert chat["window_bytes_constant"] and chat["same_replies"]
        assert all(row["window_ms"] > 0 and row["full_ms"] > 0 for row in rows)


def test_batching_counts_a_token_per_row_and_step(quick):
    _, report, _ = quick
    config = report["settings"]["batch"]
    for part in report["devices"]:
        rows = part["batch"]["rows"]
        assert [row["batch"] for row in rows] == config["batch_sizes"]
        for row in rows:
            assert row["tok_s"] == pytest.approx(row["batch"] * 1e3 / row["step_ms"])
            assert row["seconds"] * 1e3 > config["new_tokens"] * row["step_ms"] / 2 and row["row0_same"]
        assert rows[0]["vs_batch_1"] == 1.0
        assert len(set(part["batch"]["prompt_lengths"])) > 1  # prompts of different lengths


def test_speculative_outputs_equal_the_target_and_the_stats_add_up(quick):
    _, report, _ = quick
    config = report["settings"]["speculative"]
    for part in report["devices"]:
        rows = part["speculative"]["rows"]
        assert [(row["draft"], row["k"]) for row in rows] == [("shared", k) for k in config["draft_tokens"]] + [
            ("unrelated", config["unrelated_k"])]
        for row in rows:
            assert row["same"] and 0 <= row["accepted"] <= row["proposed"] and row["speedup"] > 0
            assert row["tokens_per_target_call"] == config["new_tokens"] / row["target_calls"]
        shared = {row["k"]: row for row in rows if row["draft"] == "shared"}
        unrelated = rows[-1]
        assert unrelated["acceptance"] < shared[unrelated["k"]]["acceptance"]
        assert shared[1]["target_calls"] < config["new_tokens"]  # the shared draft is accepted now and then


def test_the_printout_says_what_each_part_compares_and_no_verdict(quick):
    run, _, _ = quick
    out = run.stdout
    for words in ("1. GQA memory (TODO 1)", "= 2 x layers x batch x kv_heads x max_len x head_dim x bytes",
                  "fewer bytes than with 16 (MHA)", "2. A long chat (TODO 3)", "a SinkWindowCache of that rule",
                  "holds the same bytes after every turn", "3. Batching (TODO 4)", "the tokens per second of batch 1",
                  "4. Speculative decoding (TODOs 5, 6)", "scaled by", "The speed-up depends on how often the draft "
                  "agrees", "Checks: cache bytes equal the formula: yes"):
        assert words in out, f"missing {words!r} in:\n{out}"
    assert "not graded" not in out and "NO" not in out.split()
    assert "Traceback" not in run.stderr


def test_the_skeleton_is_one_line_naming_todo_1():
    run = bench("--impl", "assignments/kv_serving")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("kvkit bench: --impl assignments/kv_serving is not finished (TODO 1: "
                                 "Attention.forward - "), run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_a_later_unfinished_todo_stops_the_bench_before_it_starts(tmp_path):
    """Everything done but TODO 6: the bench tries every TODO's path before it times anything."""
    package = tmp_path / "kvserving"
    shutil.copytree(ROOT / "reference" / "kvserving", package)
    shutil.copy(ROOT / "assignments" / "kv_serving" / "kvserving" / "speculative.py", package / "speculative.py")
    run = bench("--impl", str(tmp_path))
    assert run.returncode == 2 and run.stdout == ""
    assert f"--impl {tmp_path} is not finished (TODO 6: SpeculativeDecoder.generate - " in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_other_code_is_measured_and_said_to_be_not_graded(tmp_path):
    shutil.copytree(ROOT / "reference" / "kvserving", tmp_path / "kvserving")
    out = tmp_path / "bench.json"
    run = bench("--impl", str(tmp_path), "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"kvserving: {tmp_path}\n" in run.stdout and "These timings are not graded" in run.stdout
    report = json.loads(out.read_text())
    assert report["impl"] == str(tmp_path) and report["kit_reference"] is False
