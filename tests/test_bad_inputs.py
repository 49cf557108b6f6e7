"""Every bad input through the CLI ends in one clear line: a non-zero exit, no traceback, the project's
error as the last stderr line, no temp file left and no pre-existing file changed.

Most cases run in-process through gantool.cli.main; a few run as real subprocesses (signals, installs).
Fixtures are made in tmp_path from the shipped files and ../shared/data/mnist; nothing large is committed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from gantool.cli import main
from gantool.contract import ACTIVATION_KEY, NOISE_KEY, SCHEMA_KEY, SPEC_KEY
from gantool.paths import shipped_onnx


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder (temps included) with a digest of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_clean_failure(code: int, out: str, err: str, fragment: str) -> None:
    assert code != 0, (out, err)
    assert "Traceback" not in out + err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("gantool: error: "), err
    assert fragment in lines[-1], lines[-1]


# --- ONNX files whose metadata lies -------------------------------------------------------------------
def _with_meta(src: Path, dst: Path, **changes: str | None) -> Path:
    m = onnx.load(str(src))
    props = {p.key: p.value for p in m.metadata_props}
    for k, v in changes.items():
        key = k.replace("__", ".")
        if v is None:
            props.pop(key, None)
        else:
            props[key] = v
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(dst))
    return dst


def _spec_change(**fields: object) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        spec = json.loads({p.key: p.value for p in onnx.load(str(shipped_onnx("cgan"))).metadata_props}[SPEC_KEY])
        return _with_meta(shipped_onnx("cgan"), d / "bad.onnx", **{SPEC_KEY.replace(".", "__"): json.dumps({**spec, **fields})})
    return make


def _renamed_output(d: Path) -> Path:
    m = onnx.load(str(shipped_onnx("gan")))
    old = m.graph.output[0].name
    for n in m.graph.node:
        n.output[:] = ["renamed" if o == old else o for o in n.output]
    m.graph.output[0].name = "renamed"
    onnx.save(m, str(d / "bad.onnx"))
    return d / "bad.onnx"


def _unrelated_graph(d: Path) -> Path:
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 100])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    for p in onnx.load(str(shipped_onnx("gan"))).metadata_props:
        m.metadata_props.add(key=p.key, value=p.value)
    onnx.save(m, str(d / "bad.onnx"))
    return d / "bad.onnx"


def _meta(**changes: str | None) -> Callable[[Path], Path]:
    return lambda d: _with_meta(shipped_onnx("cgan"), d / "bad.onnx", **changes)


BAD_FILES = {
    "spec-is-a-list": (_meta(gantool__spec="[1, 2]"), "model spec must be a JSON object"),
    "spec-not-json": (_meta(gantool__spec="{"), "is not valid JSON"),
    "output-range-1-1": (_spec_change(output_range=[1, 1]), "output_range must be two finite numbers"),
    "latent-is-text": (_spec_change(latent_dim="big"), "latent_dim must be an integer"),
    "activations-not-a-number": (_meta(**{ACTIVATION_KEY.replace(".", "__"): "lots"}), "must be a non-negative integer"),
    "latent-disagrees-with-graph": (_spec_change(latent_dim=64), "declares input z: float32 (batch, 64)"),
    "conditional-disagrees": (_spec_change(conditional=False), "declares inputs z, but the graph has z, labels"),
    "renamed-output": (_renamed_output, "declares outputs images, but the graph has renamed"),
    "metadata-on-unrelated-graph": (_unrelated_graph, "declares inputs z, but the graph has x"),
    "schema-1": (_meta(**{SCHEMA_KEY.replace(".", "__"): "1"}), "gantool metadata schema '1'"),
    "other-noise": (_meta(**{NOISE_KEY.replace(".", "__"): "someone.else/v9"}), "was made for the noise function"),
    "no-metadata": (lambda d: _with_meta(shipped_onnx("gan"), d / "bad.onnx", **{
        k.replace(".", "__"): None for k in (p.key for p in onnx.load(str(shipped_onnx("gan"))).metadata_props)}),
        "is not a gantool generator"),
    "not-onnx": (lambda d: (d / "bad.onnx").write_bytes(b"\x00garbage") and d / "bad.onnx", "could not load"),
}
COMMANDS = {
    "sample": lambda f, d: ["sample", "--model", str(f), "-o", str(d / "out.png")],
    "inspect": lambda f, d: ["inspect", "--model", str(f), "--json", str(d / "info.json")],
    "bench": lambda f, d: ["bench", "--model", str(f), "--engine", "runtime,ort", "--batch", "1", "--rounds", "1",
                           "--no-cold-start", "--json", str(d / "b.json")],
    "serve": lambda f, d: ["serve", "--model", str(f), "--port", str(_free_port())],  # fails while loading
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_lying_metadata_is_one_line_for_every_reader(case, command, tmp_path, capsys):
    make, fragment = BAD_FILES[case]
    path = make(tmp_path)
    before = snapshot(tmp_path)
    code = main(COMMANDS[command](path, tmp_path))
    out, err = capsys.readouterr()
    assert_clean_failure(code, out, err, fragment)
    assert snapshot(tmp_path) == before


def test_generator_load_raises_value_errors_for_lying_metadata(tmp_path):
    from gantool.runtime import Generator

    for case, (make, fragment) in BAD_FILES.items():
        d = tmp_path / case
        d.mkdir()
        with pytest.raises(ValueError, match=None) as e:
            Generator.load(make(d))
        assert fragment in str(e.value), (case, str(e.value))


# --- sizes are checked before anything is allocated ---------------------------------------------------
SIZE_CASES = [
    (["sample", "--model", "cdcgan", "--labels", "0-9999999999"], "allowed: at most 65536"),
    (["sample", "--model", "cdcgan", "--per-label", "100000"], "not in the range"),
    (["sample", "--model", "gan", "--n", "1000000"], "not in the range"),
    (["bench", "--model", "cdcgan", "--batch", str(10 ** 9), "--no-cold-start"], "1..65536"),
    (["bench", "--model", "cdcgan", "--engine", ",", "--no-cold-start"], "names no engine"),
    (["bench", "--model", "cdcgan", "--engine", "trt", "--no-cold-start"], "no requested engine can run here"),
    (["sample", "--model", "cdcgan", "--labels", "-1"], "label -1 is out of range; allowed: 0..9"),
    (["sample", "--model", "cdcgan", "--labels", "3", "--n", "2"], "give either n"),
    (["sample", "--model", "gan", "--per-label", "3"], "unconditional"),
    (["sample", "--model", "dcgan-xl"], "neither a file nor a zoo model"),
    (["sample", "--model", "cgan", "--engine", "trt"], "engine trt does not run .onnx files"),
    (["inspect"], "give the generator as --model"),
    (["export", "--model", "cdcgan", "--plan", "x.plan"], "Triton options"),
    (["export", "--model", "cdcgan", "--to-cache", "-o", "x.onnx"], "--to-cache takes a zoo name"),
    (["export", "--model", "cdcgan", "--samples", "500"], "fp32 has none"),
    (["export", "--model", "cdcgan", "--opset", "99"], "not in the range 17<=x<=23"),
]


@pytest.mark.parametrize("argv, fragment", SIZE_CASES, ids=[" ".join(a[:3]) for a, _ in SIZE_CASES])
def test_sizes_and_combinations_are_refused_up_front(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert_clean_failure(code, out, err, fragment)
    assert list(tmp_path.iterdir()) == []


# --- no command overwrites its own input --------------------------------------------------------------
def test_outputs_that_would_replace_an_input_are_refused(tmp_path, capsys):
    model = tmp_path / "cgan.onnx"
    model.write_bytes(shipped_onnx("cgan").read_bytes())
    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    before = snapshot(tmp_path)
    for argv in (["inspect", "--model", str(model), "--json", str(link)],  # the same file through a symlink
                 ["bench", "--model", str(model), "--json", str(model), "--no-cold-start"],
                 ["bench", "--model", str(model), "-o", str(link), "--no-cold-start"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert_clean_failure(code, out, err, "this command would overwrite its own input")
    assert snapshot(tmp_path) == before


def test_sample_into_a_folder_or_with_a_wrong_type_is_refused(tmp_path, capsys):
    (tmp_path / "d.png").mkdir()
    for argv, fragment in ((["sample", "--model", "cgan", "-o", str(tmp_path / "d.png")], "is a directory"),
                           (["sample", "--model", "cgan", "-o", str(tmp_path / "x.jpg")], "allowed: .png, .npy, .gif"),
                           (["sample", "--model", "cgan", "-o", str(tmp_path / "x.gif")], "a .gif plays an interpolation")):
        code = main(argv)
        out, err = capsys.readouterr()
        assert_clean_failure(code, out, err, fragment)


def test_huge_finite_z_is_refused_not_drawn_as_garbage():
    from gantool.runtime import Generator, SampleError

    with Generator.load("cgan") as g, pytest.raises(SampleError, match="root mean square"):
        g.sample(labels=[1], z=np.full((1, 100), 3e38, np.float32))


# --- files that are not checkpoints, for the commands that read PyTorch weights --------------------------
class _Payload:
    """What a hostile checkpoint would unpickle; weights_only loading must refuse it."""


def _text(text: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / "notes.pt").write_text(text)
        return d / "notes.pt"
    return make


def _pickled_object(d: Path) -> Path:
    import torch

    torch.save({"spec": {}, "x": _Payload()}, d / "evil.pt")
    return d / "evil.pt"


NOT_CHECKPOINTS = {"text-keyerror": _text("hello, not a model"), "text-indexerror": _text("q"),
                   "text-pop": _text("abc"), "empty": _text(""), "pickled-object": _pickled_object}


@pytest.mark.parametrize("command", ["export", "eval"])
@pytest.mark.parametrize("case", list(NOT_CHECKPOINTS))
def test_files_that_are_not_checkpoints_are_one_line(case, command, tmp_path, capsys):
    path = NOT_CHECKPOINTS[case](tmp_path)
    before = snapshot(tmp_path)
    argv = ["export", "--model", str(path), "-o", str(tmp_path / "o.onnx")] if command == "export" else \
        ["eval", "--model", str(path), "--n", "100", "-o", str(tmp_path / "e.png")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert_clean_failure(code, out, err, "not a readable gantool checkpoint")
    assert "Weights only load failed" not in err and snapshot(tmp_path) == before


def test_a_ctrl_c_that_torch_wraps_in_its_own_error_is_still_an_interrupt():
    from gantool.export.onnx import _interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as inner:
            raise RuntimeError("Failed to export the model with torch.export") from inner
    except RuntimeError as outer:
        assert _interrupted(outer)
    assert not _interrupted(RuntimeError("a real export failure"))
