"""SlowFast-R50 (8x8, 4x16) and its FFN variant: parity with the official code, import, shapes.

How the parity fixtures were made (script kept out of the repo, it imports official code).
Weights: tests/_seeded.py's rule on the OFFICIAL state-dict keys; eval mode; 7 classes;
fast clip ``seeded_input((2, 3, T, 64, 64), seed=0)``, the slow clip taken from it by the
official ``slowfast/datasets/utils.py:pack_pathway_output`` (``linspace(0, T-1, T // alpha).long()``).
The official head applies softmax in eval mode; the fixtures hold its PRE-softmax logits
(the output of ``head.projection``, checked to give the official output through softmax),
because our model outputs logits.

- ``slowfast_r50_pyslowfast.json`` / ``slowfast_r50_4x16_pyslowfast.json``: facebookresearch/SlowFast
  at commit 287ec0076846560f44a9327e931a5a2360240533, ``slowfast/models/video_model_builder.py``
  class ``SlowFast(cfg)``, ``configs/Kinetics/SLOWFAST_8x8_R50.yaml`` / ``SLOWFAST_4x16_R50.yaml``
  with MODEL.NUM_CLASSES 7, DATA.NUM_FRAMES 32 and DATA.TRAIN_CROP_SIZE 64 (its head's
  AvgPool3d then covers the whole final map, i.e. the global average we use); fast T = 32.
- ``slowfast_r50_pytorchvideo.json``: facebookresearch/pytorchvideo at commit
  f3142bb05cdb56af0704ab6f0adfb0c7bbafe4a0, ``pytorchvideo/models/hub/slowfast.py:slowfast_r50``
  (``create_slowfast``, the layout of ``SLOWFAST_8x8_R50.pyth``) with ``model_num_class=7,
  head_pool_kernel_sizes=((8, 2, 2), (32, 2, 2))``, called with ``[slow, fast]``; fast T = 32;
  its output is already logits.
- ``slowfast_r50_ffn.json``: BeSpontaneous/FFN-pytorch at commit
  7c219229bb37a4c65039f163cd0f9da5613ef239, ``3D_Network/slowfast/models/video_model_builder_FFN.py``
  class ``SlowFast_FFN(cfg)``, ``configs/sth/SLOWFAST_16x8_R50_FFN.yaml`` (alpha 4, fusion kernel 7)
  with MODEL.NUM_CLASSES 7 and DATA.REVERSE_INPUT_CHANNEL False (its BGR flip is data
  preprocessing, not the model). The adapters ``adaconv_T`` are seeded N(0, 0.1), so they act.
  Each branch runs with its own clip as ``tools/test_net_FFN.py`` does at test time:
  ``model(x_L, None, None, False)`` with fast T 16, ``(None, x_M, None, False)`` with 32,
  ``(None, None, x_H, False)`` with 64. That avoids the official TRAINING-time bug (the three
  clips concatenated into one 112-frame clip whose linspace slow frames are then sliced, so they
  are not evenly spaced per branch): our model takes the slow frames of each clip on its own.
  The official files name a branch by its SLOW frame count (``a_bn_4`` = fast 16).

Our side: the same seeded dict -> ``ff.import_checkpoint`` -> ``.create_model()`` -> logits,
max abs diff <= 1e-4.
"""
from __future__ import annotations

import functools
import re

import pytest
import torch
from _seeded import load_fixture, seeded_input, seeded_state_dict

import frameflex as ff
from frameflex.checkpoints import CheckpointRules
from frameflex.models._registry import get_spec
from frameflex.models.slowfast import SLOWFAST_ADAPTERS, SlowFast, slow_indices

ATOL = 1e-4
ARCHS = ("slowfast_r50", "slowfast_r50_4x16")
BLOCKS = 3 + 4 + 6 + 3  # bottlenecks per pathway
SMALL = {"width": 16}  # a thin SlowFast (same structure) where full width is not needed


@functools.cache
def _fixture(name: str) -> dict:
    return load_fixture(name)


@functools.cache
def _seeded(name: str) -> dict[str, torch.Tensor]:
    """The official-layout seeded weights of a fixture (shared: copy before changing it)."""
    return seeded_state_dict(_fixture(name)["keys"])


@pytest.fixture(scope="module")
def ffn_import():
    return ff.import_checkpoint(_seeded("slowfast_r50_ffn"), arch="slowfast_r50")


@pytest.fixture(scope="module")
def ffn_model(ffn_import):
    return ffn_import.create_model()


def _sensible(logits: torch.Tensor) -> None:
    # Parity only means something if the logits are neither ~0 nor blown up.
    assert 0.1 < logits.std().item() and logits.abs().max().item() < 100, logits


