"""`frameflex demo` end to end (quick budget), the CLI wiring, and the table it prints."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from frameflex.cli import build_parser, main
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
    for _, single, ffn in rows.values():
        assert 0.0 <= single <= 100.0 and 0.0 <= ffn <= 100.0
    assert "seed 1" in out and "16 -> 4 frames" in out


def test_demo_is_deterministic_and_returns_fractions():
    cfg = DemoConfig.quick(progress=False, steps=6, seed=3)
    first = run_demo(cfg, log=lambda s: None)
    second = run_demo(cfg, log=lambda s: None)
    assert first == second
    assert set(first) == {"single-H", "FFN"}
    assert all(0.0 <= acc <= 1.0 for r in first.values() for acc in r.values())


def test_format_table_reports_the_drop():
    cfg = DemoConfig(eval_frames=(4, 16))
    text = format_table({"single-H": {4: 0.5, 16: 0.9}, "FFN": {4: 0.85, 16: 0.9}}, cfg, {"single-H": 1.0, "FFN": 2.0})
    assert table_rows(text) == {4: (True, 50.0, 85.0), 16: (True, 90.0, 90.0)}
    assert "single-H -40.0 points, FFN -5.0 points" in text


def test_cli_parses_demo_options_and_rejects_bad_ones(capsys):
    args = build_parser().parse_args(["demo", "--seed", "7", "--steps", "30", "--device", "cpu"])
    assert (args.seed, args.steps, args.device, args.quick) == (7, 30, "cpu", False)
    with pytest.raises(SystemExit, match="-3"):
        main(["demo", "--steps", "-3"])
    assert main([]) == 2  # no subcommand: help, non-zero status
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_frameflex_runs():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "frameflex", "--help"], capture_output=True, text=True, check=True,
                         cwd=root)
    assert "demo" in out.stdout
