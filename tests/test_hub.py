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
    assert config["base"] == {"type": "zoo", "name": "tsm_tiny", "kwargs": {}}
    assert config["adapters"] == sorted(config["adapters"]) and config["adapters"]  # resolved names
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.library_name == "frameflex" and "video-classification" in card.data.tags
    assert "| top-1 (%) | 42.85 | 48.20 | 50.79 |" in card.text
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
    ff.save_pretrained(_trained(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "base": {"type": "zoo", "name": "nope_r50"}}))
    with pytest.raises(ValueError, match="unknown model 'nope_r50'"):
        ff.from_pretrained(folder)
    # weights of another frame set: keys that do not fit are named
    ff.save_pretrained(_trained(frame_sets=(4, 8)), tmp_path / "two")
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    (tmp_path / "two" / "config.json").write_text(json.dumps({**config, "frame_sets": [4, 8, 16]}))
    with pytest.raises(RuntimeError, match=r"do not fit the model[\s\S]*missing keys[\s\S]*branches\.16"):
        ff.from_pretrained(tmp_path / "two")
    with pytest.raises(TypeError, match="unknown config fields"):
        ff.save_pretrained(_trained(), tmp_path / "y", colour="red")


# --------------------------------------------------------------------------- your own model


def _own_r3d_18():
    """A converted torchvision r3d_18 with trained-looking adapters and a calibrated 12-frame branch."""
    import torchvision

    torch.manual_seed(0)
    model = ff.convert(torchvision.models.video.r3d_18(num_classes=10), SETS, adapters="auto", time_dim=2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".scales." in name:
                p.normal_(0, 0.1)
    model.train()
    with torch.no_grad():
        for t in SETS:
            model(_clip(t))  # branch-specific running statistics
    ff.calibrate(model, [_clip(12)], frames=12, progress=False)
    return model.eval()


def test_a_converted_r3d_18_survives_save_and_load_into_your_own_model(tmp_path):
    import torchvision

    model = _own_r3d_18()
    folder = ff.save_pretrained(model, tmp_path / "r3d")
    config = json.loads((folder / "config.json").read_text())
    assert config["base"] == {"type": "none", "class": "torchvision.models.video.resnet.VideoResNet"}
    assert config["frame_sets"] == [4, 8, 12, 16] and config["time_dim"] == 2
    assert config["adapters"] == ["layer1.0.conv1.0", "layer1.1.conv1.0", "layer2.0.conv1.0", "layer2.1.conv1.0",
                                  "layer3.0.conv1.0", "layer3.1.conv1.0", "layer4.0.conv1.0", "layer4.1.conv1.0"]
    mine = torchvision.models.video.r3d_18(num_classes=10)
    loaded = ff.from_pretrained(folder, model=mine)
    assert ff.frame_sets(loaded) == (4, 8, 12, 16) and not loaded.training
    with torch.no_grad():
        for t in (4, 8, 12, 16):
            assert torch.equal(loaded(_clip(t)), model(_clip(t))), t
    with pytest.raises(ValueError, match="records no way to build.*VideoResNet.*model="):
        ff.from_pretrained(folder)


def test_a_load_into_your_model_that_does_not_fit_changes_nothing(tmp_path):
    import torchvision

    folder = ff.save_pretrained(_trained(), tmp_path / "tsm")
    mine = torchvision.models.video.r3d_18(num_classes=5)
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    classes = [type(m) for m in mine.modules()]
    with pytest.raises(ValueError, match="adapter targets .* are not modules of VideoResNet"):
        ff.from_pretrained(folder, model=mine)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "adapters": None}))
    with pytest.raises(RuntimeError, match=r"do not fit the model[\s\S]*missing keys"):
        ff.from_pretrained(folder, model=mine)
    assert [type(m) for m in mine.modules()] == classes and not ff.is_converted(mine)
    assert all(torch.equal(v, before[k]) for k, v in mine.state_dict().items())


