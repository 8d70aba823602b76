"""Video transformers after ff.convert: temporal tables per frame count, any T, identity, the transformers API."""
from __future__ import annotations

import pytest
import torch
from _models import randomize_norms
from torch import nn
from torchvision.models.video.mvit import MSBlockConfig, MViT
from torchvision.models.video.swin_transformer import SwinTransformer3d
from transformers import (
    TimesformerConfig, TimesformerForVideoClassification, VideoMAEConfig, VideoMAEForVideoClassification,
    VivitConfig, VivitForVideoClassification,
)

import frameflex as ff
from frameflex._outputs import logits_of
from frameflex.temporal import TemporalTable, resample_time

SETS = (4, 8, 16)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, image_size=32,
            num_frames=8, num_labels=5)


def videomae(**kw):
    return VideoMAEForVideoClassification(VideoMAEConfig(**{"patch_size": 8, "tubelet_size": 2, **TINY, **kw}))


def vivit(**kw):
    return VivitForVideoClassification(VivitConfig(tubelet_size=[2, 8, 8], **{**TINY, **kw}))


def timesformer(**kw):
    return TimesformerForVideoClassification(TimesformerConfig(patch_size=8, **{**TINY, **kw}))


def mvit(v2: bool):
    """torchvision's MViT class at test size; v2 flags as mvit_v2_s, v1 as mvit_v1_b."""
    blocks = [MSBlockConfig(1, 16, 32, [3, 3, 3], [3, 3, 3], [1, 1, 1], [1, 4, 4]),
              MSBlockConfig(2, 32, 32, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2])]
    return MViT((32, 32), 8, blocks, residual_pool=v2, residual_with_cls_embed=not v2, rel_pos_embed=v2,
                proj_after_attn=v2, num_classes=5)


def swin3d():
    return SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 2],
                             window_size=[4, 4, 4], num_classes=5)


# name: (build, (B, T, C, H, W) input, time_dim to pass)
FAMILIES = {
    "videomae": (videomae, True, None),
    "vivit": (vivit, True, None),
    "timesformer": (timesformer, True, None),
    "mvit_v2": (lambda: mvit(True), False, 2),
    "mvit_v1": (lambda: mvit(False), False, 2),
    "swin3d": (swin3d, False, 2),
}


def build(name, seed=0):
    torch.manual_seed(seed)
    model = randomize_norms(FAMILIES[name][0]()).eval()
    with torch.no_grad():  # tables and tokens are zeros at init: make them matter
        for n, p in model.named_parameters():
            if "pos" in n or "embeddings" in n or "token" in n:
                p.normal_(0, 0.5)
    return model


def clip(t, btchw, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed + t)
    return torch.randn((batch, t, 3, 32, 32) if btchw else (batch, 3, t, 32, 32), generator=g)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_identity_at_the_built_frame_count_and_every_t_runs(name):
    _, btchw, time_dim = FAMILIES[name]
    model = build(name)
    x = clip(8, btchw)
    with torch.no_grad():
        ref = logits_of(model(x))
        conv = ff.convert(model, SETS, adapters="auto", time_dim=time_dim, inplace=False)
        torch.testing.assert_close(logits_of(conv(x)), ref, atol=1e-5, rtol=0)
        for t in (4, 8, 12, 16):
            out = logits_of(conv(clip(t, btchw)))
            assert out.shape == (2, 5) and torch.isfinite(out).all(), t


def _table(model):
    (t,) = {id(p): p for m in model.modules() for p in m.modules() if isinstance(p, TemporalTable)}.values()
    return t


def test_videomae_fixed_table_resampled_on_the_thw_grid_and_kept_a_buffer():
    model = build("videomae")
    original = model.videomae.embeddings.position_embeddings.clone()  # (1, 4 slots x 16 tokens, 64)
    ff.convert(model, SETS)
    table = _table(model)
    assert not table.learned and not [k for k in model.state_dict() if "position" in k]  # fixed: nothing saved
    grid = original.view(1, 4, 16, 64)
    # 4 slots -> 2: slot j of 2 sits at the centre of its half, i.e. between old slots 2j+0.5 and 2j+1.5
    torch.testing.assert_close(table.table_4.view(1, 2, 16, 64), (grid[:, 0::2] + grid[:, 1::2]) / 2)
    with ff.frames(model, 4):
        torch.testing.assert_close(model.videomae.embeddings.position_embeddings, table.table_4)
    model.double()  # a buffer moves with the model
    assert table.table_16.dtype == torch.float64


