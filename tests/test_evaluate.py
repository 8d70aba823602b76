"""evaluate() and the `frameflex eval` / benchmarks/accuracy.py command line."""
from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest
import torch
from test_datasets import write_videos

import frameflex as ff
from frameflex.hub import save_pretrained
from frameflex.datasets import VideoList, transforms_for
from frameflex.evaluate import evaluate, format_table
from frameflex.training.eval_cli import main

CLASSES = 6


def _trained(frame_sets=(4, 8), seed=0):
    """A tsm_tiny whose branches differ, as after training (so the branch choice matters)."""
    torch.manual_seed(seed)
    model = ff.create_model("tsm_tiny", num_classes=CLASSES, frame_sets=frame_sets)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if t.is_floating_point():
                t.add_(0.1 * torch.randn(t.shape))
            if name.endswith("running_var"):
                t.abs_().add_(0.5)
    return model.eval()


def _by_hand(model, dataset, frames):
    """Top-1 / top-5 in %, one video at a time, without evaluate()."""
    hits1, hits5 = {t: 0 for t in frames}, {t: 0 for t in frames}
    with torch.no_grad():
        for i in range(len(dataset)):
            clips, label = dataset[i]
            for t in frames:
                if ff.is_converted(model):
                    with ff.frames(model, t):
                        logits = model(clips[t][None])[0]
                else:
                    logits = model(clips[t][None])[0]
                order = logits.argsort(descending=True).tolist()
                hits1[t] += order[0] == label
                hits5[t] += label in order[:5]
    n = len(dataset)
    return {t: 100 * hits1[t] / n for t in frames}, {t: 100 * hits5[t] / n for t in frames}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return write_videos(tmp_path_factory.mktemp("eval"), num_videos=7, num_frames=10, num_classes=CLASSES)


def _dataset(videos, frames, limit=None):
    ds = VideoList(videos, root=videos.parent / "frames", frame_sets=frames, transform=transforms_for("tsm_tiny"))
    return ds if limit is None else torch.utils.data.Subset(ds, range(limit))


def test_accuracy_equals_a_hand_computation(videos):
    model = _trained()
    ds = _dataset(videos, (4, 6, 8))
    result = evaluate(model, ds, (4, 6, 8), progress=False, batch_size=3)  # 3 + 3 + 1 videos
    top1, top5 = _by_hand(model, ds, (4, 6, 8))  # 6 frames: not trained, runs the 8-frame branch
    assert result["count"] == 7
    assert result["top1"] == pytest.approx(top1) and result["top5"] == pytest.approx(top5)
    assert list(result["top1"]) == [4, 6, 8]
    assert len({round(v, 6) for v in top5.values()} | {round(v, 6) for v in top1.values()}) > 1  # not degenerate
    # A plain model at any frame count, fed by a DataLoader given directly.
    plain = ff.specialize(model, 8)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=ff.collate_clips)
    result = evaluate(plain, loader, (4, 8), progress=False)
    assert result["top1"] == pytest.approx(dict(zip((4, 8), _by_hand(plain, ds, (4, 8))[0].values())))


def test_branch_chosen_by_frames_without_time_dim(videos):
    # Converted without time_dim, the model cannot pick its branch from the input: evaluate() must set it.
    torch.manual_seed(0)
    model = ff.convert(ff.models.tsm_tiny(num_classes=CLASSES), [4, 8])
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if ".branches." in name and t.is_floating_point():
                t.add_(0.5 * torch.rand(t.shape))
    ds = _dataset(videos, (4, 8))
    result = evaluate(model.eval(), ds, (4, 8), progress=False, batch_size=4)
    assert result["top1"] == pytest.approx(_by_hand(model, ds, (4, 8))[0])
    assert result["top5"] == pytest.approx(_by_hand(model, ds, (4, 8))[1])


def test_modes_branch_and_statistics_are_left_as_they_were(videos):
    model = _trained()
    model.train()
    model.backbone.layer1.eval()
    ff.set_frames(model, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = evaluate(model, _dataset(videos, (8,), limit=2), progress=False)  # frame_sets: the batches' counts
    assert list(result["top1"]) == [8]
    assert model.training and not model.backbone.layer1.training and model.backbone.layer2.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval mode: no BN statistics update
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), _trained().eval()(x))  # branch 4 still selected


def test_batches_follow_the_model_device_and_dtype(videos):
    model = _trained().double()
    ds = _dataset(videos, (4,), limit=3)
    result = evaluate(model, ds, [4], device="cpu", progress=False)
    assert result["count"] == 3 and next(model.parameters()).dtype == torch.float64
    assert result["top1"] == pytest.approx(_by_hand(model, [(
        {4: c[4].double()}, y) for c, y in (ds[i] for i in range(3))], (4,))[0])


