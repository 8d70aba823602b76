"""The benchmark scripts run and print what they claim (tiny settings)."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


def _main(name):
    return runpy.run_path(str(BENCH / f"{name}.py"))["main"]


def test_flops_table_has_published_numbers_beside_ours(capsys, tmp_path):
    rows = _main("flops")(["--models", "tsm_r50", "--no-latency", "--csv", str(tmp_path / "f.csv")])
    assert [r["frames"] for r in rows] == [4, 8, 16]
    assert all(abs(r["diff_pct"]) < 2 for r in rows)
    assert rows[0]["params_ffn_m"] > rows[0]["params_plain_m"]
    out = capsys.readouterr().out
    assert f"| tsm_r50 | 16 | 224 | {rows[2]['gmacs']:.2f} | 65.85 |" in out
    assert (tmp_path / "f.csv").read_text().startswith("model,frames,input,gmacs,published_gmacs")


@pytest.mark.parametrize("bad", [["--models", "nope"]])
def test_flops_unknown_model_is_named(bad):
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        _main("flops")(bad)


def test_data_throughput_table_covers_every_source_decoder_and_sampling(capsys):
    from frameflex.video import available_backends

    decoders = [b for b, problem in available_backends().items() if problem is None]
    rows = _main("data")(["--videos", "1", "--items", "2", "--repeats", "1", "--workers", "0", "--mp4", "20", "30",
                          "--webm", "20", "12", "--short-side", "36", "--crop", "32"])
    assert [(r["source"], r["decoder"]) for r in rows] == (
        [("mp4", d) for d in decoders] + [("webm", d) for d in decoders] + [("jpeg", "PIL")])
    assert all(r[k] > 0 for r in rows for k in ("16f", "independent", "nested", "nested_x", "independent_x"))
    out = capsys.readouterr().out
    assert "| 4/8/16 nested /s |" in out and "nested multi-frame sample: at most" in out


def test_transformer_benchmark_prints_both_runs_per_family(capsys, tmp_path):
    import json

    _main("transformer")(["--quick", "--families", "videomae_tiny", "--out", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    assert "| frames | videomae_tiny single-H | videomae_tiny FFN |" in out
    assert "| 6* |" in out and "| 16 |" in out
    result = json.loads((tmp_path / "t.json").read_text())
    assert sorted(result["top1"]) == ["videomae_tiny FFN", "videomae_tiny single-H"]
    assert sorted(result["top1"]["videomae_tiny FFN"], key=int) == ["4", "6", "8", "12", "16"]


def test_gpu_benchmark_runs_on_cpu_at_tiny_sizes(tmp_path):
    out = tmp_path / "gpu.md"
    assert _main("gpu")(["--device", "cpu", "--tiny", "--out", str(out), "--budget", "900"]) == 0
    text = out.read_text()
    assert text.count("skipped: needs CUDA (device is cpu)") == 4  # NCCL, AMP bf16, AMP fp16, SyncBatchNorm
    rows = {tuple(c.strip() for c in line.split("|")[1:5]): line for line in text.splitlines()
            if line.startswith("| ") and " x 32px " in line}
    expected = [("tsm_tiny", "eager", "float32", ""), ("tsm_tiny", "eager", "bfloat16", ""),
                ("tsm_tiny", "eager", "bfloat16", "yes"), ("tsm_tiny", "compile", "float32", ""),
                ("slowfast_r50 (width 8)", "eager", "float32", ""), ("uniformer_s (narrow)", "eager", "float32", ""),
                ("videomae (tiny)", "eager", "float32", "")]
    assert sorted(rows) == sorted(expected)
    for key, line in rows.items():  # clips/s at every frame count and for the training step
        assert re.search(r"\| +\d+f [\d.]+, \d+f [\d.]+ \| +[\d.]+ \|", line), line
    for variant in ("converted + adapters", "specialized(4)", "forward_multi step"):  # overhead.py's ratios
        assert re.search(rf"\| {re.escape(variant)} +\| +[\d.]+ \| +[\d.]+ \|", text), variant
