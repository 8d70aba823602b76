"""UniFormer-S/B (video) and their FFN variant: parity with the official code, import, shapes.

How the parity fixtures were made (script kept out of the repo, it imports official code):

- ``uniformer_s_plain.json`` / ``uniformer_b_plain.json``: Sense-X/UniFormer at commit
  52a0415e4e0dda880fab8ffbc710e4d8e171149d, ``video_classification/slowfast/models/uniformer.py``,
  class ``Uniformer(cfg)`` with the repo's default UNIFORMER config (EMBED_DIM [64,128,320,512],
  HEAD_DIM 64, MLP_RATIO 4, QKV_BIAS True, SPLIT False, STD False), DEPTH [3,4,8,3] (S) or
  [5,8,20,7] (B), MODEL.NUM_CLASSES 7; its ``slowfast`` logging/registry imports stubbed.
  Weights: tests/_seeded.py's rule on the official state-dict keys; eval mode;
  ``model([x])`` with ``x = seeded_input((2, 3, 8, 64, 64), seed=0)``.
- ``uniformer_s_ffn.json``: BeSpontaneous/FFN-pytorch at commit
  7c219229bb37a4c65039f163cd0f9da5613ef239, ``Transformer_Network/slowfast/models/uniformer_FFN.py``,
  class ``Uniformer_FFN(cfg)``, same config with DEPTH [3,4,8,3] (its
  ``exp/uniformer_s16_sthv1_prek600_FFN``), 7 classes; seeded as above (the adapters
  ``adaconv_T`` get N(0, 0.1), so they really act). Each branch is run in eval mode with its
  own clip: ``model(x4, None, None, training=False)``, ``model(None, x8, None, False)``,
  ``model(None, None, x16, False)``, ``xT = seeded_input((2, 3, T, 64, 64), seed=0)``.
  The official UniFormer-FFN forward has no frame-count bug (its only known bug is in
  pre-training-weight loading), so its outputs are compared as they are.

Our side: the same seeded dict -> ``ff.import_checkpoint`` -> ``.create_model()`` -> logits,
max abs diff <= 1e-4.
"""
from __future__ import annotations

import pytest
import torch
from _seeded import load_fixture, seeded_input, seeded_state_dict

import frameflex as ff
from frameflex.models._registry import get_spec
from frameflex.models.uniformer import UNIFORMER_ADAPTERS, CBlock, SABlock, UniFormer

DEPTHS = {"uniformer_s": (3, 4, 8, 3), "uniformer_b": (5, 8, 20, 7)}
ATOL = 1e-4


@pytest.fixture(scope="module")
def ffn_fixture() -> dict:
    return load_fixture("uniformer_s_ffn")


@pytest.fixture(scope="module")
def ffn_sd(ffn_fixture) -> dict:
    """The official UniFormer-S FFN state dict, seeded (do not mutate: copy it)."""
    return seeded_state_dict(ffn_fixture["keys"])


@pytest.fixture(scope="module")
def s_plain_fixture() -> dict:
    return load_fixture("uniformer_s_plain")


@pytest.fixture(scope="module")
def s_plain_sd(s_plain_fixture) -> dict:
    return seeded_state_dict(s_plain_fixture["keys"])


def _sensible(logits: torch.Tensor) -> None:
    # Parity only means something if the logits are neither ~0 nor blown up.
    assert 0.1 < logits.std().item() and logits.abs().max().item() < 100, logits


def _logits(model: torch.nn.Module, shape) -> torch.Tensor:
    with torch.no_grad():
        return model(seeded_input(shape, seed=0))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


# parity ------------------------------------------------------------------------------

def test_ffn_model_matches_official_uniformer_ffn_at_each_frame_count(ffn_fixture, ffn_sd):
    sd = ff.import_checkpoint(ffn_sd, arch="uniformer_s")
    assert sd.frame_sets == (4, 8, 16) and not sd.missing_keys and not sd.unexpected_keys
    model = sd.create_model()
    for t in (4, 8, 16):
        _sensible(ffn_fixture["logits"][t])
        out = _logits(model, ffn_fixture["input"]["shape"][str(t)])
        assert _max_diff(out, ffn_fixture["logits"][t]) <= ATOL, t

    # The official adapters (`adaconv_T`, one per block, seeded N(0, 0.1): far from identity) are
    # the scales of each whole block's input.
    adapters = [k for k in sd if ".scale.scales." in k]
    assert len(adapters) == 3 * sum(DEPTHS["uniformer_s"])
    assert torch.equal(sd["blocks4.2.scale.scales.16"], ffn_sd["blocks4.2.adaconv_16.weight"].flatten())
    # Zeroing the 8-frame ones changes the 8-frame output: the parity above really checked them.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                m.scales["8"].zero_()
    assert _max_diff(_logits(model, ffn_fixture["input"]["shape"]["8"]), ffn_fixture["logits"][8]) > 1e-2