def test_bad_batches_and_frame_counts_are_named(videos):
    model = _trained()
    ds = _dataset(videos, (4,), limit=2)
    with pytest.raises(KeyError, match=r"batch 0 has clips for frame counts \[4\], not for \[16\]"):
        evaluate(model, ds, (4, 16), progress=False)
    with pytest.raises(ValueError, match=r"frame_sets entry must be a positive int, got 0"):
        evaluate(model, ds, (0,), progress=False)
    with pytest.raises(ValueError, match=r"expected \(\{T: clip\}, labels\)"):
        evaluate(model, [torch.zeros(1, 3, 4, 32, 32)], (4,), progress=False)
    few = ff.create_model("tsm_tiny", num_classes=2)
    with pytest.raises(ValueError, match=r"batch 0: labels \[0, 1, 2, 3\] do not fit the model's 2 classes"):
        evaluate(few, _dataset(videos, (4,), limit=4), (4,), progress=False)
    with pytest.raises(ValueError, match=r"the loader yielded no videos"):
        evaluate(model, [], (4,), progress=False)


def test_format_table():
    table = format_table({"top1": {8: 48.2, 4: 42.85}, "top5": {8: 76.5, 4: 71.0}, "count": 2})
    assert table.splitlines() == ["| frames | 4 | 8 |", "|---|---|---|", "| top-1 (%) | 42.85 | 48.20 |",
                                  "| top-5 (%) | 71.00 | 76.50 |"]


