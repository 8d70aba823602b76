"""Frame sampling, multi-frame clips, collation and the synthetic motion set."""

import functools

import pytest
import torch
from torchvision.transforms import v2

from frameflex.data import MultiFrameClips, SyntheticMotion, collate_clips, segment_indices, uniform_indices


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frame_id_video(n: int, size: int = 12) -> torch.Tensor:
    """A video whose channel 0 holds the frame index, channels 1-2 the pixel's y and x."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    video = torch.empty(n, 3, size, size)
    video[:, 0] = torch.arange(n).view(n, 1, 1)
    video[:, 1], video[:, 2] = ys, xs
    return video


def clip_frames(clip: torch.Tensor) -> list[int]:
    return clip[0, :, 0, 0].long().tolist()


# -------------------------------------------------------------------- segment_indices


def test_segment_train_picks_one_frame_inside_each_segment():
    for n, t in [(32, 4), (32, 16), (37, 8), (8, 8)]:
        avg = n // t
        for seed in range(20):
            idx = segment_indices(n, t, train=True, generator=g(seed))
            assert idx.dtype == torch.long and idx.shape == (t,)
            assert ((idx >= torch.arange(t) * avg) & (idx < (torch.arange(t) + 1) * avg)).all(), (n, t, idx)


def test_segment_train_is_random_and_reaches_every_offset():
    draws = torch.stack([segment_indices(32, 4, train=True, generator=g(s)) for s in range(200)])
    offsets = draws - torch.arange(4) * 8
    assert set(offsets.flatten().tolist()) == set(range(8))  # uniform over the whole segment
    assert len({tuple(d.tolist()) for d in draws}) > 100
    assert torch.equal(segment_indices(32, 4, True, g(3)), segment_indices(32, 4, True, g(3)))


def test_segment_test_is_the_tsm_centre_and_deterministic():
    assert segment_indices(32, 4, train=False).tolist() == [4, 12, 20, 28]
    assert segment_indices(32, 16, train=False).tolist() == list(range(1, 32, 2))
    # tick = 2.5: int(1.25 + 2.5 i)
    assert segment_indices(10, 4, train=False).tolist() == [1, 3, 6, 8]
    assert torch.equal(segment_indices(10, 4, False, g(0)), segment_indices(10, 4, False, g(1)))


def test_segment_short_video_repeats_frames_evenly_in_both_modes():
    expected = [0, 0, 0, 1, 1, 2, 2, 2]  # centre formula, not TSM's all zeros
    assert segment_indices(3, 8, train=False).tolist() == expected
    assert segment_indices(3, 8, train=True, generator=g(0)).tolist() == expected


@pytest.mark.parametrize("args, exc, bad", [((0, 4, True), ValueError, "0"), ((32, -1, True), ValueError, "-1"),
                                            ((32, 2.5, False), TypeError, "2.5"), ((True, 4, False), TypeError, "True")])
def test_segment_rejects_bad_counts_naming_the_value(args, exc, bad):
    with pytest.raises(exc, match=bad):
        segment_indices(*args)


# -------------------------------------------------------------------- uniform_indices


def test_uniform_spreads_over_the_whole_video():
    assert uniform_indices(32, 4).tolist() == [0, 10, 21, 31]
    assert uniform_indices(5, 8).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    assert uniform_indices(32, 4, train=True, generator=g(0)).tolist() == [0, 10, 21, 31]


def test_uniform_stride_window_centred_at_test_random_in_training():
    assert uniform_indices(32, 4, stride=2).tolist() == [12, 14, 16, 18]
    starts = set()
    for s in range(50):
        idx = uniform_indices(32, 4, stride=2, train=True, generator=g(s))
        assert (idx.diff() == 2).all() and idx.min() >= 0 and idx.max() <= 31
        starts.add(idx[0].item())
    assert len(starts) > 10 and max(starts) <= 32 - 8


def test_uniform_stride_clamps_into_a_short_video():
    assert uniform_indices(5, 4, stride=3).tolist() == [0, 3, 4, 4]
    with pytest.raises(ValueError, match="stride"):
        uniform_indices(32, 4, stride=0)


# -------------------------------------------------------------------- MultiFrameClips


def test_clips_shapes_and_test_frames():
    out = MultiFrameClips((4, 8, 16), train=False)(frame_id_video(32))
    assert sorted(out) == [4, 8, 16]
    assert out[8].shape == (3, 8, 12, 12)
    assert clip_frames(out[4]) == [4, 12, 20, 28]
    assert clip_frames(out[16]) == list(range(1, 32, 2))


def test_clips_sample_each_frame_count_independently():
    video = frame_id_video(32)
    clips = MultiFrameClips((4, 8), train=True, generator=g(0))
    nested = 0
    for _ in range(50):
        out = clips(video)
        f4, f8 = clip_frames(out[4]), clip_frames(out[8])
        assert all(8 * i <= f < 8 * (i + 1) for i, f in enumerate(f4))
        assert all(4 * i <= f < 4 * (i + 1) for i, f in enumerate(f8))
        nested += set(f4) <= set(f8)
    assert nested < 25  # a 4-frame clip drawn from the 8-frame one would always be nested


def test_clips_share_one_augmentation_across_frames_and_clips():
    calls = []

    def crop(frames):
        calls.append(frames.shape[0])
        return v2.RandomCrop(6)(frames)

    video = frame_id_video(32)
    clips = MultiFrameClips((4, 8, 16), train=True, transform=crop, generator=g(0))
    corners = set()
    for _ in range(30):
        out = clips(video)
        corner = None
        for t, clip in out.items():
            assert clip.shape == (3, t, 6, 6)
            yx = clip[1:, :, 0, 0]  # top-left pixel's original (y, x) in every frame
            assert (yx == yx[:, :1]).all(), "frames of one clip were cropped differently"
            corner = corner if corner is not None else yx[:, 0].tolist()
            assert yx[:, 0].tolist() == corner, "clips of one video were cropped differently"
        corners.add(tuple(corner))
    assert len(corners) > 5  # the crop really is random from video to video
    assert len(calls) == 30  # once per video, on the union of the needed frames
    assert all(n <= 4 + 8 + 16 for n in calls)


def test_clips_custom_sampler_and_errors():
    out = MultiFrameClips((4,), train=False, sampler=functools.partial(uniform_indices, stride=2))(frame_id_video(32))
    assert clip_frames(out[4]) == [12, 14, 16, 18]
    out = MultiFrameClips((4,), sampler="uniform")(frame_id_video(32))
    assert clip_frames(out[4]) == [0, 10, 21, 31]
    with pytest.raises(ValueError, match="bogus"):
        MultiFrameClips((4,), sampler="bogus")
    with pytest.raises(ValueError, match="0"):
        MultiFrameClips((4, 0))
    with pytest.raises(ValueError, match=r"\(32, 12, 12\)"):
        MultiFrameClips((4,))(frame_id_video(32)[:, 0])
    with pytest.raises(ValueError, match="99"):
        MultiFrameClips((4,), sampler=lambda n, t, train, generator: torch.tensor([0, 1, 2, 99]))(frame_id_video(32))
    with pytest.raises(ValueError, match="transform"):
        MultiFrameClips((4,), transform=lambda x: x[0])(frame_id_video(32))


# -------------------------------------------------------------------- collate_clips


def test_nested_clips_take_every_kth_segment_of_the_largest():
    for train in (False, True):
        clips = MultiFrameClips((4, 8, 16), train=train, nested=True, generator=torch.Generator().manual_seed(0))
        idx = clips.indices(64)
        assert torch.equal(idx[8], idx[16][1::2]) and torch.equal(idx[4], idx[16][2::4])
        # Still one frame per segment of its own count (segment sampling's promise).
        assert ((idx[4] // 16) == torch.arange(4)).all() and ((idx[8] // 8) == torch.arange(8)).all()
    # Not a divisor of the largest: the segments nearest to each of its own.
    assert MultiFrameClips((6, 16), train=False, nested=True).indices(64)[6].tolist() == [6, 18, 26, 38, 50, 58]
    video = torch.rand(64, 3, 4, 4)
    out = MultiFrameClips((4, 16), train=False, nested=True)(video)
    assert torch.equal(out[4], out[16][:, 2::4])


def test_test_clips_spread_over_each_segment_and_views_stack():
    clips = MultiFrameClips((4,), train=False, num_clips=2)
    assert clips.indices(32)[4].tolist() == [[2, 10, 18, 26], [6, 14, 22, 30]]
    assert uniform_indices(40, 4, stride=2, clip=(0, 2)).tolist() == [8, 10, 12, 14]  # windows at 1/4 and 3/4
    assert uniform_indices(40, 4, stride=2, clip=(1, 2)).tolist() == [24, 26, 28, 30]
    # Evenly spaced frames, shifted a quarter gap back and forth (clamped into the video).
    assert [uniform_indices(31, 4, clip=(j, 2)).tolist() for j in (0, 1)] == [[0, 8, 18, 28], [2, 12, 22, 30]]
    video = torch.rand(32, 3, 6, 10)
    three = lambda x: torch.stack([x[..., :, :6], x[..., :, 2:8], x[..., :, 4:]])  # noqa: E731
    out = MultiFrameClips((4, 8), train=False, num_clips=2, transform=three)(video)
    assert out[4].shape == (6, 3, 4, 6, 6)  # 2 clips x 3 crops, clip-major
    assert torch.equal(out[4][4], video[[6, 14, 22, 30]][..., 2:8].transpose(0, 1))
    with pytest.raises(ValueError, match=r"clip must be \(j, n\) with 0 <= j < n, got \(2, 2\)"):
        segment_indices(32, 4, train=False, clip=(2, 2))


def test_clips_accept_the_decoder_and_torchvision_layouts():
    from torchvision import tv_tensors

    tchw = (torch.rand(20, 3, 8, 10) * 255).to(torch.uint8)
    want = MultiFrameClips((4, 8), train=False)(tchw)
    for video in (tchw.permute(0, 2, 3, 1), tv_tensors.Video(tchw)):  # (T, H, W, C) uint8 from a decoder
        got = MultiFrameClips((4, 8), train=False)(video)
        assert all(type(got[t]) is torch.Tensor and torch.equal(got[t], want[t]) for t in (4, 8))
    for bad, shape in ((torch.rand(20, 8, 10, 3), r"\(20, 8, 10, 3\) \(torch\.float32\)"),
                       (torch.rand(3, 20, 8, 10), r"\(3, 20, 8, 10\)"), (tchw[0], r"\(3, 8, 10\)")):
        with pytest.raises(ValueError, match=r"video must be a \(T, H, W, C\) uint8 tensor, a \(T, C, H, W\) "
                           rf"tensor or a tv_tensors\.Video .*got Tensor of shape {shape}"):
            MultiFrameClips((4,))(bad)


def test_collate_stacks_clips_and_labels():
    items = [({4: torch.full((3, 4, 5, 5), float(i)), 8: torch.zeros(3, 8, 5, 5)}, i) for i in range(3)]
    clips, y = collate_clips(items)
    assert clips[4].shape == (3, 3, 4, 5, 5) and clips[8].shape == (3, 3, 8, 5, 5)
    assert clips[4][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert y.dtype == torch.long and y.tolist() == [0, 1, 2]
    only = collate_clips([d for d, _ in items])
    assert isinstance(only, dict) and only[8].shape == (3, 3, 8, 5, 5)


def _collate_reporting_shared(batch):
    (clips, y) = collate_clips(batch)
    return {t: c.is_shared() for t, c in clips.items()}, clips, y


def test_collate_in_a_worker_stacks_into_shared_memory():
    """As default_collate: a worker's batch is built in shared memory, so sending it copies nothing more."""
    items = [({4: torch.full((3, 4, 5, 5), float(i)), 8: torch.rand(3, 8, 5, 5)}, i) for i in range(4)]
    assert not collate_clips(items)[0][4].is_shared()  # in the main process: plain memory
    loader = torch.utils.data.DataLoader(items, batch_size=2, num_workers=1, collate_fn=_collate_reporting_shared)
    got = list(loader)
    assert [shared for shared, _, _ in got] == [{4: True, 8: True}] * 2
    want = collate_clips(items[2:])
    assert all(torch.equal(got[1][1][t], want[0][t]) for t in (4, 8)) and got[1][2].tolist() == [2, 3]


