"""TSM: Temporal Shift Module on a 2D ResNet (Lin et al., ICCV 2019).

The 2D backbone sees the frames as a batch (B*T, C, H, W). In every residual
block the input of ``conv1`` is shifted in time (1/8 of the channels take the
next frame, 1/8 the previous one); the shortcut sees the unshifted input.
Per-frame logits from ``fc`` are averaged over T, so any T works.

Module names (stable, used by checkpoints and by ``frameflex.convert``'s
``adapters`` patterns):

- ``backbone.*``: the 2D ResNet, unchanged names except that each block's
  ``conv1`` is now a :class:`TemporalShift` wrapper: ``backbone.layer1.0.conv1.net.weight``
  (the same ``.net`` as the official TSM checkpoints).
- ``fc.weight``, ``fc.bias``: the new per-frame classifier (official ``new_fc``).

Zoo: ``tsm_r50`` (timm ``resnet50``, the official TSM-R50 and FFN's TSM) and ``tsm_tiny``
(a small model for tests and demos). ``ff.import_checkpoint`` reads the official TSM
(mit-han-lab/temporal-shift-module) and FFN-TSM (BeSpontaneous/FFN-pytorch) files.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ._recipe import Recipe
from ._registry import IMAGENET_MEAN, IMAGENET_STD, CheckpointRules, register_model
from ._temporal import PerFrameModel

__all__ = ["temporal_shift", "TemporalShift", "TSM", "tsm_tiny", "tsm_r50", "TSM_ADAPTERS",
           "TSM_CHECKPOINT_RULES"]

#: Where FFN puts its adapters in TSM: after the shift, at the input of each
#: block's conv1 (the conv inside the shift wrapper). A regex for ``ff.convert``.
TSM_ADAPTERS = r"backbone\.layer\d+\.\d+\.conv1\.net"

TSM_RECIPE = Recipe(
    "tsm", "sgd", lr=0.01, batch_size=32, epochs=50, schedule="step", lr_steps=(20, 40), weight_decay=5e-4,
    bias_lr_mult=2.0, bias_decay=False, norm_decay=False, head_lr_mult=5.0, head_bias_lr_mult=10.0,
    clip_grad=20.0, dropout=0.5,
    source="FFN-pytorch 2D_Network/exp/tsm_sthv1_FFN/run.sh (--gd 20) and TSM's get_optim_policies "
           "(bias lr x2 no decay, norms no decay, fc weight lr x5, fc bias lr x10); K400 used wd 1e-4",
)


def temporal_shift(x: Tensor, num_frames: int, fold_div: int = 8) -> Tensor:
    """Shift 1/fold_div of the channels one frame back and 1/fold_div forward (zero padded).

    ``x`` is (B*T, C, H, W) with the frames of each clip contiguous. Out of place,
    exactly the official TSM ``shift``: channels ``[:fold]`` take frame t+1,
    ``[fold:2*fold]`` take frame t-1, the rest are unchanged.

    Example:
        >>> x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 8, 1, 1)  # T=4, value = frame
        >>> y = temporal_shift(x, 4)  # 8 channels: fold = 1
        >>> y[:, 0].flatten().tolist(), y[:, 1].flatten().tolist(), y[:, 2].flatten().tolist()
        ([1.0, 2.0, 3.0, 0.0], [0.0, 0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0])
    """
    nt, c, h, w = x.shape
    if nt % num_frames:
        raise ValueError(f"batch of {nt} frames is not divisible by num_frames={num_frames}")
    x = x.view(nt // num_frames, num_frames, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left: frame t sees t+1
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]  # shift right: frame t sees t-1
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


class TemporalShift(nn.Module):
    """Apply :func:`temporal_shift` to the input of ``net`` (TSM's residual shift).

    The clip length is not stored in the weights: the enclosing :class:`TSM`
    sets ``num_frames`` for the duration of one forward and resets it to None,
    so every call uses its own clip's T and no state survives a call.

    Example:
        >>> shift = TemporalShift(nn.Conv2d(8, 8, 1))
        >>> shift.num_frames = 4
        >>> shift(torch.randn(8, 8, 5, 5)).shape  # 2 clips of 4 frames
        torch.Size([8, 8, 5, 5])
    """

    def __init__(self, net: nn.Module, fold_div: int = 8) -> None:
        super().__init__()
        if isinstance(fold_div, bool) or not isinstance(fold_div, int) or fold_div < 2:
            raise ValueError(f"fold_div must be an int >= 2, got {fold_div!r}")
        self.net = net
        self.fold_div = fold_div
        self.num_frames: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.num_frames is None:
            raise RuntimeError(
                "TemporalShift.num_frames is not set: call the enclosing TSM model with a "
                "(B, C, T, H, W) clip, or set num_frames yourself before calling the shift"
            )
        return self.net(temporal_shift(x, self.num_frames, self.fold_div))

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}"


def _block_types() -> tuple[type, ...]:
    from timm.models.resnet import BasicBlock, Bottleneck

    types: list[type] = [BasicBlock, Bottleneck]
    try:
        from torchvision.models.resnet import BasicBlock as TvBasic, Bottleneck as TvBottleneck

        types += [TvBasic, TvBottleneck]
    except ImportError:  # torchvision is optional
        pass
    return tuple(types)


class TSM(PerFrameModel):
    """A 2D ResNet made temporal with TSM's residual shift; input (B, C, T, H, W), output logits.

    Args:
        backbone: a timm or torchvision ResNet. A timm model built with
            ``num_classes=0`` is used as is; a final ``fc`` Linear is dropped and
            replaced by this model's own ``fc``.
        num_classes: classes of the new per-frame classifier.
        fold_div: 1/fold_div of the channels shift each way.
        dropout: dropout before ``fc`` (official TSM: 0.5).

    Example:
        >>> import timm
        >>> model = TSM(timm.create_model("resnet18", num_classes=0), num_classes=5)
        >>> model(torch.randn(2, 3, 8, 64, 64)).shape  # any T works
        torch.Size([2, 5])
    """

    def __init__(self, backbone: nn.Module, num_classes: int, fold_div: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        fc = getattr(backbone, "fc", None)
        if isinstance(fc, nn.Linear):
            num_features = fc.in_features
            backbone.fc = nn.Identity()
        else:
            num_features = getattr(backbone, "num_features", None)
        if not isinstance(num_features, int):
            raise ValueError(
                f"cannot tell the feature size of {type(backbone).__name__}: give it a Linear `fc` "
                "or a `num_features` attribute (timm models built with num_classes=0 have one)"
            )
        blocks = [m for m in backbone.modules() if isinstance(m, _block_types())]
        if not blocks:
            raise ValueError(f"{type(backbone).__name__} has no timm/torchvision ResNet blocks to shift")
        for block in blocks:
            if not isinstance(block.conv1, TemporalShift):  # wrapping twice would shift twice
                block.conv1 = TemporalShift(block.conv1, fold_div)
        self.backbone = backbone
        self.num_features = num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)

    def shifts(self) -> Iterator[TemporalShift]:
        """Every temporal shift in the model."""
        return (m for m in self.modules() if isinstance(m, TemporalShift))

    temporal_modules = shifts


@register_model(
    "tsm_tiny",
    frame_sets=(4, 8, 16),
    adapters=TSM_ADAPTERS,
    input_size=32,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    recipe=TSM_RECIPE,
)
def tsm_tiny(num_classes: int, width: int = 16, fold_div: int = 8, dropout: float = 0.0) -> TSM:
    """A tiny TSM for small inputs (~32 px) on CPU: ResNet with one BasicBlock per stage.

    Channels ``width * (1, 2, 4, 8)``; the stem is a 3x3 stride-2 conv without
    max-pool, so a 32-px frame still has 16x16 features in the first stage.

    Example:
        >>> model = tsm_tiny(num_classes=8)
        >>> model(torch.randn(2, 3, 16, 32, 32)).shape
        torch.Size([2, 8])
    """
    from timm.models.resnet import BasicBlock, ResNet

    if isinstance(width, bool) or not isinstance(width, int) or width < 2 or width % 2:
        raise ValueError(f"width must be an even int >= 2, got {width!r}")
    backbone = ResNet(
        block=BasicBlock,
        layers=(1, 1, 1, 1),
        channels=tuple(width * m for m in (1, 2, 4, 8)),
        stem_type="deep",  # only so that the stem ends with `width` channels; replaced below
        stem_width=width // 2,
        num_classes=0,
        zero_init_last=False,
    )
    backbone.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1, bias=False)
    backbone.maxpool = nn.Identity()
    return TSM(backbone, num_classes=num_classes, fold_div=fold_div, dropout=dropout)


#: Official TSM / FFN-TSM keys (after ``module.`` and the FFN suffix ``_4/_8/_16`` are removed) -> ours.
#: FFN files split the downsample into ``downsample_conv`` + ``downsample_bn_T`` and keep conv1
#: bare (their shift is a separate ``tsm`` module); some plain TSM files lack ``.net`` as well.
TSM_CHECKPOINT_RULES = CheckpointRules(
    renames=(
        (r"^base_model\.", "backbone."),
        (r"^new_fc\.", "fc."),
        (r"\.downsample_conv\.", ".downsample.0."),
        (r"\.downsample_bn\.", ".downsample.1."),
        (r"^(backbone\.layer\d+\.\d+\.conv1)\.weight$", r"\1.net.weight"),
    ),
    # FFN's ``adaconv_T`` (x + adaconv(x), weight (C,1,1,1)) scales the shifted input of conv1.
    adapter=(r"base_model\.(layer\d+\.\d+)\.adaconv\.weight", r"backbone.\1.conv1.net"),
    head="fc.weight",
    # ResNet's 3x3 ``conv2`` right in a block: TEA's Res2Net blocks have ``convs.i`` there
    # (their only conv2 is ``me.conv2``), so TEA files never match.
    signature=r"^base_model\.layer\d+\.\d+\.conv2\.weight$",
)


@register_model(
    "tsm_r50",
    frame_sets=(4, 8, 16),
    adapters=TSM_ADAPTERS,
    input_size=224,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    published_gmacs={(4, 224): 16.46, (8, 224): 32.92, (16, 224): 65.85},
    checkpoint_rules=TSM_CHECKPOINT_RULES,
    recipe=TSM_RECIPE,
)
def tsm_r50(num_classes: int, dropout: float = 0.5, pretrained: bool = False, **kwargs) -> TSM:
    """TSM on ResNet-50 (ICCV 2019); FFN's TSM-R50, ImageNet init = timm resnet50.tv_in1k.

    The official TSM: residual shift of 1/8 of the channels each way in every bottleneck,
    dropout 0.5 and a per-frame ``fc`` (init N(0, 0.001)) averaged over T. ``pretrained``
    loads the torchvision ImageNet weights through timm (download); ``kwargs`` go to timm.

    Example:
        >>> import frameflex as ff
        >>> model = ff.create_model("tsm_r50", num_classes=174, frame_sets=[4, 8, 16])
    """
    import timm

    # zero_init_last=False: torchvision's (and the official) init leaves bn3 at 1.
    backbone = timm.create_model("resnet50.tv_in1k", pretrained=pretrained, num_classes=0,
                                 **{"zero_init_last": False, **kwargs})
    model = TSM(backbone, num_classes=num_classes, fold_div=8, dropout=dropout)
    nn.init.normal_(model.fc.weight, 0, 0.001)  # the official new_fc init
    nn.init.zeros_(model.fc.bias)
    return model