def _logits(model: torch.nn.Module, shape) -> torch.Tensor:
    with torch.no_grad():
        return model(seeded_input(shape, seed=0))


def _ffn_shape(t: int) -> list[int]:
    return [t if d == "T" else d for d in _fixture("slowfast_r50_ffn")["input"]["shape"]]


# parity ------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture, arch", [("slowfast_r50_pyslowfast", "slowfast_r50"),
                                           ("slowfast_r50_4x16_pyslowfast", "slowfast_r50_4x16"),
                                           ("slowfast_r50_pytorchvideo", "slowfast_r50")])
def test_plain_model_matches_official_slowfast(fixture, arch):
    fx = _fixture(fixture)
    sd = ff.import_checkpoint(_seeded(fixture), arch=arch)
    assert sd.frame_sets is None and sd.num_classes == 7 and not sd.missing_keys and not sd.unexpected_keys
    model = sd.create_model()
    assert isinstance(model, SlowFast)
    ref = fx["logits"]["plain"]
    _sensible(ref)
    assert (_logits(model, fx["input"]["shape"]) - ref).abs().max().item() <= ATOL


def test_ffn_model_matches_official_slowfast_ffn_at_each_frame_count(ffn_import, ffn_model):
    assert (ffn_import.frame_sets, ffn_import.num_classes) == ((16, 32, 64), 7)
    assert not ffn_import.missing_keys and not ffn_import.unexpected_keys
    assert ff.frame_sets(ffn_model) == (16, 32, 64)
    for t in (16, 32, 64):
        ref = _fixture("slowfast_r50_ffn")["logits"][t]
        _sensible(ref)
        out = _logits(ffn_model, _ffn_shape(t))
        assert out.shape == (2, 7) and (out - ref).abs().max().item() <= ATOL, t


def test_ffn_adapters_sit_on_every_branch2_input_and_matter(ffn_import, ffn_model):
    official = _seeded("slowfast_r50_ffn")
    adapters = [k for k in ffn_import if ".scales." in k]
    assert len(adapters) == 3 * 2 * BLOCKS  # every bottleneck of both pathways, each frame count
    # Official suffixes count slow frames: `_4` is our 16-frame (fast) branch.
    assert torch.equal(ffn_import["s3.pathway1_res0.branch2.a.parametrizations.weight.0.scales.16"],
                       official["s3.pathway1_res0.branch2.adaconv_4.weight"].flatten())
    assert torch.equal(ffn_import["s1_fuse.bn.branches.64.running_var"], official["s1_fuse.bn_16.running_var"])
    # Zeroing the imported adapters changes the output: the parity above really checked them.
    shape = (1, 3, 16, 32, 32)
    before = _logits(ffn_model, shape)
    saved = {}
    with torch.no_grad():
        for m in ffn_model.modules():
            if isinstance(m, ff.FrameScale):
                saved[m] = m.scales["16"].clone()
                m.scales["16"].zero_()
        after = _logits(ffn_model, shape)
        for m, v in saved.items():
            m.scales["16"].copy_(v)
    assert (before - after).abs().max().item() > 1e-3


# import of the official layouts -------------------------------------------------------------

def test_ffn_training_checkpoint_file_imports_with_its_wrapper(ffn_import, tmp_path):
    # FFN-pytorch saves PySlowFast training files {epoch, model_state, optimizer_state, cfg};
    # a DataParallel `module.` prefix is stripped too. The arch is auto-detected.
    path = tmp_path / "checkpoint_epoch_00022.pyth"
    state = {f"module.{k}": v for k, v in _seeded("slowfast_r50_ffn").items()}
    torch.save({"epoch": 22, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
                "cfg": "MODEL:\n  ARCH: slowfast_FFN"}, path)
    sd = ff.import_checkpoint(path)
    assert (sd.arch, sd.frame_sets, sd.num_classes) == ("slowfast_r50", (16, 32, 64), 7)
    assert sd.keys() == ffn_import.keys() and all(torch.equal(sd[k], ffn_import[k]) for k in sd)


