"""benchmarks/cascade.py: the sweep, validation thresholds, bounds and verdict (tiny budgets; numbers mean nothing)."""
from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).parent.parent / "benchmarks"
TINY = ["--steps", "3", "--batch-size", "4", "--test-videos", "16", "--calib-videos", "8", "--workers", "0",
        "--no-progress", "--val-videos", "16"]


def _module(name="cascade"):
    return runpy.run_path(str(BENCH / f"{name}.py"))


def test_the_sweep_counts_every_frame_count_a_clip_ran(tmp_path, capsys):
    out = tmp_path / "c.json"
    res = _module()["main"](TINY + ["--thresholds", "0", "0.5", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))  # what is printed is what is saved
    assert res["seeds"] == 1  # one training run unless --seeds
    g = {int(t): v for t, v in res["gmacs"].items()}
    assert g[2] < g[4] < g[8] < g[16]
    assert res["cascade_frames"] == [[4, 8, 16], [8, 16], [2, 8, 16]]  # 2: the cheaper first stage
    assert {r["rule"] for r in res["cascade"]} == {"softmax", "temperature", "margin", "entropy", "agree", "learned"}
    rows = {r["threshold"]: r for r in res["cascade"] if r["frames"] == [4, 8, 16] and r["rule"] == "softmax"}
    skip = {r["threshold"]: r for r in res["cascade"] if r["frames"] == [8, 16] and r["rule"] == "softmax"}
    assert skip[0.0]["top1"] == res["fixed"]["8"]["top1"] and skip[1.0]["top1"] == res["fixed"]["16"]["top1"]
    # threshold 0: every clip stops at L (cost of L); threshold 1: every clip runs L, M and H.
    assert rows[0.0]["stopped"] == {"4": 100.0, "8": 0.0, "16": 0.0}
    assert rows[0.0]["gmacs"]["mean"] == pytest.approx(g[4], rel=1e-4)
    assert rows[1.0]["stopped"]["16"] == 100.0
    assert rows[1.0]["gmacs"]["mean"] == pytest.approx(g[4] + g[8] + g[16], rel=1e-4)
    assert rows[1.0]["top1"] == res["fixed"]["16"]["top1"] and rows[0.0]["top1"] == res["fixed"]["4"]["top1"]
    # agreement: at threshold 1 a clip stops at M only when M and L agree
    agree = {r["threshold"]: r for r in res["cascade"] if r["frames"] == [4, 8, 16] and r["rule"] == "agree"}
    assert agree[1.0]["stopped"]["4"] == 0.0 and agree[0.0]["stopped"]["4"] == 100.0
    # validation's "match" threshold ties H on the validation videos; its test numbers are reported
    for r in res["chosen"]:
        assert r["choice"] in ("match", "budget") and len(r["threshold"]) == 1
        if r["choice"] == "budget":
            assert r["val_pct_of_H"] <= 60
    assert {(r["rule"], tuple(r["frames"])) for r in res["chosen"] if r["choice"] == "budget"} >= {
        ("softmax", (4, 8, 16))}  # threshold 0 always fits the budget
    assert [o["frames"] for o in res["oracle"]] == res["cascade_frames"]
    text = capsys.readouterr().out
    assert "| fixed 16f" in text and "| softmax 4>8>16 @ 0.5" in text and "| temperature 8>16 @ 0.5" in text
    assert any(line.startswith(("PASS: ", "FAIL: ")) for line in text.splitlines())
    (line,) = [x for x in text.splitlines() if x.startswith("verdict: ")]
    assert line == f"verdict: {res['verdict']}" and res["verdict"].startswith(
        "goal met" if res["goal"]["pass"] else "goal not met, because ")


def test_replot_prints_the_saved_run_and_draws_its_plot(tmp_path, capsys):
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    main = _module()["main"]
    main(TINY + ["--thresholds", "0.5", "--cascade-frames", "8", "16", "--out", str(out)])
    first = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("|", "verdict"))]
    assert main(["--replot", str(out), "--plot", str(png)]) == json.loads(out.read_text())
    text = capsys.readouterr().out
    assert [line for line in text.splitlines() if line.startswith(("|", "verdict"))] == first
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed: skipping the plot" in text and not png.exists()
    else:
        assert png.read_bytes().startswith(b"\x89PNG")


def test_cascade_frames_may_skip_counts_and_must_end_at_H():
    res = _module()["main"](TINY + ["--thresholds", "1", "--cascade-frames", "8", "16"])
    g = {int(t): v for t, v in res["gmacs"].items()}
    (row,) = [r for r in res["cascade"] if r["rule"] == "softmax"]
    assert res["cascade_frames"] == [[8, 16]] and set(row["stopped"]) == {"8", "16"}
    assert row["gmacs"]["mean"] == pytest.approx(g[8] + g[16], rel=1e-4)
    with pytest.raises(ValueError, match=r"cascade_frames \[4, 8\] must be two or more distinct counts ending at H"):
        _module()["main"](TINY + ["--cascade-frames", "4", "8"])