def test_collate_soft_labels_and_mismatched_frame_counts():
    soft = [({4: torch.zeros(3, 4, 2, 2)}, torch.tensor([0.25, 0.75])) for _ in range(2)]
    _, y = collate_clips(soft)
    assert y.shape == (2, 2) and y.dtype == torch.float32
    with pytest.raises(ValueError, match=r"\[4, 8\].*\[4\]"):
        collate_clips([({4: torch.zeros(3, 4, 2, 2)}, 0), ({4: torch.zeros(3, 4, 2, 2), 8: torch.zeros(3, 8, 2, 2)}, 1)])
    with pytest.raises(ValueError, match="ints or all tensors"):
        collate_clips([soft[0], ({4: torch.zeros(3, 4, 2, 2)}, 1)])


# -------------------------------------------------------------------- SyntheticMotion


def test_synthetic_shapes_determinism_and_loader():
    ds = SyntheticMotion(16, num_classes=4, video_frames=16, size=16, frame_sets=(2, 4), train=False, seed=1)
    video, label = ds.video(5)
    assert video.shape == (16, 3, 16, 16) and video.dtype == torch.float32
    assert 0 <= video.min() and video.max() <= 1
    assert torch.equal(video, ds.video(5)[0])  # same (seed, index), same video
    assert not torch.equal(video, ds.video(6)[0])
    other = SyntheticMotion(16, num_classes=4, video_frames=16, size=16, seed=2)
    assert not torch.allclose(video, other.video(5)[0])
    clips, y = ds[5]
    assert y == label and ds.classes[y] in SyntheticMotion.CLASSES
    assert torch.equal(clips[4], ds[5][0][4])  # test sampling is deterministic
    assert torch.equal(clips[4], video[[2, 6, 10, 14]].transpose(0, 1))
    batch, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate_clips)))
    assert batch[2].shape == (8, 3, 2, 16, 16) and labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_synthetic_labels_balanced_and_arguments_checked():
    ds = SyntheticMotion(80, num_classes=8, video_frames=4, size=8)
    assert ds.classes == list(SyntheticMotion.CLASSES)
    counts = torch.bincount(torch.tensor([ds.video(i)[1] for i in range(80)]), minlength=8)
    assert (counts == 10).all()
    with pytest.raises(ValueError, match="9"):
        SyntheticMotion(10, num_classes=9)
    with pytest.raises(IndexError, match="80"):
        ds.video(80)


