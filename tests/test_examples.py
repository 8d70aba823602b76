"""The examples run end to end (tiny budgets)."""
from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_train_any_model_runs_every_step(capsys):
    main = runpy.run_path(str(EXAMPLES / "train_any_model.py"))["main"]
    results = main(["--steps", "2", "--batch", "2", "--size", "16", "--eval-videos", "4"])
    assert set(results) == {4, 8, 16, 12, "12 calibrated"}
    assert all(0.0 <= acc <= 1.0 for acc in results.values())
    out = capsys.readouterr().out
    assert "kl_4" in out and "exported with torch.export" in out