def test_plain_uniformer_s_matches_official(s_plain_fixture, s_plain_sd):
    sd = ff.import_checkpoint(s_plain_sd, arch="uniformer_s")
    assert sd.frame_sets is None and sd.num_classes == 7
    assert sorted(sd) == sorted(s_plain_sd)  # our plain keys are the official ones
    model = sd.create_model()
    assert isinstance(model, UniFormer)
    _sensible(s_plain_fixture["logits"]["plain"])
    assert _max_diff(_logits(model, s_plain_fixture["input"]["shape"]), s_plain_fixture["logits"]["plain"]) <= ATOL


def test_uniformer_b_matches_official_and_runs_its_ffn_variant(tmp_path):
    fx = load_fixture("uniformer_b_plain")
    path = tmp_path / "uniformer_base_k400_32x4.pth"
    torch.save({"model": seeded_state_dict(fx["keys"])}, path)
    sd = ff.import_checkpoint(path)  # S's keys are a subset of B's: the file's depth decides
    assert (sd.arch, sd.num_classes) == ("uniformer_b", 7) and len(sd) == len(fx["keys"]) == 687
    plain = sd.create_model()
    _sensible(fx["logits"]["plain"])
    assert _max_diff(_logits(plain, fx["input"]["shape"]), fx["logits"]["plain"]) <= ATOL
    # The FFN variant (what ff.create_model("uniformer_b", 7, frame_sets="default") builds) at L/M/H;
    # freshly converted, each branch gives the plain model's output.
    spec = get_spec("uniformer_b")
    model = ff.convert(plain, spec.frame_sets, adapters=spec.adapters, time_dim=2)
    for t in (4, 16):
        assert _logits(model, (2, 3, t, 64, 64)).shape == (2, 7)
    assert _max_diff(_logits(model, fx["input"]["shape"]), fx["logits"]["plain"]) <= ATOL


# import of the official layouts -------------------------------------------------------------

def test_ffn_training_checkpoint_file_imports_with_its_wrapper(ffn_sd, tmp_path):
    # PySlowFast-style training file: {epoch, model_state, optimizer_state, cfg}; arch auto-detected.
    path = tmp_path / "checkpoint_epoch_00200.pyth"
    torch.save({"epoch": 200, "model_state": ffn_sd, "optimizer_state": {"state": {}, "param_groups": [{"lr": 1e-6}]},
                "cfg": "MODEL:\n  ARCH: uniformer_FFN"}, path)
    sd = ff.import_checkpoint(path)
    assert (sd.arch, sd.frame_sets, sd.num_classes) == ("uniformer_s", (4, 8, 16), 7)
    ref = ff.import_checkpoint(ffn_sd, arch="uniformer_s")  # the dict form, checked against the official logits
    assert sorted(sd) == sorted(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)
    assert "blocks1.0.scale.scales.8" in sd and "patch_embed2.norm.branches.8.weight" in sd
    assert torch.equal(sd["norm.branches.16.running_var"], ffn_sd["norm_16.running_var"])


@pytest.mark.parametrize("wrapper", [None, "model", "model_state"])
def test_plain_uniformer_files_import(s_plain_sd, tmp_path, wrapper):
    # Hub files (Sense-X/uniformer_video) are plain state dicts; training files wrap them.
    path = tmp_path / "uniformer_small_k400_16x8.pth"
    torch.save(s_plain_sd if wrapper is None else {wrapper: s_plain_sd, "epoch": 1}, path)
    sd = ff.import_checkpoint(path)
    assert (sd.arch, sd.frame_sets, sd.num_classes) == ("uniformer_s", None, 7)
    assert sorted(sd) == sorted(s_plain_sd) and all(torch.equal(sd[k], s_plain_sd[k]) for k in sd)


