"""ff.load_state_dict and the one checkpoint key path: all or nothing, every problem named."""
from __future__ import annotations

import pytest
import torch
from _models import SharedNormNet, build, clip, randomize_norms
from safetensors.torch import save_model

import frameflex as ff
from frameflex.checkpoints import load_file, read_checkpoint, unwrap

SETS = (4, 8)


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def _pair(classes=5):
    """A converted model and a plain checkpoint of other weights (any write would show)."""
    model = ff.convert(build("shared_bn3d", seed=1), SETS)
    source = randomize_norms(SharedNormNet(classes), seed=2)
    return model, source.state_dict()


def test_a_failed_strict_load_changes_no_tensor():
    model, sd = _pair()
    before = _snapshot(model)
    sd = dict(sd)
    sd.pop("head.bias")  # the last key: everything before it would have been written
    with pytest.raises(ff.StateDictError, match=r"nothing was loaded[\s\S]*missing keys \(1\): head\.bias"):
        ff.load_state_dict(model, sd)
    _assert_unchanged(model, before)


def test_a_size_mismatch_is_an_error_naming_both_shapes_and_changes_nothing():
    model, sd = _pair(classes=7)
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match=r"size mismatch \(2\): head\.weight: checkpoint \(7, 8\) vs model \(5, 8\)"
                                           r"[\s\S]*ignore_mismatched_sizes=True"):
        ff.load_state_dict(model, sd)
    _assert_unchanged(model, before)


def test_ignore_mismatched_sizes_keeps_the_new_head_and_loads_the_rest():
    model, sd = _pair(classes=7)
    head = model.head.weight.detach().clone()
    result = ff.load_state_dict(model, sd, ignore_mismatched_sizes=True)
    assert result.mismatched_keys == [("head.weight", (7, 8), (5, 8)), ("head.bias", (7,), (5,))]
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(model.head.weight, head)
    own = model.state_dict()
    for t in SETS:
        assert torch.equal(own[f"stage1.1.branches.{t}.running_var"], sd["stage1.1.running_var"])
    assert torch.equal(own["stage2.0.weight"], sd["stage2.0.weight"])


def test_a_wrong_dtype_is_an_error_even_when_not_strict():
    model, sd = _pair()
    before = _snapshot(model)
    sd = {**sd, "stage1.0.weight": sd["stage1.0.weight"].to(torch.int64)}
    with pytest.raises(ff.StateDictError, match=r"wrong dtype \(1\): stage1\.0\.weight: torch\.int64"):
        ff.load_state_dict(model, sd, strict=False)
    _assert_unchanged(model, before)


def test_non_tensors_and_bad_arguments_are_named():
    model, sd = _pair()
    with pytest.raises(ff.CheckpointError, match="non-tensor entries: \\['head.bias'\\]"):
        ff.load_state_dict(model, {**sd, "head.bias": [0.0]})
    with pytest.raises(ff.ArgumentTypeError, match="mapping of names to tensors"):
        ff.load_state_dict(model, [1, 2])


def test_a_shared_module_saved_once_loads_strictly(tmp_path):
    """safetensors keeps one name per tensor; the shared norm's other names count as loaded."""
    model = ff.convert(build("shared_bn3d", seed=1), SETS)
    save_model(model, str(tmp_path / "m.safetensors"))
    sd = load_file(tmp_path / "m.safetensors")
    assert len(sd) < len(model.state_dict())  # the alias was dropped on save
    other = ff.convert(build("shared_bn3d", seed=3), SETS)
    assert ff.load_state_dict(other, sd) == ([], [], [])
    with torch.no_grad(), ff.frames(model, 8), ff.frames(other, 8):
        torch.testing.assert_close(other(clip(8, 16)), model(clip(8, 16)))


def test_unwrap_and_layout_detection():
    model, sd = _pair()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in sd.items()}}
    assert unwrap(wrapped).keys() == sd.keys()
    keep = torch.nn.Module()
    keep.module = torch.nn.Linear(1, 1)  # the model's own keys start with "module.": keep the prefix
    assert list(unwrap({"module.weight": torch.zeros(1, 1)}, keep.state_dict())) == ["module.weight"]
    read, layout = read_checkpoint(model, wrapped)
    assert layout == "frameflex" and read.keys() == sd.keys()
    tiny = ff.create_model("tsm_tiny", num_classes=2)  # no official layout is known for tsm_tiny
    with pytest.raises(ff.CheckpointError, match="frameflex reads no official tsm_tiny layout"):
        read_checkpoint(tiny, {"x.weight": torch.zeros(1), "y.weight": torch.zeros(1)}, arch="tsm_tiny")


@pytest.mark.parametrize("content,msg", [(b"", "could not be"), (b"not a checkpoint at all", "could not be")])
def test_bad_files_are_named(tmp_path, content, msg):
    for name in ("x.pth", "x.safetensors"):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ff.CheckpointError, match=msg):
            load_file(tmp_path / name)
    with pytest.raises(ff.NotFoundError, match="is a directory"):
        load_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_file(tmp_path / "nope.pth")
