"""ff.profile: multiply-adds per view, parameters and latency per frame count."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import frameflex as ff


def test_count_gmacs_counts_one_per_multiply_add():
    conv = nn.Conv3d(3, 8, (3, 5, 5), padding=(1, 2, 2), bias=False)
    x = torch.randn(1, 3, 4, 16, 16)
    macs = 8 * 4 * 16 * 16 * (3 * 3 * 5 * 5)  # outputs x MACs per output
    assert ff.flops.count_gmacs(conv, x) == pytest.approx(macs / 1e9)


def test_profile_rows_per_frame_count():
    plain = torchvision.models.video.r3d_18(num_classes=5)
    model = ff.convert(plain, [4, 8], adapters="auto", time_dim=2, inplace=False)
    rows = ff.profile(model, input_size=32, repeats=1)
    assert [r.frames for r in rows] == [4, 8]
    assert 1.8 < rows[1].gmacs / rows[0].gmacs < 2.1  # a 3D CNN grows ~linearly in T
    plain_rows = ff.profile(plain, frame_sets=[4, 8], input_size=32, latency=False)
    assert rows[0].params_m > plain_rows[0].params_m  # private norms and adapters are counted
    assert plain_rows[0].latency_ms is None and rows[0].latency_ms > 0
    assert rows[0].gmacs == pytest.approx(plain_rows[0].gmacs, rel=0.01)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="frame_sets"):
        ff.profile(plain)


PUBLISHED = [(name, t, size, gmacs) for name in ff.list_models()
             for (t, size), gmacs in ff.models._registry.get_spec(name).published_gmacs.items()]


@pytest.mark.parametrize("name,frames,size,published", PUBLISHED,
                         ids=[f"{n}-{t}x{s}" for n, t, s, _ in PUBLISHED])
def test_zoo_compute_is_within_2_percent_of_the_papers(name, frames, size, published):
    spec = ff.models._registry.get_spec(name)
    with torch.device("meta"):
        model = ff.create_model(name, num_classes=174, frame_sets=spec.frame_sets)
    (row,) = ff.profile(model, frame_sets=[frames], input_size=size)
    assert row.gmacs == pytest.approx(published, rel=0.02)


def test_profile_restores_every_submodule_mode():
    model = ff.convert(torchvision.models.video.r3d_18(num_classes=5), [4], time_dim=2).train()
    model.fc.eval()
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append(any(x.training for x in m.modules())))
    ff.profile(model, input_size=16, latency=False)
    hook.remove()
    assert seen == [False]
    assert model.training and model.layer1.training and not model.fc.training


class _Attention(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.qkv, self.heads = nn.Linear(dim, 3 * dim, bias=False), heads

    def forward(self, x):  # (B, N, dim)
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return nn.functional.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_attention_is_counted_on_real_tensors_and_on_meta(device):
    b, n, d = 2, 10, 16
    model = _Attention(d).to(device)
    qkv = b * n * d * 3 * d
    attention = b * n * n * d * 2  # q @ k^T and weights @ v, summed over the heads
    assert ff.flops.count_gmacs(model, torch.randn(b, n, d, device=device)) == pytest.approx((qkv + attention) / 1e9)


def test_a_zoo_transformer_counts_the_same_on_cpu_and_on_meta():
    model = ff.create_model("uniformer_s", num_classes=7, frame_sets=[4, 8])
    with torch.device("meta"):
        meta = ff.create_model("uniformer_s", num_classes=7, frame_sets=[4, 8])
    on_cpu = ff.profile(model, input_size=32, latency=False)
    on_meta = ff.profile(meta, input_size=32)
    assert [r.gmacs for r in on_cpu] == pytest.approx([r.gmacs for r in on_meta], rel=1e-9)


def test_an_op_without_a_formula_is_named_not_silently_dropped():
    class MatVec(nn.Module):
        def forward(self, x):
            return torch.mv(torch.ones(3, x.shape[0]), x)

    with pytest.warns(UserWarning, match=r"no FLOP formula for aten\.mv on cpu"):
        ff.flops.count_gmacs(MatVec(), torch.randn(4))