def test_a_builder_named_in_config_runs_only_when_you_trust_it(tmp_path, monkeypatch):
    code = tmp_path / "mynets_for_test.py"
    code.write_text(
        "import pathlib, torch\n"
        f"pathlib.Path({str(tmp_path / 'ran')!r}).write_text('imported')\n"
        "def build(num_classes=5, width=4):\n"
        "    torch.manual_seed(1)\n"
        "    return torch.nn.Sequential(torch.nn.Conv3d(3, width, 1), torch.nn.BatchNorm3d(width),\n"
        "                               torch.nn.Flatten(2), torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(),\n"
        "                               torch.nn.Linear(width, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from mynets_for_test import build

    (tmp_path / "ran").unlink()
    model = ff.convert(build(width=6), SETS, adapters=["5"], time_dim=2).eval()
    folder = ff.save_pretrained(model, tmp_path / "m", builder="mynets_for_test:build",
                                builder_kwargs={"width": 6, "num_classes": 5})
    monkeypatch.delitem(__import__("sys").modules, "mynets_for_test")
    with pytest.raises(ff.UntrustedCodeError, match="names the builder 'mynets_for_test:build'.*trust_remote_code=True"):
        ff.from_pretrained(folder)
    assert not (tmp_path / "ran").exists()  # the file's code was not even imported
    loaded = ff.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        assert torch.equal(loaded(_clip(8)), model(_clip(8)))
    assert loaded.frameflex_config["base"]["builder"] == "mynets_for_test:build"
    with pytest.warns(UserWarning, match=r"5\.bias \(5,\) -> \(7,\)"):
        wider = ff.from_pretrained(folder, trust_remote_code=True, num_classes=7)
    assert wider[5].out_features == 7


# --------------------------------------------------------------------------- new class counts


def test_from_pretrained_with_new_num_classes_loads_all_but_the_head(tmp_path):
    model = _trained()
    folder = ff.save_pretrained(model, tmp_path / "five", dataset="something-something-v1",
                                class_names=list("abcde"), results={"top1": {"8": 50.0}})
    with pytest.warns(UserWarning, match=r"2 tensors .* fresh initialisation.*fc\.weight \(5, 128\) -> \(7, 128\)"):
        seven = ff.from_pretrained(folder, num_classes=7)
    assert seven.fc.out_features == 7 and seven.frameflex_config["num_classes"] == 7
    saved, new = model.state_dict(), seven.state_dict()
    assert set(saved) == set(new)
    assert all(torch.equal(new[k], saved[k]) for k in saved if not k.startswith("fc."))
    with torch.no_grad():
        assert seven(_clip(8)).shape == (2, 7)
    # the old task's names, dataset and results no longer describe the model
    assert not {"class_names", "dataset", "results"} & set(seven.frameflex_config)
    with pytest.raises(RuntimeError, match=r"nothing was loaded[\s\S]*size mismatch[\s\S]*ignore_mismatched_sizes=True"):
        ff.from_pretrained(folder, num_classes=7, ignore_mismatched_sizes=False)


def test_imported_checkpoint_creates_a_model_with_new_classes():
    torch.manual_seed(0)
    model = ff.create_model("tsm_tiny", num_classes=5)
    sd = ff.import_checkpoint(model.state_dict(), arch="tsm_tiny")
    with pytest.warns(UserWarning, match=r"tsm_tiny checkpoint \(5 classes\).*fc\.weight \(5, 128\) -> \(9, 128\)"):
        nine = sd.create_model(num_classes=9)
    assert nine.fc.out_features == 9
    assert all(torch.equal(nine.state_dict()[k], v) for k, v in model.state_dict().items() if not k.startswith("fc."))


# --------------------------------------------------------------------------- the folder, written safely


def _folder_files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_a_failed_save_leaves_the_previous_folder_and_no_temporary_file(tmp_path, monkeypatch):
    import safetensors.torch

    old = _trained(seed=0)
    folder = ff.save_pretrained(old, tmp_path / "m")
    before = {n: (folder / n).read_bytes() for n in _folder_files(folder)}
    real = safetensors.torch.save_model

    def half_then_fail(model, path, metadata=None):
        real(model, path, metadata=metadata)
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_model", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ff.save_pretrained(_trained(seed=1), folder)
    assert {n: (folder / n).read_bytes() for n in _folder_files(folder)} == before
    _same_logits(ff.from_pretrained(folder), old)


def test_a_save_killed_mid_write_leaves_the_previous_folder_loadable(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    old = _trained(seed=0)
    folder = ff.save_pretrained(old, tmp_path / "m")
    ready = tmp_path / "weights-written"
    script = f"""
import sys, time, pathlib, torch, safetensors.torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
import frameflex as ff
real = safetensors.torch.save_model
def slow(model, path, metadata=None):  # the weights are written; stop before the config and card
    real(model, path, metadata=metadata)
    pathlib.Path({str(ready)!r}).write_text("x")
    time.sleep(120)
safetensors.torch.save_model = slow
torch.manual_seed(1)
ff.save_pretrained(ff.create_model("tsm_tiny", num_classes=3, frame_sets=[4, 8]), {str(folder)!r})
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(ff.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 120
        while not ready.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the child never reached the write"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    leftovers = [n for n in _folder_files(folder) if n.endswith(".frameflex-tmp")]
    assert leftovers and all(n.startswith(f".model.safetensors.{child.pid}") for n in leftovers)
    _same_logits(ff.from_pretrained(folder), old)  # the previous model, whole
    ff.save_pretrained(old, folder)  # the next save clears the dead writer's temporary file
    assert _folder_files(folder) == ["README.md", "config.json", "model.safetensors"]


def test_a_foreign_file_is_only_replaced_with_overwrite(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("# my notes\n")
    with pytest.raises(ff.OverwriteError, match=r"already holds README\.md that frameflex did not write.*overwrite=True"):
        ff.save_pretrained(_trained(), folder)
    assert _folder_files(folder) == ["README.md"] and (folder / "README.md").read_text() == "# my notes\n"
    ff.save_pretrained(_trained(), folder, overwrite=True)
    ff.save_pretrained(_trained(seed=1), folder)  # our own files are replaced without asking
    assert "library_name: frameflex" in (folder / "README.md").read_text()
    (folder / "config.json").write_text('{"my": "config"}')
    with pytest.raises(FileExistsError, match="config.json"):
        ff.save_pretrained(_trained(), folder)


# --------------------------------------------------------------------------- metadata


def test_the_card_carries_licence_base_model_datasets_tags_and_a_model_index(tmp_path):
    folder = ff.save_pretrained(_trained(), tmp_path / "m", license="mit", base_model="someone/tsm-k400",
                                dataset="something-something-v1",
                                results={"top1": {"4": 42.85, "8": 48.2, "16": 50.79}, "reported": True})
    data = huggingface_hub.ModelCard.load(folder / "README.md").data
    assert data.license == "mit" and data.base_model == "someone/tsm-k400"
    assert data.datasets == ["something-something-v1"] and {"frameflex", "tsm_tiny"} <= set(data.tags)
    results = {r.metric_config: r.metric_value for r in data.eval_results}
    assert results == {"4 frames": 42.85, "8 frames": 48.2, "16 frames": 50.79}
    assert {r.dataset_type for r in data.eval_results} == {"something-something-v1"}
    assert all(r.source_url == hub.PAPER for r in data.eval_results)
    plain = huggingface_hub.ModelCard.load(ff.save_pretrained(_trained(), tmp_path / "p") / "README.md").data
    assert plain.license == "unknown" and plain.eval_results is None


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("content,msg", [
    (b"", "is empty"),
    (b"{not json", r"is not valid JSON: .* line 1, column 2"),
    (b"\xff\xfe{}", "is not UTF-8 text: byte 0xff at line 1"),
    (b"[1, 2]", "invalid: expected a JSON object, got list"),
    (b'{"base": {"type": "pickle"}}', r"'base' must be an object whose 'type' is one of \['builder', 'none', 'transformers', 'zoo'\]"),
    (b'{"base": {"type": "zoo", "name": "tsm_tiny"}, "frame_sets": ["8"]}', "'frame_sets' must be a list of positive"),
    (b'{"base": {"type": "zoo", "name": "tsm_tiny"}, "adapters": "(.*.*)*z"}', "'adapters' must be a list of module"),
])
def test_an_invalid_config_json_is_named(tmp_path, content, msg):
    folder = ff.save_pretrained(_trained(), tmp_path / "m")
    (folder / "config.json").write_bytes(content)
    with pytest.raises(ValueError, match=msg) as e:
        ff.from_pretrained(folder)
    assert "config.json" in str(e.value)


def test_a_config_json_with_a_bom_loads(tmp_path):
    model = _trained()
    folder = ff.save_pretrained(model, tmp_path / "m")
    (folder / "config.json").write_bytes(b"\xef\xbb\xbf" + (folder / "config.json").read_bytes())
    _same_logits(ff.from_pretrained(folder), model)


def test_an_adapter_name_from_a_config_is_never_a_pattern(tmp_path):
    folder = ff.save_pretrained(_trained(), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    for names in (["(.*.*)*z"], [".*conv1"]):  # would hang / would match many modules as a regex
        (folder / "config.json").write_text(json.dumps({**config, "adapters": names}))
        with pytest.raises(ValueError, match=r"adapter targets \[.*\] are not modules of"):
            ff.from_pretrained(folder)


@pytest.mark.parametrize("kind", ["truncated", "empty", "directory", "pickle", "missing"])
def test_a_bad_weights_file_is_named(tmp_path, kind):
    import pickle

    folder = ff.save_pretrained(_trained(), tmp_path / "m")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    if kind == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        weights.write_bytes(b"")
    elif kind == "directory":
        weights.mkdir()
    elif kind == "pickle":
        weights.write_bytes(pickle.dumps({"x": 1}))
    err, msg = {"truncated": (ValueError, "could not be read as safetensors"), "empty": (ValueError, "could not be read as safetensors"),
                "directory": (ff.NotFoundError, "is a directory"),
                "pickle": (ValueError, "could not be read as safetensors"),
                "missing": (FileNotFoundError, "not found")}[kind]
    with pytest.raises(err, match=msg) as e:
        ff.from_pretrained(folder)
    assert "model.safetensors" in str(e.value)


def test_a_folder_written_before_the_base_record_still_loads(tmp_path):
    """Older config.json: the zoo arch at the top and adapters as the word "preset" (the zoo's own patterns)."""
    model = _trained()
    folder = ff.save_pretrained(model, tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["base"]
    (folder / "config.json").write_text(json.dumps({**config, "adapters": "preset", "model_kwargs": {}}))
    _same_logits(ff.from_pretrained(folder), model)


def test_create_model_with_new_classes_and_a_plain_checkpoint_of_another_class_count():
    """The quickstart's case: a plain checkpoint with another head, fanned out to every branch of a new model."""
    torch.manual_seed(0)
    plain = ff.create_model("tsm_tiny", num_classes=5)
    model = ff.create_model("tsm_tiny", num_classes=7, frame_sets=SETS)
    head = model.fc.weight.detach().clone()
    result = ff.load_state_dict(model, plain.state_dict(), ignore_mismatched_sizes=True)
    assert [k for k, _, _ in result.mismatched_keys] == ["fc.weight", "fc.bias"]
    assert torch.equal(model.fc.weight, head)  # the new head keeps its initialisation
    for key, origin in ff.checkpoints.key_origins(model).items():
        if not origin.adapter and not origin.plain.startswith("fc."):
            assert torch.equal(model.state_dict()[key], plain.state_dict()[origin.plain]), key
