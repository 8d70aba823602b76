"""`import frameflex` and `frameflex --help` stay light: heavy packages are imported on first use."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import frameflex as ff
from frameflex.cli import _SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "huggingface_hub", "PIL", "transformers", "av")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY packages imported by running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_frameflex_imports_nothing_heavy():
    assert _loaded_after("import frameflex") == []


def test_the_core_api_needs_torch_only():
    assert _loaded_after("import frameflex as ff\nff.convert, ff.FFNLoss, ff.specialize, ff.load_state_dict, "
                         "ff.create_model, ff.cascade") == ["torch"]


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in _SUBCOMMANDS]])
def test_help_does_not_import_torch(argv):
    code = f"from frameflex.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == []


def test_timm_norms_are_found_once_timm_is_imported():
    import timm.layers

    assert timm.layers.RmsNorm2d in ff.norm_types() and timm.layers.EvoNorm2dS0 in ff.norm_types()


def test_public_names_resolve_and_a_submodule_does_not_hide_a_function():
    from frameflex.cascade import CascadeResult  # importing the submodule binds frameflex.cascade

    assert CascadeResult and callable(ff.cascade) and ff.cascade.__name__ == "cascade"
    assert all(getattr(ff, name) is not None for name in ff.__all__)
    assert ff.flops.count_gmacs  # submodules are reachable as attributes
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ff.nope
