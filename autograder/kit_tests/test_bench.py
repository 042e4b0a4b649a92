"""``kvkit bench`` as a smoke run: the report's fields and the cache-bytes formula (no timing bars)."""

from __future__ import annotations

import json
import sys

from kvkit.cli import main


def test_quick_bench_writes_json_and_plot(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    assert main(["bench", "--quick", "--lengths", "8", "16", "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert {"impl", "model", "torch", "threads", "transformers", "results", "cache_bytes", "targets"} <= report.keys()
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


def test_bench_rejects_a_folder_without_kvcache(tmp_path, capsys):
    assert main(["bench", "--quick", "--impl", str(tmp_path)]) == 2
    assert "no kvcache package" in capsys.readouterr().err


def test_bench_without_transformers_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--lengths", "8", "--json", str(out)]) == 0
    assert "transformers is not installed" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["transformers"] is None and report["results"][0]["hf_ms"] is None
