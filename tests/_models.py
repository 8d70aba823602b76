"""Tiny models shared by the tests, built the way users build theirs.

A module of its own, not conftest.py: processes the tests spawn import it by name, and the
repository root has a conftest.py too (for the doctests)."""
from __future__ import annotations

import timm
import torch
import torchvision
from torch import nn

import frameflex as ff

# Tiny inputs: one thread is fastest, and steady when other jobs share the cores.
torch.set_num_threads(1)


class TSN(nn.Module):
    """A 2D image model used on video TSN-style: frames folded into the batch, logits averaged."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        y = self.backbone(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.view(b, t, -1).mean(1)


class SharedNormNet(nn.Module):
    """Two conv stages that share ONE BatchNorm3d object (a norm with two parents)."""

    def __init__(self, classes: int = 5):
        super().__init__()
        bn = nn.BatchNorm3d(8)
        self.stage1 = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), bn, nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv3d(8, 8, 3, padding=1), bn, nn.ReLU())
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        return self.head(self.stage2(self.stage1(x)).mean((2, 3, 4)))


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial affine weights and running statistics, so copies are really checked."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(m, name, None)
                if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() == 1 and not isinstance(
                        m, (nn.Linear, nn.modules.conv._ConvNd)):
                    r = torch.rand(t.shape, generator=g)
                    t.copy_(0.5 + r if name in ("weight", "running_var") else r - 0.5)
    return model


# (name, builder, input size (H=W), has "auto" adapter blocks)
ZOO = {
    "timm_resnet18_tsn": (lambda: TSN(timm.create_model("resnet18", num_classes=5)), 32, True),
    "timm_convnext_atto": (lambda: TSN(timm.create_model("convnext_atto", num_classes=5)), 32, True),
    "timm_vit_tiny": (lambda: TSN(timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=5)), 32, True),
    "timm_efficientnet_b0": (lambda: TSN(timm.create_model("efficientnet_b0", num_classes=5)), 32, True),
    "tv_r3d_18": (lambda: torchvision.models.video.r3d_18(num_classes=5), 32, True),
    "tv_r2plus1d_18": (lambda: torchvision.models.video.r2plus1d_18(num_classes=5), 32, True),
    "tv_swin3d_t": (lambda: torchvision.models.video.swin3d_t(num_classes=5), 32, True),
    "shared_bn3d": (lambda: SharedNormNet(), 16, False),
}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomize_norms(ZOO[name][0](), seed).eval()


def clip(frames: int, size: int = 32, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed + frames))


def trained_like(name: str = "tv_r3d_18", adapters="auto", frame_sets=(4, 8, 16)) -> nn.Module:
    """A converted model whose branches differ, as after FFN training."""
    model = ff.convert(build(name), frame_sets, adapters=adapters, time_dim=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                for p in m.scales.values():
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            if isinstance(m, ff.FrameNorm):
                for b in m.branches.values():
                    b.running_mean.add_(0.1 * torch.randn(b.running_mean.shape, generator=g))
    return model.eval()
