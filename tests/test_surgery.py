"""ff.convert and frame selection: identity, structure, bad input."""
from __future__ import annotations

import copy

import pytest
import timm
import torch
from _models import ZOO, SharedNormNet, build, clip
from torch import nn

import frameflex as ff

SETS = (4, 8, 16)


@pytest.mark.parametrize("name", list(ZOO))
def test_convert_keeps_outputs_at_every_frame_count(name):
    model = build(name)
    size = ZOO[name][1]
    xs = {t: clip(t, size) for t in SETS}
    with torch.no_grad():
        ref = {t: model(x) for t, x in xs.items()}
    adapters = "auto" if ZOO[name][2] else None
    converted = ff.convert(model, SETS, adapters=adapters, time_dim=2, inplace=False)
    n_norms = len({id(m) for m in model.modules() if isinstance(m, ff.norm_types())})
    assert len({id(m) for m in converted.modules() if isinstance(m, ff.FrameNorm)}) == n_norms > 0
    assert not any(isinstance(m, ff.norm_types()) and not _inside_frame_norm(converted, m)
                   for m in converted.modules())
    with torch.no_grad():
        for t, x in xs.items():
            torch.testing.assert_close(converted(x), ref[t], atol=1e-5, rtol=0)


def _inside_frame_norm(model, module):
    return any(module is b for m in model.modules() if isinstance(m, ff.FrameNorm) for b in m.branches.values())


def test_branches_are_private_per_frame_count():
    model = ff.convert(build("tv_r3d_18"), SETS, time_dim=2)
    norm = model.stem[1]
    assert isinstance(norm, ff.FrameNorm)
    with torch.no_grad():
        norm.branches["4"].weight.fill_(3.0)
    assert not torch.equal(norm.branches["8"].weight, norm.branches["4"].weight)
    x = clip(4)
    with torch.no_grad():
        out4 = model(x)
        with ff.frames(model, 8):  # time_dim wins over set_frames: the input says 4
            assert torch.equal(model(x), out4)
    model.train()
    before = {k: b.running_mean.clone() for k, b in model.layer1[0].conv1[1].branches.items()}
    model(clip(8))
    after = {k: b.running_mean for k, b in model.layer1[0].conv1[1].branches.items()}
    assert not torch.equal(before["8"], after["8"])
    assert torch.equal(before["4"], after["4"]) and torch.equal(before["16"], after["16"])


def test_shared_norm_becomes_one_module_at_every_parent(shared_net):
    converted = ff.convert(shared_net, SETS, time_dim=2)
    assert isinstance(converted.stage1[1], ff.FrameNorm)
    assert converted.stage1[1] is converted.stage2[1]


def test_norm_as_root():
    bn = nn.BatchNorm2d(4)
    out = ff.convert(bn, SETS)
    assert isinstance(out, ff.FrameNorm) and out.branches["16"] is bn
    ff.set_frames(out, 4)
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(out(x), copy.deepcopy(bn)(x))


def test_parameters_device_dtype_grad_and_mode_survive():
    model = SharedNormNet().double()
    bn = model.stage1[1]
    bn.weight.requires_grad_(False)
    model.train()
    model.head.eval()
    converted = ff.convert(model, SETS)
    assert converted.stage1[1].branches["16"].weight is bn.weight  # reused, not recreated
    for branch in converted.stage1[1].branches.values():
        assert branch.weight.dtype == torch.float64 and branch.weight.requires_grad is False
        assert branch.num_batches_tracked.dtype == torch.long  # integer buffers not cast
        assert branch.training
    assert converted.stage1[1].training and not converted.head.training


def test_inplace_false_leaves_the_original_alone(shared_net):
    converted = ff.convert(shared_net, SETS, inplace=False)
    assert isinstance(shared_net.stage1[1], nn.BatchNorm3d)
    assert isinstance(converted.stage1[1], ff.FrameNorm)


def test_instance_norm_and_frozen_bn_stay_shared():
    from torchvision.ops import FrozenBatchNorm2d
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.InstanceNorm2d(4, affine=True), FrozenBatchNorm2d(4),
                          timm.layers.FrozenBatchNormAct2d(4), nn.BatchNorm2d(4))
    converted = ff.convert(model, SETS)
    assert [type(m).__name__ for m in converted] == [
        "Conv2d", "InstanceNorm2d", "FrozenBatchNorm2d", "FrozenBatchNormAct2d", "FrameNorm"]