@pytest.mark.parametrize("fixture", ["slowfast_r50_pyslowfast", "slowfast_r50_pytorchvideo"])
def test_plain_files_import(fixture, tmp_path):
    # PySlowFast native files and pytorchvideo's SLOWFAST_8x8_R50.pyth both wrap `model_state`.
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"epoch": 196, "model_state": _seeded(fixture), "optimizer_state": {}}, path)
    sd = ff.import_checkpoint(path)
    assert (sd.arch, sd.frame_sets, sd.num_classes) == ("slowfast_r50", None, 7)
    assert sorted(sd) == sorted(_seeded("slowfast_r50_pyslowfast"))  # our plain keys are PySlowFast's
    if fixture == "slowfast_r50_pytorchvideo":  # spot-check the renames: same tensors, PySlowFast names
        ptv = _seeded(fixture)
        for ours, theirs in [
            ("s1.pathway1_stem.conv.weight", "blocks.0.multipathway_blocks.1.conv.weight"),
            ("s1.pathway0_stem.bn.running_mean", "blocks.0.multipathway_blocks.0.norm.running_mean"),
            ("s4_fuse.conv_f2s.weight", "blocks.3.multipathway_fusion.conv_fast_to_slow.weight"),
            ("s4_fuse.bn.running_var", "blocks.3.multipathway_fusion.norm.running_var"),
            ("s5.pathway0_res0.branch1.weight", "blocks.4.multipathway_blocks.0.res_blocks.0.branch1_conv.weight"),
            ("s5.pathway0_res0.branch1_bn.weight", "blocks.4.multipathway_blocks.0.res_blocks.0.branch1_norm.weight"),
            ("s3.pathway1_res2.branch2.b.weight", "blocks.2.multipathway_blocks.1.res_blocks.2.branch2.conv_b.weight"),
            ("s3.pathway1_res2.branch2.c_bn.bias", "blocks.2.multipathway_blocks.1.res_blocks.2.branch2.norm_c.bias"),
            ("head.projection.weight", "blocks.6.proj.weight"),
        ]:
            assert torch.equal(sd[ours], ptv[theirs]), ours


def test_plain_file_fans_out_to_every_branch():
    # A plain file loads into the FFN variant: every branch starts from it, fresh adapters are
    # zero, so each branch reproduces the plain model (T=32 runs the 32 branch).
    fx = _fixture("slowfast_r50_pyslowfast")
    sd = ff.import_checkpoint(_seeded("slowfast_r50_pyslowfast"))
    model = ff.create_model("slowfast_r50", num_classes=7, frame_sets="default").eval()
    ff.load_state_dict(model, sd)
    assert (_logits(model, fx["input"]["shape"]) - fx["logits"]["plain"]).abs().max().item() <= ATOL


def test_4x16_file_is_told_from_8x8_by_its_shapes():
    # 8x8 and 4x16 files have the same keys; only the fusion conv's kernel (7 vs 5) differs.
    sd = _seeded("slowfast_r50_4x16_pyslowfast")
    assert ff.import_checkpoint(sd).arch == "slowfast_r50_4x16"
    with pytest.raises(ValueError, match=r"s1_fuse\.conv_f2s\.weight: shape \(16, 8, 5, 1, 1\)"):
        ff.import_checkpoint(sd, arch="slowfast_r50")


def test_foreign_checkpoints_are_refused():
    with pytest.raises(ValueError, match="not a layout frameflex knows"):
        ff.import_checkpoint({"features.0.weight": torch.zeros(8, 3, 3, 3), "classifier.weight": torch.zeros(7, 8)})
    with pytest.raises(ValueError, match="no classifier"):
        ff.import_checkpoint({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(7, 8)},
                             arch="slowfast_r50")
    # A file without the fast pathway (a Slow-only model, say) does not pass for SlowFast.
    sd = {k: v for k, v in _seeded("slowfast_r50_pyslowfast").items() if "pathway1" not in k}
    with pytest.raises(ValueError, match=r"missing from the file: s1\.pathway1_stem\.conv\.weight"):
        ff.import_checkpoint(sd, arch="slowfast_r50")


def test_signature_tells_slowfast_files():
    rx = get_spec("slowfast_r50").checkpoint_rules.signature
    for key in ("s1_fuse.conv_f2s.weight", "blocks.0.multipathway_fusion.conv_fast_to_slow.weight"):
        assert re.search(rx, key)
    for key in ("s1.pathway0_stem.conv.weight", "base_model.conv1.weight", "blocks1.0.conv1.weight"):
        assert not re.search(rx, key)


