"""`gantool bench --model FILE.plan` on the CPU: the sidecar's source ONNX is used only while it is the
fp32 graph the plan was built from, and TensorRT is a fake backend that returns the reference output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gantool.benchmarks import bench, engines
from gantool.cli import main
from gantool.contract import write_metadata
from gantool.paths import shipped_onnx
from gantool.runtime.backends import BACKENDS
from gantool.runtime.backends.base import Backend
from gantool.runtime.backends.trt import SIDECAR_SCHEMA, read_sidecar

CDCGAN = shipped_onnx("cdcgan")


class FakeTrt(Backend):
    """Stands in for the trt backend: ONNX Runtime on the shipped fp32 graph, the reference output."""

    engine = "trt"
    suffixes = (".plan",)
    calls = 0

    def _activate(self):
        from gantool.runtime.backends.ort import OrtBackend

        self.sidecar = read_sidecar(self.path)
        self.ort = OrtBackend(CDCGAN, name="trt")
        self.ort.activate()

    def _deactivate(self):
        self.ort.deactivate()

    def infer(self, feeds):
        FakeTrt.calls += 1
        return self.ort.infer(feeds)

    def _metadata_props(self):
        return self.sidecar["metadata"]

    def graph_io(self):
        return self.ort.graph_io()


def fake_plan(tmp_path: Path, source: Path | None, precision: str = "fp16", digest: str | None = None) -> Path:
    from gantool.export.trt import sha256_file
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(CDCGAN) as b:
        meta = b.generator_metadata().replace(precision=precision)
    plan = tmp_path / f"cdcgan.{precision}.plan"
    plan.write_bytes(b"not a real engine")
    side = {"sidecar_schema": SIDECAR_SCHEMA, "metadata": write_metadata(meta), "tensorrt_version": "10.12.0.36",
            "profile": {"min_batch": 1, "opt_batch": 64, "max_batch": 256}, "gpu": "NVIDIA H200",
            "compute_capability": "9.0", "source_onnx": str(source or tmp_path / "gone" / "model.onnx"),
            "source_onnx_sha256": digest or (sha256_file(source) if source and source.is_file() else "0" * 64)}
    Path(str(plan) + ".json").write_text(json.dumps(side))
    return plan


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(bench, "ROUND_S", 0.01)
    monkeypatch.setattr(bench, "WARMUP_S", 0.01)
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    monkeypatch.setitem(BACKENDS, "trt", FakeTrt)
    real = engines.installed
    monkeypatch.setattr(engines, "installed", lambda name: name == "tensorrt" or real(name))
    FakeTrt.calls = 0


def run(capsys, tmp_path, plan, engine="runtime,ort,trt"):
    out = tmp_path / "b.json"
    code = main(["bench", "--model", str(plan), "--engine", engine, "--batch", "1,4", "--rounds", "1",
                 "--threads", "1", "--no-cold-start", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(out.read_text()), captured.out


def test_a_plans_fp32_source_runs_the_onnx_engines_beside_the_engine(fake_trt, tmp_path, capsys):
    source = tmp_path / "model.onnx"
    shutil.copy(CDCGAN, source)
    src, meta = bench.resolve_sources(str(fake_plan(tmp_path, source)))
    assert src.onnx == {"fp32": source} and src.form == "lowered" and meta.precision == "fp16"
    r, text = run(capsys, tmp_path, fake_plan(tmp_path, source))
    assert {(s["engine"], s["batch"]) for s in r["stats"]} == {(e, b) for e in ("runtime", "ort", "trt") for b in (1, 4)}
    assert not r["skipped"] and FakeTrt.calls > 0 and "trt" in text
    feeds = engines.feeds_for(meta.spec, 4)
    trt, ort = engines.make_engine("trt", src, 1), engines.make_engine("ort", src, 1)
    np.testing.assert_array_equal(trt.run(feeds), ort.run(feeds))  # the fake returns the reference


@pytest.mark.parametrize("case, reason", [
    ("gone", "the plan's source ONNX '{gone}' is gone"),
    ("changed", "is no longer the graph the plan was built from (its sha256 differs from the sidecar's"),
    ("fp16", "the plan's source ONNX model.fp16.onnx is the fp16 graph"),
])
def test_without_its_fp32_source_the_onnx_engines_are_left_out_with_one_line(case, reason, fake_trt, tmp_path,
                                                                              capsys):
    if case == "gone":
        plan = fake_plan(tmp_path, None)
        reason = reason.format(gone=tmp_path / "gone" / "model.onnx")
    elif case == "changed":
        source = tmp_path / "model.onnx"
        shutil.copy(CDCGAN, source)
        plan = fake_plan(tmp_path, source, digest="f" * 64)
    else:
        from gantool.export.trt import _fp16_graph
        from gantool.runtime.backends.ort import OrtBackend

        with OrtBackend(CDCGAN) as b:
            meta = b.generator_metadata()
        source = _fp16_graph(CDCGAN, meta, tmp_path / "model.fp16.onnx")
        plan = fake_plan(tmp_path, source)
        src, _ = bench.resolve_sources(str(plan))
        assert src.onnx == {"fp16": source}  # the fp16 graph is never stored as the fp32 one
    r, text = run(capsys, tmp_path, plan)
    assert {s["engine"] for s in r["stats"]} == {"trt"}
    assert set(r["skipped"]) == {"runtime", "ort"}
    for name in ("runtime", "ort"):
        assert reason in r["skipped"][name] and "\n" not in r["skipped"][name]
        assert f"skipped {name}: " in text
    assert r["roofline"]["weight_bytes"] is None and "None" not in text  # nothing formats a missing figure


def test_table_formats_missing_figures_as_dashes():
    res = bench.BenchResult(model="m.plan", threads=1, batches=[1])
    res.roofline = {"matmul_gflops": {"fp32": 10.0}, "peak_gflops": 10.0, "flops_per_sample": None,
                    "batch1_floor_ms": None, "weight_bytes": None, "weight_stream_gb_per_s": None,
                    "batch1_weight_stream_ms": None, "peak_gflops_by_precision": {"fp32": 10.0, "bf16": None}}
    res.stats = [bench.Stats("trt", 1, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1e3)]
    res.cold_start = {"ort": {"cold_start_s": None, "import_and_load_s": 0.1, "first_sample_s": None,
                              "process_wall_s": 1.0}}
    text = bench.table(res)
    assert "None" not in text and "trt" in text and "bf16 -" in text
