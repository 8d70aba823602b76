"""`frameflex demo` end to end (quick budget), the CLI wiring, and the table it prints."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import frameflex as ff
from frameflex import demo
from frameflex.cli import build_parser, main
from frameflex.synthetic import SyntheticActions
from frameflex.demo import DemoConfig, format_table, run_demo

ROW = re.compile(r"^\s*(\d+)([ *]) \|\s+([\d.]+) \|\s+([\d.]+)$")


def table_rows(text: str) -> dict[int, tuple[bool, float, float]]:
    """{frames: (trained by FFN, single-H %, FFN %)} parsed from the demo's table."""
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows[int(m[1])] = (m[2] == " ", float(m[3]), float(m[4]))
    return rows


def test_demo_quick_prints_the_table(capsys):
    assert main(["demo", "--quick", "--no-progress", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("frames"))
    assert header.split("|")[1].strip() == "single-H" and header.split("|")[2].strip() == "FFN"
    rows = table_rows(out)
    assert sorted(rows) == [4, 6, 8, 12, 16]
    assert {t for t, (trained, _, _) in rows.items() if trained} == {4, 8, 16}  # 6 and 12 are marked unseen
    assert "seed 1" in out and "16 -> 4 frames" in out


def test_the_table_is_the_measured_accuracy_of_both_models(monkeypatch):
    """Same initial weights for both models; the printed numbers are evaluate()'s on the held-out clips."""
    cfg = DemoConfig.quick(progress=False, steps=4, seed=3)
    trained = {}
    fit = demo.fit

    def recording_fit(model, batches, cfg, device, desc="train"):
        start = copy.deepcopy(model)
        seconds = fit(model, batches, cfg, device, desc)
        trained[desc] = (start.eval(), model)
        return seconds

    monkeypatch.setattr(demo, "fit", recording_fit)
    printed = []
    results = run_demo(cfg, log=printed.append)
    (single_start, single), (ffn_start, ffn) = trained["train single-H"], trained["train FFN"]
    assert ff.frame_sets(ffn) == (4, 8, 16) and not ff.is_converted(single)
    x = torch.randn(2, 3, 16, cfg.size, cfg.size)
    with torch.no_grad():  # both began from the same weights: every FFN branch computes single-H's start
        for t in (4, 8, 16):
            with ff.frames(ffn_start, t):
                torch.testing.assert_close(ffn_start(x), single_start(x), rtol=0, atol=0)
    # every FFN branch was trained: its BN statistics moved off the (identical) starting point
    for t in (4, 8, 16):
        key = f"backbone.bn1.branches.{t}.running_mean"
        assert not torch.equal(ffn.state_dict()[key], ffn_start.state_dict()[key])

    test = SyntheticActions(cfg.test_videos, frame_sets=cfg.eval_frames, train=False, seed=cfg.seed + 1_000_000,
                             **cfg.data_kw())
    for name, model in (("single-H", single), ("FFN", ffn)):
        model.eval()
        with torch.no_grad():
            for t in cfg.eval_frames:
                clips = torch.stack([test[i][0][t] for i in range(len(test))])
                labels = torch.tensor([test[i][1] for i in range(len(test))])
                with ff.frames(model, t) if ff.is_converted(model) else torch.no_grad():
                    hits = (model(clips).argmax(1) == labels).sum().item()
                assert results[name][t] == pytest.approx(hits / len(test), abs=1e-12)
    rows = table_rows(printed[0])
    assert {t: (s, f) for t, (_, s, f) in rows.items()} == {
        t: (round(100 * results["single-H"][t], 1), round(100 * results["FFN"][t], 1)) for t in cfg.eval_frames}


def test_demo_is_deterministic():
    cfg = DemoConfig.quick(progress=False, steps=6, seed=3)
    first = run_demo(cfg, log=lambda s: None)
    second = run_demo(cfg, log=lambda s: None)
    assert first == second
    assert set(first) == {"single-H", "FFN"}


def test_format_table_reports_the_drop():
    cfg = DemoConfig(eval_frames=(4, 16))
    text = format_table({"single-H": {4: 0.5, 16: 0.9}, "FFN": {4: 0.85, 16: 0.9}}, cfg, {"single-H": 1.0, "FFN": 2.0})
    assert table_rows(text) == {4: (True, 50.0, 85.0), 16: (True, 90.0, 90.0)}
    assert "single-H -40.0 points, FFN -5.0 points" in text


def test_cli_parses_demo_options_and_rejects_bad_ones(capsys):
    args = build_parser().parse_args(["demo", "--seed", "7", "--steps", "30", "--device", "cpu"])
    assert (args.seed, args.steps, args.device, args.quick) == (7, 30, "cpu", False)
    for flag in ("--steps", "--threads"):
        with pytest.raises(SystemExit) as exit_:
            main(["demo", flag, "-3"])
        assert exit_.value.code == 2
        assert f"argument {flag}: the value must be a positive int, got -3" in capsys.readouterr().err
    assert main([]) == 2  # no subcommand: help, non-zero status
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_frameflex_runs():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "frameflex", "--help"], capture_output=True, text=True, check=True,
                         cwd=root)
    assert "demo" in out.stdout
