"""VideoList (TSM list files of JPEG frame folders) and the standard transforms."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

import frameflex as ff
from frameflex import datasets
from frameflex.datasets import MultiScaleCrop, VideoList, eval_transform, train_transform, transforms_for


def write_videos(folder: Path, num_videos: int = 6, num_frames: int = 12, size: int = 40, num_classes: int = 4,
                 image_tmpl: str = "{:05d}.jpg", index_base: int = 1, seed: int = 0) -> Path:
    """SyntheticMotion videos as JPEG frame folders under ``folder/frames`` and a list file ``folder/list.txt``.

    Video i has ``num_frames + i`` frames and label ``i % num_classes``.
    """
    lines = []
    for i in range(num_videos):
        n = num_frames + i
        video, label = ff.SyntheticMotion(num_videos, num_classes=num_classes, video_frames=n, size=size,
                                          seed=seed).video(i)
        d = folder / "frames" / f"video{i}"
        d.mkdir(parents=True)
        for k, frame in enumerate((video * 255).round().to(torch.uint8)):
            Image.fromarray(frame.permute(1, 2, 0).numpy()).save(d / image_tmpl.format(k + index_base), quality=95)
        lines.append(f"video{i} {n} {label}")
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    return folder / "list.txt"


def decode(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        return TF.pil_to_tensor(img.convert("RGB")).float() / 255


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return write_videos(tmp_path_factory.mktemp("videos"))


def test_items_are_centre_sampled_clips_with_labels(videos):
    assert VideoList(videos).root == videos.parent  # default root: the list file's folder
    ds = VideoList(videos, root=videos.parent / "frames", frame_sets=(4, 8))
    assert len(ds) == 6 and ds.labels == [0, 1, 2, 3, 0, 1] and ds.num_classes == 4
    assert ds.frame_sets == (4, 8) and not ds.train
    clips, label = ds[3]
    assert label == 3 and set(clips) == {4, 8}
    assert clips[4].shape == (3, 4, 40, 40) and clips[8].shape == (3, 8, 40, 40)
    assert clips[8].dtype == torch.float32 and 0 <= clips[8].min() and clips[8].max() <= 1
    n = 12 + 3
    for t in (4, 8):
        for k, i in enumerate(ff.segment_indices(n, t, train=False).tolist()):
            torch.testing.assert_close(clips[t][:, k], decode(videos.parent / "frames" / "video3" / f"{i + 1:05d}.jpg"))
    assert ds[-1][1] == ds[5][1]


def test_training_sampling_is_random_and_batches_collate(videos):
    ds = VideoList(videos, root=videos.parent / "frames", frame_sets=(4,), train=True,
                   transform=eval_transform(32), generator=torch.Generator().manual_seed(0))
    draws = {tuple(ds.clips.indices(40)[4].tolist()) for _ in range(10)}
    assert len(draws) > 1  # random per call ...
    assert all((torch.tensor(d) // 10 == torch.arange(4)).all() for d in draws)  # ... one frame per segment
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=ff.collate_clips)
    clips, labels = next(iter(loader))
    assert clips[4].shape == (4, 3, 4, 32, 32) and labels.tolist() == [0, 1, 2, 3]


def test_decodes_only_the_sampled_frames(videos, monkeypatch, tmp_path):
    opened = []
    real_open = Image.open
    monkeypatch.setattr(datasets.Image, "open", lambda p, *a, **k: opened.append(Path(p).name) or real_open(p, *a, **k))
    ds = VideoList(videos, root=videos.parent / "frames", frame_sets=(2, 4))
    ds[0]  # 12 frames: T=2 -> 3, 9; T=4 -> 1, 4, 7, 10; each decoded once
    assert opened == [f"{i + 1:05d}.jpg" for i in (1, 3, 4, 7, 9, 10)]

    # A frame folder missing frames that are never sampled loads fine; a missing sampled one is named.
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    for name in (f"{i + 1:05d}.jpg" for i in (1, 4, 7, 10)):
        (sparse / name).write_bytes((videos.parent / "frames" / "video0" / name).read_bytes())
    (tmp_path / "list.txt").write_text(f"{sparse} 12 2\n")  # absolute frames_dir, root ignored
    clips, label = VideoList(tmp_path / "list.txt", root="/nonexistent", frame_sets=(4,))[0]
    assert clips[4].shape == (3, 4, 40, 40) and label == 2
    missing = r"frame file not found: .*sparse/00001\.jpg \(frame 1 of 12; .*list\.txt, line 1\)"
    with pytest.raises(FileNotFoundError, match=missing):
        VideoList(tmp_path / "list.txt", frame_sets=(8,))[0]


def test_image_template_and_index_base(tmp_path):
    lst = write_videos(tmp_path, num_videos=2, num_frames=8, size=16, image_tmpl="img_{:05d}.jpg", index_base=0)
    assert (tmp_path / "frames" / "video0" / "img_00000.jpg").is_file()
    ds = VideoList(lst, root=tmp_path / "frames", frame_sets=(8,), image_tmpl="img_{:05d}.jpg", index_base=0)
    assert ds[1][0][8].shape == (3, 8, 16, 16)
    with pytest.raises(FileNotFoundError, match=r"video0/img_00008\.jpg"):  # index_base 1 reads one past the end
        VideoList(lst, root=tmp_path / "frames", frame_sets=(8,), image_tmpl="img_{:05d}.jpg")[0]


def test_one_shared_transform_for_every_clip(tmp_path):
    # Every frame is the same picture: with one crop/flip for the whole video, all output frames stay equal.
    d = tmp_path / "frames" / "still"
    d.mkdir(parents=True)
    picture = (torch.rand(3, 36, 52, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    for i in range(16):
        Image.fromarray(picture.permute(1, 2, 0).numpy()).save(d / f"{i + 1:05d}.jpg", quality=95)
    (tmp_path / "list.txt").write_text("still 16 0\n")
    torch.manual_seed(0)
    ds = VideoList(tmp_path / "list.txt", root=tmp_path / "frames", frame_sets=(4, 8, 16), train=True,
                   transform=train_transform(24, flip=True))
    outputs = []
    for _ in range(6):
        clips, _ = ds[0]
        frames = torch.cat([clips[t] for t in (4, 8, 16)], dim=1)  # (C, 28, H, W)
        assert frames.shape == (3, 28, 24, 24)
        torch.testing.assert_close(frames, frames[:, :1].expand_as(frames), atol=0, rtol=0)
        outputs.append(frames[:, 0])
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])  # but a new crop per video draw


@pytest.mark.parametrize("content, message", [
    ("video0 12 0\nvideo1 12\n", r"list\.txt, line 2: expected 3 fields 'frames_dir num_frames label', got 2"),
    ("video0 12 0 extra\n", r"list\.txt, line 1: expected 3 fields .*got 4"),
    ("\nvideo0 twelve 0\n", r"list\.txt, line 2: num_frames must be an int, got 'twelve'"),
    ("video0 12 zero\n", r"list\.txt, line 1: label must be an int, got 'zero'"),
    ("video0 12 1\nvideo1 0 1\n", r"list\.txt, line 2: num_frames must be positive, got 0"),
    ("video0 -3 1\n", r"line 1: num_frames must be positive, got -3"),
    ("video0 12 -1\n", r"list\.txt, line 1: label must be >= 0, got -1"),
    ("\n\n", r"video list file has no videos: .*list\.txt"),
])
def test_malformed_list_names_file_and_line(tmp_path, content, message):
    (tmp_path / "list.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        VideoList(tmp_path / "list.txt")


def test_missing_and_broken_files_are_named(tmp_path, videos):
    with pytest.raises(FileNotFoundError, match=r"video list file not found: .*nope\.txt"):
        VideoList(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"video list file is a directory"):
        VideoList(tmp_path)
    (tmp_path / "list.txt").write_text("video0 12 0\nghost 12 1\n")
    ds = VideoList(tmp_path / "list.txt", root=videos.parent / "frames", frame_sets=(4,))  # checked lazily
    assert ds[0][1] == 0
    with pytest.raises(FileNotFoundError, match=r"frames directory not found: .*frames/ghost \(.*list\.txt, line 2\)"):
        ds[1]
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(4):
        (bad / f"{i + 1:05d}.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "bad.txt").write_text("bad 4 0\n")
    with pytest.raises(OSError, match=r"cannot decode frame file .*bad/0000\d\.jpg .*bad\.txt, line 1"):
        VideoList(tmp_path / "bad.txt", frame_sets=(4,))[0]
    with pytest.raises(ValueError, match=r"image_tmpl must be a format string .*got '\{name\}\.jpg'"):
        VideoList(videos, image_tmpl="{name}.jpg")
    with pytest.raises(ValueError, match=r"index_base must be an int >= 0, got -1"):
        VideoList(videos, index_base=-1)
    with pytest.raises(IndexError, match=r"index 6 out of range for a VideoList of 6 videos"):
        VideoList(videos)[6]


def test_transform_returning_wrong_shape_is_an_error(videos):
    ds = VideoList(videos, root=videos.parent / "frames", frame_sets=(4,), transform=lambda x: x[0])
    with pytest.raises(ValueError, match=r"transform must map \(N, C, H, W\) to \(N, C, H', W'\), got \(3, 40, 40\)"):
        ds[0]


def test_eval_transform_resizes_shorter_side_then_centre_crops():
    x = torch.rand(5, 3, 100, 176)
    out = eval_transform(224)(x)
    assert out.shape == (5, 3, 224, 224)
    # By hand: shorter side to 256 (width 450), crop the middle 224, ImageNet normalisation.
    big = TF.resize(x, [256, 450], antialias=True)
    crop = big[..., 16:240, 113:337]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(out, (crop - mean[:, None, None]) / std[:, None, None])
    # uint8 input is scaled to [0, 1] too; resize scales with the crop (256/224) unless given.
    assert eval_transform(32)((x * 255).to(torch.uint8)).abs().max() < 3
    assert eval_transform(112).transforms[0].size == [128]
    assert eval_transform(224, resize=320).transforms[0].size == [320]
    with pytest.raises(ValueError, match=r"resize \(200\) must be >= input_size \(224\)"):
        eval_transform(224, resize=200)
    with pytest.raises(ValueError, match=r"input_size must be a positive int, got 0"):
        eval_transform(0)


def test_train_transform_multiscale_crop_and_flip():
    x = torch.rand(16, 3, 100, 132)
    assert train_transform(224)(x).shape == (16, 3, 224, 224)
    # flip=False (Something-Something): no flip in the pipeline, and the crop is never mirrored.
    t = train_transform(32, flip=False)
    assert not any("Flip" in type(s).__name__ for s in t.transforms)
    ramp = torch.linspace(0, 1, 132).expand(1, 3, 100, 132)
    for _ in range(5):
        out = t(ramp)
        assert (out[..., 1:] >= out[..., :-1] - 1e-5).all()  # still increasing left to right
    with pytest.raises(ValueError, match=r"scales must be non-empty and in \(0, 1\], got \(1\.5,\)"):
        train_transform(32, scales=(1.5,))


def test_multiscale_crop_draws_tsm_crops():
    crop = MultiScaleCrop(224, scales=(1, 0.875, 0.75, 0.66))
    torch.manual_seed(0)
    sides = [100, 87, 75, 66]  # int(100 * s)
    seen = set()
    for _ in range(400):
        p = crop.crop_params(100, 176)
        i, j = sides.index(p["height"]), sides.index(p["width"])
        assert abs(i - j) <= 1  # max_distort
        h_step, w_step = (100 - p["height"]) // 4, (176 - p["width"]) // 4
        grid = (p["top"] // h_step if h_step else 0, p["left"] // w_step if w_step else 0)
        assert p["top"] == grid[0] * h_step and p["left"] == grid[1] * w_step and max(grid) <= 4
        seen.add((p["height"], p["width"]))
    assert len(seen) == 10  # every pair within one scale step
    assert crop.crop_params(256, 340)["height"] in (256, 224, 192, 168)  # int(256 * .875) = 224 -> snapped to 224


def test_transforms_for_uses_the_arch_preset():
    t = transforms_for("tsm_tiny")
    assert t(torch.rand(2, 3, 40, 60)).shape == (2, 3, 32, 32)  # tsm_tiny's input size
    norm = transforms_for("slowfast_r50", train=True, flip=False).transforms[-1]
    assert norm.mean == [0.45] * 3 and norm.std == [0.225] * 3
    model = ff.create_model("tsm_tiny", num_classes=3)
    assert transforms_for(model, resize=48).transforms[0].size == [48]
    with pytest.raises(ValueError, match=r"unknown model 'nope'"):
        transforms_for("nope")
    with pytest.raises(ValueError, match=r"Linear was not built by ff.create_model"):
        transforms_for(torch.nn.Linear(2, 2))


# --------------------------------------------------------------------------- video files


@pytest.fixture(scope="module")
def video_files(tmp_path_factory) -> tuple[Path, dict]:
    """Four tiny videos (two mp4, two webm, 20-26 frames) and an mmaction2 list of them."""
    from _videos import write_video

    root = tmp_path_factory.mktemp("video_files")
    (root / "sub").mkdir()
    names = ["v0.mp4", "sub/v1.webm", "v2.webm", "v3.mp4"]
    sources = {name: write_video(root / name, n=20 + 2 * i, seed=i) for i, name in enumerate(names)}
    (root / "list.txt").write_text("".join(f"{name} {i % 2}\n" for i, name in enumerate(names)))
    return root, sources


def test_video_file_list_reads_mp4_and_webm_decoding_only_the_sampled_frames(video_files):
    from _videos import frame_ids

    root, sources = video_files
    ds = datasets.video_dataset(root / "list.txt", root=root, frame_sets=(4, 8), image_tmpl="ignored")
    assert isinstance(ds, datasets.VideoFiles) and ds.format == "videos"
    assert ds.labels == [0, 1, 0, 1] and len(ds) == 4
    for i, name in enumerate(sources):
        clips, label = ds[i]
        assert label == i % 2 and clips[8].shape == (3, 8, 32, 48) and clips[8].dtype == torch.float32
        n = len(sources[name])  # the frame count comes from the container
        expected = ds.clips.indices(n)
        for t in (4, 8):
            got = frame_ids((clips[t].transpose(0, 1) * 255).round(), sources[name])
            assert got == expected[t].tolist()
    # With a transform (uint8 in), DataLoader workers each open their own decoder.
    ds = datasets.VideoFiles(root / "list.txt", frame_sets=(4, 8, 16), transform=eval_transform(32, resize=32))
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=ff.collate_clips)
    batches = list(loader)
    assert [tuple(b[0][16].shape) for b in batches] == [(2, 3, 16, 32, 32)] * 2
    assert torch.cat([b[1] for b in batches]).tolist() == [0, 1, 0, 1]


def test_nested_sampling_reads_only_the_largest_count(video_files, monkeypatch):
    root, _ = video_files
    read = []
    real = datasets.VideoFiles._clips

    def spy(self, num_frames, load):
        return real(self, num_frames, lambda idx: read.append(len(idx)) or load(idx))

    monkeypatch.setattr(datasets.VideoFiles, "_clips", spy)
    for nested in (True, False):
        ds = datasets.VideoFiles(root / "list.txt", frame_sets=(4, 8, 16), nested=nested)
        read.clear()
        clips, _ = ds[3]  # 26 frames
        if nested:  # one 16-frame read; the 4- and 8-frame clips are made of its frames
            assert read == [16]
            high = list(clips[16].transpose(0, 1))
            assert all(any(torch.equal(f, g) for g in high) for t in (4, 8) for f in clips[t].transpose(0, 1))
        else:  # FFN's independent draws read the union of three clips
            assert read[0] > 16


def test_kinetics_csv_per_class_and_flat_folders(tmp_path):
    from _videos import write_video

    rows = [("air drumming", "abc", 10, 20), ("abseiling", "xyz", 0, 10), ("air drumming", "q_q", 5, 15)]
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n" +
                   "".join(f"{label},{yt},{s},{e},val\n" for label, yt, s, e in rows))
    for layout in ("per_class", "flat"):
        root = tmp_path / layout
        for label, yt, s, e in rows:
            folder = root / label.replace(" ", "_") if layout == "per_class" else root
            folder.mkdir(parents=True, exist_ok=True)
            write_video(folder / f"{yt}_{s:06d}_{e:06d}.mp4", n=8)
        ds = datasets.video_dataset(csv, root=root, frame_sets=(4,))
        assert ds.format == "kinetics" and ds.classes == ["abseiling", "air drumming"]  # sorted -> ids
        assert ds.labels == [1, 0, 1] and ds.missing() == []
        assert ds[2][0][4].shape == (3, 4, 32, 48)
    # The val set takes the training set's classes; an unknown class is named with its line.
    ds = datasets.VideoFiles(csv, root=root, classes=["abseiling", "air drumming", "zumba"])
    assert ds.labels == [1, 0, 1] and ds.num_classes == 2
    with pytest.raises(ValueError, match=r"val\.csv, line 3: class 'abseiling' is not among the 1 classes"):
        datasets.VideoFiles(csv, root=root, classes=["air drumming"])


def test_something_something_v2_json(tmp_path):
    import json

    from _videos import write_video

    (tmp_path / "labels.json").write_text(json.dumps({"Holding something": "0", "Pushing something from left to "
                                                      "right": "1"}))
    items = [{"id": "7", "label": "pushing a cup from left to right", "template": "Pushing [something] from left "
              "to right", "placeholders": ["a cup"]}, {"id": "12", "template": "Holding [something]"}]
    lst = tmp_path / "something-something-v2-validation.json"
    lst.write_text(json.dumps(items))
    (tmp_path / "videos").mkdir()
    for item in items:
        write_video(tmp_path / "videos" / f"{item['id']}.webm", n=6)
    ds = datasets.video_dataset(lst, root=tmp_path / "videos", frame_sets=(2,))
    assert ds.format == "ssv2" and ds.labels == [1, 0]
    assert ds.classes == ["Holding something", "Pushing something from left to right"]
    assert ds[0][0][2].shape == (3, 2, 32, 48)
    (tmp_path / "test.json").write_text(json.dumps([{"id": "3"}]))
    with pytest.raises(ValueError, match=r"test\.json has no 'template' per video, so no labels"):
        datasets.video_dataset(tmp_path / "test.json")


def test_list_formats_are_recognised_and_an_unknown_one_lists_them(tmp_path, videos):
    assert isinstance(datasets.video_dataset(videos, root=videos.parent / "frames", backend="pyav"), VideoList)
    (tmp_path / "odd.txt").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"cannot tell the format of the video list .*odd\.txt from its first line "
                       r"'a,b,c'; the formats are: frames: .*videos: 'path/to/video\.mp4 label'.*kinetics: .*ssv2: "):
        datasets.video_dataset(tmp_path / "odd.txt")
    (tmp_path / "mixed.txt").write_text("v0.mp4 1\nv1.mp4\n")
    with pytest.raises(ValueError, match=r"mixed\.txt, line 2: expected 'path label'"):
        datasets.video_dataset(tmp_path / "mixed.txt")
    with pytest.raises(ValueError, match=r"lists frame folders .*read it with VideoList"):
        datasets.VideoFiles(videos)


def test_bad_videos_are_named_or_skipped_and_counted(tmp_path, video_files):
    root, _ = video_files
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(500))
    lines = [f"{root / 'v0.mp4'} 0", f"{tmp_path / 'gone.mp4'} 1", f"{tmp_path / 'empty.mp4'} 0",
             f"{tmp_path / 'junk.webm'} 1", f"{root / 'v3.mp4'} 1"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    ds = datasets.VideoFiles(tmp_path / "list.txt", frame_sets=(4,), transform=eval_transform(32, resize=32))
    assert [r.path.name for r in ds.missing()] == ["gone.mp4", "empty.mp4"]  # a stat each, no decoding
    with pytest.raises(FileNotFoundError, match=r"video file not found: .*gone\.mp4 \(.*list\.txt, line 2\)"):
        ds[1]
    with pytest.raises(ValueError, match=r"cannot open video .*junk\.webm .*\(.*list\.txt, line 4\)"):
        ds[3]
    ds.skip_bad = True
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ff.collate_clips)
    (clips, y), (clips2, y2) = batches = list(loader)
    assert y.tolist() == [0] and y2.tolist() == [1]
    assert [s.path.name for b in batches for s in b.skipped] == ["gone.mp4", "empty.mp4", "junk.webm"]
    assert "empty (0 bytes)" in batches[0].skipped[1].error
    assert ds.drop(ds.missing()) == 2 and len(ds) == 3


def test_video_layouts_go_through_the_transforms_and_clips():
    from torchvision import tv_tensors

    tchw = (torch.rand(12, 3, 20, 28) * 255).round().to(torch.uint8)
    thwc = tchw.permute(0, 2, 3, 1).contiguous()
    for t in (eval_transform(16, resize=16), train_transform(16, flip=False), eval_transform(16, crops=3)):
        torch.manual_seed(0)
        a = t(tchw)
        for other in (thwc, tv_tensors.Video(tchw)):
            torch.manual_seed(0)
            b = t(other)
            assert type(b) is torch.Tensor and torch.equal(a, b)
    with pytest.raises(ValueError, match=r"video must be a \(T, H, W, C\) uint8 tensor, a \(T, C, H, W\) tensor or "
                       r"a tv_tensors\.Video .*got Tensor of shape \(12, 20, 28, 3\) \(torch\.float32\)"):
        eval_transform(16)(thwc.float())


def test_three_crop_takes_left_centre_right_of_the_long_side():
    x = torch.arange(2 * 3 * 4 * 10, dtype=torch.float32).view(2, 3, 4, 10)
    out = datasets.ThreeCrop(4)(x)
    assert out.shape == (3, 2, 3, 4, 4)
    assert [torch.equal(out[k], x[..., :, s:s + 4]) for k, s in enumerate((0, 3, 6))] == [True] * 3
    tall = datasets.ThreeCrop(4)(x.transpose(-1, -2))  # portrait: top, centre, bottom
    assert torch.equal(tall[2], x.transpose(-1, -2)[..., 6:10, :])
    # The 3-crop test transform: short side to the crop size, then the three crops.
    views = eval_transform(8, crops=3, mean=(0,) * 3, std=(1,) * 3)(torch.rand(5, 3, 8, 20))
    assert views.shape == (3, 5, 3, 8, 8)
    with pytest.raises(ValueError, match=r"crops must be 1 \(centre\) or 3"):
        eval_transform(8, crops=2)


@pytest.mark.parametrize("name,content", [("frames.txt", "video0 12 0\n"), ("videos.txt", "v0.mp4 1\n"),
                                          ("k.csv", "label,youtube_id,time_start,time_end\nx,abc,1,11\n")])
def test_list_files_with_a_byte_order_mark_read_and_non_utf8_ones_are_named(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes("\ufeff".encode() + content.encode())  # as Windows editors save UTF-8
    data = datasets.video_dataset(path, root=tmp_path, backend="pyav")
    assert len(data) == 1 and data.labels[0] in (0, 1)
    path.write_bytes(content.replace("v", "\xe9", 1).replace("x,", "\xe9,").encode("latin-1"))
    with pytest.raises(ff.DataError, match=rf"video list file .*{name} is not UTF-8 text: byte 0xe9 at line \d"):
        datasets.video_dataset(path, root=tmp_path, backend="pyav")
