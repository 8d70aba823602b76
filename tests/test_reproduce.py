"""benchmarks/reproduce.py runs end to end on tiny budgets (numbers mean nothing)."""
from __future__ import annotations

import json
import runpy
import statistics
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"
# Seconds, not minutes: 2 seeds so that std is computed, 3 steps, a handful of videos.
TINY = ["--steps", "3", "--batch-size", "4", "--test-videos", "16", "--calib-videos", "8", "--workers", "0",
        "--no-progress"]


def _module(name):
    return runpy.run_path(str(BENCH / f"{name}.py"))


def test_reproduce_writes_every_block_and_prints_the_claims(tmp_path, capsys):
    out = tmp_path / "r.json"
    models = tmp_path / "models"
    res = _module("reproduce")["main"](TINY + ["--seeds", "2", "--out", str(out), "--save-models", str(models)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))  # what is printed is what is saved
    assert res["frame_sets"] == [4, 8, 16] and res["seeds"] == 2
    for block in ("single_H", "separate", "ffn"):
        assert sorted(res["top1"][block], key=int) == ["4", "8", "16"]
    for block in ("nearest", "calibrated", "separate_nearest", "single_H"):
        assert sorted(res["any_frame"][block], key=int) == ["2", "6", "12", "24"]
    for group in ("top1", "any_frame"):  # means where the layout puts them, std beside
        for block, row in res[group].items():
            assert row.keys() == res["std"][group][block].keys()
            for t in row:  # mean and sample std of the per-seed numbers
                xs = res["per_seed"][block][t]
                assert row[t] == pytest.approx(statistics.fmean(xs), abs=0.01)
                assert res["std"][group][block][t] == pytest.approx(statistics.stdev(xs), abs=0.01)
    assert all(len(xs) == 2 for b in res["per_seed"].values() for xs in b.values())
    # each number is a share of the 16 test clips (one clip = 6.25 points)
    assert all((x / 6.25).is_integer() for b in res["per_seed"].values() for xs in b.values() for x in xs)
    # As in the paper, ST's H model is the single-H model.
    assert res["top1"]["separate"]["16"] == res["top1"]["single_H"]["16"]
    text = capsys.readouterr().out
    assert "| frames |" in text and "| 2*" in text and "| 16 " in text
    assert sum(line.startswith(("PASS: ", "FAIL: ")) for line in text.splitlines()) == 5
    assert res["config"]["steps"] == 3 and res["wall_s"] > 0 and res["cpu_s"] > 0
    # the paired test is on the per-seed gaps
    for t in ("4", "8", "16"):
        gaps = [f - s for f, s in zip(res["per_seed"]["ffn"][t], res["per_seed"]["separate"][t])]
        assert res["paired"]["ffn"][t]["gap"] == pytest.approx(statistics.fmean(gaps), abs=0.01)
    assert sorted(res["paired"]["calibrated"], key=int) == ["2", "6", "12", "24"]
    # the task is recorded, and ST stores three plain models where FFN stores one a little larger
    assert res["task"]["task"] == "SyntheticActions" and res["task"]["classes"] == 14
    p = res["params"]
    assert p["separate"] == 3 * p["single_H"] and p["single_H"] < p["ffn"] < 1.2 * p["single_H"]
    assert sorted(f.name for f in models.iterdir()) == ["ffn_seed0.safetensors", "ffn_seed1.safetensors"]
    # a 2D CNN with temporal shifts: MACs grow with the frames; FFN's norms and adapters are
    # per-channel scales, which add no multiply-adds of note
    g = res["gmacs"]
    assert g["plain"]["16"] == pytest.approx(2 * g["plain"]["8"], rel=0.02) and g["plain"]["4"] < g["plain"]["8"]
    assert all(g["ffn"][t] == pytest.approx(g["plain"][t], rel=0.01) for t in g["plain"])


def test_reproduce_plot_or_a_message(tmp_path, capsys):
    mod = _module("reproduce")
    png = tmp_path / "acc.png"
    mod["main"](TINY + ["--seeds", "1", "--eval-frames", "4", "6", "8", "16", "--plot", str(png)])
    text = capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed: skipping the plot" in text and not png.exists()
    else:
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "acc_gmacs.png").read_bytes()[:4] == b"\x89PNG"


def test_reproduce_is_deterministic():
    main = _module("reproduce")["main"]
    args = TINY + ["--seeds", "1", "--eval-frames", "4", "6", "8", "16"]
    a, b = main(args), main(args)
    assert a["per_seed"] == b["per_seed"]


