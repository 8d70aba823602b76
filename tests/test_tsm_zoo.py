"""TSM-R50 in the zoo (frameflex.models.tsm): parity with the official TSM and FFN-TSM code, import, adapters.

How the parity fixtures were made (by a script kept outside the repo, since it imports official code).
Both: weights from tests/_seeded.py's rule applied to the official state-dict keys (the fixture's
``keys``, without the ``module.`` prefix of the released files); 7 classes; CPU, eval mode; input
``seeded_input((2, 3, T, 64, 64), seed=0)`` given to the official model as (2, T*3, 64, 64) with the
frames major (the TSN layout). Both official models already pool with ``AdaptiveAvgPool2d`` (TSM's
``TSN`` sets it, FFN's ResNet builds it), so unlike TEA nothing was replaced for the 64-px input.

- ``tsm_r50_ffn.json``: github.com/BeSpontaneous/FFN-pytorch, commit
  7c219229bb37a4c65039f163cd0f9da5613ef239, folder 2D_Network: ``ops/models_FFN.py:TSN("resnet_TSM_FFN",
  7, T, T, T, "RGB", base_model="resnet50", consensus_type="avg", dropout=0.5, partial_bn=False,
  pretrain="scratch", is_shift=True, shift_div=8, shift_place="blockres")`` (backbone
  ``ops/backbone/resnet_TSM_FFN.py:resnet50``), called ``model(x, None, None, False)`` for T=4,
  ``(None, x, None, False)`` for 8, ``(None, None, x, False)`` for 16. The official FFN-TSM shifts
  EVERY branch with num_segments_H (16) in training and also in eval (and the wrapper reshapes
  with it), which mixes clips at T=4/8 (a bug of the released code); so a FRESH official model was
  built per branch with num_segments_H = M = L = T, as the official test.sh does with
  ``--num_segments_H T``: each branch is compared at its own, correct T.
- ``tsm_r50_plain.json``: github.com/mit-han-lab/temporal-shift-module, commit
  1f6a834b02120441d99fa706b7a13ccc5293c6fa: ``ops/models.py:TSN(7, 8, "RGB", base_model="resnet50",
  consensus_type="avg", dropout=0.5, partial_bn=False, pretrain="scratch", is_shift=True,
  shift_div=8, shift_place="blockres")`` (torchvision resnet50 + ``ops/temporal_shift.py:
  make_temporal_shift``), T = 8.
"""
from __future__ import annotations

import re

import pytest
import torch
from torch.nn.utils import parametrize

import frameflex as ff
from frameflex.layers import FrameScale
from frameflex.models import tea as tea_module
from frameflex.models._registry import get_spec
from frameflex.models._temporal import PerFrameModel, clip_frames
from frameflex.models.tsm import TSM, TemporalShift
from _seeded import load_fixture, seeded_input, seeded_state_dict

TOL = 1e-4
SIZE = 64
ADAPTED = "parametrizations.weight.0.scales"  # an adapter on a conv: a parametrization of its weight


def released(sd: dict, prefix: str = "module.", **extra) -> dict:
    """A state dict wrapped the way the official training scripts save it (DataParallel)."""
    return {"epoch": 50, "arch": "resnet50", "state_dict": {f"{prefix}{k}": v for k, v in sd.items()},
            "optimizer": {}, "best_prec1": 50.79, **extra}


def clip(frames: int) -> torch.Tensor:
    return seeded_input((2, 3, frames, SIZE, SIZE), seed=0)


def check_logits(out: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert out.shape == ref.shape, what
    assert 0.5 < ref.abs().max() < 100 and ref.std() > 0.1, f"{what}: fixture logits are degenerate"
    diff = (out - ref).abs().max().item()
    assert diff <= TOL, f"{what}: max abs diff {diff:.3g} vs the official logits"


def no_frames_left(model: torch.nn.Module) -> bool:
    shifts = [m for m in model.modules() if isinstance(m, TemporalShift)]
    return bool(shifts) and all(m.num_frames is None for m in shifts)


def bottlenecks(model: torch.nn.Module) -> list:
    backbone = model.backbone
    return [block for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)
            for block in layer]


@pytest.fixture(scope="module")
def ffn_fixture():
    fx = load_fixture("tsm_r50_ffn")
    return fx, seeded_state_dict(fx["keys"])


@pytest.fixture(scope="module")
def plain_fixture():
    fx = load_fixture("tsm_r50_plain")
    return fx, seeded_state_dict(fx["keys"])


