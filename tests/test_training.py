"""frameflex train (frameflex.training): FFN runs on synthetic and JPEG-frame data, exact resumes, torchrun, --init, clear errors."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import frameflex as ff
from frameflex import training
from frameflex.training import checkpoint
from frameflex.cli import main as cli_main
from frameflex.training.cli import main as train_main
from test_datasets import write_videos

REPO = Path(__file__).parent.parent
TINY = ["--model", "tsm_tiny", "--batch-size", "2", "--workers", "0", "--threads", "1", "--no-progress"]
SYNTH = TINY + ["--synthetic", "--synthetic-videos", "8", "--synthetic-val-videos", "4"]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def log_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_ffn_run_trains_every_branch_and_writes_checkpoints_log_and_hub_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "recipe tsm: sgd lr 0.000625 (0.01 x 2/32 videos per step)" in stdout  # linear scaling
    assert "| frames | 4 | 8 | 16 |" in stdout and "| top-1 (%) |" in stdout

    (record,) = log_lines(out)
    assert record["epoch"] == 1 and record["step"] == 4
    assert set(record["train"]) == {"loss", "ce", "kl_4", "kl_8"}
    assert set(record["val"]["top1"]) == {"4", "8", "16"} and record["val"]["count"] == 4

    ckpt = load(out / "last.pt")
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]) == (1, 0, 4)
    # every frame count's private BN ran every step
    for t in (4, 8, 16):
        assert ckpt["model"][f"backbone.bn1.branches.{t}.num_batches_tracked"].item() == 4
    groups = {g["name"]: g for g in ckpt["optimizer"]["param_groups"]}
    assert groups["head_weight"]["lr"] == pytest.approx(5 * groups["weight"]["lr"])
    assert groups["head_bias"]["lr"] == pytest.approx(10 * groups["weight"]["lr"])
    assert groups["norm"]["weight_decay"] == 0 and groups["weight"]["weight_decay"] == 5e-4
    assert ckpt["scheduler"]["last_epoch"] == 4 and ckpt["config"]["train_frames"] == [4, 8, 16]
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"][0])
    assert set(load(out / "best.pt")["model"]) == set(ckpt["model"])

    model = ff.from_pretrained(out / "model")
    assert ff.frame_sets(model) == (4, 8, 16)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, ckpt["model"][key], rtol=0, atol=0)
    assert "pretrained" not in json.loads((out / "model" / "config.json").read_text())["base"]["kwargs"]


def test_single_frame_count_and_a_custom_model_converted_with_auto_adapters(tmp_path, capsys):
    out = tmp_path / "plain"
    assert train_main(SYNTH + ["--frames", "8", "--eval-frames", "4", "8", "--epochs", "1", "--out", str(out)]) == 0
    (record,) = log_lines(out)
    assert set(record["train"]) == {"loss", "ce"} and set(record["val"]["top1"]) == {"4", "8"}
    assert not any("branches" in k for k in load(out / "last.pt")["model"])

    (tmp_path / "mynet.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, c):\n"
        "        super().__init__()\n"
        "        self.conv, self.bn = nn.Conv3d(c, c, 3, padding=1), nn.BatchNorm3d(c)\n"
        "    def forward(self, x):\n"
        "        return x + torch.relu(self.bn(self.conv(x)))\n\n"
        "def build(num_classes):\n"
        "    return nn.Sequential(nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(8), nn.ReLU(),\n"
        "                         Block(8), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, num_classes))\n")
    out = tmp_path / "custom"
    videos = write_videos(tmp_path / "data", size=32)
    data = ["--list", str(videos), "--val-list", str(videos), "--root", str(videos.parent / "frames")]
    args = ["--model", f"{tmp_path / 'mynet.py'}:build", "--frame-sets", "2", "4", "--adapters", "auto",
            "--input-size", "32"] + TINY[2:] + data + ["--epochs", "1", "--out", str(out)]
    assert train_main(args) == 0
    keys = load(out / "last.pt")["model"]
    assert "1.branches.2.running_mean" in keys and "1.branches.4.running_mean" in keys
    assert any(".scales.2" in k for k in keys)  # the auto adapter on Block.conv
    assert "trust_remote_code=True" in capsys.readouterr().out

    # the Hub folder of a custom model: its builder recorded, run only when asked
    model = ff.from_pretrained(out / "model", trust_remote_code=True)
    assert ff.frame_sets(model) == (2, 4)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, keys[key], rtol=0, atol=0)
    # frameflex eval reads it, with the preprocessing it was trained with, and scores what validation scored
    ev = ["eval", str(out / "model"), "--list", str(videos), "--root", str(videos.parent / "frames"),
          "--workers", "0", "--no-progress", "--json", str(tmp_path / "eval.json")]
    assert cli_main(ev) == 2
    assert "--trust-remote-code" in capsys.readouterr().err
    assert cli_main(ev + ["--trust-remote-code"]) == 0
    scored = json.loads((tmp_path / "eval.json").read_text())
    (record,) = log_lines(out)
    assert scored["top1"] == record["val"]["top1"] and scored["count"] == record["val"]["count"] == 6
    assert scored["protocol"]["input_size"] == 32


def test_resume_mid_epoch_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, monkeypatch):
    """8 steps straight == 3 steps, a crash right after the step-3 checkpoint, --resume auto, 5 steps."""
    args = SYNTH + ["--epochs", "2"]
    assert train_main(args + ["--out", str(tmp_path / "straight")]) == 0

    class Crash(Exception):
        pass

    save = checkpoint.atomic_save

    def save_then_crash(obj, path):
        save(obj, path)
        if obj["step"] == 3:
            raise Crash

    monkeypatch.setattr(checkpoint, "atomic_save", save_then_crash)
    with pytest.raises(Crash):
        train_main(args + ["--out", str(tmp_path / "resumed"), "--save-every", "3"])
    monkeypatch.undo()
    mid = load(tmp_path / "resumed" / "last.pt")
    assert (mid["epoch"], mid["step_in_epoch"], mid["step"]) == (0, 3, 3)
    assert train_main(args + ["--out", str(tmp_path / "resumed"), "--resume", "auto"]) == 0

    a, b = load(tmp_path / "straight" / "last.pt"), load(tmp_path / "resumed" / "last.pt")
    assert a["step"] == b["step"] == 8
    for key in a["model"]:  # dropout 0.5 (the tsm recipe) makes this fail if the RNG were not restored
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=1e-7)
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in log_lines(tmp_path / d)]
               for d in ("straight", "resumed")]
    assert untimed[0] == untimed[1]  # losses and accuracies of both epochs, to the last digit


def test_a_kill_between_the_files_of_an_epoch_loses_at_most_that_epoch(tmp_path, monkeypatch):
    """Killed before each file of epoch 1's end (best.pt, log.jsonl, last.pt): nothing is behind last.pt,
    and --resume auto ends exactly where an uninterrupted run does."""
    args = SYNTH + ["--epochs", "2", "--save-every", "3"]
    assert train_main(args + ["--out", str(tmp_path / "straight")]) == 0
    straight = load(tmp_path / "straight" / "last.pt")

    class Kill(BaseException):
        pass

    writes = {"atomic_save": checkpoint.atomic_save, "atomic_copy": checkpoint.atomic_copy,
              "append_log": checkpoint.append_log}
    for victim in ("best.pt", "log.jsonl", "last.pt"):
        out = tmp_path / f"killed_before_{victim}"

        def make(name):
            def write(a, b):
                path, what = (a, b) if name == "append_log" else (b, a)  # append_log(path, record)
                if Path(path).name == victim and (name == "atomic_copy" or what["epoch"] == 1):
                    raise Kill(victim)
                writes[name](a, b)
            return write

        with monkeypatch.context() as m:
            for name in writes:
                m.setattr(checkpoint, name, make(name))
            with pytest.raises(Kill):
                train_main(args + ["--out", str(out)])
        last = load(out / "last.pt")
        assert (last["epoch"], last["step_in_epoch"]) == (0, 3)  # the step-3 checkpoint of epoch 1
        logged = log_lines(out) if (out / "log.jsonl").exists() else []
        assert len(logged) == {"best.pt": 0, "log.jsonl": 0, "last.pt": 1}[victim]  # never behind last.pt
        assert (out / "best.pt").exists() == (victim != "best.pt")
        assert train_main(args + ["--out", str(out), "--resume", "auto"]) == 0
        resumed = load(out / "last.pt")
        assert resumed["step"] == straight["step"] == 8
        for key in straight["model"]:
            torch.testing.assert_close(resumed["model"][key], straight["model"][key], rtol=0, atol=1e-7)
        untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in log_lines(d)]
                   for d in (tmp_path / "straight", out)]
        assert untimed[0] == untimed[1]  # one line per epoch, the redone epoch not twice
        assert load(out / "best.pt")["epoch"] == load(tmp_path / "straight" / "best.pt")["epoch"]


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with checkpoint.run_lock(out):  # the first run, alive
        assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by another run (pid {os.getpid()}" in err and err.count("\n") == 1
        assert not (out / "last.pt").exists()
    # a lock file left by a killed run (its pid is gone, its OS lock with it) is stale: taken over
    (out / "train.lock").write_text("999999999\n")
    assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    assert load(out / "last.pt")["epoch"] == 1


def test_resume_with_other_hyper_parameters_is_refused_listing_each(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    before = (out / "last.pt").read_bytes()
    resume = SYNTH + ["--out", str(out), "--resume", "auto"]
    assert train_main(resume + ["--epochs", "2", "--lr", "0.5", "--weight-decay", "0.01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the run was trained with other settings" in err
    assert "lr 0.000625 -> 0.5" in err and "recipe.weight_decay 0.0005 -> 0.01" in err
    assert (out / "last.pt").read_bytes() == before  # nothing trained, nothing written
    assert train_main(resume + ["--epochs", "2"]) == 0  # more epochs: applied, and said
    assert "epochs 1 -> 2 (applied)" in capsys.readouterr().out
    assert [r["epoch"] for r in log_lines(out)] == [1, 2]


def test_resume_refuses_another_model_setup_and_a_fresh_run_refuses_an_old_out(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert train_main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert train_main(SYNTH + ["--frame-sets", "4", "8", "--epochs", "2", "--out", str(out), "--resume", "auto"]) == 2
    assert "train_frames [4, 8, 16] -> [4, 8]" in capsys.readouterr().err


def test_init_fans_a_plain_checkpoint_out_to_every_branch(tmp_path):
    torch.manual_seed(1)
    plain = ff.create_model("tsm_tiny", num_classes=4).eval()
    with torch.no_grad():
        for name, buf in plain.named_buffers():
            if "running" in name:
                buf.uniform_(0.5, 1.5)
    sd = dict(plain.state_dict())
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(3)
    save_file(sd, tmp_path / "plain.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "plain.pth")

    for path in (tmp_path / "plain.safetensors", tmp_path / "plain.pth"):
        model = ff.create_model("tsm_tiny", num_classes=4, frame_sets=[4, 8, 16])
        report = training.init_from(model, path, arch="tsm_tiny")
        assert report.layout == "frameflex" and report.missing == ["fc.bias"] and report.unexpected == ["extra.weight"]
        own = model.state_dict()
        for t in (4, 8, 16):
            torch.testing.assert_close(own[f"backbone.bn1.branches.{t}.running_var"], sd["backbone.bn1.running_var"])
            torch.testing.assert_close(own[f"backbone.layer1.0.bn1.branches.{t}.weight"],
                                       sd["backbone.layer1.0.bn1.weight"])
        torch.testing.assert_close(own["backbone.conv1.weight"], sd["backbone.conv1.weight"])

    five = ff.create_model("tsm_tiny", num_classes=5)  # another dataset's classifier: skipped, reported
    save_file(five.state_dict(), tmp_path / "five.safetensors")
    report = training.init_from(ff.create_model("tsm_tiny", num_classes=4, frame_sets=[4, 8]),
                             tmp_path / "five.safetensors", arch="tsm_tiny")
    assert sorted(s.split()[0] for s in report.skipped) == ["fc.bias", "fc.weight"]
    assert sorted(report.missing) == ["fc.bias", "fc.weight"]


def test_run_on_jpeg_frames_listed_in_tsm_format_with_init(tmp_path, capsys):
    videos = write_videos(tmp_path / "data", size=32)
    init = tmp_path / "plain.safetensors"
    save_file(ff.create_model("tsm_tiny", num_classes=4).state_dict(), init)
    out = tmp_path / "run"
    args = TINY + ["--list", str(videos), "--val-list", str(videos), "--root", str(videos.parent / "frames"),
                   "--frame-sets", "4", "8", "--epochs", "1", "--init", str(init), "--out", str(out)]
    assert train_main(args) == 0
    stdout = capsys.readouterr().out
    assert "tsm_tiny (zoo), 4 classes, FFN at [4, 8] frames; 6 training videos" in stdout
    assert "init: " in stdout and "missing 0; unexpected 0; skipped 0" in stdout
    (record,) = log_lines(out)
    assert record["step"] == 3 and record["val"]["count"] == 6 and set(record["val"]["top1"]) == {"4", "8"}


@pytest.mark.parametrize("problem, expected", [
    ("missing list", "video list file not found: {data}/nope.txt"),
    ("bad line", "{data}/list.txt, line 2: num_frames must be an int, got 'x'"),
    ("bad root", "training set: frames directory not found: {data}/elsewhere/video0"),
    ("bad label", "{data}/list.txt, line 2: label 1 does not fit --num-classes 1"),
    ("unknown model", "unknown model 'tsm_r51'"),
])
def test_bad_inputs_exit_2_with_one_line_naming_the_problem(tmp_path, capsys, problem, expected):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        (data / f"video{i}").mkdir()
    (data / "list.txt").write_text("video0 12 0\nvideo1 12 1\n")
    args = TINY + ["--list", str(data / "list.txt"), "--epochs", "1", "--out", str(tmp_path / "run")]
    if problem == "missing list":
        args[args.index("--list") + 1] = str(data / "nope.txt")
    elif problem == "bad line":
        (data / "list.txt").write_text("video0 12 0\nvideo1 x 1\n")
    elif problem == "bad root":
        args += ["--root", str(data / "elsewhere")]
    elif problem == "bad label":
        args += ["--num-classes", "1"]
    else:
        args[args.index("tsm_tiny")] = "tsm_r51"
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("frameflex train: error: ")
    assert expected.format(data=data) in err


@pytest.mark.parametrize("flags, expected", [
    (["--batch-size", "0"], "--batch-size must be a positive int, got 0"),
    (["--frame-sets", "4", "8", "4"], "--frame-sets has duplicate frame counts [4]: [4, 8, 4]"),
    (["--kl-weight", "-1"], "--kl-weight must be >= 0, got -1.0"),
    (["--frames", "8", "--adapters", "auto"], "--adapters needs --frame-sets"),
    (["--list", "x.txt"], "give either --list/--val-list or --synthetic, not both"),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, capsys, flags, expected):
    assert train_main(SYNTH + flags + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == f"frameflex train: error: {expected}\n" or (err.count("\n") == 1 and expected in err)
    assert not (tmp_path / "run").exists()


def test_train_config_is_checked_when_built_and_never_changed():
    cfg = training.TrainConfig(model="tsm_tiny", synthetic=True)
    with pytest.raises(training.UsageError, match="--lr must be positive"):
        dataclasses.replace(cfg, lr=0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.amp = "bf16"  # the run derives its defaults (amp from the device) without touching the config
    assert cfg.ffn and cfg.to_dict()["eval_frames"] is None


def test_recipes_are_the_official_numbers():
    tsm, tea, slowfast, uniformer = (training.recipes()[k] for k in ("tsm", "tea", "slowfast", "uniformer"))
    assert (tsm.lr, tsm.batch_size, tsm.epochs, tsm.lr_steps, tsm.weight_decay) == (0.01, 32, 50, (20, 40), 5e-4)
    assert (tea.lr, tea.lr_steps) == (0.02, (30, 40, 45))
    assert [training.lr_factor(tsm, e) for e in (0, 19.9, 20, 40)] == pytest.approx([1, 1, 0.1, 0.01])
    assert training.lr_factor(slowfast, 0) == pytest.approx(1e-4 / 0.03)  # linear warm-up ...
    assert training.lr_factor(slowfast, 0.19) == 1 and training.lr_factor(slowfast, 14) == pytest.approx(0.1)
    assert uniformer.optimizer == "adamw" and uniformer.drop_path == 0.2 and uniformer.label_smoothing == 0.1
    assert training.lr_factor(uniformer, 5) == pytest.approx(1)  # cosine after 5 warm-up epochs ...
    assert training.lr_factor(uniformer, 32.5) == pytest.approx(0.5 * (1 + 1e-6 / 2e-4))
    assert training.lr_factor(uniformer, 60) == pytest.approx(1e-6 / 2e-4)  # ... down to 1e-6
    assert [training.default_recipe(m) for m in ("tsm_r50", "tea_r50", "slowfast_r50", "uniformer_s", "x.py:f")] == [
        "tsm", "tea", "slowfast", "uniformer", None]


def test_torchrun_two_processes_gloo_resume_continues_the_same_run(tmp_path):
    """DDP on CPU: 2 epochs straight == 1 epoch + --resume; micro-steps under no_sync (--accum-steps 2)."""
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(REPO / "examples" / "train.py"), "--model", "tsm_tiny", "--synthetic", "--synthetic-videos", "8",
            "--synthetic-val-videos", "6", "--batch-size", "1", "--accum-steps", "2", "--workers", "0",
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*extra: str) -> str:
        done = subprocess.run(base + list(extra), capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    torchrun("--epochs", "2", "--out", str(tmp_path / "straight"))
    out = torchrun("--epochs", "1", "--out", str(tmp_path / "resumed"))
    assert "2 process(es) on cpu, 1 per process x 2 accumulation = 4 per step, 2 steps per epoch" in out
    first = load(tmp_path / "resumed" / "last.pt")
    assert len(first["rng"]) == 2 and first["config"]["world_size"] == 2 and first["step"] == 2
    assert "resumed" in torchrun("--epochs", "2", "--out", str(tmp_path / "resumed"), "--resume", "auto")
    a, b = load(tmp_path / "straight" / "last.pt"), load(tmp_path / "resumed" / "last.pt")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=1e-7)


def test_run_on_mp4_and_webm_files_skips_and_counts_broken_ones(tmp_path, capsys):
    from _videos import write_video

    data = tmp_path / "videos"
    data.mkdir()
    names = ["a.mp4", "b.webm", "c.mp4", "d.webm", "e.mp4", "f.webm"]
    for i, name in enumerate(names):
        write_video(data / name, n=10 + i, height=36, width=48, seed=i)
    (data / "broken.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(300))  # a webm header, then nothing
    lines = [f"{name} {i % 2}" for i, name in enumerate(names)]
    (tmp_path / "train.txt").write_text("\n".join(lines + ["broken.webm 1"]) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(lines[:4]) + "\n")
    out = tmp_path / "run"
    args = TINY + ["--list", str(tmp_path / "train.txt"), "--val-list", str(tmp_path / "val.txt"), "--root",
                   str(data), "--frame-sets", "4", "8", "--epochs", "2", "--nested", "--out", str(out)]
    assert train_main(args) == 0  # the broken file does not stop the run
    captured = capsys.readouterr()
    assert "2 classes, FFN at [4, 8] frames; 7 training videos" in captured.out
    records = log_lines(out)
    assert [r["skipped_videos"] for r in records] == [1, 1] and all(r["val"]["count"] == 4 for r in records)
    assert "skipped 1 unreadable video" in captured.out
    assert "skipped unreadable video: cannot open video " in captured.out + captured.err
    assert "broken.webm" in captured.out + captured.err
    # A missing file stops the run before it starts (a stat per video), unless --bad-videos skip.
    (tmp_path / "train.txt").write_text("\n".join(lines + ["gone.mp4 1"]) + "\n")
    args[args.index("--out") + 1] = str(tmp_path / "run2")
    assert train_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"frameflex train: error: 1 of the 7 videos of {tmp_path / 'train.txt'} are missing or empty, "
                   f"e.g. {data / 'gone.mp4'} (line 7); fix the list or --root, or pass --bad-videos skip")
    assert train_main(args + ["--bad-videos", "skip", "--epochs", "1"]) == 0
    captured = capsys.readouterr()
    assert "--bad-videos skip: 1 of the 7 videos" in captured.out + captured.err
    assert "6 training videos" in captured.out


def test_a_custom_builder_that_cannot_be_imported_is_a_usage_error_naming_it(tmp_path):
    from frameflex.training.builders import _import_builder

    with pytest.raises(training.UsageError, match=r"--model: builder .*nope\.py:build: file not found: .*nope\.py"):
        _import_builder(f"{tmp_path}/nope.py:build")
    (tmp_path / "mine.py").write_text("def other():\n    pass\n")
    with pytest.raises(training.UsageError, match=r"mine\.py has no function 'build'"):
        _import_builder(f"{tmp_path}/mine.py:build")
