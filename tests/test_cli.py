"""The `frameflex` command: models, flops, import, push."""
from __future__ import annotations

import json

import pytest
import torch
from _seeded import load_fixture, seeded_input, seeded_state_dict

import frameflex as ff
from frameflex import hub
from frameflex.cli import main


def test_models_lists_the_zoo_and_the_catalogue(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ff.list_models():
        assert f"| {name} |" in out
    assert "`frameflex/tsm_r50-ffn-sthv1`" in out and "42.85 / 48.20 / 50.79" in out


def test_flops_prints_ours_beside_the_published(capsys):
    assert main(["flops", "uniformer_s"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| uniformer_s")]
    assert [int(r[2]) for r in rows] == [4, 8, 16]
    assert all(abs(float(r[6])) < 2 for r in rows)


@pytest.fixture
def official_tsm_ffn(tmp_path):
    """A file in the authors' TSM-FFN layout (module. prefixes, `state_dict` wrapper), seeded weights."""
    fixture = load_fixture("tsm_r50_ffn")
    sd = {f"module.{k}": v for k, v in seeded_state_dict(fixture["keys"]).items()}
    path = tmp_path / "ckpt.best.pth.tar"
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": sd, "best_prec1": 50.79}, path)
    return path, fixture


def _one_line_error(capsys, command, *parts):
    err = capsys.readouterr().err
    assert err.startswith(f"frameflex {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(p in err for p in parts), err
    return err


def test_import_writes_a_folder_that_from_pretrained_loads(tmp_path, official_tsm_ffn, capsys):
    path, fixture = official_tsm_ffn
    out = tmp_path / "tsm_r50-ffn"
    assert main(["import", str(path), "-o", str(out), "--license", "apache-2.0"]) == 0
    assert "tsm_r50 (FFN, frame_sets [4, 8, 16], 7 classes)" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["frame_sets"] == [4, 8, 16] and config["license"] == "apache-2.0"
    model = ff.from_pretrained(out)
    with torch.no_grad():
        x = seeded_input(fixture["input"]["shape"][:2] + [4] + fixture["input"]["shape"][3:])
        torch.testing.assert_close(model(x), fixture["logits"][4], atol=1e-4, rtol=0)


@pytest.fixture
def official_tsm_ffn_sthv1(tmp_path):
    """The same layout with Something-Something's 174 classes."""
    keys = dict(load_fixture("tsm_r50_ffn")["keys"])
    for k in ("new_fc.weight", "new_fc.bias"):
        keys[k] = [[174, *keys[k][0][1:]], keys[k][1]]
    path = tmp_path / "sthv1.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in seeded_state_dict(keys).items()}}, path)
    return path


def test_import_with_a_dataset_adds_the_reported_results_and_checks_the_classes(tmp_path, official_tsm_ffn_sthv1,
                                                                               capsys):
    import huggingface_hub

    out = tmp_path / "tsm_r50-ffn-sthv1"
    assert main(["import", str(official_tsm_ffn_sthv1), "--dataset", "sthv1", "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "something-something-v1" and config["num_classes"] == 174
    card = huggingface_hub.ModelCard.load(out / "README.md")
    assert "| top-1 (%) | 42.85 | 48.20 | 50.79 |" in card.text
    assert [(r.metric_config, r.metric_value) for r in card.data.eval_results] == [
        ("4 frames", 42.85), ("8 frames", 48.2), ("16 frames", 50.79)]
    capsys.readouterr()
    assert main(["import", str(official_tsm_ffn_sthv1), "--dataset", "k400", "-o", str(tmp_path / "k")]) == 2
    _one_line_error(capsys, "import", "--dataset k400", "400 classes", "has 174")
    assert main(["import", str(official_tsm_ffn_sthv1), "--dataset", "ucf101", "-o", str(tmp_path / "k")]) == 2
    _one_line_error(capsys, "import", "unknown dataset 'ucf101'", "sthv1, sthv2, k400")
    assert not (tmp_path / "k").exists()


def test_import_of_a_foreign_file_fails_naming_keys(tmp_path, capsys):
    path = tmp_path / "x.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, path)
    assert main(["import", str(path), "-o", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "import", "not a layout frameflex knows", "encoder.weight")


@pytest.mark.parametrize("kind", ["truncated", "empty", "directory", "missing", "pickled code"])
def test_import_of_a_bad_file_is_one_line_naming_it(tmp_path, capsys, kind):
    import pickle

    path = tmp_path / "ckpt.pth"
    if kind == "truncated":
        torch.save({"state_dict": {"fc.weight": torch.zeros(400, 2048)}}, path)
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "pickled code":
        path.write_bytes(pickle.dumps(__import__("os").system, protocol=2))  # weights_only refuses to call it
    assert main(["import", str(path), "-o", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "import", str(path))


def test_import_class_names_must_be_utf8_and_fit(tmp_path, official_tsm_ffn, capsys):
    path, _ = official_tsm_ffn
    names = tmp_path / "classes.txt"
    names.write_bytes("\ufeffa\nb\nc\nd\ne\nf\ng\n".encode())  # a BOM is fine
    assert main(["import", str(path), "-o", str(tmp_path / "ok"), "--class-names", str(names)]) == 0
    assert json.loads((tmp_path / "ok" / "config.json").read_text())["class_names"] == list("abcdefg")
    names.write_bytes(b"caf\xe9\n")
    assert main(["import", str(path), "-o", str(tmp_path / "out"), "--class-names", str(names)]) == 2
    _one_line_error(capsys, "import", "classes.txt is not UTF-8 text: byte 0xe9 at line 1")
    names.write_text("a\nb\n")
    assert main(["import", str(path), "-o", str(tmp_path / "out"), "--class-names", str(names)]) == 2
    _one_line_error(capsys, "import", "has 2 names, the checkpoint has 7 classes")


def test_flops_and_push_errors_are_one_line(tmp_path, capsys):
    assert main(["flops", "nope_r50"]) == 2
    _one_line_error(capsys, "flops", "unknown model 'nope_r50'")
    assert main(["push", str(tmp_path / "nowhere"), "org/x"]) == 2
    _one_line_error(capsys, "push", "folder not found", "nowhere")


def test_push_uploads_with_the_repo_named_in_the_card(tmp_path, official_tsm_ffn, monkeypatch, capsys):
    path, _ = official_tsm_ffn
    main(["import", str(path), "-o", str(tmp_path / "f")])
    seen = {}

    class Recorder:
        def __init__(self, token=None):
            seen["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            seen["create"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, commit_message, revision):
            seen["card"] = (tmp_path / "f" / "README.md").read_text()
            return "https://huggingface.co/org/x/commit/1"

    monkeypatch.setattr(hub, "HfApi", Recorder)
    assert main(["push", str(tmp_path / "f"), "org/x", "--private", "--token", "t"]) == 0
    assert seen["create"] == ("org/x", True, True) and seen["token"] == "t"
    assert 'ff.from_pretrained("org/x")' in seen["card"]
    assert capsys.readouterr().out.strip().endswith("/commit/1")
    assert main(["push", str(tmp_path), "org/x"]) == 2
    _one_line_error(capsys, "push", "config.json not found")


def test_eval_and_train_are_wired_and_report_bad_lists(tmp_path, capsys):
    missing = str(tmp_path / "missing.txt")
    assert main(["eval", str(tmp_path), "--list", missing]) == 2
    assert main(["train", "--model", "tsm_tiny", "--frame-sets", "4", "8", "--list", missing,
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("missing.txt") >= 2
