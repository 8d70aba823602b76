"""The benchmark scripts run and print what they claim (tiny settings)."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import torch

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

    _main("transformer")(["--quick", "--families", "timesformer_tiny", "--out", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    assert "| frames | timesformer_tiny single-H | timesformer_tiny FFN |" in out
    assert "| 6* |" in out and "| 16 |" in out
    result = json.loads((tmp_path / "t.json").read_text())
    assert sorted(result["top1"]) == ["timesformer_tiny FFN", "timesformer_tiny single-H"]
    assert sorted(result["top1"]["timesformer_tiny FFN"], key=int) == ["4", "6", "8", "12", "16"]


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


def test_nested_benchmark_trains_the_demos_ffn_both_ways(monkeypatch):
    """The independent arm is the demo's FFN model weight for weight; the nested arm only samples nested clips."""
    from frameflex import demo

    bench = runpy.run_path(str(BENCH / "nested.py"))
    cfg = demo.DemoConfig.quick(progress=False, steps=3, seed=1)
    trained, seen = {}, []
    fit, loader = demo.fit, bench["loader"]

    def recording_fit(model, batches, cfg, device, desc="train"):
        trained[desc] = model
        return fit(model, batches, cfg, device, desc)

    def recording_loader(dataset, cfg, train):
        seen.append(dataset)
        return loader(dataset, cfg, train)

    monkeypatch.setattr(demo, "fit", recording_fit)
    demo.run_demo(cfg, log=lambda s: None)
    monkeypatch.setitem(bench["train_ffn"].__globals__, "loader", recording_loader)
    independent, _ = bench["train_ffn"](cfg, 1, nested=False)
    nested, _ = bench["train_ffn"](cfg, 1, nested=True)
    ref = trained["train FFN"].state_dict()
    assert independent.state_dict().keys() == ref.keys()
    for k, v in independent.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(v, ref[k]) for k, v in nested.state_dict().items())
    clips, _ = seen[-1][0]  # the nested arm's data: the 4- and 8-frame clips are frames of the 16-frame one
    assert seen[-1].clips.nested and not seen[-2].clips.nested
    torch.testing.assert_close(clips[8], clips[16][:, 1::2], rtol=0, atol=0)
    torch.testing.assert_close(clips[4], clips[16][:, 2::4], rtol=0, atol=0)


def test_nested_benchmark_reports_per_seed_paired_gaps_and_decode_cost(capsys, tmp_path):
    import json

    out = tmp_path / "nested.json"
    result = _main("nested")(["--seeds", "2", "--steps", "2", "--batch-size", "4", "--test-videos", "16",
                              "--width", "4", "--workers", "0", "--out", str(out)])
    assert json.loads(out.read_text())["per_seed"] == json.loads(json.dumps(result["per_seed"]))
    for t in (4, 6, 8, 12, 16):
        ind, nes = result["per_seed"]["independent"][t], result["per_seed"]["nested"][t]
        assert len(ind) == len(nes) == 2
        assert result["gap_per_seed"][t] == [b - a for a, b in zip(ind, nes)]
    decoded = result["decoded_frames"]
    assert decoded["independent"]["indices"] == 28 and decoded["nested"]["indices"] == 16
    assert decoded["nested"]["distinct_300f_video"] == 16 < decoded["independent"]["distinct_300f_video"]
    text = capsys.readouterr().out
    assert "| nested - independent (points, paired) |" in text and " 16f nested - independent per seed: " in text