@pytest.fixture(scope="module")
def ffn_imported(ffn_fixture):
    return ff.import_checkpoint(released(ffn_fixture[1]), arch="tsm_r50")


# parity -----------------------------------------------------------------------------------------

def test_ffn_parity_each_branch_at_its_own_frames(ffn_fixture, ffn_imported):
    """The official FFN-TSM checkpoint layout, imported, gives the official logits at 4/8/16.

    Run 16 first, then 4 and 8: a branch must not shift with the previous call's T.
    """
    fx, _ = ffn_fixture
    model = ffn_imported.create_model()
    assert ff.frame_sets(model) == (4, 8, 16)
    with torch.no_grad():
        for t in (16, 4, 8):
            check_logits(model(clip(t)), fx["logits"][t], f"TSM-FFN T={t}")
            assert no_frames_left(model)


def test_plain_parity(plain_fixture):
    """The plain official TSM (single T) gives the official logits at T=8."""
    fx, sd = plain_fixture
    imported = ff.import_checkpoint(released(sd), arch="tsm_r50")
    assert imported.frame_sets is None and imported.num_classes == 7
    assert not imported.missing_keys and not imported.unexpected_keys
    model = imported.create_model()
    assert not ff.is_converted(model)
    with torch.no_grad():
        check_logits(model(clip(8)), fx["logits"]["plain"], "plain TSM T=8")


# import -----------------------------------------------------------------------------------------

def test_ffn_file_has_an_adapter_in_every_bottleneck(ffn_fixture):
    """Official placement: ``adaconv_{4,8,16}`` (C,1,1,1) in all 16 bottlenecks, C = the block's input."""
    fx, sd = ffn_fixture
    assert len(fx["keys"]) == 898 and sum(k.startswith("base_model.") for k in fx["keys"]) == 896
    blocks = {m.group(1) for k in fx["keys"] if (m := re.match(r"base_model\.(layer\d\.\d+)\.", k))}
    assert len(blocks) == 16
    for block in blocks:
        shapes = {t: tuple(sd[f"base_model.{block}.adaconv_{t}.weight"].shape) for t in (4, 8, 16)}
        c = sd[f"base_model.{block}.conv1.weight"].shape[1]
        assert set(shapes.values()) == {(c, 1, 1, 1)}, block


def test_ffn_import_splits_frame_suffixes(ffn_fixture, ffn_imported):
    """``bn1_4``, ``downsample_bn_16``, the stem's ``bn1_8`` land in their branch; ``adaconv_T`` on conv1."""
    _, sd = ffn_fixture
    assert ffn_imported.frame_sets == (4, 8, 16) and ffn_imported.num_classes == 7
    assert not ffn_imported.missing_keys and not ffn_imported.unexpected_keys
    pairs = {
        "base_model.conv1.weight": "backbone.conv1.weight",
        "base_model.bn1_8.weight": "backbone.bn1.branches.8.weight",
        "base_model.layer1.0.bn1_4.weight": "backbone.layer1.0.bn1.branches.4.weight",
        "base_model.layer1.0.conv1.weight": "backbone.layer1.0.conv1.net.parametrizations.weight.original",
        "base_model.layer3.5.bn3_16.running_var": "backbone.layer3.5.bn3.branches.16.running_var",
        "base_model.layer2.0.downsample_conv.weight": "backbone.layer2.0.downsample.0.weight",
        "base_model.layer2.0.downsample_bn_16.running_mean": "backbone.layer2.0.downsample.1.branches.16.running_mean",
        "base_model.layer4.2.conv2.weight": "backbone.layer4.2.conv2.weight",
        "new_fc.weight": "fc.weight",
        "new_fc.bias": "fc.bias",
    }
    for official, ours in pairs.items():
        assert torch.equal(ffn_imported[ours], sd[official]), official
    for block, t in (("layer1.0", 16), ("layer4.2", 4), ("layer3.3", 8)):
        scale = ffn_imported[f"backbone.{block}.conv1.net.{ADAPTED}.{t}"]
        assert torch.equal(scale, sd[f"base_model.{block}.adaconv_{t}.weight"].flatten()), block


