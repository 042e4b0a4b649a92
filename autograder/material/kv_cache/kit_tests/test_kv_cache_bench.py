"""``kvkit bench`` as a smoke run: the report's fields, what it prints, the cache-bytes formula (no timing bars).

Runs on a student's code are in ``test_impl.py``.
"""

from __future__ import annotations

import json
import sys

from kvkit.cli import main
from kvkit.paths import Layout

PART1 = Layout.named("kv_cache")

REFERENCE = PART1.reference


def test_quick_bench_writes_json_and_plot(tmp_path, capsys):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    assert main(["bench", "--quick", "--lengths", "8", "16", "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert {"impl", "kit_reference", "model", "torch", "threads", "transformers", "rounds", "results", "cache_bytes",
            "summary", "targets"} <= report.keys()
    assert report["impl"] == str(REFERENCE) and report["kit_reference"] is True
    assert [row["length"] for row in report["results"] if row["device"] == "cpu"] == [8, 16]
    for row in report["results"]:
        for key in ("cached_ms", "cached_tok_s", "uncached_ms", "uncached_tok_s", "speedup", "hf_ms", "hf_tok_s"):
            assert row[key] > 0, key
    nbytes = report["cache_bytes"]
    model = report["model"]
    head_dim = model["hidden_dim"] // model["nheads"]
    formula = 2 * model["depth"] * 1 * model["nheads"] * model["max_seq_len"] * head_dim * 4
    assert nbytes["measured"] == nbytes["formula"] == formula
    assert png.stat().st_size > 0
    (cpu,) = report["summary"]
    assert (cpu["shortest"], cpu["longest"]) == (8, 16) and cpu["speedup_longest"] == report["results"][1]["speedup"]


def test_the_report_says_what_each_column_compares(tmp_path, capsys):
    assert main(["bench", "--quick", "--lengths", "8", "16"]) == 0
    out = capsys.readouterr().out
    for words in ("cached    the kit's reference Transformer with its KVCache: each step feeds only the new token",
                  "uncached  the same model and weights without a cache: every new token re-runs the whole sequence",
                  "HF        transformers' GPT2LMHeadModel.generate", "speed-up = uncached ms / cached ms",
                  "The kit's reference cached decode is", "faster than uncached at 16 tokens of context"):
        assert words in out, f"missing {words!r} in:\n{out}"


def test_targets_are_the_kits_reference_and_say_what_they_are(capsys):
    assert main(["bench", "--quick", "--lengths", "8"]) == 0
    out = capsys.readouterr().out
    assert "The kit's performance targets for its reference implementation" in out
    assert "cached tokens/s at least 2x HF generate's, at every context length (worst ratio): " in out
    assert "cached at least 20x faster than uncached at 1024 tokens of context: not measured" in out
    assert "NOT met" not in out and "not graded" not in out


def test_bench_rejects_a_folder_without_kvcache(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["bench", "--quick", "--impl", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kvkit bench: --impl {tmp_path}: ") and "holds no kvcache package" in err and "\n" not in err


def test_bench_without_transformers_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--lengths", "8", "--json", str(out)]) == 0
    assert "transformers is not installed" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["transformers"] is None and report["results"][0]["hf_ms"] is None