@pytest.mark.parametrize("norm", [
    timm.layers.BatchNormAct2d(6, act_layer=nn.ReLU), timm.layers.LayerNorm2d(6), timm.layers.RmsNorm2d(6),
    nn.GroupNorm(2, 6), nn.SyncBatchNorm(6), timm.layers.GroupNormAct(6, num_groups=2),
], ids=lambda m: type(m).__name__)
def test_timm_and_torch_norm_subclasses_keep_their_behaviour(norm):
    model = nn.Sequential(nn.Conv2d(3, 6, 3), norm).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        nn.init.uniform_(norm.weight, -1, 1)
        ref = model(x)
    converted = ff.convert(model, SETS)
    assert isinstance(converted[1], ff.FrameNorm)
    assert type(converted[1].branches["4"]) is type(norm)
    with ff.frames(converted, 4), torch.no_grad():
        torch.testing.assert_close(converted(x), ref, atol=1e-6, rtol=0)


def test_register_norm_adds_a_custom_norm_type():
    class MyNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x / x.std() * self.gain

    model = nn.Sequential(nn.Linear(3, 3), MyNorm())
    with pytest.raises(ValueError, match="nothing to make frame-flexible in Sequential.*ff.register_norm"):
        ff.convert(model, SETS)
    ff.register_norm(MyNorm)
    try:
        assert isinstance(ff.convert(model, SETS)[1], ff.FrameNorm)
    finally:
        from frameflex import surgery
        surgery._NORM_TYPES.remove(MyNorm)
    with pytest.raises(TypeError, match="nn.Module subclass"):
        ff.register_norm(int)


def test_norm_attributes_read_through_the_active_branch():
    converted = ff.convert(nn.Sequential(nn.LayerNorm(5, eps=1e-3)), SETS)
    assert converted[0].eps == 1e-3 and converted[0].normalized_shape == (5,)
    with ff.frames(converted, 4):
        assert converted[0].weight is converted[0].branches["4"].weight


# adapters ----------------------------------------------------------------------

def test_adapters_by_name_regex_and_suffix():
    model = build("tv_r3d_18")
    converted = ff.convert(model, SETS, adapters=["layer1.0.conv1.0", r"layer2\.\d\.conv1\.0", "fc"])
    scaled = sorted(n.rsplit(".parametrizations", 1)[0] for n, m in converted.named_modules()
                    if isinstance(m, ff.FrameScale))
    assert scaled == ["fc", "layer1.0.conv1.0", "layer2.0.conv1.0", "layer2.1.conv1.0"]
    w = converted.layer1[0].conv1[0].parametrizations.weight[0].scales
    assert set(w) == {"4", "8", "16"} and all(torch.equal(p, torch.zeros(64)) for p in w.values())


def test_adapter_pattern_matching_nothing_is_an_error_naming_it():
    model = build("tv_r3d_18")
    with pytest.raises(ValueError, match=r"'layer9\.conv' matched no module"):
        ff.convert(model, SETS, adapters=["layer1.0.conv1.0", "layer9.conv"])
    assert not ff.is_converted(model)  # validated before anything changed


def test_adapter_on_a_module_without_channels_is_an_error():
    with pytest.raises(ValueError, match="'1'.*ReLU"):
        ff.convert(nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU()), SETS, adapters=["1"])


def test_auto_adapters_need_blocks():
    with pytest.raises(ValueError, match="auto.*found no residual block"):
        ff.convert(SharedNormNet(), SETS, adapters="auto")