def test_learned_tables_are_private_per_frame_count():
    model = ff.convert(build("vivit"), SETS)
    table = _table(model)
    assert sorted(table.tables) == ["16", "4"]  # 8 is the built table itself
    out = ff.forward_multi(model, {4: clip(4, True)})
    out[4].sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "position_embeddings" in n}
    assert grads[next(n for n in grads if n.endswith("tables.4"))].abs().sum() > 0
    assert all(g is None for n, g in grads.items() if not n.endswith("tables.4"))


def test_unseen_frame_count_uses_the_nearest_branch_table_resampled():
    model = ff.convert(build("vivit"), SETS)
    table = _table(model)
    x12 = clip(12, True)
    with torch.no_grad():
        base = logits_of(model(x12))
        table.tables["4"].normal_()  # not the nearest: no effect
        torch.testing.assert_close(logits_of(model(x12)), base)
        table.tables["16"].normal_()
        assert not torch.allclose(logits_of(model(x12)), base)
        with ff.frames(model, 12):
            seen = model.vivit.embeddings.position_embeddings  # outside a forward: the branch's own
        assert seen.shape == table.tables["16"].shape


def test_a_convert_failing_after_the_tables_are_installed_puts_them_back(monkeypatch):
    """All or nothing: VideoMAE's plain-tensor table is a plain attribute again, nothing parametrized or hooked."""
    from torch.nn.utils import parametrize

    model = build("videomae")
    emb = model.videomae.embeddings
    table, buffers = emb.position_embeddings, [n for n, _ in model.named_buffers()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    monkeypatch.setattr(nn.Module, "register_forward_hook",  # the owner's last hook, after every table
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("injected failure")))
    with pytest.raises(RuntimeError, match="injected failure"):
        ff.convert(model, SETS)
    monkeypatch.undo()
    assert emb.position_embeddings is table and "position_embeddings" not in emb._buffers
    assert not parametrize.is_parametrized(emb) and not ff.is_converted(model)
    assert [n for n, _ in model.named_buffers()] == buffers
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    ff.convert(model, SETS)  # and it converts cleanly afterwards
    assert parametrize.is_parametrized(emb, "position_embeddings")


def test_frame_counts_must_divide_by_the_tubelet():
    model = build("videomae")
    with pytest.raises(ValueError, match=r"\[4, 8\] not divisible by the tubelet size 3"):
        ff.convert(videomae(tubelet_size=3, num_frames=12), [4, 6, 8])
    with pytest.raises(ValueError, match=r"\[5\] not divisible by the tubelet size 2"):
        ff.convert(model, [4, 5, 8])
    assert not ff.is_converted(model)  # nothing half-converted
    ff.convert(model, SETS)
    with pytest.raises(ValueError, match="tubelets of 2: a clip of 7 frames does not divide"):
        model(clip(7, True))


def test_a_bcthw_clip_given_to_a_btchw_model_names_the_layout():
    model = ff.convert(build("videomae"), SETS)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\) with C=3 at dim 2.*\.transpose\(1, 2\)"):
        model(clip(8, btchw=False))


def test_time_dim_is_found_and_pixel_values_keyword_works():
    model = ff.convert(build("timesformer"), SETS)
    assert ff.frame_sets(model) == SETS
    x4 = clip(4, True)
    with ff.frames(model, 4):
        want = model(x4).logits
    ff.set_frames(model, 16)  # the input picks the branch, not this
    out = model(labels=torch.tensor([0, 1]), pixel_values=x4)
    torch.testing.assert_close(out.logits, want)
    assert out.loss is not None


def test_frame_count_attributes_follow_the_clip_and_are_restored():
    tf = ff.convert(build("timesformer"), SETS)
    seen = []
    layer = tf.timesformer.encoder.layer[0]
    layer.register_forward_pre_hook(lambda m, a: seen.append(m.config.num_frames))
    tf(clip(4, True))
    assert seen == [4] and tf.config.num_frames == 8  # a saved config still says what was built
    mv = ff.convert(build("mvit_v2"), SETS, time_dim=2)
    mv.blocks[0].register_forward_pre_hook(lambda m, a: seen.append(a[1]))
    mv(clip(16, False))
    assert seen[-1] == (8, 8, 8) and mv.pos_encoding.temporal_size == 4


