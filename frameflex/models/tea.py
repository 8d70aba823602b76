"""TEA: Temporal Excitation and Aggregation on Res2Net-50 26w4s (Li et al., CVPR 2020).

The 2D backbone sees the frames as a batch (B*T, C, H, W), as in TSM. Each
Res2Net block gains two temporal modules:

- ``me`` (motion excitation): channel attention from the difference between a
  feature at t+1 (after a depthwise 3x3 conv) and at t, ``x + x * (sigmoid(.) - 0.5)``;
- ``shifts.i`` (multiple temporal aggregation, MTA): before each split's 3x3 conv,
  a depthwise Conv1d over time (kernel 3) initialised as identity (splits 0-2) or
  as TSM's shift (the last split).

Per-frame logits from ``fc`` are averaged over T, so any T works.

Module names (stable, used by checkpoints): ``backbone.*`` is timm's
``res2net50_26w_4s`` layout (``conv1, bn1, layerN.i.{conv1, bn1, convs.j, bns.j,
conv3, bn3, downsample.{0,1}}``) plus ``layerN.i.me.{conv1, bn1, conv2, conv3, bn3}``
and ``layerN.i.shifts.j.conv`` (the official TEA names); ``fc`` is the official
``new_fc``. timm's ImageNet weights load with ``strict=False`` (``me``/``shifts`` missing).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from timm.models.res2net import Bottle2neck
from timm.models.resnet import ResNet

from ._recipe import Recipe
from ._registry import IMAGENET_MEAN, IMAGENET_STD, CheckpointRules, register_model
from ._temporal import PerFrameModel

__all__ = ["MotionExcitation", "TemporalAggregation", "TEABottleneck", "TEA", "tea_r50", "TEA_CHECKPOINT_RULES"]


def _frames_of(module: nn.Module, x: Tensor) -> int:
    """The clip length set by the enclosing :class:`TEA`, checked against the batch."""
    t = module.num_frames
    if t is None:
        raise RuntimeError(
            f"{type(module).__name__}.num_frames is not set: call the enclosing TEA model with a "
            "(B, C, T, H, W) clip, or set num_frames yourself before calling the module")
    if x.shape[0] % t:
        raise ValueError(f"batch of {x.shape[0]} frames is not divisible by num_frames={t}")
    return t


class MotionExcitation(nn.Module):
    """TEA's ME module: excite the channels that move between neighbouring frames.

    With b = bn1(conv1(x)) (C -> C/reduction): diff[t] = conv2(b)[t+1] - b[t], the
    last frame zero; y = sigmoid(bn3(conv3(mean_hw(diff)))) - 0.5; out = x + x * y.
    ``num_frames`` is set by the enclosing :class:`TEA` for one call (like
    :class:`frameflex.models.tsm.TemporalShift`).

    Example:
        >>> me = MotionExcitation(32).eval()
        >>> me.num_frames = 4
        >>> me(torch.randn(8, 32, 5, 5)).shape  # 2 clips of 4 frames
        torch.Size([8, 32, 5, 5])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"MotionExcitation: channels={channels} // reduction={reduction} is 0")
        squeezed = channels // reduction
        self.conv1 = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(squeezed)
        self.conv2 = nn.Conv2d(squeezed, squeezed, 3, padding=1, groups=squeezed, bias=False)
        self.conv3 = nn.Conv2d(squeezed, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.num_frames: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        t = _frames_of(self, x)
        b = self.bn1(self.conv1(x))
        moved = self.conv2(b)
        b, moved = b.view(-1, t, *b.shape[1:]), moved.view(-1, t, *moved.shape[1:])
        diff = F.pad(moved[:, 1:] - b[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))  # zero for the last frame
        y = diff.flatten(0, 1).mean((2, 3), keepdim=True)
        y = torch.sigmoid(self.bn3(self.conv3(y))) - 0.5
        return x + x * y


class TemporalAggregation(nn.Module):
    """TEA's MTA temporal op: a depthwise Conv1d over time (kernel 3, zero padded), per pixel.

    ``out[t] = w0 * x[t-1] + w1 * x[t] + w2 * x[t+1]`` per channel, the official
    ``ShiftModule`` (which permutes to (N*H*W, C, T) and runs ``conv``). The weight
    stays a Conv1d (key ``conv.weight``, shape (C, 1, 3)). ``init="identity"``: w1 = 1;
    ``init="shift"``: the first half of the channels take t+1, the second half t-1.

    Example:
        >>> mta = TemporalAggregation(4, init="shift")
        >>> mta.num_frames = 3
        >>> x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 4, 1, 1)  # value = frame
        >>> mta(x)[:, :, 0, 0].tolist()
        [[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
    """

    def __init__(self, channels: int, init: str = "identity") -> None:
        super().__init__()
        if init not in ("identity", "shift"):
            raise ValueError(f'TemporalAggregation init must be "identity" or "shift", got {init!r}')
        self.conv = nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            if init == "identity":
                self.conv.weight[:, 0, 1] = 1
            else:
                half = channels // 2
                self.conv.weight[:half, 0, 2] = 1  # frame t takes t+1
                self.conv.weight[half:, 0, 0] = 1  # frame t takes t-1
        self.num_frames: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        t = _frames_of(self, x)
        nt, c, h, w = x.shape
        x = x.view(nt // t, t, c, h, w)
        taps = self.conv.weight.reshape(c, 3).t().reshape(3, 1, 1, c, 1, 1)
        out = x * taps[1]
        out[:, 1:].addcmul_(x[:, :-1], taps[0])  # in place: one pass per tap
        out[:, :-1].addcmul_(x[:, 1:], taps[2])
        return out.view(nt, c, h, w)


class TEABottleneck(Bottle2neck):
    """timm's Res2Net block with TEA's ``me`` after conv1 and a ``shifts[i]`` before each split.

    Same keys as timm's ``Bottle2neck`` plus ``me.*`` and ``shifts.{0..scale-1}.conv``.
    The last split goes through ``shifts[-1]`` (a shift at init) only, then AvgPool in
    a stage's first block, as in the official ``Bottle2neckShift``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 *, scale: int = 4, me_reduction: int = 16, **kwargs) -> None:
        super().__init__(inplanes, planes, stride, downsample, scale=scale, **kwargs)
        if scale < 2:
            raise ValueError(f"TEABottleneck needs scale >= 2 (the last split is TEA's shift), got {scale}")
        self.me = MotionExcitation(self.width * scale, me_reduction)
        self.shifts = nn.ModuleList(
            [TemporalAggregation(self.width, "identity") for _ in range(self.num_scales)]
            + [TemporalAggregation(self.width, "shift")])

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        out = self.me(self.relu(self.bn1(self.conv1(x))))
        spx = torch.split(out, self.width, 1)
        spo = []
        sp = spx[0]
        for i, (shift, conv, bn) in enumerate(zip(self.shifts, self.convs, self.bns)):
            sp = spx[i] if i == 0 or self.is_first else sp + spx[i]
            sp = self.relu(bn(conv(shift(sp))))
            spo.append(sp)
        last = self.shifts[-1](spx[-1])
        spo.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(self.drop_block(torch.cat(spo, 1))))
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return self.relu(out + shortcut)


_TEMPORAL = (MotionExcitation, TemporalAggregation)


class TEA(PerFrameModel):
    """A Res2Net with TEA blocks, TSN-style; input (B, C, T, H, W), output logits.

    Args:
        backbone: a timm ResNet built with ``block=TEABottleneck`` and ``num_classes=0``
            (any module holding TEA's temporal modules and a ``num_features`` works).
        num_classes: classes of the new per-frame classifier.
        dropout: dropout before ``fc`` (official TEA: 0.5).

    Example:
        >>> model = tea_r50(num_classes=5).eval()
        >>> model(torch.randn(2, 3, 8, 64, 64)).shape  # any T works
        torch.Size([2, 5])
    """

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        num_features = getattr(backbone, "num_features", None)
        if not isinstance(num_features, int):
            raise ValueError(f"cannot tell the feature size of {type(backbone).__name__}: give it a "
                             "`num_features` attribute (timm models built with num_classes=0 have one)")
        if not any(isinstance(m, _TEMPORAL) for m in backbone.modules()):
            raise ValueError(f"{type(backbone).__name__} has no TEA modules (MotionExcitation / "
                             "TemporalAggregation); build it with block=TEABottleneck")
        self.backbone = backbone
        self.num_features = num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.001)  # the official new_fc init
        nn.init.zeros_(self.fc.bias)

    def temporal_modules(self) -> Iterator[nn.Module]:
        """Every ME and MTA module: the ones that need the clip's T."""
        return (m for m in self.modules() if isinstance(m, _TEMPORAL))


def _tea_res2net(layers: tuple[int, ...], base_width: int = 26, scale: int = 4) -> ResNet:
    # zero_init_last=False: the official Res2Net init leaves bn3 at 1.
    return ResNet(block=TEABottleneck, layers=layers, base_width=base_width, block_args=dict(scale=scale),
                  num_classes=0, zero_init_last=False)


#: Official TEA keys (after ``module.`` and the FFN suffix ``_4/_8/_16`` are removed) -> ours.
#: FFN files split the downsample into ``downsample_conv`` + ``downsample_bn_T``; plain files
#: already use ``downsample.0/1``. ``bns_4.0`` loses its suffix first and becomes ``bns.0``.
TEA_CHECKPOINT_RULES = CheckpointRules(
    renames=(
        (r"^base_model\.", "backbone."),
        (r"^new_fc\.", "fc."),
        (r"\.downsample_conv\.", ".downsample.0."),
        (r"\.downsample_bn\.", ".downsample.1."),
    ),
    head="fc.weight",
    signature=r"\.me\.conv1\.weight$",
)


#: TSM's recipe with TEA's lr and steps (FFN-pytorch 2D_Network/exp/tea_sthv1_FFN/run.sh).
TEA_RECIPE = Recipe(
    "tea", "sgd", lr=0.02, batch_size=32, epochs=50, schedule="step", lr_steps=(30, 40, 45), weight_decay=5e-4,
    bias_lr_mult=2.0, bias_decay=False, norm_decay=False, head_lr_mult=5.0, head_bias_lr_mult=10.0,
    clip_grad=20.0, dropout=0.5, source="FFN-pytorch 2D_Network/exp/tea_sthv1_FFN/run.sh; otherwise as tsm",
)


@register_model(
    "tea_r50",
    frame_sets=(4, 8, 16),
    adapters=None,  # TEA-FFN has no adapter: private norms only
    input_size=224,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    published_gmacs={(8, 224): 34.74, (16, 224): 69.49},
    checkpoint_rules=TEA_CHECKPOINT_RULES,
    recipe=TEA_RECIPE,
)
def tea_r50(num_classes: int, dropout: float = 0.5, **kwargs) -> TEA:
    """TEA on Res2Net-50 26w4s (CVPR 2020); FFN's TEA-R50, ImageNet init = timm res2net50_26w_4s.in1k.

    Example:
        >>> model = ff.create_model("tea_r50", num_classes=174, frame_sets=[4, 8, 16])
    """
    return TEA(_tea_res2net((3, 4, 6, 3), **kwargs), num_classes=num_classes, dropout=dropout)