@pytest.mark.parametrize("layer,shape", [
    (nn.Conv2d(6, 4, 3, padding=1, groups=2), (2, 6, 5, 5)),
    (nn.Conv3d(4, 8, 3, padding=1, groups=4, padding_mode="replicate"), (2, 4, 3, 5, 5)),
    (nn.ConvTranspose2d(4, 6, 3, groups=2), (2, 4, 5, 5)),
    (nn.Linear(4, 3), (2, 7, 4)),
], ids=["grouped2d", "depthwise3d_replicate", "transposed", "linear"])
def test_adapter_scales_the_input_channels(layer, shape):
    x = torch.randn(shape)
    ref_layer = copy.deepcopy(layer)
    converted = ff.convert(nn.Sequential(layer), SETS, adapters=["0"])
    scale = converted[0].parametrizations.weight[0]
    w = torch.randn_like(scale.scales["8"])
    with torch.no_grad():
        scale.scales["8"].copy_(w)
    dim = -1 if isinstance(layer, nn.Linear) else 1
    factor = (1 + w).view(-1, *[1] * (len(shape) - 2)) if dim == 1 else 1 + w
    with ff.frames(converted, 8), torch.no_grad():
        torch.testing.assert_close(converted(x), ref_layer(x * factor), atol=1e-5, rtol=1e-5)
    with ff.frames(converted, 4), torch.no_grad():
        torch.testing.assert_close(converted(x), ref_layer(x), atol=1e-6, rtol=0)


def test_adapter_is_seen_by_code_reading_weight_directly():
    class Functional(nn.Module):  # like torchvision's swin: F.linear(x, self.qkv.weight)
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(4, 4)

        def forward(self, x):
            return nn.functional.linear(x, self.qkv.weight, self.qkv.bias)

    model = ff.convert(Functional(), SETS, adapters=["qkv"])
    with torch.no_grad():
        model.qkv.parametrizations.weight[0].scales["4"].fill_(1.0)  # doubles the input
    x = torch.randn(2, 4)
    with ff.frames(model, 4):
        doubled = model(x)
    with ff.frames(model, 8):
        torch.testing.assert_close(doubled - model.qkv.bias, 2 * (model(x) - model.qkv.bias))


def test_adapter_on_a_block_scales_its_input():
    class Block(nn.Module):
        in_channels = 4

        def forward(self, x):
            return x + 1

    model = ff.convert(nn.Sequential(Block()), SETS, adapters=["0"])
    assert isinstance(model[0], ff.InputScale)
    with torch.no_grad():
        model[0].scale.scales["16"].fill_(1.0)
    with ff.frames(model, 16):
        torch.testing.assert_close(model(torch.ones(1, 4, 2)), torch.full((1, 4, 2), 3.0))


# frame selection ------------------------------------------------------------------

@pytest.mark.parametrize("frames,branch", [(1, 4), (4, 4), (5, 4), (6, 8), (8, 8), (11, 8), (12, 16), (16, 16), (99, 16)])
def test_set_frames_uses_the_nearest_branch_ties_to_larger(shared_net, frames, branch):
    model = ff.convert(shared_net, SETS)
    assert ff.set_frames(model, frames) == branch
    assert ff.frame_sets(model) == SETS


def test_frames_context_restores_the_previous_choice(shared_net):
    model = ff.convert(shared_net, SETS)
    ff.set_frames(model, 4)
    with ff.frames(model, 16) as branch:
        assert branch == 16
    x = clip(4, 16)
    with ff.frames(model, 4):
        expected = model(x)
    torch.testing.assert_close(model(x), expected)


def test_no_frame_count_chosen_is_a_clear_error(shared_net):
    model = ff.convert(shared_net, SETS)
    with pytest.raises(RuntimeError, match=r"no frame count chosen.*ff.set_frames"):
        model(clip(4, 16))


def test_time_dim_picks_the_branch_from_the_input(shared_net):
    model = ff.convert(shared_net, SETS, time_dim=2)
    model(clip(12, 16))
    state = next(m for m in model.modules() if isinstance(m, ff.FrameNorm))._state
    assert state.branch == 16
    model(clip(5, 16))
    assert state.branch == 4


def test_time_dim_input_with_wrong_dims_is_a_clear_error(shared_net):
    model = ff.convert(shared_net, SETS, time_dim=4)
    with pytest.raises(ValueError, match=r"time_dim=4 is out of range.*\(2, 3, 4\)"):
        model(torch.randn(2, 3, 4))


