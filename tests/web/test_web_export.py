"""gantool export --format web, without a browser: the folder's files, its manifest against the ONNX
file's own metadata, and the folder rules (never write into someone else's folder; update our own in
place; refuse what the page cannot run)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from gantool.cli import main
from gantool.contract import CLASS_WEIGHTS, LABELS
from gantool.export.browser import ASSETS, MANIFEST, MANIFEST_FORMAT, WEB_MAX_N, ort_web_version
from gantool.noise import NOISE_FUNCTION
from gantool.runtime.select import file_metadata


def test_folder_holds_models_runtime_and_page(web_root: Path) -> None:
    folder = web_root / "cdcgan"
    assert {p.name for p in folder.iterdir()} == {*ASSETS, MANIFEST, "cdcgan.onnx", "cdcgan.mix.onnx"}
    for name in ASSETS:  # the shipped assets, byte for byte
        assert (folder / name).read_bytes() == (Path(__file__).parents[2] / "export" / "web" / name).read_bytes()


@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
def test_manifest_is_the_onnx_metadata(web_root: Path, name: str) -> None:
    folder = web_root / name
    m = json.loads((folder / MANIFEST).read_text())
    meta = file_metadata(folder / f"{name}.onnx")
    assert m["format"] == MANIFEST_FORMAT and m["noise_function"] == NOISE_FUNCTION == "gantool.noise.make_noise/pcg64-v1"
    assert m["spec"] == meta.spec.to_dict() and m["family"] == meta.family and m["max_n"] == WEB_MAX_N
    assert m["onnxruntime_web"] == ort_web_version() == json.loads((folder / "package-lock.json").read_text())[
        "packages"]["node_modules/onnxruntime-web"]["version"]
    for key, file, condition in (("model", f"{name}.onnx", LABELS), ("mix", f"{name}.mix.onnx", CLASS_WEIGHTS)):
        entry, data = m[key], (folder / file).read_bytes()
        assert entry["file"] == file and entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["condition"] == condition
        assert entry["inputs"] == file_metadata(folder / file).contract.input_names
    assert meta.family == file_metadata(folder / f"{name}.mix.onnx").family


def test_refuses_a_foreign_folder_a_file_and_reduced_precision(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    (tmp_path / "file").write_text("keep")
    for args, words in ((["-o", str(tmp_path / "mine")], "no gantool.json"),
                        (["-o", str(tmp_path / "file")], "is a file"),
                        (["-o", str(tmp_path / "new"), "--precision", "fp16"], "writes fp32 graphs, not fp16"),
                        (["-o", str(tmp_path / "new"), "--mix"], "--mix writes one ONNX file"),
                        (["-o", str(tmp_path / "new"), "--to-cache"], "cannot be combined with --to-cache")):
        code = main(["export", "--model", "cdcgan", "--format", "web", *args])
        err = capsys.readouterr().err
        assert code == 1 and words in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep" and (tmp_path / "file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]  # nothing half-made


def test_updates_its_own_folder_in_place(web_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A second export into a web folder keeps what the user added (node_modules, ort/), replaces the
    model and manifest, and removes the model files the old manifest named that the new one does not."""
    folder = tmp_path / "site"
    shutil.copytree(web_root / "cdcgan", folder)
    (folder / "ort").mkdir()
    (folder / "ort" / "kept.txt").write_text("vendored")
    assert main(["export", "--model", "gan", "--format", "web", "-o", str(folder)]) == 0, capsys.readouterr().err
    m = json.loads((folder / MANIFEST).read_text())
    assert m["spec"]["arch"] == "gan" and m["mix"] is None and m["model"]["file"] == "gan.onnx"
    assert not (folder / "cdcgan.onnx").exists() and not (folder / "cdcgan.mix.onnx").exists()
    assert (folder / "ort" / "kept.txt").read_text() == "vendored"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
