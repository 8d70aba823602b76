"""Tiny models shared by the tests, built the way users build theirs."""
from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

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


@pytest.fixture
def shared_net():
    return build("shared_bn3d")