def _frame_features(frame: torch.Tensor) -> torch.Tensor:
    """Appearance statistics of one frame: colour means, contrast, edge energy."""
    grad = (frame[:, 1:, :] - frame[:, :-1, :]).abs().mean() + (frame[:, :, 1:] - frame[:, :, :-1]).abs().mean()
    return torch.cat([frame.mean((1, 2)), frame.std().view(1), grad.view(1)])


def _centroid_accuracy(feats: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Nearest-class-mean accuracy, fitted on the first half and scored on the second (standardised features)."""
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    half = len(feats) // 2
    fit, score = slice(0, half), slice(half, None)
    means = torch.stack([feats[fit][labels[fit] == c].mean(0) for c in range(num_classes)])
    pred = torch.cdist(feats[score], means).argmin(1)
    return (pred == labels[score]).float().mean().item()


@pytest.mark.parametrize("paced", [False, True])
def test_synthetic_single_frame_does_not_reveal_the_class(paced):
    ds = SyntheticMotion(800, num_classes=8, video_frames=16, size=24, seed=3, paced=paced)
    gen = g(0)
    single, change, labels = [], [], []
    for i in range(len(ds)):
        video, y = ds.video(i)
        t = int(torch.randint(len(video), (1,), generator=gen))
        single.append(_frame_features(video[t]))
        change.append(_frame_features(video[-1]) - _frame_features(video[0]))  # how appearance CHANGES
        labels.append(y)
    labels = torch.tensor(labels)
    acc_single = _centroid_accuracy(torch.stack(single), labels, 8)
    assert acc_single < 1 / 8 + 0.07, acc_single  # chance is 1/8
    if not paced:  # positive control: the same features over time do separate grow from shrink
        gs = (labels == 4) | (labels == 5)
        acc_change = _centroid_accuracy(torch.stack(change)[gs], labels[gs] - 4, 2)
        assert acc_change > 0.85, acc_change


def _centre(frame: torch.Tensor) -> torch.Tensor:
    """(x, y) of the object on a flat grey background, as circular means (motion wraps around)."""
    mask = ((frame - 0.5).abs().sum(0) > 0.05).float()
    size = frame.shape[-1]
    ang = torch.arange(size) * (2 * torch.pi / size)
    out = []
    for weights in (mask.sum(0), mask.sum(1)):  # over x, over y
        z = torch.complex((weights * ang.cos()).sum(), (weights * ang.sin()).sum())
        out.append(torch.angle(z) / (2 * torch.pi) * size)
    return torch.stack(out)


def _step(a: torch.Tensor, b: torch.Tensor, size: int) -> torch.Tensor:
    return torch.remainder(b - a + size / 2, size) - size / 2


def test_synthetic_objects_move_the_way_their_class_says():
    ds = SyntheticMotion(40, num_classes=4, video_frames=8, size=32, clutter=0.0, noise=0.0, speed=(0.6, 1.0))
    expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    for i in range(len(ds)):
        video, y = ds.video(i)
        step = _step(_centre(video[0]), _centre(video[6]), 32) / 6  # px per frame
        sx, sy = expected[ds.classes[y]]
        moving = step[0] if sx else step[1]
        still = step[1] if sx else step[0]
        assert 0.5 < moving * (sx or sy) < 1.1 and abs(still) < 0.1, (ds.classes[y], step)


def test_synthetic_paced_classes_differ_in_speed_only():
    ds = SyntheticMotion(40, num_classes=4, video_frames=8, clutter=0.0, noise=0.0, speed=(0.9, 0.9), paced=True)
    assert ds.classes == ["left slow", "left fast", "right slow", "right fast"]
    for i in range(len(ds)):
        video, y = ds.video(i)
        vx = _step(_centre(video[0]), _centre(video[6]), 32)[0] / 6
        expected = (-1 if y < 2 else 1) * (0.3 if y % 2 == 0 else 0.9)
        assert abs(vx - expected) < 0.1, (ds.classes[y], vx)
    with pytest.raises(ValueError, match="17"):
        SyntheticMotion(10, num_classes=17, paced=True)
    with pytest.raises(ValueError, match="pace_ratio"):
        SyntheticMotion(10, paced=True, pace_ratio=0.5)