@pytest.mark.parametrize("net", [True, False], ids=["conv1.net", "conv1"])
@pytest.mark.parametrize("prefix", ["module.", ""], ids=["module", "bare"])
def test_plain_import_with_and_without_net(plain_fixture, net, prefix):
    """Plain TSM files: ``layerN.i.conv1.net.weight`` or (some files) ``conv1.weight``; with or without ``module.``."""
    _, sd = plain_fixture
    if not net:
        sd = {k.replace(".conv1.net.", ".conv1."): v for k, v in sd.items()}
    imported = ff.import_checkpoint(released(sd, prefix=prefix), arch="tsm_r50")
    assert imported.frame_sets is None and imported.num_classes == 7
    assert not imported.missing_keys and not imported.unexpected_keys
    conv1 = "base_model.layer2.3.conv1.net.weight" if net else "base_model.layer2.3.conv1.weight"
    assert torch.equal(imported["backbone.layer2.3.conv1.net.weight"], sd[conv1])
    assert torch.equal(imported["backbone.conv1.weight"], sd["base_model.conv1.weight"])  # the stem keeps its name
    assert torch.equal(imported["backbone.layer3.0.downsample.1.running_var"],
                       sd["base_model.layer3.0.downsample.1.running_var"])


def test_import_file_and_detect_arch(ffn_fixture, tmp_path):
    """A released FFN-TSM file on disk is found to be tsm_r50 (no arch given)."""
    _, sd = ffn_fixture
    path = tmp_path / "TSM_something-something_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth.tar"
    torch.save(released(sd), path)
    imported = ff.import_checkpoint(path)
    assert imported.arch == "tsm_r50" and imported.frame_sets == (4, 8, 16)
    assert not imported.missing_keys and not imported.unexpected_keys
    assert torch.equal(imported["backbone.layer1.1.bn2.branches.8.bias"], sd["base_model.layer1.1.bn2_8.bias"])


def test_detection_tells_tsm_from_tea(ffn_fixture, plain_fixture):
    """TEA files also have ``base_model.``/``new_fc``/``layerN.i.conv1``: each signature matches its own files only."""
    tsm_sig = get_spec("tsm_r50").checkpoint_rules.signature
    tea_sig = get_spec("tea_r50").checkpoint_rules.signature
    tea_ffn, tea_plain = load_fixture("tea_r50_ffn"), load_fixture("tea_r50_plain")
    for fx in (tea_ffn, tea_plain):
        assert not any(re.search(tsm_sig, k) for k in fx["keys"])
        assert any(re.search(tea_sig, k) for k in fx["keys"])
    for fx, _ in (ffn_fixture, plain_fixture):
        assert any(re.search(tsm_sig, k) for k in fx["keys"])
        assert not any(re.search(tea_sig, k) for k in fx["keys"])
    # End to end: the plain TSM file without `.net` and a TEA file each find their arch.
    sd = {k.replace(".conv1.net.", ".conv1."): v for k, v in plain_fixture[1].items()}
    assert ff.import_checkpoint(released(sd)).arch == "tsm_r50"
    assert ff.import_checkpoint(released(seeded_state_dict(tea_plain["keys"]))).arch == "tea_r50"


def test_foreign_checkpoint_is_rejected(plain_fixture):
    tea = seeded_state_dict(load_fixture("tea_r50_plain")["keys"])
    with pytest.raises(ValueError, match=r"base_model\.layer1\.0\.conv1\.weight: shape .* of tsm_r50"):
        ff.import_checkpoint(released(tea), arch="tsm_r50")  # Res2Net's conv1 is wider
    extra = dict(plain_fixture[1], **{"base_model.layer1.0.me.conv1.weight": torch.zeros(16, 256, 1, 1)})
    with pytest.raises(ValueError, match=r"does not match tsm_r50(.|\n)*base_model\.layer1\.0\.me\.conv1\.weight"):
        ff.import_checkpoint(released(extra), arch="tsm_r50")
    with pytest.raises(ValueError, match="no classifier"):
        ff.import_checkpoint({"state_dict": {"conv.weight": torch.zeros(3, 3, 1, 1)}}, arch="tsm_r50")
    wrong = dict(plain_fixture[1], **{"base_model.layer1.0.conv2.weight": torch.zeros(64, 64, 1, 1)})
    with pytest.raises(ValueError, match=r"base_model\.layer1\.0\.conv2\.weight: shape \(64, 64, 1, 1\)"):
        ff.import_checkpoint(released(wrong), arch="tsm_r50")


# model ------------------------------------------------------------------------------------------