@pytest.mark.parametrize("bad,exc,msg", [
    ([], ValueError, "empty"), ([0, 4], ValueError, "got 0"), ([-4], ValueError, "got -4"),
    ([4, 8, 4], ValueError, r"duplicate frame counts \[4\]"), ([4.0, 8], TypeError, r"4\.0"),
    (None, TypeError, "None"), ("48", TypeError, "'48'"), ([True, 8], TypeError, "True"),
])
def test_bad_frame_sets_are_rejected_by_name(shared_net, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        ff.convert(shared_net, bad)
    assert not ff.is_converted(shared_net)


@pytest.mark.parametrize("bad", [0, -2, 2.5, None])
def test_bad_frame_count_is_rejected(shared_net, bad):
    model = ff.convert(shared_net, SETS)
    with pytest.raises((TypeError, ValueError), match=repr(bad)):
        ff.set_frames(model, bad)


def test_second_convert_is_a_noop_or_a_clear_error(shared_net):
    model = ff.convert(shared_net, SETS)
    assert ff.convert(model, [16, 8, 4]) is model
    assert not isinstance(model.stage1[1].branches["4"], ff.FrameNorm)  # never nested
    with pytest.raises(ValueError, match=r"already frame-flexible with frame_sets=\(4, 8, 16\)"):
        ff.convert(model, [2, 4])


def test_api_on_an_unconverted_model_is_a_clear_error(shared_net):
    with pytest.raises(ValueError, match="not frame-flexible"):
        ff.set_frames(shared_net, 4)
    with pytest.raises(ValueError, match="not frame-flexible"):
        ff.frame_sets(shared_net)


# checkpoints ---------------------------------------------------------------------

def test_load_plain_state_dict_into_every_branch():
    source = build("tv_r3d_18", seed=1)
    model = ff.convert(build("tv_r3d_18", seed=2), SETS, adapters="auto", time_dim=2)
    result = ff.load_state_dict(model, source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    with torch.no_grad():
        for t in SETS:
            torch.testing.assert_close(model(clip(t)), source(clip(t)), atol=1e-5, rtol=0)


def test_load_state_dict_reports_missing_and_unexpected_keys_by_name(shared_net):
    model = ff.convert(copy.deepcopy(shared_net), SETS)
    sd = shared_net.state_dict()
    sd.pop("head.bias")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing keys \(1\): head\.bias[\s\S]*unexpected keys \(1\): extra\.weight"):
        ff.load_state_dict(model, sd)
    result = ff.load_state_dict(model, sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_accepts_wrapper_prefixes_and_old_bn_files(shared_net):
    model = ff.convert(copy.deepcopy(shared_net), SETS)
    sd = {f"module.{k}": v for k, v in shared_net.state_dict().items() if "num_batches_tracked" not in k}
    assert ff.load_state_dict(model, sd) == ([], [], [])


def test_converted_state_dict_holds_every_branch(shared_net):
    keys = ff.convert(shared_net, SETS).state_dict().keys()
    for t in SETS:
        assert f"stage1.1.branches.{t}.running_mean" in keys


@pytest.mark.parametrize("name", ["tv_r3d_18", "tv_swin3d_t", "shared_bn3d"])
def test_key_origins_cover_exactly_the_state_dict(name):
    class Block(nn.Module):  # an adapter target wrapped by InputScale
        in_channels = 3

        def forward(self, x):
            return x

    net = build(name)
    plain = set(net.state_dict())
    head = "head" if name != "tv_r3d_18" else "fc"
    converted = ff.convert(nn.ModuleDict({"pre": Block(), "net": net}), SETS, adapters=["pre", f"net.{head}"])
    origins = ff.checkpoints.key_origins(converted)
    assert set(origins) == set(converted.state_dict())
    assert {o.plain[4:] for o in origins.values() if not o.adapter and o.plain.startswith("net.")} == plain
    assert {(o.plain, o.frames) for o in origins.values() if o.adapter} == {
        (m, t) for m in ("pre", f"net.{head}") for t in SETS}


def test_errors_are_one_hierarchy_and_keep_the_builtin_types(shared_net):
    with pytest.raises(ff.FrameflexError) as info:
        ff.convert(shared_net, [4, 8, 4])
    assert isinstance(info.value, ValueError) and not ff.is_converted(shared_net)
    with pytest.raises(ff.FrameflexError) as info:
        ff.convert(shared_net, "48")
    assert isinstance(info.value, TypeError)
    with pytest.raises(ff.FrameflexError, match="not frame-flexible"):
        ff.set_frames(shared_net, 8)


def _snapshot(model):
    """Everything convert could change: module classes and tree, parameter objects, values, hooks."""
    return ([(n, type(m)) for n, m in model.named_modules(remove_duplicate=False)],
            [(n, id(p)) for n, p in model.named_parameters(remove_duplicate=False)],
            {k: v.clone() for k, v in model.state_dict().items()},
            [len(m._forward_pre_hooks) for m in model.modules()])


def _same(a, b):
    assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3]
    assert list(a[2]) == list(b[2]) and all(torch.equal(a[2][k], b[2][k]) for k in a[2])


@pytest.mark.parametrize("where", ["second adapter", "time_dim hook"])
def test_a_convert_that_fails_half_way_leaves_the_model_untouched(monkeypatch, where):
    from torch.nn.utils import parametrize

    model = build("tv_r3d_18")
    before = _snapshot(model)
    if where == "second adapter":
        real, calls = parametrize.register_parametrization, []

        def flaky(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("injected failure")
            return real(*args, **kwargs)

        monkeypatch.setattr(parametrize, "register_parametrization", flaky)
    else:
        monkeypatch.setattr(nn.Module, "register_forward_pre_hook",
                            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("injected failure")))
    with pytest.raises(RuntimeError, match="injected failure"):
        ff.convert(model, SETS, adapters="auto", time_dim=2)
    _same(_snapshot(model), before)
    assert not ff.is_converted(model) and not parametrize.is_parametrized(model.layer1[0].conv1[0])
    monkeypatch.undo()
    converted = ff.convert(model, SETS, adapters="auto", time_dim=2)  # and it converts cleanly afterwards
    with torch.no_grad():
        torch.testing.assert_close(converted(clip(8)), build("tv_r3d_18")(clip(8)), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_convert_with_nothing_to_convert_or_a_scripted_model_is_an_error():
    plain = nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU())
    with pytest.raises(ff.ConversionError, match="nothing to make frame-flexible in Sequential"):
        ff.convert(plain, SETS)
    assert ff.is_converted(ff.convert(plain, SETS, adapters=["0"]))  # adapters alone are a conversion
    scripted = torch.jit.script(nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4)))
    with pytest.raises(ff.ConversionError, match="TorchScript.*convert the Python model"):
        ff.convert(scripted, SETS)
    with pytest.raises(ff.ConversionError, match="submodule 'body' is one"):
        ff.convert(nn.ModuleDict({"body": scripted, "bn": nn.BatchNorm3d(4)}), SETS)


