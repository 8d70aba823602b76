"""Hub folders: save/load locally, by repo id from an offline cache, push, and every error."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from _seeded import seeded_state_dict

import frameflex as ff
from frameflex import hub

SETS = (4, 8, 16)


def _trained(frame_sets=SETS, seed=0):
    torch.manual_seed(seed)
    model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=frame_sets)
    with torch.no_grad():  # branches that differ, as after training
        for name, t in model.state_dict(keep_vars=True).items():
            if t.is_floating_point():
                t.add_(0.05 * torch.randn(t.shape))
            if name.endswith("running_var"):
                t.abs_()
    return model.eval()


def _clip(t):
    return torch.randn(2, 3, t, 32, 32, generator=torch.Generator().manual_seed(t))


def _same_logits(a, b):
    with torch.no_grad():
        for t in (4, 8, 16, 12):
            torch.testing.assert_close(a(_clip(t)), b(_clip(t)), atol=1e-5, rtol=0)


def _fake_cache(cache: Path, repo_id: str, folder: Path, revision="0123456789abcdef0123456789abcdef01234567"):
    """A real huggingface_hub cache layout: blobs by hash, snapshot symlinks, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in folder.iterdir():
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, blob)
        (snap / f.name).symlink_to(Path("../..") / "blobs" / blob.name)
    return cache


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_save_and_load_a_local_folder(tmp_path):
    model = ff.calibrate(_trained(), [_clip(12)], frames=12, progress=False)
    folder = ff.save_pretrained(model, tmp_path / "m", dataset="something-something-v1",
                                results={"top1": {"4": 42.85, "8": 48.2, "16": 50.79}})
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "tsm_tiny" and config["frame_sets"] == [4, 8, 12, 16]
    assert config["num_classes"] == 5 and config["time_dim"] == 2 and len(config["mean"]) == 3
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: frameflex") and "- video-classification" in card
    assert "| top-1 (%) | 42.85 | 48.20 | 50.79 |" in card
    loaded = ff.from_pretrained(folder)
    assert not loaded.training and ff.frame_sets(loaded) == (4, 8, 12, 16)
    _same_logits(loaded, model)
    for key, value in model.state_dict().items():  # running statistics of every branch included
        assert torch.equal(loaded.state_dict()[key], value), key


def test_plain_zoo_model_round_trips(tmp_path):
    torch.manual_seed(0)
    model = ff.create_model("tsm_tiny", num_classes=3).eval()
    loaded = ff.from_pretrained(ff.save_pretrained(model, tmp_path), dtype=torch.float64)
    assert not ff.is_converted(loaded) and next(loaded.parameters()).dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(loaded(_clip(8).double()).float(), model(_clip(8)), atol=1e-5, rtol=0)


def test_load_by_repo_id_from_an_offline_cache(tmp_path, offline):
    model = _trained()
    folder = ff.save_pretrained(model, tmp_path / "folder")
    cache = _fake_cache(tmp_path / "cache", "someone/tsm-tiny-ffn", folder)
    loaded = ff.from_pretrained("someone/tsm-tiny-ffn", cache_dir=cache)
    _same_logits(loaded, model)
    with pytest.raises(FileNotFoundError, match="someone/other.*not a local folder"):
        ff.from_pretrained("someone/other", cache_dir=cache)


def test_original_checkpoint_from_the_hub_is_converted_on_load(tmp_path, offline):
    """The UniFormer files on the Hub are plain .pth state dicts: they go through import_checkpoint."""
    spec_model = ff.create_model("uniformer_s", num_classes=7)
    sd = seeded_state_dict({k: [list(v.shape), str(v.dtype).replace("torch.", "")]
                            for k, v in spec_model.state_dict().items()})
    files = tmp_path / "files"
    files.mkdir()
    torch.save({"model": sd}, files / "uniformer_small_sthv1_16_prek600.pth")
    cache = _fake_cache(tmp_path / "cache", "Sense-X/uniformer_video", files)
    model = ff.from_pretrained("Sense-X/uniformer_video", filename="uniformer_small_sthv1_16_prek600.pth",
                               cache_dir=cache)
    assert model.frameflex_config["architecture"] == "uniformer_s"
    spec_model.load_state_dict(sd)
    with torch.no_grad():
        x = torch.randn(1, 3, 4, 64, 64)
        torch.testing.assert_close(model(x), spec_model.eval()(x), atol=1e-5, rtol=0)


def test_push_to_hub_uploads_the_folder(monkeypatch):
    calls = []

    class Recorder:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message, revision):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            card = (Path(folder_path) / "README.md").read_text()
            calls.append(("upload", repo_id, files, "ff.from_pretrained(\"org/tsm\")" in card))
            return "https://huggingface.co/org/tsm/commit/abc"

    monkeypatch.setattr(hub, "HfApi", Recorder)
    url = ff.push_to_hub(_trained(), "org/tsm", private=True, token="t0k")
    assert url.endswith("/commit/abc")
    assert calls == [("init", "t0k"), ("create", "org/tsm", True, True),
                     ("upload", "org/tsm", ["README.md", "config.json", "model.safetensors"], True)]


def test_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found in the folder"):
        ff.from_pretrained(tmp_path)
    folder = ff.save_pretrained(_trained(), tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        ff.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "nope_r50"}))
    with pytest.raises(ValueError, match="unknown model 'nope_r50'"):
        ff.from_pretrained(folder)
    # weights of another frame set: keys that do not fit are named
    ff.save_pretrained(_trained(frame_sets=(4, 8)), tmp_path / "two")
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    (tmp_path / "two" / "config.json").write_text(json.dumps({**config, "frame_sets": [4, 8, 16]}))
    with pytest.raises(RuntimeError, match=r"do not fit tsm_tiny[\s\S]*branches\.16"):
        ff.from_pretrained(tmp_path / "two")
    with pytest.raises(ValueError, match="not built by ff.create_model"):
        ff.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")
    with pytest.raises(TypeError, match="unknown config fields"):
        ff.save_pretrained(_trained(), tmp_path / "y", colour="red")
