"""transformers models through the Hub: converted ones saved and rebuilt, plain checkpoints converted on load."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from test_temporal import SETS, build, clip

import frameflex as ff
from frameflex.temporal import TemporalTable


def _hub_cache(tmp_path, folder, repo="org/videomae-tiny"):
    """``folder`` laid out as huggingface_hub's cache holds a downloaded repo."""
    root = tmp_path / "cache" / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    shutil.copytree(folder, root / "snapshots" / commit)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return repo, tmp_path / "cache"


@pytest.mark.parametrize("name", ["videomae", "vivit"])
def test_converted_model_saves_and_is_rebuilt_from_its_transformers_config(tmp_path, name):
    model = ff.convert(build(name), SETS, adapters="auto")
    with torch.no_grad():  # trained-looking branches: they must come back as they are
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ff.save_pretrained(model, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["base"]["type"] == "transformers" and config["time_dim"] == 1
    loaded = ff.from_pretrained(tmp_path / "out")  # no model given
    assert type(loaded) is type(model) and ff.frame_sets(loaded) == SETS
    with torch.no_grad():
        for t in (4, 8, 12, 16):
            x = clip(t, True)
            torch.testing.assert_close(loaded(x).logits, model.eval()(x).logits)


def test_plain_transformers_checkpoint_loads_converted(tmp_path):
    plain = build("videomae")
    plain.save_pretrained(tmp_path / "hf")  # config.json with model_type + model.safetensors
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "videomae"
    model = ff.from_pretrained(tmp_path / "hf", frame_sets=[4, 8, 16], adapters="auto")
    assert ff.frame_sets(model) == SETS and any(isinstance(m, TemporalTable) for m in model.modules())
    x8 = clip(8, True)
    with torch.no_grad():
        torch.testing.assert_close(model(x8).logits, plain(x8).logits, atol=1e-5, rtol=0)
        assert model(clip(4, True)).logits.shape == (2, 5)
    unconverted = ff.from_pretrained(tmp_path / "hf")
    assert not ff.is_converted(unconverted)
    with pytest.raises(TypeError, match="drop model="):
        ff.from_pretrained(tmp_path / "hf", model=build("videomae"))


def test_plain_checkpoint_from_the_hub_cache_offline(tmp_path, monkeypatch):
    plain = build("vivit")
    plain.save_pretrained(tmp_path / "hf")
    repo, cache = _hub_cache(tmp_path, tmp_path / "hf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ff.from_pretrained(repo, cache_dir=cache, frame_sets=SETS, local_files_only=True)
    with torch.no_grad():
        torch.testing.assert_close(model(clip(8, True)).logits, plain(clip(8, True)).logits, atol=1e-5, rtol=0)
    ff.save_pretrained(model, tmp_path / "ffn")  # and a converted folder from the cache, too
    assert json.loads((tmp_path / "ffn" / "config.json").read_text())["base_model"] == repo
    repo2, cache2 = _hub_cache(tmp_path / "second", tmp_path / "ffn", "org/vivit-ffn")
    again = ff.from_pretrained(repo2, cache_dir=cache2, local_files_only=True)
    with torch.no_grad():
        torch.testing.assert_close(again(clip(4, True)).logits, model(clip(4, True)).logits)


def test_new_head_and_bad_requests(tmp_path):
    plain = build("videomae")
    plain.save_pretrained(tmp_path / "hf")
    model = ff.from_pretrained(tmp_path / "hf", num_classes=3, frame_sets=SETS)
    assert model(clip(8, True)).logits.shape == (2, 3)
    with pytest.raises(TypeError, match="adapters= needs frame_sets"):
        ff.from_pretrained(tmp_path / "hf", adapters="auto")
    ff.save_pretrained(model, tmp_path / "ffn")
    with pytest.raises(TypeError, match="converted as its config.json records"):
        ff.from_pretrained(tmp_path / "ffn", frame_sets=SETS)
    config = json.loads((tmp_path / "ffn" / "config.json").read_text())
    config["base"]["class"] = "os.system"
    (tmp_path / "ffn" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="transformers class 'os.system'"):
        ff.from_pretrained(tmp_path / "ffn")


def test_frameflex_eval_on_a_saved_converted_folder_over_jpeg_frames(tmp_path, capsys):
    from test_datasets import write_videos

    from frameflex.datasets import VideoList, eval_transform
    from frameflex.models._registry import IMAGENET_MEAN, IMAGENET_STD
    from frameflex.training.eval_cli import main

    videos = write_videos(tmp_path, num_videos=4, num_frames=10, num_classes=5)
    model = ff.convert(build("videomae"), SETS)
    ff.save_pretrained(model, tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["input_size"] == 32  # config.image_size
    out = tmp_path / "acc.json"
    assert main([str(tmp_path / "model"), "--list", str(videos), "--root", str(tmp_path / "frames"), "--frames", "4",
                 "8", "--workers", "0", "--device", "cpu", "--no-progress", "--json", str(out)]) == 0
    assert "VideoMAEForVideoClassification, frame sets [4, 8, 16]" in capsys.readouterr().out
    # By hand: the dataset's (C, T, H, W) clips given to the model as pixel_values (1, T, C, H, W).
    ds = VideoList(videos, root=tmp_path / "frames", frame_sets=(4, 8),
                   transform=eval_transform(32, mean=IMAGENET_MEAN, std=IMAGENET_STD))
    with torch.no_grad():
        hits = {t: sum(int(model(ds[i][0][t].transpose(0, 1)[None]).logits.argmax()) == ds[i][1]
                       for i in range(len(ds))) for t in (4, 8)}
    assert json.loads(out.read_text())["top1"] == pytest.approx({str(t): 100 * h / len(ds) for t, h in hits.items()})