# shapes, slow pathway, conversion, registry ----------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_at_each_frame_count(arch):
    # Thin models (width 16): the full-width FFN slowfast_r50 runs L/M/H in the parity test.
    torch.manual_seed(0)
    plain = ff.create_model(arch, num_classes=7, **SMALL).eval()
    model = ff.create_model(arch, num_classes=7, frame_sets="default", **SMALL).eval()
    assert ff.frame_sets(model) == (16, 32, 64)
    with torch.no_grad():
        for t in (16, 32, 64):
            x = seeded_input((2, 3, t, 64, 64), seed=t)
            assert plain(x).shape == model(x).shape == (2, 7)
        x = seeded_input((1, 3, 24, 64, 64))  # any multiple of alpha runs: the head pools globally
        assert model(x).shape == (1, 7)
        slow, fast = plain.forward_features(x)
    assert slow.shape == (1, 512, 24 // plain.alpha, 2, 2) and fast.shape == (1, 64, 24, 2, 2)


@pytest.mark.parametrize("arch, t", [("slowfast_r50", 30), ("slowfast_r50_4x16", 20), ("slowfast_r50", 2)])
def test_frame_count_not_divisible_by_alpha_is_refused(arch, t):
    model = ff.create_model(arch, num_classes=7, **SMALL).eval()
    with pytest.raises(ValueError, match=rf"alpha={model.alpha}.*T={t}"):
        model(torch.zeros(1, 3, t, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.zeros(3, 16, 32, 32))


def test_slow_pathway_takes_the_official_linspace_frames():
    assert slow_indices(32, 4).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert slow_indices(16, 4).tolist() == [0, 5, 10, 15]
    assert slow_indices(32, 8).tolist() == [0, 10, 20, 31]
    model = ff.create_model("slowfast_r50", num_classes=7, **SMALL)
    x = torch.arange(32.0).view(1, 1, 32, 1, 1).expand(1, 3, 32, 2, 2)
    slow, fast = model.pathways(x)
    assert slow[0, 0, :, 0, 0].tolist() == [0, 4, 8, 13, 17, 22, 26, 31] and fast is x


def test_head_pools_globally_drops_out_in_training_and_outputs_logits():
    head = ff.create_model("slowfast_r50", num_classes=7, **SMALL).head
    assert head.dropout.p == 0.5
    feats = [seeded_input((2, 512, 4, 3, 2), seed=1), seeded_input((2, 64, 16, 3, 2), seed=2)]
    pooled = torch.cat([f.mean((2, 3, 4)) for f in feats], 1)
    with torch.no_grad():
        head.projection.weight.normal_()  # non-trivial logits
        out = head.eval()(feats)
        assert torch.allclose(out, head.projection(pooled), atol=1e-6)  # no softmax, dropout off
        assert not torch.allclose(out.softmax(1), out)
        head.train()
        assert not torch.equal(head(feats), head(feats))  # dropout on


def test_fresh_conversion_keeps_plain_outputs_and_adapters_sit_on_branch2_a():
    torch.manual_seed(0)
    plain = ff.create_model("slowfast_r50", num_classes=7, **SMALL).eval()
    with torch.no_grad():  # non-trivial norms, so a branch copy is really checked
        for m in plain.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.5)
                m.running_var.uniform_(0.5, 1.5)
    model = ff.convert(plain, (16, 32, 64), adapters=SLOWFAST_ADAPTERS, time_dim=2, inplace=False).eval()
    x = seeded_input((2, 3, 16, 32, 32))
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-5, rtol=0)
    adapted = sorted(n.rsplit(".parametrizations", 1)[0] for n, _ in model.named_parameters() if ".scales.16" in n)
    expected = sorted(f"s{s}.pathway{p}_res{i}.branch2.a" for p in (0, 1)
                      for s, depth in zip((2, 3, 4, 5), (3, 4, 6, 3)) for i in range(depth))
    assert adapted == expected


@pytest.mark.parametrize("arch, alpha, kernel", [("slowfast_r50", 4, 7), ("slowfast_r50_4x16", 8, 5)])
def test_registry_entries(arch, alpha, kernel):
    spec = get_spec(arch)
    assert spec.frame_sets == (16, 32, 64) and spec.adapters == SLOWFAST_ADAPTERS
    assert (spec.input_size, spec.mean, spec.std) == (224, (0.45,) * 3, (0.225,) * 3)
    assert spec.checkpoint_rules.head == "head.projection.weight"
    model = ff.create_model(arch, num_classes=400)
    assert model.alpha == alpha and model.s2_fuse.conv_f2s.kernel_size == (kernel, 1, 1)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(params, 2) == {"slowfast_r50": 34.57, "slowfast_r50_4x16": 34.48}[arch]  # the published sizes
    assert len(model.state_dict()) == 662
    gmacs = {"slowfast_r50": {(16, 224): 25.3, (32, 224): 50.7, (64, 224): 101.3, (32, 256): 66.2},
             "slowfast_r50_4x16": {(32, 224): 27.82, (32, 256): 36.34}}[arch]
    assert gmacs.items() <= spec.published_gmacs.items()