def test_a_transformer_family_gets_its_own_clip_layout():
    pytest.importorskip("transformers")
    res = _module()["main"](TINY + ["--model", "videomae_tiny", "--test-videos", "8", "--val-videos", "8",
                                    "--thresholds", "0.5", "--cascade-frames", "8", "16"])
    # ff.cascade was fed (B, T, C, H, W) clips and agreed with the simulation (it raises otherwise)
    assert res["config"]["model"] == "videomae_tiny" and res["cascade_frames"] == [[8, 16]]
    assert res["gmacs"]["8"] < res["gmacs"]["16"]


def test_cascade_loads_the_models_reproduce_saved(tmp_path):
    models = tmp_path / "models"
    args = TINY[:-2] + ["--seeds", "1", "--eval-frames", "4", "8", "16"]
    rep = _module("reproduce")["main"](args + ["--save-models", str(models)])
    res = _module()["main"](args + ["--val-videos", "16", "--models", str(models), "--thresholds", "0.5", "--plot",
                                    str(tmp_path / "c.png"), "--out", str(tmp_path / "c.json"),
                                    "--reproduce", str(tmp_path / "none.json")])
    assert res["train_s"] == [0.0]  # loaded, not trained
    assert {t: res["fixed"][t]["top1"]["mean"] for t in rep["top1"]["ffn"]} == rep["top1"]["ffn"]
    with pytest.raises(SystemExit, match="ffn_seed1"):
        _module()["main"](args + ["--models", str(models), "--first-seed", "1"])


def test_oracle_pays_for_the_cheapest_corrections_only():
    oracle = _module()["oracle"]
    labels = torch.tensor([0, 1, 2, 3])

    def logits(correct):  # 4 classes: a clip's prediction is its label when correct, else the next class
        z = torch.zeros(4, 4)
        for i, ok in enumerate(correct):
            z[i, (labels[i] + (0 if ok else 1)) % 4] = 5.0
        return z

    preds = {4: logits([1, 0, 0, 1]), 8: logits([0, 1, 0, 0]), 16: logits([1, 1, 1, 0])}
    g = {4: 1.0, 8: 2.0, 16: 4.0}
    # H gets 3 of 4 right; L gets clips 0 and 3; one more right clip is needed: clip 1 at M costs 1 + 2
    # (cheaper than clip 2, which needs H: 1 + 2 + 4), so the mean cost is (1 + 3 + 1 + 1) / 4.
    o = oracle(preds, labels, (4, 8, 16), g, 75.0)
    assert o == {"frames": [4, 8, 16], "reachable": True, "top1": 75.0, "gmacs": pytest.approx(1.5)}
    o = oracle(preds, labels, (8, 16), g, 100.0)  # no count gets clip 3: clips 0 and 2 go to H, still 75%
    assert not o["reachable"] and o["top1"] == 75.0 and o["gmacs"] == pytest.approx(2 + 2 * 4 / 4)


def test_auroc_and_the_exit_signals():
    m = _module()
    right = torch.tensor([True, True, False, False])
    assert m["auroc"](torch.tensor([0.9, 0.8, 0.2, 0.1]), right) == 1.0
    assert m["auroc"](torch.tensor([0.1, 0.2, 0.8, 0.9]), right) == 0.0
    assert m["auroc"](torch.tensor([0.9, 0.3, 0.5, 0.1]), right) == 0.75  # 3 of 4 (right, wrong) pairs in order
    assert m["auroc"](torch.tensor([0.9, 0.3]), torch.tensor([True, True])) is None
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [20.0, 0.0, 0.0, 0.0], [math.log(3), 0.0, -1e9, -1e9]])
    entropy = 1 - math.log(4 / 3 ** 0.75) / math.log(4)  # probabilities 3/4, 1/4: entropy log(4 / 3^(3/4))
    for rule, expected in (("margin", [0.0, 1.0, 0.5]), ("entropy", [0.0, 1.0, entropy]),
                           ("softmax", [0.25, 1.0, 0.75])):
        conf, pred = m["exit_signal"](z, rule, 1.0)
        torch.testing.assert_close(conf, torch.tensor(expected), atol=1e-5, rtol=0)
        assert pred.tolist() == [0, 0, 0]
    conf, _ = m["exit_signal"](torch.tensor([[math.log(3), 0.0]]), "temperature", 0.5)  # 9:1 after T = 0.5
    assert conf.item() == pytest.approx(0.9)


def test_validation_picks_the_cheapest_tie_and_the_best_within_budget():
    choose = _module()["choose"]
    sims = {0.0: {"top1": 50.0, "gmacs": 1.0}, 0.5: {"top1": 79.5, "gmacs": 5.0}, 0.8: {"top1": 80.0, "gmacs": 7.0},
            0.9: {"top1": 80.0, "gmacs": 9.0}, 1.0: {"top1": 80.0, "gmacs": 12.0}}
    # H has 80% on 200 validation videos: one clip is 0.5 points, so 79.5 ties; budget 60% of 10 = 6
    assert choose(sims, 80.0, 10.0, 200) == {"match": 0.5, "budget": 0.5}
    assert choose(sims, 80.0, 10.0, 1000) == {"match": 0.8, "budget": 0.5}
    assert choose({1.0: {"top1": 70.0, "gmacs": 12.0}}, 80.0, 10.0, 100) == {"match": None, "budget": None}