def test_auto_adapters_placement():
    def targets(model):
        return sorted({n.split(".parametrizations.")[0] for n, _ in model.named_parameters() if "scales" in n})

    vm = targets(ff.convert(build("videomae"), SETS, adapters="auto"))
    assert vm == [f"videomae.encoder.layer.{i}.attention.attention.{p}" for i in (0, 1)
                  for p in ("key", "query", "value")]
    ts = targets(ff.convert(build("timesformer"), SETS, adapters="auto"))
    assert ts == [f"timesformer.encoder.layer.{i}.attention.attention.qkv" for i in (0, 1)]
    mv = targets(ff.convert(build("mvit_v1"), SETS, adapters="auto", time_dim=2))
    assert mv == ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]


def test_specialize_bakes_the_table_and_calibrate_adds_one():
    model = ff.convert(build("vivit"), SETS)
    x4, x12 = clip(4, True), clip(12, True)
    with torch.no_grad():
        plain4, plain12 = ff.specialize(model, 4), ff.specialize(model, 12)
        torch.testing.assert_close(plain4(x4).logits, model(x4).logits)
        torch.testing.assert_close(plain12(x12).logits, model(x12).logits)
    assert plain4.vivit.embeddings.position_embeddings.shape == (1, 1 + 2 * 16, 64)
    assert not ff.is_converted(plain4) and not plain4.vivit._forward_pre_hooks
    vm = ff.specialize(ff.convert(build("videomae"), SETS), 4)
    assert set(vm.state_dict()) == set(build("videomae").state_dict())
    ff.calibrate(model, [{12: x12}], frames=12, progress=False)
    assert "12" in _table(model).tables and ff.frame_sets(model) == (4, 8, 12, 16)
    with pytest.raises(ValueError, match="tubelets of 2"):
        ff.calibrate(model, [{7: clip(7, True)}], frames=7, progress=False)
    assert ff.frame_sets(model) == (4, 8, 12, 16)


def test_plain_checkpoint_fans_out_to_every_table():
    plain = build("vivit", seed=1)
    model = ff.convert(build("vivit"), SETS)
    ff.load_state_dict(model, plain.state_dict())
    table, pos = _table(model), plain.vivit.embeddings.position_embeddings.detach()
    torch.testing.assert_close(model.vivit.embeddings.parametrizations.position_embeddings.original, pos)
    torch.testing.assert_close(table.tables["16"], resample_time(pos, 1, 4, 8))
    with torch.no_grad():
        torch.testing.assert_close(model(clip(8, True)).logits, plain(clip(8, True)).logits)