def test_registration():
    spec = get_spec("tsm_r50")
    assert spec.frame_sets == (4, 8, 16) and spec.input_size == 224
    assert spec.published_gmacs == {(4, 224): 16.46, (8, 224): 32.92, (16, 224): 65.85}
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    tiny = get_spec("tsm_tiny")
    assert tiny.frame_sets == (4, 8, 16) and tiny.input_size == 32 and tiny.adapters == spec.adapters
    assert tiny.published_gmacs == {} and tiny.checkpoint_rules is None
    assert ff.list_models("tsm*") == ["tsm_r50", "tsm_tiny"]


def test_official_wrapper_details():
    """Dropout 0.5, new_fc init N(0, 0.001), 25.56M parameters with 1000 classes (timm = torchvision resnet50)."""
    model = ff.create_model("tsm_r50", num_classes=1000)
    assert isinstance(model, TSM) and model.dropout.p == 0.5
    assert model.fc.weight.std().item() == pytest.approx(0.001, rel=0.05) and not model.fc.bias.any()
    assert sum(p.numel() for p in model.parameters()) == 25_557_032
    assert all(isinstance(b.conv1, TemporalShift) and b.conv1.fold_div == 8 for b in bottlenecks(model))


def test_adapter_placement():
    """FFN's adapter scales the SHIFTED input of every bottleneck's conv1 (16 of them); the shortcut is unscaled."""
    model = ff.create_model("tsm_r50", num_classes=7, frame_sets=(4, 8, 16))
    blocks = bottlenecks(model)
    assert len(blocks) == 16
    for block in blocks:
        conv = block.conv1.net
        assert parametrize.is_parametrized(conv, "weight")
        assert isinstance(conv.parametrizations.weight[0], FrameScale)
        assert conv.parametrizations.weight[0].scales["4"].shape == (conv.in_channels,)
    adapted = [n for n, m in model.named_modules() if parametrize.is_parametrized(m)]
    assert len(adapted) == 16 and all(n.endswith(".conv1.net") for n in adapted)
    scales = [p for n, p in model.named_parameters() if ".scales." in n]
    assert sum(p.numel() for p in scales) == 39_360  # the paper's "adapters alone 0.039M"
    tiny = ff.create_model("tsm_tiny", num_classes=7, frame_sets="default")
    assert sum(parametrize.is_parametrized(m) for m in tiny.modules()) == 4


def test_shapes_plain_and_ffn():
    """Plain and FFN models give (B, classes) at any T and leave no T behind.

    The FFN model at (2, 3, T, 64, 64) for T = 4/8/16 and the plain one at T=8 are already run
    by the parity tests (shape (2, 7) checked there); here the other frame counts, kept cheap.
    """
    torch.manual_seed(0)
    plain = ff.create_model("tsm_r50", num_classes=7).eval()
    ffn = ff.create_model("tsm_r50", num_classes=7, frame_sets=(4, 8, 16)).eval()
    with torch.no_grad():
        for t in (4, 16):
            assert plain(torch.randn(2, 3, t, SIZE, SIZE)).shape == (2, 7)
        assert ffn(torch.randn(1, 3, 6, SIZE, SIZE)).shape == (1, 7)  # branch 8, shift at T=6
        assert ffn(torch.randn(2, 3, 2, SIZE, SIZE)).shape == (2, 7)  # branch 4, shift at T=2
    assert no_frames_left(plain) and no_frames_left(ffn)


def test_tiny_converted_equals_plain_and_leaves_no_state():
    """tsm_tiny through the registry: fresh conversion keeps the outputs; a failing call hands its T back."""
    torch.manual_seed(0)
    plain = ff.create_model("tsm_tiny", num_classes=7).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        ref = plain(x)
        ffn = ff.convert(plain, (4, 8, 16), adapters=get_spec("tsm_tiny").adapters, time_dim=2, inplace=False)
        assert torch.allclose(ffn(x), ref, atol=1e-6)
    with pytest.raises(RuntimeError):
        plain(torch.randn(1, 4, 2, 32, 32))  # 4 channels: the stem fails mid-forward
    assert no_frames_left(plain)


def test_clip_frames_is_shared_and_resets_on_error():
    """One forward (clip_frames inside) serves TSM and TEA; clip_frames hands T back even when the body raises."""
    assert tea_module.TEA.forward is TSM.forward is PerFrameModel.forward
    shifts = [TemporalShift(torch.nn.Identity()) for _ in range(2)]
    with pytest.raises(KeyError):
        with clip_frames(iter(shifts), 4):  # any iterable, consumed once
            assert all(s.num_frames == 4 for s in shifts)
            raise KeyError("boom")
    assert all(s.num_frames is None for s in shifts)
