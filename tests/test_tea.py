"""TEA-R50 (frameflex.models.tea): parity with the official FFN code, shapes, no state, checkpoint import.

How the parity fixtures were made (by a script kept outside the repo, since it imports official code):

- Source: github.com/BeSpontaneous/FFN-pytorch, commit 7c219229bb37a4c65039f163cd0f9da5613ef239,
  folder 2D_Network, run on CPU in eval mode with 7 classes.
- ``tea_r50_ffn.json``: ``ops/models_FFN.py:TSN("resnet_TEA_FFN", 7, T, T, T, "RGB",
  base_model="resnet50", consensus_type="avg", dropout=0.5, partial_bn=False, pretrain="scratch",
  is_shift=True, shift_div=8, shift_place="blockres")`` (backbone ``ops/backbone/resnet_TEA_FFN.py:resnet50``),
  called as ``model(x, None, None, False)`` for T=4, ``(None, x, None, False)`` for 8,
  ``(None, None, x, False)`` for 16. The official temporal modules overwrite their L/M segment
  counts with H on every eval call (and the wrapper reshapes with num_segments_H), so a FRESH
  official model was built for each branch with num_segments_H = M = L = T, which is what the
  official test.sh does with ``--num_segments_H T``: every branch is compared at its own T.
- ``tea_r50_plain.json``: ``ops/models.py:TSN("resnet_TEA", 7, 8, "RGB", ...)`` (same options,
  ``ops/backbone/resnet_TEA.py:resnet50``), T = 8.
- Both: ``base_model.avgpool`` (AvgPool2d(7): global pooling at 224 px) replaced by
  ``AdaptiveAvgPool2d(1)`` for the 64-px input. Weights: tests/_seeded.py's rule applied to the
  official state-dict keys (the fixture's ``keys``, without the ``module.`` prefix of the released
  files). Input: ``seeded_input((2, 3, T, 64, 64), seed=0)``, given to the official model as
  (2, T*3, 64, 64) with the frames major (the TSN layout).
"""
from __future__ import annotations

import pytest
import torch

import frameflex as ff
from frameflex.models.tea import MotionExcitation, TemporalAggregation
from _seeded import load_fixture, seeded_input, seeded_state_dict

TOL = 1e-4
SIZE = 64  # parity input
TINY = 32  # shape checks: Res2Net's last map is 1x1, enough to run every op