def test_adapter_patterns_cannot_hang_convert():
    """``(.*.*)*z`` backtracks exponentially in ``re``; the matcher is linear in the name."""
    import signal

    model = nn.Sequential()
    model.add_module("a" * 40, nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4)))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("convert hung on a pathological pattern"))
    signal.alarm(30)
    try:
        with pytest.raises(ValueError, match=r"adapter pattern '\(\.\*\.\*\)\*z' matched no module"):
            ff.convert(model, SETS, adapters=["(.*.*)*z"])
        converted = ff.convert(model, SETS, adapters=["(a|aa)*\\.0"])  # a regex still works as one
    finally:
        signal.alarm(0)
    assert isinstance(converted[0][0], nn.Conv3d) and ff.is_converted(converted)
    with pytest.raises(ValueError, match=r"pattern '\(a\)\\\\1': backreferences are not supported"):
        ff.convert(build("shared_bn3d"), SETS, adapters=[r"(a)\1"])


def test_an_input_with_no_frames_is_a_clear_error(shared_net):
    converted = ff.convert(shared_net, SETS, time_dim=2)
    with pytest.raises(ff.ArgumentError, match=r"0 frames along time_dim=2 \(shape \(1, 3, 0, 16, 16\)\)"):
        converted(torch.zeros(1, 3, 0, 16, 16))
