"""`gantool compare A B` and golden files, between ONNX graphs and PyTorch on the CPU (#19)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gantool.cli import main
from gantool.paths import WEIGHTS_DIR

LOWERED, PLAIN, INT8, GAN = (WEIGHTS_DIR / f for f in ("cdcgan.onnx", "cdcgan.plain.onnx", "cdcgan.int8u.onnx",
                                                       "gan.onnx"))


def compare(capsys, tmp_path, *args):
    out = tmp_path / "c.json"
    code = main(["compare", *map(str, args), "--json", str(out)])
    captured = capsys.readouterr()
    return code, json.loads(out.read_text()) if out.exists() else None, captured


def one_line(captured):
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_two_graphs_of_one_model_agree_at_fp32_with_every_figure_and_the_judge(capsys, tmp_path):
    code, r, cap = compare(capsys, tmp_path, LOWERED, PLAIN)
    assert code == 0, cap.err
    assert r["passed"] and r["tolerance"] == "fp32" and r["bound"] == "max abs <= 0.0001" and r["user_bound"] is None
    assert {c["batch"] for c in r["comparisons"]} == {1, 2, 7, 20, 64, 1024}  # export's parity cases
    for c in r["comparisons"]:
        assert {"max_abs", "mean_abs", "median_abs", "p99_abs", "max_rel", "mean_rel", "median_rel", "p99_rel"} <= set(c)
        assert c["max_abs"] < 1e-4 and c["passed"]
    if r["judge"] is not None:  # PyTorch installed
        assert r["judge"]["agreement"] > 0.99 and r["judge"]["passed"] is None  # no bar at fp32
    assert "(onnx, ort, fp32)" in cap.out and "PASSED" in cap.out


def test_int8_fails_the_fp32_bound_and_passes_a_loose_atol(capsys, tmp_path):
    code, r, cap = compare(capsys, tmp_path, LOWERED, INT8, "--tolerance", "fp32", "--no-judge")
    assert code == 1 and not r["passed"]
    err = one_line(cap)
    assert "compare FAILED: 16 of 16 cases outside the bound (fp32: max abs <= 0.0001)" in err
    code, r, cap = compare(capsys, tmp_path, LOWERED, INT8, "--tolerance", "fp32", "--atol", "1.0", "--no-judge")
    assert code == 0 and r["passed"] and not r["named_passed"] and r["user_bound"] == "|b - a| <= 1 + 0 * |a|"
    assert "fp32: FAILED, user: PASSED" in cap.out
    code, r, cap = compare(capsys, tmp_path, LOWERED, INT8, "--no-judge")  # the lower precision's bound by default
    assert r["tolerance"] == "int8" and r["bound"] == "p99 abs <= 0.25, mean abs <= 0.03"


def test_a_golden_file_round_trips_and_checks_another_file(capsys, tmp_path):
    golden = tmp_path / "g.npz"
    assert main(["compare", str(LOWERED), "--save-golden", str(golden), "--seed", "3"]) == 0
    capsys.readouterr()
    with np.load(golden, allow_pickle=False) as f:  # no pickled object anywhere
        info = json.loads(str(f["metadata.json"]))
        assert info["seed"] == 3 and info["precision"] == "fp32" and info["spec"]["arch"] == "cdcgan"
        assert info["metadata"]["gantool.graph"] == "lowered" and f["z.0"].dtype == np.float32
        assert f["labels.0"].dtype == np.int64 and f["images.4"].shape == (1024, 1, 28, 28)
    code, r, cap = compare(capsys, tmp_path, golden, PLAIN, "--no-judge")
    assert code == 0 and r["passed"] and "(golden, golden of ort, fp32)" in r["a"]
    code, r, cap = compare(capsys, tmp_path, PLAIN, golden, "--no-judge")  # as B: the inputs come from it too
    assert code == 0 and r["passed"]
    code, r, cap = compare(capsys, tmp_path, golden, INT8, "--tolerance", "fp32", "--no-judge")
    assert code == 1 and "compare FAILED" in one_line(cap)
    code, r, cap = compare(capsys, tmp_path, golden, golden, "--no-judge")
    assert code == 0 and all(c["max_abs"] == 0 for c in r["comparisons"])


def test_a_checkpoint_against_its_export(capsys, tmp_path):
    pytest.importorskip("torch")
    code, r, cap = compare(capsys, tmp_path, "cdcgan", LOWERED, "--no-judge")
    assert code == 0, cap.err
    assert r["a"] == "cdcgan (torch, torch, fp32)" and r["tolerance"] == "fp32" and r["passed"]


@pytest.mark.parametrize("args, fragment", [
    ([LOWERED, GAN], "A {a} is cdcgan and B {b} is gan with another spec; allowed: two artifacts of one model"),
    ([LOWERED, "notes.txt"], "notes.txt: not a file gantool compares; allowed: a zoo name"),
    ([LOWERED, "missing.onnx"], "missing.onnx: no such file."),
    ([LOWERED, PLAIN, "--engine-b", "torch"], "engine torch runs PyTorch weights"),
    ([LOWERED], "give B to compare with A, or --save-golden FILE.npz"),
    ([LOWERED, PLAIN, "--save-golden", "g.npy"], "--save-golden g.npy: allowed: a .npz file name."),
])
def test_refusals_are_one_line(args, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", *map(str, args), "--no-judge"]) == 1
    assert fragment.format(a=LOWERED, b=GAN) in one_line(capsys.readouterr())


def test_a_damaged_golden_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["compare", str(bad), str(LOWERED)]) == 1
    assert "not a readable gantool golden file" in one_line(capsys.readouterr())


def test_a_golden_file_checks_a_plan_on_a_fake_engine(capsys, tmp_path, monkeypatch):
    """TensorRT faked by ONNX Runtime on the plain graph behind a .plan and its sidecar."""
    from gantool.contract import write_metadata
    from gantool.runtime.backends import BACKENDS
    from gantool.runtime.backends.base import Backend
    from gantool.runtime.backends.ort import OrtBackend
    from gantool.runtime.backends.trt import SIDECAR_SCHEMA, read_sidecar

    class FakeTrt(Backend):
        engine, suffixes = "trt", (".plan",)

        def _activate(self):
            self.sidecar, self.ort = read_sidecar(self.path), OrtBackend(PLAIN, name="trt")
            self.ort.activate()
            self.min_batch = self.sidecar["profile"]["min_batch"]

        def _deactivate(self):
            self.ort.deactivate()

        def infer(self, feeds):
            assert len(feeds["z"]) >= self.min_batch  # small batches are padded to the profile's minimum
            return self.ort.infer(feeds)

        def _metadata_props(self):
            return self.sidecar["metadata"]

        def graph_io(self):
            return self.ort.graph_io()

    monkeypatch.setitem(BACKENDS, "trt", FakeTrt)
    with OrtBackend(PLAIN) as b:
        meta = b.generator_metadata().replace(precision="fp16")
    plan = tmp_path / "cdcgan.fp16.plan"
    plan.write_bytes(b"not a real engine")
    (tmp_path / "cdcgan.fp16.plan.json").write_text(json.dumps({
        "sidecar_schema": SIDECAR_SCHEMA, "metadata": write_metadata(meta), "tensorrt_version": "10.12.0.36",
        "profile": {"min_batch": 4, "opt_batch": 64, "max_batch": 256}, "gpu": "NVIDIA H200",
        "compute_capability": "9.0"}))
    golden = tmp_path / "g.npz"
    assert main(["compare", str(LOWERED), "--save-golden", str(golden)]) == 0
    code, r, cap = compare(capsys, tmp_path, golden, plan, "--no-judge")
    assert code == 0, cap.err
    assert r["b"] == f"{plan} (plan, trt, fp16)" and r["tolerance"] == "fp16" and r["passed"]