def released(sd: dict, **extra) -> dict:
    """A state dict wrapped the way the official training script saves it (DataParallel)."""
    return {"epoch": 50, "arch": "resnet50", "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "best_prec1": 54.04, **extra}


def clip(frames: int) -> torch.Tensor:
    return seeded_input((2, 3, frames, SIZE, SIZE), seed=0)


def check_logits(out: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert out.shape == ref.shape, what
    assert 0.5 < ref.abs().max() < 100 and ref.std() > 0.1, f"{what}: fixture logits are degenerate"
    diff = (out - ref).abs().max().item()
    assert diff <= TOL, f"{what}: max abs diff {diff:.3g} vs the official logits"


@pytest.fixture(scope="module")
def ffn_fixture():
    fx = load_fixture("tea_r50_ffn")
    return fx, seeded_state_dict(fx["keys"])


@pytest.fixture(scope="module")
def plain_fixture():
    fx = load_fixture("tea_r50_plain")
    return fx, seeded_state_dict(fx["keys"])


@pytest.fixture(scope="module")
def ffn_imported(ffn_fixture):
    return ff.import_checkpoint(released(ffn_fixture[1]), arch="tea_r50")


def no_frames_left(model: torch.nn.Module) -> bool:
    mods = [m for m in model.modules() if isinstance(m, (MotionExcitation, TemporalAggregation))]
    return bool(mods) and all(m.num_frames is None for m in mods)


# parity -----------------------------------------------------------------------------------------

def test_ffn_parity_each_branch_at_its_own_frames(ffn_fixture, ffn_imported):
    """The official TEA-FFN checkpoint layout, imported, gives the official logits at 4/8/16.

    Run 16 first, then 4 and 8: a branch must not see the previous call's T.
    """
    fx, _ = ffn_fixture
    model = ffn_imported.create_model()
    assert ff.frame_sets(model) == (4, 8, 16)
    with torch.no_grad():
        for t in (16, 4, 8):
            check_logits(model(clip(t)), fx["logits"][t], f"TEA-FFN T={t}")
            assert no_frames_left(model)


def test_plain_parity(plain_fixture):
    """The plain official TEA (single T) gives the official logits at T=8."""
    fx, sd = plain_fixture
    imported = ff.import_checkpoint(released(sd), arch="tea_r50")
    assert imported.frame_sets is None and imported.num_classes == 7
    model = imported.create_model()
    with torch.no_grad():
        check_logits(model(clip(8)), fx["logits"]["plain"], "plain TEA T=8")


# import -----------------------------------------------------------------------------------------

def test_ffn_import_splits_frame_suffixes(ffn_fixture, ffn_imported):
    """``bns_4.0`` (suffix BEFORE the split index), ``me.bn1_8``, ``downsample_bn_16`` land in their branch."""
    fx, sd = ffn_fixture
    assert len(fx["keys"]) == 1954 and sum(k.startswith("base_model.") for k in fx["keys"]) == 1952
    assert ffn_imported.frame_sets == (4, 8, 16) and ffn_imported.num_classes == 7
    assert not ffn_imported.missing_keys and not ffn_imported.unexpected_keys
    pairs = {
        "base_model.layer1.0.bns_4.0.weight": "backbone.layer1.0.bns.0.branches.4.weight",
        "base_model.layer3.2.bns_16.2.running_var": "backbone.layer3.2.bns.2.branches.16.running_var",
        "base_model.layer2.1.me.bn1_8.bias": "backbone.layer2.1.me.bn1.branches.8.bias",
        "base_model.layer4.0.me.bn3_4.running_mean": "backbone.layer4.0.me.bn3.branches.4.running_mean",
        "base_model.layer2.0.downsample_conv.weight": "backbone.layer2.0.downsample.0.weight",
        "base_model.layer2.0.downsample_bn_16.weight": "backbone.layer2.0.downsample.1.branches.16.weight",
        "base_model.bn1_8.weight": "backbone.bn1.branches.8.weight",
        "base_model.layer1.0.shifts.3.conv.weight": "backbone.layer1.0.shifts.3.conv.weight",
        "base_model.layer1.0.me.conv2.weight": "backbone.layer1.0.me.conv2.weight",
        "new_fc.weight": "fc.weight",
    }
    for official, ours in pairs.items():
        assert torch.equal(ffn_imported[ours], sd[official]), official
    assert sd["base_model.layer1.0.shifts.3.conv.weight"].shape == (26, 1, 3)


def test_import_file_and_detect_arch(plain_fixture, tmp_path):
    """A released file on disk (plain TEA layout: ``bns.0``, ``downsample.0/1``) is found to be TEA."""
    _, sd = plain_fixture
    path = tmp_path / "TEA_something_RGB_resnet50_segment16.pth.tar"
    torch.save(released(sd), path)
    imported = ff.import_checkpoint(path)  # arch from the signature (``.me.conv1.weight``)
    assert imported.arch == "tea_r50" and imported.frame_sets is None
    assert not imported.missing_keys and not imported.unexpected_keys
    assert torch.equal(imported["backbone.layer1.0.downsample.1.running_var"],
                       sd["base_model.layer1.0.downsample.1.running_var"])
    assert torch.equal(imported["backbone.layer3.4.bns.1.weight"], sd["base_model.layer3.4.bns.1.weight"])


def test_foreign_checkpoint_is_rejected(ffn_fixture):
    sd = ffn_fixture[1]
    # A TSM-like file: ResNet keys + new_fc, no me/shifts.
    tsm = {k.replace("bns_4.0", "bn2"): v for k, v in sd.items() if ".me." not in k and ".shifts." not in k}
    with pytest.raises(ValueError, match="does not match tea_r50"):
        ff.import_checkpoint(released(tsm), arch="tea_r50")
    with pytest.raises(ValueError, match="no classifier"):
        ff.import_checkpoint({"state_dict": {"conv.weight": torch.zeros(3, 3, 1, 1)}}, arch="tea_r50")
    with pytest.raises(ValueError, match="not a layout frameflex knows"):
        ff.import_checkpoint({"state_dict": {"conv.weight": torch.zeros(3, 3, 1, 1)}})


# model ------------------------------------------------------------------------------------------

def test_registration():
    spec = ff.models._registry.get_spec("tea_r50")
    assert spec.frame_sets == (4, 8, 16) and spec.adapters is None and spec.input_size == 224
    assert spec.published_gmacs == {(8, 224): 34.74, (16, 224): 69.49}
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)


def test_shapes_plain_and_ffn():
    """Plain and FFN models at L/M/H (and an off-grid T) give (B, classes); no adapter is added."""
    torch.manual_seed(0)
    plain = ff.create_model("tea_r50", num_classes=7).eval()
    assert abs(sum(p.numel() for p in ff.create_model("tea_r50", 174).parameters()) / 1e6 - 24.46) < 0.01
    ffn = ff.create_model("tea_r50", num_classes=7, frame_sets=(4, 8, 16)).eval()
    assert not any("scale" in k for k in ffn.state_dict())
    with torch.no_grad():
        for t in (4, 8, 16):
            x = torch.randn(2, 3, t, TINY, TINY)
            assert plain(x).shape == (2, 7) and ffn(x).shape == (2, 7)
        assert ffn(torch.randn(1, 3, 6, TINY, TINY)).shape == (1, 7)  # branch 8, temporal ops at T=6
    assert no_frames_left(plain) and no_frames_left(ffn)


def test_converted_model_equals_plain_and_leaves_no_state():
    """Fresh conversion keeps the outputs; a failing call still hands its T back."""
    torch.manual_seed(0)
    plain = ff.create_model("tea_r50", num_classes=7).eval()
    x = torch.randn(2, 3, 4, TINY, TINY)
    with torch.no_grad():
        ref = plain(x)
        ffn = ff.convert(plain, (4, 8, 16), time_dim=2, inplace=False)
        assert torch.allclose(ffn(x), ref, atol=1e-5)
    with pytest.raises(RuntimeError):
        plain(torch.randn(1, 4, 2, TINY, TINY))  # 4 channels: the stem fails mid-forward
    assert no_frames_left(plain)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        plain(torch.randn(2, 3, TINY, TINY))


def test_temporal_modules():
    """MTA at init: identity for splits 0-2, TSM's half/half shift for the last; ME needs T."""
    x = torch.randn(2 * 3, 4, 2, 2)
    ident, shift = TemporalAggregation(4), TemporalAggregation(4, init="shift")
    ident.num_frames = shift.num_frames = 3
    assert torch.equal(ident(x), x)
    v = x.view(2, 3, 4, 2, 2)
    out = shift(x).view(2, 3, 4, 2, 2)
    assert torch.equal(out[:, :2, :2], v[:, 1:, :2]) and torch.all(out[:, 2, :2] == 0)
    assert torch.equal(out[:, 1:, 2:], v[:, :2, 2:]) and torch.all(out[:, 0, 2:] == 0)
    # MTA equals the official permute + Conv1d with learned weights.
    torch.nn.init.normal_(shift.conv.weight)
    ref = shift.conv(v.permute(0, 3, 4, 2, 1).reshape(-1, 4, 3)).view(2, 2, 2, 4, 3).permute(0, 4, 3, 1, 2)
    assert torch.allclose(shift(x), ref.reshape(6, 4, 2, 2), atol=1e-6)
    me = MotionExcitation(32).eval()
    with pytest.raises(RuntimeError, match="num_frames is not set"):
        me(torch.randn(4, 32, 3, 3))
    me.num_frames = 3
    with pytest.raises(ValueError, match="num_frames=3"):
        me(torch.randn(4, 32, 3, 3))