def test_reproduce_runs_the_same_table_for_a_video_transformer(capsys):
    pytest.importorskip("transformers")
    res = _module("reproduce")["main"](TINY + ["--model", "timesformer_tiny", "--seeds", "1",
                                               "--eval-frames", "4", "6", "8", "16"])
    assert res["config"]["model"] == "timesformer_tiny" and sorted(res["any_frame"]["calibrated"]) == ["6"]
    bench = _module("transformer")
    assert res["config"]["lr"] == bench["LR"]["timesformer_tiny"] != 3e-3  # the family's own lr
    p = res["params"]  # the transformer's parameters, not TSM's; FFN adds private norms and adapters
    plain = bench["timesformer_tiny"](res["task"]["classes"])
    assert p["single_H"] == sum(w.numel() for w in plain.parameters()) and p["separate"] == 3 * p["single_H"]
    assert p["ffn"] > p["single_H"]
    assert "timesformer_tiny, 32 px" in capsys.readouterr().out


def test_reproduce_rejects_bad_configs():
    main = _module("reproduce")["main"]
    with pytest.raises(ValueError, match="model must be one of"):
        main(TINY + ["--model", "resnet"])
    with pytest.raises(ValueError, match="eval_frames must include"):
        main(TINY + ["--eval-frames", "4", "8"])
    with pytest.raises(ValueError, match="train_frames"):
        main(TINY + ["--train-frames", "8", "4", "16"])


def test_merge_of_seed_parts_is_the_run_over_all_seeds(tmp_path):
    main = _module("reproduce")["main"]
    args = TINY + ["--eval-frames", "4", "6", "8", "16"]
    whole = main(args + ["--seeds", "2"])
    main(args + ["--seeds", "1", "--out", str(tmp_path / "a.json")])
    main(args + ["--seeds", "1", "--first-seed", "1", "--out", str(tmp_path / "b.json")])
    merged = main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    for key in ("top1", "any_frame", "std", "per_seed", "paired", "claims"):
        assert merged[key] == whole[key], key
    assert merged["config"]["seed_list"] == [0, 1]
    main(TINY + ["--seeds", "1", "--steps", "2", "--out", str(tmp_path / "c.json")])
    with pytest.raises(SystemExit, match="steps"):
        main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json")])
    with pytest.raises(SystemExit, match="twice"):
        main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "a.json")])


def test_reproduce_replot_rebuilds_the_table_from_a_saved_run(tmp_path, capsys):
    main = _module("reproduce")["main"]
    out = tmp_path / "r.json"
    main(TINY + ["--seeds", "1", "--eval-frames", "4", "6", "8", "16", "--out", str(out)])
    first = capsys.readouterr().out
    table = [line for line in first.splitlines() if line.startswith("|")]
    assert main(["--replot", str(out)]) == json.loads(out.read_text())
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")] == table


def test_paired_test_over_seeds():
    paired = _module("reproduce")["paired"]
    # a steady 2-point gain over 5 seeds is significant; the same mean with a wild spread is not
    steady = paired([72, 70, 75, 71, 74], [70, 68, 73, 69, 72], 512)
    assert steady["gap"] == 2.0 and steady["verdict"] == ">" and steady["p"] == 0.0
    wild = paired([80, 60, 75, 61, 76], [70, 68, 73, 69, 62], 512)
    assert wild["gap"] == 2.0 and wild["verdict"] == "=" and wild["p"] > 0.5
    assert paired([70, 71, 69], [80, 80.5, 79], 512)["verdict"] == "<"
    assert paired([99.81, 99.81, 99.81], [100, 100, 100], 512)["verdict"] == "="  # one clip of 512 at the ceiling
    assert paired([42.6], [79.1], 512)["verdict"] == "<" and paired([79.0], [79.1], 512)["verdict"] == "="
    # Student's t: the textbook two-sided 5% and 1% critical values for 4 degrees of freedom
    cdf = _module("reproduce")["_t_cdf"]
    assert cdf(2.7764451, 4) == pytest.approx(0.975, abs=1e-6) and cdf(-4.6040949, 4) == pytest.approx(0.005, abs=1e-6)
    r = paired([3.0, 1.0, 4.0, 1.0, 5.0], [0.0, 0.0, 1.0, 0.0, 1.0], 100)  # gaps 3 1 3 1 4: t = 4.0
    assert r["t"] == 4.0 and 0.01 < r["p"] < 0.05 and r["verdict"] == ">"
