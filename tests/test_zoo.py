"""The contract every zoo model and every official layout keeps, one parametrized body for all.

- shapes: plain and FFN models map (B, C, T, H, W) to (B, classes) at the arch's L/M/H (on the meta
  device: shapes only, no compute);
- layouts: every parity fixture's file, saved the way the official scripts save it, is recognised
  (arch from its keys) and mapped completely;
- truncated files: a key dropped from a file is named in the error, the bytes of a cut file too;
- foreign files: another family's file forced onto an arch is refused.
Family files' own tests keep what only that family has (parity, adapter placement, pathways).
"""
from __future__ import annotations

import pytest
import torch
from _seeded import FIXTURES, load_fixture, seeded_state_dict

import frameflex as ff

# fixture -> the arch its file belongs to
LAYOUTS = {
    "tsm_r50_ffn": "tsm_r50", "tsm_r50_plain": "tsm_r50", "tea_r50_ffn": "tea_r50", "tea_r50_plain": "tea_r50",
    "slowfast_r50_ffn": "slowfast_r50", "slowfast_r50_pyslowfast": "slowfast_r50",
    "slowfast_r50_pytorchvideo": "slowfast_r50", "slowfast_r50_4x16_pyslowfast": "slowfast_r50_4x16",
    "uniformer_s_ffn": "uniformer_s", "uniformer_s_plain": "uniformer_s", "uniformer_b_plain": "uniformer_b",
}
# a file of another family for each arch
FOREIGN = {"tsm_r50": "tea_r50_plain", "tea_r50": "tsm_r50_plain", "slowfast_r50": "uniformer_s_plain",
           "uniformer_s": "slowfast_r50_pyslowfast"}


def _file(name: str) -> dict:
    return seeded_state_dict(load_fixture(name)["keys"])


def _released(sd: dict) -> dict:
    """Wrapped as the official training scripts save it (DataParallel prefix, a container, extras)."""
    return {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {}}


def test_every_fixture_is_covered():
    assert sorted(LAYOUTS) == sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", ff.list_models())
def test_shapes_at_every_default_frame_count(name):
    spec = ff.get_spec(name)
    with torch.device("meta"):
        plain = ff.create_model(name, num_classes=7).eval()
        ffn = ff.create_model(name, num_classes=7, frame_sets="default").eval()
        assert ff.frame_sets(ffn) == spec.frame_sets
        for t in spec.frame_sets:
            assert ffn(torch.empty(2, 3, t, 64, 64)).shape == (2, 7)
        assert plain(torch.empty(2, 3, spec.frame_sets[1], 64, 64)).shape == (2, 7)


@pytest.mark.parametrize("fixture", sorted(LAYOUTS))
def test_every_official_layout_is_recognised_and_mapped(fixture, tmp_path):
    sd = _file(fixture)
    path = tmp_path / f"{fixture}.pth.tar"
    torch.save(_released(sd), path)
    imported = ff.import_checkpoint(path)  # arch from the keys, strict: every key mapped
    assert imported.arch == LAYOUTS[fixture]
    assert not imported.missing_keys and not imported.unexpected_keys
    assert (imported.frame_sets is not None) == fixture.endswith("_ffn")
    model = imported.create_model()  # a strict load: the file fills every tensor of the model
    assert torch.equal(model.state_dict()[next(iter(imported))], next(iter(imported.values())))


@pytest.mark.parametrize("fixture", sorted(LAYOUTS))
def test_a_truncated_file_names_what_is_missing(fixture, tmp_path):
    sd = _file(fixture)
    arch = LAYOUTS[fixture]
    convs = [k for k in sd if k.endswith("weight") and sd[k].dim() > 2]
    del sd[convs[len(convs) // 2]]  # a conv in the middle of the body
    loose = ff.import_checkpoint(sd, arch=arch, strict=False)
    assert len(loose.missing_keys) == 1 and not loose.unexpected_keys
    missing = loose.missing_keys[0].replace(".", r"\.")
    with pytest.raises(ff.CheckpointError, match=f"missing from the file: {missing}"):
        ff.import_checkpoint(sd, arch=arch)
    path = tmp_path / "cut.pth"
    torch.save(_released(_file(fixture)), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ff.CheckpointError, match=r"cut\.pth could not be loaded"):
        ff.import_checkpoint(path)


@pytest.mark.parametrize("arch", sorted(FOREIGN))
def test_a_foreign_file_is_refused(arch):
    with pytest.raises(ff.CheckpointError, match=arch):
        ff.import_checkpoint(_released(_file(FOREIGN[arch])), arch=arch)