def test_register_temporal_for_your_own_model():
    class TinyVideoViT(nn.Module):
        def __init__(self, frames=8):
            super().__init__()
            self.num_frames = frames
            self.proj = nn.Conv3d(3, 16, (2, 8, 8), (2, 8, 8))
            self.pos_t = nn.Parameter(torch.randn(frames // 2, 16))  # one row per tubelet
            self.norm = nn.LayerNorm(16)
            self.head = nn.Linear(16, 5)

        def forward(self, x):  # (B, C, T, H, W)
            z = self.proj(x).flatten(3).transpose(1, 3).transpose(1, 2)  # (B, T/2, HW, D)
            assert z.shape[1] == self.num_frames // 2
            return self.head(self.norm(z + self.pos_t[:, None]).mean((1, 2)))

    ff.register_temporal(TinyVideoViT, layout="BCTHW", tables={"pos_t": 0}, follow={"num_frames": "frames"},
                         tubelet="proj.kernel_size", channels="proj.in_channels")
    try:
        torch.manual_seed(0)
        model = TinyVideoViT().eval()
        x = torch.randn(2, 3, 8, 16, 16)
        ref = model(x)
        ff.convert(model, SETS, time_dim=2)
        torch.testing.assert_close(model(x), ref)
        assert model(torch.randn(2, 3, 12, 16, 16)).shape == (2, 5)
        with pytest.raises(ValueError, match="tubelet size 2"):
            ff.convert(TinyVideoViT(), [3, 8])
    finally:
        from frameflex import temporal
        temporal._FAMILIES.pop(TinyVideoViT)


def test_profile_cascade_and_evaluate_take_a_transformers_model():
    from frameflex.evaluate import evaluate

    model = ff.convert(build("videomae"), SETS)
    rows = ff.profile(model, input_size=32, latency=False)  # clips built as (1, T, C, S, S)
    assert [r.frames for r in rows] == [4, 8, 16] and rows[0].gmacs < rows[1].gmacs < rows[2].gmacs
    clips = {t: clip(t, True) for t in SETS}
    out = ff.cascade(model, clips, threshold=1.0)
    with torch.no_grad():
        torch.testing.assert_close(out.logits, model(clips[16]).logits)
        labels = model(clips[8]).logits.argmax(1)
    batch = {t: x.transpose(1, 2) for t, x in clips.items()}  # a loader's (B, C, T, H, W)
    assert evaluate(model, [(batch, labels)], SETS, progress=False)["top1"][8] == 100.0


@pytest.mark.parametrize("converted", [True, False])
def test_evaluate_and_training_give_a_btchw_model_the_loaders_bcthw_clips(converted):
    from frameflex.evaluate import evaluate
    from frameflex.selection import input_time_dim
    from frameflex.training import MultiClipModel, train_one_epoch

    model = ff.convert(build("videomae"), SETS) if converted else build("videomae")  # the plain one: 8 frames only
    assert input_time_dim(model) == 1  # recorded by convert, or found for the plain class
    counts = (4, 8) if converted else (8,)
    batch = {t: clip(t, False) for t in counts}  # (B, C, T, H, W), as collate_clips gives them
    with torch.no_grad():
        want = {t: model(x.transpose(1, 2)).logits for t, x in batch.items()}
        labels = want[counts[0]].argmax(1)
        torch.testing.assert_close(MultiClipModel(model.eval())(batch), want)
    result = evaluate(model, [(batch, labels)], counts, progress=False)
    assert result["top1"] == {t: 100.0 * float((want[t].argmax(1) == labels).float().mean()) for t in counts}
    assert result["top1"][counts[0]] == 100.0
    with pytest.raises(ValueError, match=r"clip for T=8 has shape \(2, 8, 3, 32, 32\): clips from a loader are "
                                         r"\(B, C, T, H, W\).*looks like the model's layout already"):
        evaluate(model, [({8: batch[8].transpose(1, 2)}, labels)], (8,), progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sums = train_one_epoch(MultiClipModel(model), ff.FFNLoss(), opt, None, [(batch, labels)], "cpu", progress=False)
    assert sums["n"] == 1 and torch.isfinite(torch.tensor(sums["loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_frameflex_train_converts_a_transformers_builder_for_its_layout(tmp_path):
    from frameflex.selection import input_time_dim
    from frameflex.training.cli import main as train_main

    (tmp_path / "mine.py").write_text(
        "from transformers import VideoMAEConfig, VideoMAEForVideoClassification\n"
        "def build(num_classes):\n"
        "    return VideoMAEForVideoClassification(VideoMAEConfig(image_size=32, patch_size=8, num_frames=8,\n"
        "        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,\n"
        "        num_labels=num_classes))\n")
    out = tmp_path / "run"
    assert train_main(["--model", f"{tmp_path}/mine.py:build", "--frame-sets", "4", "8", "--synthetic",
                       "--synthetic-videos", "4", "--synthetic-val-videos", "2", "--batch-size", "2", "--input-size",
                       "32", "--workers", "0", "--threads", "1", "--no-progress", "--epochs", "1",
                       "--out", str(out)]) == 0
    model = ff.from_pretrained(out / "model", trust_remote_code=True)
    assert ff.frame_sets(model) == (4, 8) and input_time_dim(model) == 1


def test_full_size_mvit_v2_s_built_for_16_runs_at_4():
    import torchvision

    model = ff.convert(torchvision.models.video.mvit_v2_s(weights=None, num_classes=5).eval(), SETS)  # time_dim found
    with torch.no_grad():
        out = model(torch.randn(1, 3, 4, 224, 224))
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    assert model.pos_encoding.temporal_size == 8  # restored to what it was built with


@pytest.mark.parametrize("name", ["videomae", "vivit"])
def test_install_can_be_undone(name):
    from frameflex import temporal

    model = build(name)
    x = clip(8, True)
    with torch.no_grad():
        ref = model(x).logits
    keys = list(model.state_dict())
    undo = temporal.install(temporal.prepare(model, SETS), ff.layers.FrameState(SETS, 1))
    undo()
    assert list(model.state_dict()) == keys and not temporal.owner_hooks(model)
    assert not any(isinstance(m, TemporalTable) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, ref)


def test_torch_compile_follows_the_branch_switch():
    # backend="eager": dynamo's tracing and guards (what a branch switch could break) in seconds;
    # inductor compiles the same graphs.
    model = ff.convert(build("videomae"), SETS)
    compiled = torch.compile(model, backend="eager")
    with torch.no_grad():
        for t in (4, 8, 4):  # the second 4 reuses its graph: the guards must see the switch back
            x = clip(t, True)
            torch.testing.assert_close(compiled(x).logits, model(x).logits, atol=1e-5, rtol=0)
