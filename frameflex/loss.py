"""FFNLoss: cross-entropy on the largest frame count, distillation to the others."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ._outputs import logits_of

__all__ = ["FFNLoss"]


class FFNLoss(nn.Module):
    """``CE(z_H, y) + kl_weight * sum_T KL(softmax(z_H).detach() || softmax(z_T))``.

    ``H`` is the largest frame count in the outputs; only it sees the labels, the
    others learn from its (detached) prediction, as in FFN (ffn-method.md, Loss).
    KL uses ``reduction='batchmean'``; with ``temperature`` t != 1 both sides are
    softened by t and the KL is scaled by t**2 (Hinton et al.). Targets may be class
    indices or soft (mixup) probabilities. After a call, ``parts`` holds detached
    tensors for logging: ``{"ce": ..., "kl_4": ..., "kl_8": ...}``.

    >>> loss_fn = ff.FFNLoss()
    >>> loss = loss_fn(ff.forward_multi(model, {4: x4, 8: x8, 16: x16}), labels)
    >>> loss.backward(); print({k: v.item() for k, v in loss_fn.parts.items()})
    """

    def __init__(self, kl_weight: float = 1.0, temperature: float = 1.0, label_smoothing: float = 0.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.kl_weight = kl_weight
        self.temperature = temperature
        self.label_smoothing = label_smoothing
        self.parts: dict[str, torch.Tensor] = {}

    def forward(self, outputs: Mapping[int, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if not isinstance(outputs, Mapping) or not outputs:
            raise ValueError("FFNLoss expects a non-empty dict {frame_count: logits}, as ff.forward_multi returns")
        outputs = {t: logits_of(z) for t, z in outputs.items()}
        high = max(outputs)
        teacher = outputs[high]
        for t, z in outputs.items():
            if z.shape != teacher.shape:
                raise ValueError(f"logits for {t} frames have shape {tuple(z.shape)}, "
                                 f"but {high} frames gave {tuple(teacher.shape)}")
        ce = F.cross_entropy(teacher, target, label_smoothing=self.label_smoothing)
        parts = {"ce": ce}
        total = ce
        if len(outputs) > 1:
            tau = self.temperature
            soft = F.softmax(teacher.detach() / tau, dim=-1)
            for t in sorted(outputs):
                if t == high:
                    continue
                kl = F.kl_div(F.log_softmax(outputs[t] / tau, dim=-1), soft, reduction="batchmean") * tau**2
                parts[f"kl_{t}"] = kl
                total = total + self.kl_weight * kl
        self.parts = {k: v.detach() for k, v in parts.items()}
        return total

    def extra_repr(self) -> str:
        return f"kl_weight={self.kl_weight}, temperature={self.temperature}"
