"""One rule for argument checks across the public API: duplicates and bad counts are errors."""
from __future__ import annotations

import pytest
import torch
from _models import SharedNormNet

import frameflex as ff
from frameflex import _checks
from frameflex._modes import train_mode

CALLS = {
    "convert": lambda sets: ff.convert(SharedNormNet(), sets),
    "MultiFrameClips": lambda sets: ff.MultiFrameClips(sets),
    "SyntheticMotion": lambda sets: ff.SyntheticMotion(4, frame_sets=sets),
    "cascade": lambda sets: ff.cascade(SharedNormNet(), torch.zeros(1, 3, 8, 4, 4), 0.5, frame_sets=sets),
    "profile": lambda sets: ff.profile(SharedNormNet(), frame_sets=sets, latency=False),
}


@pytest.mark.parametrize("name", CALLS)
def test_duplicate_frame_sets_are_an_error_everywhere(name):
    with pytest.raises(ff.ArgumentError, match=r"duplicate frame counts \[8\]"):
        CALLS[name]([4, 8, 8])


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("bad,exc", [([0, 4], ff.ArgumentError), ([4.0], ff.ArgumentTypeError),
                                     ([True], ff.ArgumentTypeError), ([], ff.ArgumentError)])
def test_bad_frame_counts_are_named_everywhere(name, bad, exc):
    with pytest.raises(exc, match=r"frame_sets"):
        CALLS[name](bad)


def test_cli_type_turns_a_bad_value_into_an_argparse_error(capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="frameflex")
    parser.add_argument("--steps", type=_checks.cli_type(_checks.positive_int))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--steps", "0"])
    assert info.value.code == 2
    assert "argument --steps: the value must be a positive int, got 0" in capsys.readouterr().err


def test_train_mode_restores_each_submodule_even_after_an_error():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
    net[1].eval()
    with pytest.raises(ZeroDivisionError), train_mode(net, False):
        assert not any(m.training for m in net.modules())
        1 / 0
    assert net.training and net[0].training and not net[1].training
