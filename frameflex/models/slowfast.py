"""SlowFast: a slow, wide pathway and a fast, thin one, fused fast-to-slow (Feichtenhofer et al., ICCV 2019).

The official PySlowFast model (facebookresearch/SlowFast, ``slowfast/models/video_model_builder.py``
class ``SlowFast`` with ``resnet_helper``, ``stem_helper`` and ``head_helper``; configs
``SLOWFAST_8x8_R50`` and ``SLOWFAST_4x16_R50``), taking ONE tensor: the fast clip
(B, 3, T, H, W). The slow clip is taken from it inside the model exactly as the official
data loader does (``index_select(fast, T-dim, linspace(0, T-1, T // alpha).long())``),
so T must be a multiple of alpha. The head averages globally, so any such T and any
H, W run; its output is logits (PySlowFast's head applies softmax in eval mode; this
one never does). PySlowFast's ``pathway{0,1}_pool`` (1x1x1 max-pools, no-ops) are left out.

Module names are PySlowFast's state-dict keys, so its files load without renames:

- ``s1.pathway{0,1}_stem.{conv,bn}``: the slow / fast stems (conv, BN, ReLU, max-pool);
- ``s{1..4}_fuse.{conv_f2s,bn}``: fast-to-slow fusion after each of s1..s4 (:class:`FuseFastToSlow`);
- ``s{2..5}.pathway{p}_res{i}``: :class:`ResBlock` with ``branch1``/``branch1_bn`` (projection
  shortcut of a stage's first block) and ``branch2.{a,b,c}`` / ``branch2.{a,b,c}_bn``;
- ``head.projection`` (Linear 2304 -> classes).

FFN (Frame Flexible Network) puts its adapter at the input of every bottleneck's residual
branch (``branch2``), in both pathways; the shortcut sees the unscaled input. That is the
input of ``branch2.a``: :data:`SLOWFAST_ADAPTERS`.

Checkpoints (``ff.import_checkpoint``): PySlowFast and FFN-pytorch training files
(``model_state``), and pytorchvideo's ``SLOWFAST_8x8_R50.pyth`` (renamed). Channel order is
the data pipeline's business: FFN's Something-Something config sets
``DATA.REVERSE_INPUT_CHANNEL: True``, so its released weights expect BGR clips. The original
Caffe2 ``.pkl`` zoo files are pickles of numpy blobs and are not read.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._recipe import Recipe
from ._registry import CheckpointRules, register_model

__all__ = [
    "SLOWFAST_ADAPTERS", "BottleneckTransform", "FuseFastToSlow", "ResBlock", "ResNetBasicHead", "ResNetBasicStem",
    "ResStage", "SlowFast", "VideoModelStem", "slow_indices", "slowfast_r50", "slowfast_r50_4x16",
]

#: FFN's adapter placement (BeSpontaneous/FFN-pytorch ``resnet_helper_FFN.py``: ``adaconv_T`` at
#: the start of every ``BottleneckTransform_FFN``, all stages, both pathways): the input of ``branch2.a``.
SLOWFAST_ADAPTERS = (r"s[2-5]\.pathway[01]_res\d+\.branch2\.a",)

#: Kinetics statistics on [0, 1] RGB (PySlowFast's DATA.MEAN / DATA.STD).
SLOWFAST_MEAN = (0.45, 0.45, 0.45)
SLOWFAST_STD = (0.225, 0.225, 0.225)

_STAGE_DEPTHS = (3, 4, 6, 3)  # ResNet-50
# Temporal kernel of the stem and of every block's branch2.a, per stage (s1..s5): (slow, fast).
_TEMPORAL_KERNELS = ((1, 5), (1, 3), (1, 3), (3, 3), (3, 3))


def slow_indices(frames: int, alpha: int) -> Tensor:
    """The fast-clip frames the slow pathway sees: PySlowFast's ``linspace(0, T-1, T // alpha).long()``.

    Not ``[::alpha]``: the first and last frames are always kept.

    >>> slow_indices(32, 4).tolist()
    [0, 4, 8, 13, 17, 22, 26, 31]
    """
    if frames % alpha or frames < alpha:
        raise ValueError(f"SlowFast needs a fast clip whose frame count T is a positive multiple of "
                         f"alpha={alpha} (the slow pathway takes T // alpha frames); got T={frames}")
    return torch.linspace(0, frames - 1, frames // alpha).long()


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


class ResNetBasicStem(nn.Module):
    """conv (Tx7x7, stride 1x2x2) -> BN -> ReLU -> max-pool (1x3x3, stride 1x2x2)."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(dim_in, dim_out, (temporal_kernel, 7, 7), stride=(1, 2, 2),
                              padding=(temporal_kernel // 2, 3, 3), bias=False)
        self.bn = _bn(dim_out)
        self.relu = nn.ReLU(inplace=True)
        self.pool_layer = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool_layer(self.relu(self.bn(self.conv(x))))


class VideoModelStem(nn.Module):
    """One :class:`ResNetBasicStem` per pathway (``pathway0_stem`` slow, ``pathway1_stem`` fast)."""

    def __init__(self, dim_in: Sequence[int], dim_out: Sequence[int], temporal_kernels: Sequence[int]) -> None:
        super().__init__()
        for p, (i, o, k) in enumerate(zip(dim_in, dim_out, temporal_kernels)):
            self.add_module(f"pathway{p}_stem", ResNetBasicStem(i, o, k))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [getattr(self, f"pathway{p}_stem")(x) for p, x in enumerate(xs)]


class FuseFastToSlow(nn.Module):
    """Fast features -> temporal conv (k x 1 x 1, stride alpha) -> BN -> ReLU, concatenated onto the slow ones."""

    def __init__(self, dim_in: int, channel_ratio: int, kernel: int, alpha: int) -> None:
        super().__init__()
        self.conv_f2s = nn.Conv3d(dim_in, dim_in * channel_ratio, (kernel, 1, 1), stride=(alpha, 1, 1),
                                  padding=(kernel // 2, 0, 0), bias=False)
        self.bn = _bn(dim_in * channel_ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        slow, fast = xs
        return [torch.cat([slow, self.relu(self.bn(self.conv_f2s(fast)))], 1), fast]


class BottleneckTransform(nn.Module):
    """``a`` (Tx1x1) -> BN -> ReLU -> ``b`` (1x3x3, spatial stride) -> BN -> ReLU -> ``c`` (1x1x1) -> BN."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int, stride: int, dim_inner: int) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0),
                           bias=False)
        self.a_bn = _bn(dim_inner)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                           bias=False)
        self.b_bn = _bn(dim_inner)
        self.b_relu = nn.ReLU(inplace=True)
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = _bn(dim_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        x = self.b_relu(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class ResBlock(nn.Module):
    """ReLU(shortcut(x) + branch2(x)); the shortcut is ``branch1`` + ``branch1_bn`` when the shape changes."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int, stride: int, dim_inner: int) -> None:
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.branch1 = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.branch1_bn = _bn(dim_out)
        self.branch2 = BottleneckTransform(dim_in, dim_out, temporal_kernel, stride, dim_inner)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.branch1_bn(self.branch1(x)) if hasattr(self, "branch1") else x
        return self.relu(shortcut + self.branch2(x))


class ResStage(nn.Module):
    """``depth`` :class:`ResBlock` per pathway (``pathway{p}_res{i}``); the first block strides."""

    def __init__(self, dim_in: Sequence[int], dim_out: Sequence[int], dim_inner: Sequence[int],
                 temporal_kernels: Sequence[int], stride: int, depth: int) -> None:
        super().__init__()
        self.depth = depth
        for p in range(len(dim_in)):
            for i in range(depth):
                self.add_module(f"pathway{p}_res{i}", ResBlock(
                    dim_in[p] if i == 0 else dim_out[p], dim_out[p], temporal_kernels[p],
                    stride if i == 0 else 1, dim_inner[p]))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out = []
        for p, x in enumerate(xs):
            for i in range(self.depth):
                x = getattr(self, f"pathway{p}_res{i}")(x)
            out.append(x)
        return out


class ResNetBasicHead(nn.Module):
    """Global average pool per pathway, concatenate, dropout, ``projection``; logits (no softmax)."""

    def __init__(self, dim_in: Sequence[int], num_classes: int, dropout: float) -> None:
        super().__init__()
        for p in range(len(dim_in)):
            self.add_module(f"pathway{p}_avgpool", nn.AdaptiveAvgPool3d(1))
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(sum(dim_in), num_classes)

    def forward(self, xs: list[Tensor]) -> Tensor:
        x = torch.cat([getattr(self, f"pathway{p}_avgpool")(x) for p, x in enumerate(xs)], 1).flatten(1)
        return self.projection(self.dropout(x))


class SlowFast(nn.Module):
    """SlowFast ResNet-50; input the fast clip (B, 3, T, H, W) with T a multiple of ``alpha``, output logits.

    Args:
        num_classes: classes of ``head.projection``.
        alpha: fast / slow frame-rate ratio (8x8: 4, 4x16: 8).
        beta_inv: slow / fast channel ratio (8).
        fusion_kernel: temporal kernel of the fast-to-slow fusion conv (8x8: 7, 4x16: 5).
        fusion_ratio: fusion conv output channels / fast channels (2).
        dropout: dropout before ``head.projection`` (0.5).
        width: slow stem channels (64).

    Example:
        >>> model = SlowFast(num_classes=5).eval()
        >>> model(torch.randn(1, 3, 32, 64, 64)).shape  # slow pathway: 8 frames
        torch.Size([1, 5])
    """

    def __init__(self, num_classes: int, alpha: int = 4, beta_inv: int = 8, fusion_kernel: int = 7,
                 fusion_ratio: int = 2, dropout: float = 0.5, width: int = 64) -> None:
        super().__init__()
        for name, v in (("num_classes", num_classes), ("alpha", alpha), ("beta_inv", beta_inv),
                        ("fusion_kernel", fusion_kernel), ("fusion_ratio", fusion_ratio), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if width % beta_inv:
            raise ValueError(f"width={width} must be divisible by beta_inv={beta_inv}")
        self.alpha = alpha
        fast = width // beta_inv
        fused = fast * fusion_ratio  # channels the fusion adds to the slow pathway

        self.s1 = VideoModelStem((3, 3), (width, fast), _TEMPORAL_KERNELS[0])
        self.s1_fuse = FuseFastToSlow(fast, fusion_ratio, fusion_kernel, alpha)
        dim_in = (width + fused, fast)
        for s, depth in enumerate(_STAGE_DEPTHS, start=2):
            mult = 2 ** (s - 2)  # s2: 1, s3: 2, s4: 4, s5: 8
            dim_out = (width * 4 * mult, fast * 4 * mult)
            dim_inner = (width * mult, fast * mult)
            stride = 1 if s == 2 else 2
            self.add_module(f"s{s}", ResStage(dim_in, dim_out, dim_inner, _TEMPORAL_KERNELS[s - 1], stride, depth))
            if s < 5:
                self.add_module(f"s{s}_fuse", FuseFastToSlow(dim_out[1], fusion_ratio, fusion_kernel, alpha))
                dim_in = (dim_out[0] + dim_out[1] * fusion_ratio, dim_out[1])
        self.num_features = sum(dim_out)
        self.head = ResNetBasicHead(dim_out, num_classes, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # PySlowFast's init_weights: MSRA fill for convs, zero gamma for each bottleneck's last BN,
        # N(0, 0.01) for the classifier.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 0.0 if name.endswith("branch2.c_bn") else 1.0)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def pathways(self, x: Tensor) -> list[Tensor]:
        """[slow, fast] clips from the fast clip, as PySlowFast's data loader makes them."""
        if x.dim() != 5:
            raise ValueError(f"SlowFast expects one fast clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        return [x.index_select(2, slow_indices(x.shape[2], self.alpha).to(x.device)), x]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The s5 features [slow, fast] of the fast clip ``x``."""
        xs = self.s1_fuse(self.s1(self.pathways(x)))
        for s in (2, 3, 4):
            xs = getattr(self, f"s{s}_fuse")(getattr(self, f"s{s}")(xs))
        return self.s5(xs)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


# checkpoints ------------------------------------------------------------------------------

def _pytorchvideo_renames() -> tuple[tuple[str, str], ...]:
    # pytorchvideo's create_slowfast (SLOWFAST_8x8_R50.pyth) is PySlowFast with other names:
    # blocks.0 = stem + s1_fuse, blocks.1-4 = s2-s5 (+ s2-s4_fuse), blocks.6.proj = head.projection.
    # Every pattern is anchored on a pytorchvideo-only name, so PySlowFast keys pass untouched.
    renames = [
        (r"^blocks\.0\.multipathway_blocks\.(\d)\.conv\.", r"s1.pathway\1_stem.conv."),
        (r"^blocks\.0\.multipathway_blocks\.(\d)\.norm\.", r"s1.pathway\1_stem.bn."),
        (r"^blocks\.6\.proj\.", "head.projection."),
    ]
    for i in range(4):
        renames += [(rf"^blocks\.{i}\.multipathway_fusion\.conv_fast_to_slow\.", f"s{i + 1}_fuse.conv_f2s."),
                    (rf"^blocks\.{i}\.multipathway_fusion\.norm\.", f"s{i + 1}_fuse.bn.")]
    for s in range(1, 5):
        renames.append((rf"^blocks\.{s}\.multipathway_blocks\.(\d)\.res_blocks\.(\d+)\.",
                        rf"s{s + 1}.pathway\1_res\2."))
    renames += [
        (r"^(s[2-5]\.pathway\d_res\d+)\.branch1_conv\.", r"\1.branch1."),
        (r"^(s[2-5]\.pathway\d_res\d+)\.branch1_norm\.", r"\1.branch1_bn."),
        (r"^(s[2-5]\.pathway\d_res\d+)\.branch2\.conv_([abc])\.", r"\1.branch2.\2."),
        (r"^(s[2-5]\.pathway\d_res\d+)\.branch2\.norm_([abc])\.", r"\1.branch2.\2_bn."),
    ]
    return tuple(renames)


def _rules(alpha: int, signature: str | None) -> CheckpointRules:
    # PySlowFast keys are ours. FFN files (FFN-pytorch, `model_state`) add `_T` to private norms
    # (`a_bn_4`, `branch1_bn_8`, `s1_fuse.bn_16`, stems' `bn_T`), T counting SLOW frames: times
    # alpha it is our (fast) frame count. `branch2.adaconv_T` scales the input of `branch2.a`.
    return CheckpointRules(
        renames=_pytorchvideo_renames(),
        adapter=(r"(s[2-5]\.pathway\d_res\d+\.branch2)\.adaconv\.weight", r"\1.a"),
        head="head.projection.weight",
        signature=signature,
        frame_scale=alpha,
    )


#: Fusion convs exist only in SlowFast: PySlowFast / FFN or pytorchvideo names.
_SIGNATURE = r"^(s1_fuse\.conv_f2s|blocks\.0\.multipathway_fusion\.conv_fast_to_slow)\.weight$"

SLOWFAST_RECIPE = Recipe(
    "slowfast", "sgd", lr=0.03, batch_size=16, epochs=22, schedule="step", lr_steps=(14, 18), warmup_epochs=0.19,
    warmup_lr=1e-4, weight_decay=1e-6, nesterov=True, norm_decay=False, dropout=0.5,
    source="FFN-pytorch 3D_Network/configs/sth/SLOWFAST_16x8_R50_FFN.yaml (STEPS [0,14,18], LRS 1/0.1/0.01) "
           "with PySlowFast defaults (nesterov, BN weight decay 0)",
)

_COMMON = {"adapters": SLOWFAST_ADAPTERS, "input_size": 224, "mean": SLOWFAST_MEAN, "std": SLOWFAST_STD,
           "recipe": SLOWFAST_RECIPE}


@register_model("slowfast_r50", frame_sets=(16, 32, 64), **_COMMON,
                published_gmacs={(16, 224): 25.3, (32, 224): 50.7, (64, 224): 101.3,
                                 (16, 256): 33.1, (32, 256): 66.2, (64, 256): 132.3},
                checkpoint_rules=_rules(alpha=4, signature=_SIGNATURE))
def slowfast_r50(num_classes: int, **kwargs) -> SlowFast:
    """SlowFast-R50 8x8 (alpha 4, fusion kernel 7), 34.6M parameters; FFN's SlowFast (fast 16/32/64 frames).

    ``kwargs`` go to :class:`SlowFast` (e.g. ``dropout``, ``width``).
    """
    return SlowFast(num_classes, alpha=4, fusion_kernel=7, **kwargs)


# Same keys as slowfast_r50 (only the fusion kernel differs): auto-detection tries both and
# keeps the one whose shapes fit.
@register_model("slowfast_r50_4x16", frame_sets=(16, 32, 64), **_COMMON,
                published_gmacs={(32, 224): 27.82, (32, 256): 36.34},
                checkpoint_rules=_rules(alpha=8, signature=_SIGNATURE))
def slowfast_r50_4x16(num_classes: int, **kwargs) -> SlowFast:
    """SlowFast-R50 4x16 (alpha 8, fusion kernel 5), 34.5M parameters.

    ``kwargs`` go to :class:`SlowFast` (e.g. ``dropout``, ``width``).
    """
    return SlowFast(num_classes, alpha=8, fusion_kernel=5, **kwargs)
