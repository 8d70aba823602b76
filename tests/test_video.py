"""frameflex.video: torchcodec and PyAV read the same frames, only the ones asked for, and name bad files."""

import pickle

import pytest
import torch

from _videos import frame_ids, write_video
from frameflex.errors import ArgumentError, DataError, NotFoundError
from frameflex.video import VideoDecoder, _torchcodec_problem, available_backends, default_backend, open_video

TORCHCODEC = _torchcodec_problem()
needs_torchcodec = pytest.mark.skipif(TORCHCODEC is not None, reason=str(TORCHCODEC))
BACKENDS = [pytest.param("torchcodec", marks=needs_torchcodec), "pyav"]


@pytest.fixture(scope="module", params=[".mp4", ".webm"])
def video(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / f"clip{request.param}"
    return path, write_video(path, n=24, fps=12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_the_frames_asked_for_with_count_and_fps_from_the_container(video, backend):
    path, source = video
    reader = open_video(path, backend)
    assert (reader.num_frames, reader.fps, reader.backend) == (24, 12.0, backend)
    idx = [23, 0, 7, 7, 12, 3, 18]  # unordered, repeated, across several keyframes
    out = reader.get_frames(idx)
    assert out.dtype == torch.uint8 and out.shape == (7, 3, 32, 48)
    assert frame_ids(out, source) == idx
    with pytest.raises(ArgumentError, match=r"frame indices \[24\] out of range for .*clip.* \(24 frames\)"):
        reader.get_frames([0, 24])


@needs_torchcodec
def test_both_backends_give_the_same_frame_for_the_same_index(video):
    path, _ = video
    idx = list(range(0, 24, 5)) + [23, 1]
    a = open_video(path, "torchcodec").get_frames(idx)
    b = open_video(path, "pyav").get_frames(idx)
    assert (a.int() - b.int()).abs().float().mean() < 0.5  # the same frames (colour conversion may round apart)
    assert frame_ids(a, video[1]) == frame_ids(b, video[1]) == idx


def test_pyav_seeks_instead_of_decoding_the_whole_video(tmp_path):
    path = tmp_path / "long.mp4"
    write_video(path, n=120, gop=10)
    reader = open_video(path, "pyav")
    reader.get_frames([115])
    assert reader.frames_decoded <= 10  # from the keyframe at 110, not from frame 0
    reader.get_frames([3, 60, 61, 100])
    assert reader.frames_decoded <= 10 + 4 + 2 + 1 + 1 + 10  # one GOP prefix per far jump at most


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_empty_undecodable_and_truncated_files_are_named(tmp_path, backend):
    with pytest.raises(NotFoundError, match=r"video file not found: .*nope\.mp4"):
        open_video(tmp_path / "nope.mp4", backend)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"video file is empty \(0 bytes\): .*empty\.mp4"):
        open_video(tmp_path / "empty.mp4", backend)
    (tmp_path / "junk.webm").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match=rf"cannot open video .*junk\.webm \({backend}\)"):
        open_video(tmp_path / "junk.webm", backend)
    good = tmp_path / "good.mp4"
    write_video(good, n=40, movflags="faststart")  # the index first, as downloaded Kinetics files are
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"video file is truncated: .*cut\.mp4 has \d+ of the 40 frames"):
        open_video(tmp_path / "cut.mp4", backend)
    with pytest.raises(DataError, match=r"video path is a directory, not a file"):
        open_video(tmp_path, backend)


def test_backend_choice():
    problems = available_backends()
    assert list(problems) == ["torchcodec", "pyav"] and problems["pyav"] is None
    assert default_backend() == ("torchcodec" if problems["torchcodec"] is None else "pyav")
    with pytest.raises(ArgumentError, match=r"unknown video backend 'decord'; use 'auto' or one of"):
        open_video("x.mp4", "decord")


def test_decoder_keeps_the_last_file_and_pickles_without_it(video):
    path, _ = video
    decoder = VideoDecoder("pyav")
    first = decoder.open(path)
    assert decoder.open(path) is first  # the same video again: no reopening
    clone = pickle.loads(pickle.dumps(decoder))  # what a DataLoader worker gets
    assert clone._reader is None and clone.backend == "pyav"
    assert clone.open(path) is not first and clone.open(path).num_frames == 24


@needs_torchcodec
def test_auto_falls_back_to_pyav_for_a_file_torchcodec_cannot_open(video, monkeypatch):
    import frameflex.video as fv

    path, source = video

    def refuse(p):
        raise DataError(f"cannot open video {p} (torchcodec): unsupported codec")

    monkeypatch.setitem(fv._READERS, "torchcodec", refuse)
    reader = open_video(path)  # auto
    assert reader.backend == "pyav" and frame_ids(reader.get_frames([5]), source) == [5]
    with pytest.raises(DataError, match=r"\(torchcodec\): unsupported codec"):
        open_video(path, "torchcodec")  # asked for by name: no fallback


WORKERS_SCRIPT = """
import sys
import torch
import frameflex as ff
from frameflex.datasets import VideoFiles, eval_transform

ds = VideoFiles(sys.argv[1], frame_sets=(4, 8), backend=sys.argv[2], skip_bad=True,
                transform=eval_transform(32, resize=32))
ds[0]  # the parent holds an open file when the workers fork
for epoch in range(2):  # new workers each epoch, forked from a parent that still holds it
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=ff.collate_clips, timeout=60)
    labels, skipped = [], []
    for clips, y in (batches := list(loader)):
        labels += y.tolist()
    print(epoch, labels, [s.path.name for b in batches for s in b.skipped], flush=True)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_dataloader_workers_decode_every_video_and_exit(tmp_path, backend):
    """Two forked workers, a parent with an open file, a broken file skipped: it ends (a hang fails the test)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    for i, name in enumerate(["v0.mp4", "v1.webm", "v2.webm", "v3.mp4"]):
        write_video(tmp_path / name, n=16 + 2 * i, seed=i)
    whole = (tmp_path / "v3.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])  # truncated: its index is gone
    (tmp_path / "list.txt").write_text("v0.mp4 0\ncut.mp4 1\nv1.webm 1\nv2.webm 0\nv3.mp4 1\n")
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", WORKERS_SCRIPT, str(tmp_path / "list.txt"), backend],
                         capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines() == [f"{e} [0, 1, 0, 1] ['cut.mp4']" for e in range(2)]