def test_plain_file_fans_out_into_the_ffn_variant(s_plain_fixture, s_plain_sd):
    # Every branch starts from the plain weights, adapters at zero: the plain model's outputs.
    model = ff.create_model("uniformer_s", num_classes=7, frame_sets="default").eval()
    ff.load_state_dict(model, ff.import_checkpoint(s_plain_sd, arch="uniformer_s"))
    assert _max_diff(_logits(model, s_plain_fixture["input"]["shape"]), s_plain_fixture["logits"]["plain"]) <= ATOL
    # A frame count between the trained ones runs the nearest branch (5 -> 4; T' = 3 after patch_embed1).
    assert _logits(model, (2, 3, 5, 64, 64)).shape == (2, 7)
    assert ff.set_frames(model, 5) == 4


def test_foreign_and_mismatched_checkpoints_are_refused(s_plain_sd):
    with pytest.raises(ValueError, match="not a layout frameflex knows"):
        ff.import_checkpoint({"features.0.weight": torch.zeros(8, 3, 3, 3), "classifier.weight": torch.zeros(7, 8)})
    with pytest.raises(ValueError, match="no classifier"):
        ff.import_checkpoint({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(7, 8)},
                             arch="uniformer_s")
    # A 2D (ImageNet) UniFormer file: same names, 2D kernels -> the shape error names the key.
    sd = dict(s_plain_sd, **{"patch_embed1.proj.weight": torch.zeros(64, 3, 4, 4)})
    with pytest.raises(ValueError, match=r"patch_embed1\.proj\.weight: shape \(64, 3, 4, 4\)"):
        ff.import_checkpoint(sd, arch="uniformer_s")
    # UniFormer-S weights are not UniFormer-B weights.
    with pytest.raises(ValueError, match=r"missing from the file: blocks1\.3\."):
        ff.import_checkpoint(s_plain_sd, arch="uniformer_b")


# model, conversion, registry ----------------------------------------------------------

def test_adapter_preset_scales_each_whole_block_input():
    torch.manual_seed(0)
    model = ff.create_model("uniformer_s", num_classes=7, frame_sets="default").eval()
    wrapped = {n: m for n, m in model.named_modules() if isinstance(m, ff.InputScale)}
    assert len(wrapped) == sum(DEPTHS["uniformer_s"]) and "blocks3.7" in wrapped
    assert all(isinstance(m.base_layer, (CBlock, SABlock)) for m in wrapped.values())
    # w_T on a block = that block run on (1 + w_T) * x: the identity path is scaled too.
    x = seeded_input((1, 3, 4, 64, 64))
    with torch.no_grad(), ff.frames(model, 4):
        feats = model.patch_embed1(x)
        first = model.blocks1[0]
        assert torch.equal(first(feats), first.base_layer(feats))  # zero at conversion
        first.scale.scales["4"].fill_(0.5)
        torch.testing.assert_close(first(feats), first.base_layer(1.5 * feats))


def test_any_frame_count_and_feature_shape():
    torch.manual_seed(0)
    model = ff.create_model("uniformer_s", num_classes=7).eval()
    with torch.no_grad():
        for t, t_out in ((1, 1), (5, 3), (16, 8)):  # (1, 512, 8, 2, 2) at 16: mmaction2's UniFormer-S test
            assert model.forward_features(seeded_input((1, 3, t, 64, 64))).shape == (1, 512, t_out, 2, 2)
    with pytest.raises(ValueError, match=r"\(2, 3, 64, 64\)"):
        model(torch.zeros(2, 3, 64, 64))


def test_registry_data_and_kwargs():
    for arch in ("uniformer_s", "uniformer_b"):
        spec = get_spec(arch)
        assert spec.frame_sets == (4, 8, 16) and spec.input_size == 224 and spec.adapters == UNIFORMER_ADAPTERS
        assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3
    assert get_spec("uniformer_s").published_gmacs == {(4, 224): 7.99, (8, 224): 17.62, (16, 224): 41.77}
    assert get_spec("uniformer_b").published_gmacs == {(8, 224): 40.23, (16, 224): 96.74}
    assert ff.list_models("uniformer*") == ["uniformer_b", "uniformer_s"]
    model = ff.create_model("uniformer_s", num_classes=400, drop_path_rate=0.1)
    assert sum(p.numel() for p in model.parameters()) == 21_400_400  # 21.40M, as the UniFormer paper reports
    assert isinstance(model.blocks1[0].drop_path, torch.nn.Identity)
    assert model.blocks4[2].drop_path.drop_prob == pytest.approx(0.1)
    big = ff.create_model("uniformer_b", num_classes=400)
    assert sum(p.numel() for p in big.parameters()) == pytest.approx(49.81e6, rel=1e-3)
    with pytest.raises(ValueError, match="num_classes"):
        ff.create_model("uniformer_s", num_classes=0)