def test_main_end_to_end_on_a_saved_folder(videos, tmp_path, capsys):
    model = _trained()
    folder = save_pretrained(model, tmp_path / "model")
    out = tmp_path / "res" / "acc.json"
    argv = [str(folder), "--list", str(videos), "--root", str(videos.parent / "frames"), "--frames", "4", "6", "8",
            "--batch-size", "2", "--workers", "0", "--device", "cpu", "--limit", "5", "--json", str(out),
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| frames | 4 | 6 | 8 |" in printed and "on 5 videos" in printed and "6 frames -> 8" in printed
    info = json.loads(out.read_text())
    top1, top5 = _by_hand(model, _dataset(videos, (4, 6, 8), limit=5), (4, 6, 8))
    assert info["count"] == 5 and info["dataset"]["videos"] == 7 and info["dataset"]["limit"] == 5
    assert info["top1"] == pytest.approx({str(t): v for t, v in top1.items()})
    assert info["top5"] == pytest.approx({str(t): v for t, v in top5.items()})
    assert info["model"]["architecture"] == "tsm_tiny" and info["model"]["frame_sets"] == [4, 8]
    assert info["model"]["branch"] == {"4": 4, "6": 8, "8": 8}
    assert info["protocol"]["input_size"] == 32 and info["protocol"]["resize"] == 36
    # Default frame counts: the model's frame sets.
    assert main(argv[:3] + ["--root", str(videos.parent / "frames"), "--workers", "0", "--limit", "2",
                            "--json", str(out), "--no-progress"]) == 0
    assert list(json.loads(out.read_text())["top1"]) == ["4", "8"]


def test_main_on_a_checkpoint_file_with_arch(videos, tmp_path, capsys):
    torch.manual_seed(1)
    plain = ff.create_model("tsm_tiny", num_classes=CLASSES).eval()
    torch.save({"state_dict": plain.state_dict()}, tmp_path / "ckpt.pth.tar")
    out = tmp_path / "acc.json"
    assert main([str(tmp_path / "ckpt.pth.tar"), "--arch", "tsm_tiny", "--list", str(videos), "--root",
                 str(videos.parent / "frames"), "--frames", "4", "--workers", "0", "--limit", "3",
                 "--json", str(out), "--no-progress"]) == 0
    info = json.loads(out.read_text())
    assert info["model"]["frame_sets"] is None and info["model"]["branch"] is None
    assert info["top1"] == pytest.approx({"4": _by_hand(plain, _dataset(videos, (4,), limit=3), (4,))[0][4]})
    assert "plain" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ("video0 10 0\nvideo1 ten 1\n", r"list\.txt, line 2: num_frames must be an int, got 'ten'"),
    ("video0 10 0\nvideo1 10\n", r"list\.txt, line 2: expected 3 fields"),
    ("v0.mp4 1\nv1.mp4\n", r"list\.txt, line 2: expected 'path label'"),
    ("a,b\n", r"cannot tell the format of the video list .*list\.txt .*the formats are: frames: "),
    (None, r"video list file not found: .*list\.txt"),
])
def test_main_exits_non_zero_on_a_bad_list(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "list.txt").write_text(content)
    assert main(["no/such-model", "--list", str(tmp_path / "list.txt"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("frameflex eval: error: ")
    assert re.search(message, err)


def test_main_exits_non_zero_on_missing_model_frames_or_labels(videos, tmp_path, capsys):
    folder = save_pretrained(_trained(), tmp_path / "model")
    frames = str(videos.parent / "frames")
    assert main([str(tmp_path / "nope.pth"), "--list", str(videos), "--root", frames]) == 2
    assert "model not found: " in capsys.readouterr().err
    (tmp_path / "list.txt").write_text("video0 10 0\nghost 10 1\n")
    for workers in ("0", "1"):  # a worker process re-raises with its traceback: still one line
        assert main([str(folder), "--list", str(tmp_path / "list.txt"), "--root", frames, "--workers", workers,
                     "--batch-size", "1", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert re.fullmatch(r"frameflex eval: error: frames directory not found: \S+/ghost \(\S+list\.txt, line 2\)",
                            err), err
    (tmp_path / "list.txt").write_text("video0 10 0\nvideo1 10 9\n")
    assert main([str(folder), "--list", str(tmp_path / "list.txt"), "--root", frames, "--no-progress"]) == 2
    assert "line 2: label 9 does not fit the model's 6 classes" in capsys.readouterr().err
    assert main([str(folder), "--arch", "tea_r50", "--list", str(videos), "--root", frames]) == 2
    assert "--arch tea_r50 was given, but " in capsys.readouterr().err
    assert main([str(folder), "--list", str(videos), "--batch-size", "0"]) == 2
    assert "--batch-size must be a positive int, got 0" in capsys.readouterr().err


@pytest.fixture(scope="module")
def video_files(tmp_path_factory) -> Path:
    """mp4 and webm files and an mmaction2 list ('path label') of them."""
    from _videos import write_video

    root = tmp_path_factory.mktemp("eval_video_files")
    names = ["a.mp4", "b.webm", "c.mp4", "d.webm"]
    for i, name in enumerate(names):
        write_video(root / name, n=12 + i, height=40, width=56, seed=i)
    (root / "list.txt").write_text("".join(f"{name} {i % CLASSES}\n" for i, name in enumerate(names)))
    return root / "list.txt"


def test_multi_view_scores_are_the_mean_softmax_of_the_views(video_files):
    model = _trained()
    ds = ff.datasets.video_dataset(video_files, frame_sets=(4, 8), num_clips=2,
                                   transform=transforms_for("tsm_tiny", crops=3))
    clips, _ = ds[0]
    assert clips[8].shape == (6, 3, 8, 32, 32)  # 2 clips x 3 crops
    result = evaluate(model, ds, (4, 8), progress=False, batch_size=3)
    assert result["views"] == 6 and result["count"] == 4
    hits = {4: 0, 8: 0}
    with torch.no_grad():
        for clips, label in (ds[i] for i in range(len(ds))):
            for t in (4, 8):
                with ff.frames(model, t):
                    score = model(clips[t]).softmax(-1).mean(0)  # the 6 views as a batch
                hits[t] += int(score.argmax()) == label
    assert result["top1"] == pytest.approx({t: 100 * hits[t] / 4 for t in (4, 8)})


def test_main_on_video_files_reports_views_and_their_gmacs(video_files, tmp_path, capsys):
    folder = save_pretrained(_trained(), tmp_path / "model")
    out = tmp_path / "mv.json"
    assert main([str(folder), "--list", str(video_files), "--clips", "2", "--crops", "3", "--workers", "0",
                 "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "on 4 videos of" in printed and "2 clips x 3 crops 32 = 6 views per video" in printed
    info = json.loads(out.read_text())
    gmacs = ff.profile(_trained(), input_size=32, latency=False)
    assert info["views"] == 6 and info["protocol"]["clips"] == 2 and info["protocol"]["crops"] == 3
    assert info["gmacs_per_view"] == pytest.approx({str(r.frames): r.gmacs for r in gmacs}, abs=1e-3)
    assert info["gmacs_per_video"] == pytest.approx({str(r.frames): 6 * r.gmacs for r in gmacs}, abs=1e-3)
    per_view = " | ".join(f"{r.gmacs:.2f}" for r in gmacs)
    per_video = " | ".join(f"{6 * r.gmacs:.2f}" for r in gmacs)
    assert f"| GMACs per view | {per_view} |" in printed and f"| GMACs x 6 views | {per_video} |" in printed
    # The default protocol: 1 clip x 1 centre crop.
    assert main([str(folder), "--list", str(video_files), "--workers", "0", "--decoder", "pyav",
                 "--no-progress"]) == 0
    assert "1 clip x centre crop 32 = 1 view per video" in capsys.readouterr().out
    # A missing video stops the run before the model is loaded, naming it.
    (tmp_path / "list.txt").write_text(f"{video_files.parent / 'a.mp4'} 0\n{tmp_path / 'gone.webm'} 1\n")
    assert main(["no/such-model", "--list", str(tmp_path / "list.txt"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"frameflex eval: error: 1 of the 2 videos of \S+list\.txt are missing or empty, "
                        r"e\.g\. \S+gone\.webm \(line 2\)", err), err


def test_benchmark_script_is_the_same_program(capsys):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "accuracy.py"
    namespace = runpy.run_path(str(script), run_name="not_main")
    assert namespace["main"] is main
    assert "--frames 4 8 16" in namespace["__doc__"] and "--arch tsm_r50" in namespace["__doc__"]
