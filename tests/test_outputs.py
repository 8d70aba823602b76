"""Models that return a transformers ModelOutput work wherever logits are read."""
from __future__ import annotations

import pytest
import torch
from _models import SharedNormNet, randomize_norms
from transformers.modeling_outputs import ImageClassifierOutput

import frameflex as ff
from frameflex._outputs import logits_of

SETS = (4, 8)


class ReturnsModelOutput(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return ImageClassifierOutput(logits=self.net(x))


def _pair():
    torch.manual_seed(0)
    plain = ff.convert(randomize_norms(SharedNormNet(classes=5)), SETS, time_dim=2).eval()
    torch.manual_seed(0)
    wrapped = ff.convert(ReturnsModelOutput(randomize_norms(SharedNormNet(classes=5))), SETS, time_dim=2).eval()
    return plain, wrapped


def _clips(batch=4):
    g = torch.Generator().manual_seed(0)
    return {t: torch.randn(batch, 3, t, 8, 8, generator=g) for t in SETS}


def test_logits_of():
    z = torch.randn(2, 3)
    assert logits_of(z) is z
    assert logits_of(ImageClassifierOutput(logits=z)) is z
    assert logits_of({"logits": z}) is z
    with pytest.raises(TypeError, match="return_dict=False gives a tuple"):
        logits_of((z,))
    with pytest.raises(TypeError, match="ImageClassifierOutput"):
        logits_of(ImageClassifierOutput(loss=z))


def test_forward_multi_and_loss_read_logits():
    plain, wrapped = _pair()
    clips, y = _clips(), torch.tensor([0, 1, 2, 3])
    a, b = ff.forward_multi(plain, clips), ff.forward_multi(wrapped, clips)
    assert all(isinstance(v, torch.Tensor) for v in b.values())
    torch.testing.assert_close(b[4], a[4])
    raw = {t: wrapped(x) for t, x in clips.items()}  # ModelOutputs straight into the loss
    torch.testing.assert_close(ff.FFNLoss()(raw, y), ff.FFNLoss()(a, y))


def test_evaluate_and_cascade_read_logits():
    from frameflex.evaluate import evaluate

    plain, wrapped = _pair()
    clips = _clips()
    with torch.no_grad():
        labels = ff.forward_multi(plain, clips)[8].argmax(1)
    batches = [(clips, labels)]
    assert evaluate(wrapped, batches, SETS, progress=False) == evaluate(plain, batches, SETS, progress=False)
    assert evaluate(wrapped, batches, SETS, progress=False)["top1"][8] == 100.0
    a, b = ff.cascade(plain, clips, threshold=0.5), ff.cascade(wrapped, clips, threshold=0.5)
    torch.testing.assert_close(b.logits, a.logits)
    assert b.frames.tolist() == a.frames.tolist()


def test_import_frameflex_does_not_import_transformers():
    import subprocess
    import sys

    code = "import sys, frameflex; assert 'transformers' not in sys.modules, 'transformers was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
