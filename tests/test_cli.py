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


def test_import_writes_a_folder_that_from_pretrained_loads(tmp_path, official_tsm_ffn, capsys):
    path, fixture = official_tsm_ffn
    out = tmp_path / "tsm_r50-ffn-sthv1"
    assert main(["import", str(path), "--dataset", "sthv1", "-o", str(out)]) == 0
    assert "tsm_r50 (FFN, frame_sets [4, 8, 16], 7 classes)" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["frame_sets"] == [4, 8, 16] and config["dataset"] == "something-something-v1"
    assert "| top-1 (%) | 42.85 | 48.20 | 50.79 |" in (out / "README.md").read_text()
    model = ff.from_pretrained(out)
    with torch.no_grad():
        x = seeded_input(fixture["input"]["shape"][:2] + [4] + fixture["input"]["shape"][3:])
        torch.testing.assert_close(model(x), fixture["logits"][4], atol=1e-4, rtol=0)


def test_import_of_a_foreign_file_fails_naming_keys(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match="not a layout frameflex knows.*encoder.weight"):
        main(["import", str(path), "-o", str(tmp_path / "out")])


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
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        main(["push", str(tmp_path), "org/x"])


def test_eval_and_train_are_wired_and_report_bad_lists(tmp_path, capsys):
    missing = str(tmp_path / "missing.txt")
    assert main(["eval", str(tmp_path), "--list", missing]) == 2
    assert main(["train", "--model", "tsm_tiny", "--frame-sets", "4", "8", "--list", missing,
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("missing.txt") >= 2
