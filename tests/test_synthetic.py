"""SyntheticActions: the benchmark task. Its classes must be in the motion, and move as named."""

import pytest
import torch

from frameflex.data import collate_clips
from frameflex.synthetic import SyntheticActions


def test_shapes_determinism_balance_and_loader():
    ds = SyntheticActions(28, video_frames=16, size=16, frame_sets=(2, 4), train=False, seed=1)
    assert len(ds.classes) == 14 and len(set(ds.classes)) == 14  # chance 7.1%
    video, label = ds.video(5)
    assert video.shape == (16, 3, 16, 16) and video.dtype == torch.float32
    assert 0 <= video.min() and video.max() <= 1
    assert torch.equal(video, ds.video(5)[0]) and not torch.equal(video, ds.video(6)[0])
    assert not torch.allclose(video, SyntheticActions(28, video_frames=16, size=16, seed=2).video(5)[0])
    clips, y = ds[5]
    assert y == label == 5 and torch.equal(clips[4], video[[2, 6, 10, 14]].transpose(0, 1))
    batch, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=28, collate_fn=collate_clips)))
    assert batch[2].shape == (28, 3, 2, 16, 16) and torch.bincount(labels).tolist() == [2] * 14
    with pytest.raises(IndexError, match="28"):
        ds.video(28)
    with pytest.raises(ValueError, match="jitter"):
        SyntheticActions(4, jitter=-1.0)
    with pytest.raises(ValueError, match="speed"):
        SyntheticActions(4, speed=(2.0, 1.0))


def test_params_rebuild_the_same_task():
    ds = SyntheticActions(8, jitter=0.1, noise=0.02)
    p = ds.params()
    assert p["classes"] == 14 and p["jitter"] == 0.1
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items() if k not in ("task", "classes")}
    assert torch.equal(SyntheticActions(8, **kw).video(3)[0], ds.video(3)[0])


def _tracks(video: torch.Tensor) -> torch.Tensor:
    """(2, n) x positions of the upper and the lower object on a flat grey background (circular mean)."""
    n, _, s, _ = video.shape
    mask = (video - 0.5).abs().sum(1)  # (n, s, s): colour away from the grey background
    ang = torch.arange(s) * (2 * torch.pi / s) + torch.pi / s
    out = []
    for rows in (slice(0, s // 2), slice(s // 2, s)):
        w = mask[:, rows, :].sum(1)  # (n, s)
        z = torch.complex((w * ang.cos()).sum(1), (w * ang.sin()).sum(1))
        out.append(torch.remainder(torch.angle(z), 2 * torch.pi) / (2 * torch.pi) * s)
    return torch.stack(out)


def _steps(track: torch.Tensor, s: int) -> torch.Tensor:
    """Frame-to-frame x steps, unwrapped on the torus."""
    return torch.remainder(track.diff() + s / 2, s) - s / 2


def test_objects_move_the_way_their_class_says():
    s, n = 32, 32
    ds = SyntheticActions(64, video_frames=n, size=s, jitter=0.0, noise=0.0, clutter=0.0, speed=(1.5, 1.5))
    for i in range(len(ds)):
        video, y = ds.video(i)
        name = ds.classes[y]
        steps = torch.stack([_steps(tr, s) for tr in _tracks(video)])  # (2, n - 1)
        moves = steps.abs().sum(1)
        mover = int(moves.argmax())
        v = steps[mover]
        first, second = v[: (n - 1) // 2].sum(), v[(n - 1) // 2:].sum()
        if name.startswith(("right", "left")):
            sign = 1 if name.startswith("right") else -1
            assert moves[1 - mover] < 0.5, (name, moves)  # the other object stands still
            if name.endswith(("slow", "fast")):
                speed = 1.5 if name.endswith("fast") else 0.5
                assert (v * sign - speed).abs().mean() < 0.1, (name, v)
            elif name.endswith("speeding up"):
                assert first * sign > 0 and second * sign > 2.5 * first * sign, (name, first, second)
            else:  # and back: out one way at one speed, then back the other way
                assert (v[:10] * sign - 1.0).abs().max() < 0.1 and (v[-10:] * sign + 1.0).abs().max() < 0.1, (name, v)
        elif name.startswith("shake"):
            flips = (v[1:] * v[:-1] < 0).sum()
            assert moves[1 - mover] < 0.5 and v.sum().abs() < 12, (name, v)
            assert (flips >= 8) if name == "shake fast" else (2 <= flips <= 6), (name, flips)
        elif name in ("approach", "separate", "opposite directions"):
            assert (moves > 3).all(), (name, moves)
            gap = _tracks(video)[1] - _tracks(video)[0]
            if name == "opposite directions":
                assert (steps[0].sum() * steps[1].sum()) < 0, (name, steps.sum(1))
            else:  # the gap between the objects shrinks or grows, with no wrapping
                assert (gap[-1].abs() < gap[0].abs() - 3) == (name == "approach"), (name, gap)
        else:
            assert name == "still" and (moves < 0.5).all(), (name, moves)


def _frame_features(frame: torch.Tensor) -> torch.Tensor:
    """Appearance statistics of one frame: colour means, contrast, edge energy."""
    grad = (frame[:, 1:, :] - frame[:, :-1, :]).abs().mean() + (frame[:, :, 1:] - frame[:, :, :-1]).abs().mean()
    return torch.cat([frame.mean((1, 2)), frame.std().view(1), grad.view(1)])


def test_one_frame_does_not_reveal_the_class_but_two_do():
    ds = SyntheticActions(640, video_frames=16, size=24, seed=3)
    gen = torch.Generator().manual_seed(0)
    single, change, labels = [], [], []
    for i in range(len(ds)):
        video, y = ds.video(i)
        t = int(torch.randint(len(video), (1,), generator=gen))
        single.append(_frame_features(video[t]))
        change.append((video[1:] - video[:-1]).abs().mean().view(1))  # how much moves
        labels.append(y)
    labels = torch.tensor(labels)

    def centroid_accuracy(feats, labels, k):
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
        half = len(feats) // 2
        means = torch.stack([feats[:half][labels[:half] == c].mean(0) for c in range(k)])
        return (torch.cdist(feats[half:], means).argmin(1) == labels[half:]).float().mean().item()

    k = len(ds.classes)
    assert centroid_accuracy(torch.stack(single), labels, k) < 1 / k + 0.05
    # Positive control: frame differences tell "still" from "right fast".
    pick = (labels == ds.classes.index("still")) | (labels == ds.classes.index("right fast"))
    assert centroid_accuracy(torch.stack(change)[pick], (labels[pick] == 2).long(), 2) > 0.8
